package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

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
			Description: `check loads each module of DIR (NAME.wasm, and NAME@TAG.wasm for the
version a job's image NAME:TAG names) with its optional manifest (NAME.toml,
NAME@TAG.toml), as serve would, and prints for each: the image that runs it,
its file, size and sha256, ABI and entry point, the limits its jobs get
(every one, in human units), what the operator's policy cut from what its
manifest asks for, and its problems, with the modules dir's own (a manifest
without its module, a name that differs by case...). It exits 1 if there is
any problem: a module that does not load, or one that loads but whose jobs
will run into something knowable now.

With --config, it checks the modules dir of every [[runners]] entry of a
serve config file, under that runner's policy, loading only the handlers
its handlers key names, and reports names in handlers and default_handler
that refer to no module.

--format json prints one JSON document for scripts and CI; its shape is
described in docs/modules-check.md and stays stable within "format": 1.

An oci:// reference (as serve's --modules takes) is pulled into a temporary
dir and checked; its digest is printed first.

Examples:
   wasmrunner modules check ./handlers
   wasmrunner modules check oci://registry.example.com/team/handlers:v1
   wasmrunner modules check --config /etc/wasmrunner/config.toml
   wasmrunner modules check --format json ./handlers | jq '.runners[].modules[] | select(.problems)'`,
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "config", Usage: "check every runner entry of this serve config file, under its policy"},
				&cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text or json"},
			}, registryFlags()...),
			Action: modulesCheck,
		}, modulesPushCommand()},
	}
}

// checkTarget is a modules dir and the settings its modules load under.
type checkTarget struct {
	runner         string // "" without a config file
	dir            string
	handlers       []string
	defaultHandler string
	policy         resource.Policy
	proc           *resource.Process
	access         ocisource.Access // of an oci:// dir
}

func modulesCheck(c *cli.Context) error {
	format := c.String("format")
	if format != "text" && format != "json" {
		return usageError(fmt.Sprintf("invalid --format %q (text or json)", format))
	}
	var targets []checkTarget
	switch {
	case c.String("config") != "" && c.NArg() == 0:
		fc, err := loadConfig(c.String("config"))
		if err != nil {
			if format == "json" {
				// Still a document of the same shape, for scripts.
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				enc.Encode(checkOutput{Format: checkFormat, Error: err.Error(), Runners: []checkRunner{}})
			}
			return cli.Exit(err.Error(), exitUsage)
		}
		var o serveOptions
		fc.compileOver(&o)
		proc := resource.NewProcess(resource.ProcessConfig{Compile: o.compile})
		for _, r := range fc.Runners {
			targets = append(targets, checkTarget{runner: r.Name, dir: r.Modules, handlers: r.Handlers, defaultHandler: r.DefaultHandler,
				policy: *fc.Policy.over(r.Policy).policy(), proc: proc, access: fc.ociOver(r, ociFlagOptions(c)).access()})
		}
	case c.String("config") == "" && c.NArg() == 1:
		targets = append(targets, checkTarget{dir: c.Args().First(), proc: resource.NewProcess(resource.ProcessConfig{}), access: ociFlagOptions(c).access()})
	default:
		return usageError("modules check takes one directory, or --config FILE")
	}
	compiler, err := modules.SelfCompiler()
	if err != nil {
		return cli.Exit(fmt.Sprintf("finding the compiler (this executable): %v", err), exitFailure)
	}
	out := checkOutput{Format: checkFormat, OK: true}
	// An oci:// dir's digest goes with the text output; JSON has it in
	// modules_dir's place (the pulled artifact).
	note := c.App.Writer
	if format == "json" {
		note = io.Discard
	}
	for _, t := range targets {
		t, release, err := pulledTarget(c.Context, note, t)
		if err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		out.Runners = append(out.Runners, checkDir(c.Context, t, compiler))
		release()
	}
	broken, problems := 0, 0
	for _, r := range out.Runners {
		problems += len(r.Problems)
		for _, m := range r.Modules {
			problems += len(m.Problems)
			if !m.Loaded {
				broken++
			}
		}
	}
	out.OK = problems == 0
	if format == "json" {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
	} else {
		printCheck(c.App.Writer, out)
	}
	if !out.OK {
		return cli.Exit(fmt.Sprintf("%d broken module(s); %d problem(s) in all", broken, problems), exitFailure)
	}
	return nil
}

// checkFormat is the version of the JSON document's shape: it changes
// only when a field changes meaning or goes away (fields may be added).
const checkFormat = 1

// checkOutput is what `modules check --format json` prints (see
// docs/modules-check.md).
type checkOutput struct {
	Format int  `json:"format"`
	OK     bool `json:"ok"` // no problem anywhere: the exit code is 0
	// Error is why nothing was checked: the config file is not valid
	// (the exit code is then 2).
	Error   string        `json:"error,omitempty"`
	Runners []checkRunner `json:"runners"`
}

