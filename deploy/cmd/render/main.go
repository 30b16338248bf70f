// Command render writes the plain manifests of the wasmrunner chart, for
// those who deploy without helm: the chart rendered with
// manifests/values.yaml as release "wasmrunner" in namespace "wasmrunner".
// Run it from the deploy module after changing the chart:
//
//	cd deploy && go run ./cmd/render
//
// A test fails while manifests/wasmrunner.yaml differs from a fresh render.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/wasmrunner/wasmrunner/deploy"
)

func main() {
	if err := run("."); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	b, err := deploy.RenderPlain(dir)
	if err != nil {
		return err
	}
	out := filepath.Join(dir, deploy.PlainManifests)
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}
