// Command wasmrunner runs GitLab CI jobs through job handlers compiled to
// WebAssembly.
package main

import (
	"context"
	"os"
)

func main() {
	// Commands handle signals themselves: serve tells SIGQUIT from
	// SIGTERM, which a cancelled context cannot.
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
