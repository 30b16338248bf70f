// Command wasmrunner runs GitLab CI jobs through job handlers compiled to
// WebAssembly.
package main

import (
	"context"
	"os"

	"github.com/wasmrunner/wasmrunner/engine/modules"
)

func main() {
	// The hidden compiler child (modules.SelfCompiler): serve, exec and
	// modules check compile each handler module in a child process that
	// is this executable re-run with this argument, before anything else.
	if len(os.Args) > 1 && os.Args[1] == modules.CompilerCommand {
		os.Exit(modules.RunCompiler(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	// Commands handle signals themselves: serve tells SIGQUIT from
	// SIGTERM, which a cancelled context cannot.
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
