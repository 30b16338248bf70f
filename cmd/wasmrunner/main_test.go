package main

import (
	"context"
	"os"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine/modules"
)

// TestMain runs the compiler child when serve, exec or modules check,
// run in-process by the tests, re-run the test binary as their compiler
// (modules.SelfCompiler), as main does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == modules.CompilerCommand {
		os.Exit(modules.RunCompiler(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	// The test binary as wasmrunner itself, for tests that run it from a
	// shell (completion).
	if os.Getenv("WASMRUNNER_TEST_AS_CLI") == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
	}
	// serve and exec keep compiled modules under the user cache dir: a
	// temporary one for the tests.
	dir, err := os.MkdirTemp("", "wasmrunner-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
