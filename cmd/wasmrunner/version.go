package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the guest ABI version and the Go version",
		Description: `Example:
   wasmrunner version`,
		Action: func(c *cli.Context) error {
			rev := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = s.Value
					}
				}
			}
			fmt.Fprintf(c.App.Writer, "wasmrunner %s\nrevision: %s\nguest ABI: %s (v%d)\ngo: %s %s/%s\n",
				version, rev, abi.ModuleName, abi.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