// checkRunner is one modules dir, of one runner entry or of the command
// line.
type checkRunner struct {
	Runner         string            `json:"runner,omitempty"` // the runner entry's name; absent without --config
	ModulesDir     string            `json:"modules_dir"`
	Handlers       []string          `json:"handlers,omitempty"` // the handlers key: only these load; absent: all
	DefaultHandler string            `json:"default_handler,omitempty"`
	Modules        []checkModule     `json:"modules"`
	Skipped        []string          `json:"skipped,omitempty"`  // modules not loaded: not in handlers
	Problems       []modules.Problem `json:"problems,omitempty"` // of the dir and the runner's settings
}

// checkModule is one module: a version of a handler.
type checkModule struct {
	Image    string            `json:"image"` // what a job's image writes: "shell", "shell:1.0"
	Name     string            `json:"name"`
	Tag      string            `json:"tag,omitempty"` // absent for the untagged NAME.wasm
	Path     string            `json:"path"`
	Manifest string            `json:"manifest,omitempty"` // the manifest's path; absent without one
	Loaded   bool              `json:"loaded"`             // false: refused; jobs naming it fail
	Size     int64             `json:"size,omitempty"`     // bytes of the module file
	SHA256   string            `json:"sha256,omitempty"`   // of the module file: image NAME@sha256:HEX pins it
	ABI      string            `json:"abi,omitempty"`      // "v1"
	Entry    string            `json:"entry,omitempty"`    // "wasmrunner_step" (a reactor) or "_start" (a command)
	Limits   *checkLimits      `json:"limits,omitempty"`   // what its jobs get, after the policy
	Cuts     []checkCut        `json:"cuts,omitempty"`     // what the policy cut from the manifest
	Problems []modules.Problem `json:"problems,omitempty"`
}

// checkLimits are a module's effective limits, in bytes and seconds; 0
// where a limit is another's (the job's timeout, the runner's output
// limit and instance slots).
type checkLimits struct {
	MemoryBytes    int64     `json:"memory_bytes"`
	TimeoutSeconds float64   `json:"timeout_seconds"` // 0: the job's timeout only
	LogBytes       int64     `json:"log_bytes"`       // 0: the runner's output limit only
	DiskBytes      int64     `json:"disk_bytes"`
	Files          int64     `json:"files"`
	OpenFiles      int64     `json:"open_files"`
	Instances      int       `json:"instances"` // 0: the runner's instance slots only
	CPU            string    `json:"cpu"`       // "interrupt" or "uninterrupted"
	HTTP           checkHTTP `json:"http"`
}

type checkHTTP struct {
	Allow          []string `json:"allow"` // empty: no HTTP
	TimeoutSeconds float64  `json:"timeout_seconds"`
	MaxBodyBytes   int64    `json:"max_body_bytes"`
}

type checkCut struct {
	Key   string `json:"key"`   // the manifest key: "limits.memory"
	Asked string `json:"asked"` // as the manifest has it
	Got   string `json:"got"`
}

// checkDir loads the modules of t, as serve would, and reports them.
func checkDir(ctx context.Context, t checkTarget, compiler []string) checkRunner {
	out := checkRunner{Runner: t.runner, ModulesDir: t.dir, Handlers: t.handlers, DefaultHandler: t.defaultHandler, Modules: []checkModule{}}
	// Compiled in the child, as serve does, into a temporary cache.
	reg, err := modules.Open(ctx, modules.Config{Dir: t.dir, Policy: &t.policy, Process: t.proc, Compiler: compiler,
		Handlers: t.handlers, DefaultHandler: t.defaultHandler})
	if err != nil {
		out.Problems = append(out.Problems, modules.Problem{Code: "modules_dir", Message: err.Error()})
		return out
	}
	defer reg.Close(ctx)
	rep := reg.Report()
	for _, m := range rep.Modules {
		cm := checkModule{Image: m.Image, Name: m.Name, Tag: m.Tag, Path: m.Path, Manifest: m.ManifestPath, Loaded: m.Loaded, Problems: m.Problems}
		if m.Loaded {
			l := m.Limits
			cm.Size, cm.SHA256, cm.ABI = m.Size, m.SHA256, fmt.Sprintf("v%d", abi.Version)
			cm.Entry = abi.ExportStart
			if m.Reactor {
				cm.Entry = abi.ExportStep
			}
			cm.Limits = &checkLimits{
				MemoryBytes: l.Memory, TimeoutSeconds: l.Timeout.Seconds(), LogBytes: l.Log, DiskBytes: l.Disk,
				Files: l.Files, OpenFiles: l.OpenFiles, Instances: l.Instances, CPU: string(l.CPU),
				HTTP: checkHTTP{Allow: append([]string{}, l.HTTP.Allow...), TimeoutSeconds: l.HTTP.Timeout.Seconds(), MaxBodyBytes: l.HTTP.MaxResponse},
			}
			for _, c := range m.Cuts {
				cm.Cuts = append(cm.Cuts, checkCut{Key: c.Key, Asked: c.Asked, Got: c.Got})
			}
		}
		out.Modules = append(out.Modules, cm)
	}
	out.Skipped = rep.Skipped
	out.Problems = append(out.Problems, rep.Problems...)
	if len(rep.Modules) == 0 && len(rep.Skipped) == 0 {
		out.Problems = append(out.Problems, modules.Problem{Code: "no_modules", Message: "no modules (*.wasm) found in " + t.dir})
	}
	return out
}

