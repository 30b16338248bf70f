package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/ocisource"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

func modulesCommand() *cli.Command {
	return &cli.Command{
		Name:  "modules",
		Usage: "work with handler modules",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "load and validate every module of a directory against the ABI and its manifest",
			ArgsUsage: "[DIR | oci://REGISTRY/REPO:TAG]",
			Description: `check loads each NAME.wasm of DIR with its optional NAME.toml manifest, as
serve would, and prints a table: module, ABI version, size, entry point,
the limits its jobs get and problems. It exits 1 if any module is broken.

With --config, it checks the modules dir of every [[runners]] entry of a
serve config file, under that runner's policy, and says what the policy
cut from what each manifest asks for.

An oci:// reference (as serve's --modules takes) is pulled into a temporary
dir and checked; its digest is printed first.

Examples:
   wasmrunner modules check ./handlers
   wasmrunner modules check oci://registry.example.com/team/handlers:v1
   wasmrunner modules check --config /etc/wasmrunner/config.toml`,
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "config", Usage: "check every runner entry of this serve config file, under its policy"},
			}, registryFlags()...),
			Action: modulesCheck,
		}, modulesPushCommand()},
	}
}

// checkTarget is a modules dir and the policy its modules run under.
type checkTarget struct {
	runner   string // "" without a config file
	dir      string
	handlers []string
	policy   resource.Policy
	proc     *resource.Process
	access   ocisource.Access // of an oci:// dir
}

func modulesCheck(c *cli.Context) error {
	var targets []checkTarget
	switch {
	case c.String("config") != "" && c.NArg() == 0:
		fc, err := loadConfig(c.String("config"))
		if err != nil {
			return cli.Exit(err.Error(), exitUsage)
		}
		var o serveOptions
		fc.compileOver(&o)
		proc := resource.NewProcess(resource.ProcessConfig{Compile: o.compile})
		for _, r := range fc.Runners {
			targets = append(targets, checkTarget{runner: r.Name, dir: r.Modules, handlers: r.Handlers, policy: *fc.Policy.over(r.Policy).policy(), proc: proc,
				access: fc.ociOver(r, ociFlagOptions(c)).access()})
		}
	case c.String("config") == "" && c.NArg() == 1:
		targets = append(targets, checkTarget{dir: c.Args().First(), proc: resource.NewProcess(resource.ProcessConfig{}), access: ociFlagOptions(c).access()})
	default:
		return usageError("modules check takes one directory, or --config FILE")
	}
	broken, empty := 0, 0
	for i, t := range targets {
		if i > 0 {
			fmt.Fprintln(c.App.Writer)
		}
		t, release, err := pulledTarget(c.Context, c.App.Writer, t)
		if err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		b, n, err := checkDir(c.Context, c.App.Writer, t)
		release()
		if err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		broken += b
		if n == 0 {
			empty++
		}
	}
	if broken > 0 {
		return cli.Exit(fmt.Sprintf("%d broken module(s)", broken), exitFailure)
	}
	if empty > 0 {
		return cli.Exit("no modules (*.wasm) found", exitFailure)
	}
	return nil
}

// checkDir loads the modules of t and prints them; it returns the number
// of broken and of loaded modules.
func checkDir(ctx context.Context, w io.Writer, t checkTarget) (broken, loaded int, err error) {
	if t.runner != "" {
		fmt.Fprintf(w, "runner %s: %s\n", t.runner, t.dir)
	}
	compiler, err := modules.SelfCompiler()
	if err != nil {
		return 0, 0, fmt.Errorf("finding the compiler (this executable): %w", err)
	}
	// Compiled in the child, as serve does, into a temporary cache.
	reg, err := modules.Open(ctx, modules.Config{Dir: t.dir, Policy: &t.policy, Process: t.proc, Compiler: compiler})
	if err != nil {
		return 0, 0, err
	}
	defer reg.Close(ctx)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tABI\tSIZE\tENTRY\tMEMORY\tTIMEOUT\tLOG\tDISK\tFILES\tOPEN FILES\tINSTANCES\tCPU\tHTTP\tPROBLEMS")
	var cuts []string
	mods := reg.Modules()
	for _, m := range mods {
		entry := "_start (command)"
		if m.Reactor {
			entry = abi.ExportStep
		}
		l := m.Limits
		timeout := "job's"
		if l.Timeout > 0 {
			timeout = l.Timeout.String()
		}
		logLimit := "runner's"
		if l.Log > 0 {
			logLimit = units.FormatSize(l.Log)
		}
		instances := "runner's"
		if l.Instances > 0 {
			instances = fmt.Sprint(l.Instances)
		}
		hosts := "-"
		if len(l.HTTP.Allow) > 0 {
			hosts = strings.Join(l.HTTP.Allow, ",")
		}
		problem := "-"
		if len(t.handlers) > 0 && !slices.Contains(t.handlers, m.Name) {
			problem = "not in this runner's handlers: its jobs cannot use it"
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", m.Name, abi.Version, units.HumanSize(m.Size), entry,
			units.FormatSize(l.Memory), timeout, logLimit, units.FormatSize(l.Disk), l.Files, l.OpenFiles, instances, l.CPU, hosts, problem)
		for _, cut := range m.Cuts {
			cuts = append(cuts, fmt.Sprintf("  %s: %s", m.Name, cut))
		}
	}
	problems := reg.Problems()
	for _, n := range sortedNames(problems) {
		fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t%v\n", n, problems[n])
	}
	tw.Flush()
	if len(cuts) > 0 {
		fmt.Fprintln(w, "cut by the operator's policy (manifest asks -> gets):")
		for _, c := range cuts {
			fmt.Fprintln(w, c)
		}
	}
	return len(problems), len(mods), nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
