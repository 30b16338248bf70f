package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

func modulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "modules",
		Usage: "work with handler modules",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "load and validate every module of a directory against the ABI and its manifest",
			ArgsUsage: "DIR",
			Description: `check loads each NAME.wasm of DIR with its optional NAME.toml manifest, as
serve would, and prints a table: module, ABI version, size, entry point,
limits and problems. It exits 1 if any module is broken.

Example:
   wasmrunner modules check ./handlers`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageError("modules check takes exactly one directory")
				}
				reg, err := modules.Open(c.Context, modules.Config{Dir: c.Args().First()})
				if err != nil {
					return cli.Exit(err.Error(), exitFailure)
				}
				defer reg.Close(c.Context)
				tw := tabwriter.NewWriter(c.App.Writer, 2, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "MODULE\tABI\tSIZE\tENTRY\tMEMORY\tTIMEOUT\tHTTP\tPROBLEMS")
				for _, m := range reg.Modules() {
					entry := "_start (command)"
					if m.Reactor {
						entry = abi.ExportStep
					}
					timeout := "job"
					if d := m.Manifest.Limits.Timeout; d > 0 {
						timeout = fmt.Sprint(d)
					}
					hosts := "-"
					if len(m.Manifest.HTTP.Allow) > 0 {
						hosts = strings.Join(m.Manifest.HTTP.Allow, ",")
					}
					fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\t-\n", m.Name, abi.Version, units.FormatSize(m.Size), entry,
						units.FormatSize(int64(m.Manifest.Limits.Memory)), timeout, hosts)
				}
				problems := reg.Problems()
				names := make([]string, 0, len(problems))
				for n := range problems {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%v\n", n, problems[n])
				}
				tw.Flush()
				if len(problems) > 0 {
					return cli.Exit(fmt.Sprintf("%d broken module(s)", len(problems)), exitFailure)
				}
				if len(reg.Modules()) == 0 {
					return cli.Exit("no modules (*.wasm) found", exitFailure)
				}
				return nil
			},
		}},
	}
}