// printCheck prints the report for people.
func printCheck(w io.Writer, out checkOutput) {
	for i, r := range out.Runners {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if r.Runner != "" {
			fmt.Fprintf(w, "runner %s: %s", r.Runner, r.ModulesDir)
			if len(r.Handlers) > 0 {
				fmt.Fprintf(w, " (handlers: %s)", strings.Join(r.Handlers, ", "))
			}
			if r.DefaultHandler != "" {
				fmt.Fprintf(w, " (default handler: %s)", r.DefaultHandler)
			}
			fmt.Fprintln(w)
		} else {
			fmt.Fprintf(w, "modules dir %s\n", r.ModulesDir)
		}
		var cuts []string
		for _, m := range r.Modules {
			fmt.Fprintln(w)
			status := "ok"
			switch {
			case !m.Loaded:
				status = "NOT LOADED: jobs naming it fail"
			case len(m.Problems) > 0:
				status = "loaded, with problems"
			}
			fmt.Fprintf(w, "%s  %s\n", m.Image, status)
			file := filepath.Base(m.Path)
			if m.Loaded {
				file += fmt.Sprintf(" (%s, sha256 %s)", units.HumanSize(m.Size), m.SHA256)
			}
			if m.Manifest != "" {
				file += ", manifest " + filepath.Base(m.Manifest)
			} else if m.Loaded {
				file += ", no manifest"
			}
			fmt.Fprintf(w, "  file:     %s\n", file)
			if l := m.Limits; l != nil {
				kind := "reactor"
				if m.Entry == abi.ExportStart {
					kind = "command: a fresh instance per step"
				}
				fmt.Fprintf(w, "  entry:    %s (%s), ABI %s\n", m.Entry, kind, m.ABI)
				fmt.Fprintf(w, "  limits:   memory %s, timeout %s, log %s, disk %s, files %d, open files %d, instances %s, cpu %s\n",
					units.FormatSize(l.MemoryBytes), orOther(l.TimeoutSeconds > 0, fmtSeconds(l.TimeoutSeconds), "the job's"),
					orOther(l.LogBytes > 0, units.FormatSize(l.LogBytes), "the runner's output limit"), units.FormatSize(l.DiskBytes),
					l.Files, l.OpenFiles, orOther(l.Instances > 0, fmt.Sprint(l.Instances), "the runner's"), l.CPU)
				hosts := "none (no HTTP)"
				if len(l.HTTP.Allow) > 0 {
					hosts = strings.Join(l.HTTP.Allow, ", ")
				}
				fmt.Fprintf(w, "  http:     allow %s; timeout %s, max body %s\n", hosts, fmtSeconds(l.HTTP.TimeoutSeconds), units.FormatSize(l.HTTP.MaxBodyBytes))
			}
			for _, p := range m.Problems {
				fmt.Fprintf(w, "  problem:  %s [%s]\n", p.Message, p.Code)
			}
			for _, c := range m.Cuts {
				cuts = append(cuts, fmt.Sprintf("  %s: %s %s -> %s", m.Image, c.Key, c.Asked, c.Got))
			}
		}
		if len(cuts) > 0 {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "cut by the operator's policy (manifest asks -> gets):")
			for _, c := range cuts {
				fmt.Fprintln(w, c)
			}
		}
		if len(r.Skipped) > 0 {
			fmt.Fprintf(w, "\nnot loaded, not in this runner's handlers: %s\n", strings.Join(r.Skipped, ", "))
		}
		if len(r.Problems) > 0 {
			fmt.Fprintln(w)
			fmt.Fprintln(w, "problems of the modules dir and the runner's settings:")
			for _, p := range r.Problems {
				fmt.Fprintf(w, "  %s [%s]\n", p.Message, p.Code)
			}
		}
	}
}

func orOther(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// fmtSeconds formats seconds as a Go duration, without zero tails ("30s",
// "30m", "1h").
func fmtSeconds(s float64) string {
	str := time.Duration(s * float64(time.Second)).String()
	if strings.HasSuffix(str, "m0s") {
		str = str[:len(str)-2]
	}
	if strings.HasSuffix(str, "h0m") {
		str = str[:len(str)-2]
	}
	return str
}
