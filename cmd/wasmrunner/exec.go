package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/gitinfo"
	"github.com/wasmrunner/wasmrunner/internal/local"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
)

var _ engine.Client = (*local.Source)(nil)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run jobs of a local .gitlab-ci.yml with the handlers of a directory, without GitLab",
		ArgsUsage: "[JOB...]",
		Description: `exec reads a .gitlab-ci.yml and runs its jobs (or the named ones and what
they need) through the same engine and sandbox as serve, deciding which jobs
exist, their order and their variables as GitLab does for the local git
repository's HEAD: rules, workflow, only/except, include (local), !reference,
extends, parallel and matrix, predefined variables, variable expansion.
Jobs run in parallel along stages and needs (--concurrency), each starting
with the project's files and its dependencies' artifacts (and dotenv
variables); manual jobs run when named or with --manual. Each job's image
picks its handler. Artifacts are written to --artifacts-dir/<job>/.
Keywords wasmrunner does not support are reported once. It exits 1 if a job
failed (unless allow_failure) or the pipeline is invalid or filtered out by
workflow:rules, 2 on a usage error (a flag, a --modules dir or --file that
does not exist, a job name the pipeline does not have).

Examples:
   wasmrunner exec --modules ./handlers
   wasmrunner exec --modules examples/modules --file examples/pipeline/.gitlab-ci.yml
   wasmrunner exec --modules ./handlers --var GREETING=hi --masked-var TOKEN=s3cr3t-value build test
   wasmrunner exec --modules ./handlers --list --pipeline-source schedule
   wasmrunner exec --modules ./handlers --print-variables deploy`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "modules", Usage: "directory of handler modules (required)", EnvVars: []string{"WASMRUNNER_MODULES"}},
			&cli.StringFlag{Name: "file", Value: ".gitlab-ci.yml", Usage: "the pipeline file"},
			&cli.StringFlag{Name: "artifacts-dir", Value: "artifacts", Usage: "where job artifacts are written"},
			&cli.StringFlag{Name: "builds-dir", Usage: "where job build dirs live (default: a temporary dir)"},
			&cli.StringFlag{Name: "default-handler", Usage: "handler for jobs without an image"},
			&cli.StringSliceFlag{Name: "var", Usage: "add a variable KEY=VALUE (repeatable)"},
			&cli.StringSliceFlag{Name: "masked-var", Usage: "add a masked variable KEY=VALUE (repeatable)"},
			&cli.StringFlag{Name: "output-limit", Value: "4MiB", Usage: "most bytes of each job's log: a size with a unit (4MiB), or a plain number of KiB (4096)"},
			&cli.StringFlag{Name: "variables-file", Usage: "read pipeline variables from a file of KEY=VALUE lines (--var wins)"},
			&cli.StringFlag{Name: "pipeline-source", Value: "push", Usage: "CI_PIPELINE_SOURCE: push, web, schedule, merge_request_event, api, trigger, ..."},
			&cli.StringFlag{Name: "compare-to", Usage: "git revision that rules:changes and only:changes compare with (default: HEAD's parent)"},
			&cli.BoolFlag{Name: "no-project-files", Usage: "start each job with an empty build dir instead of the project's files"},
			&cli.BoolFlag{Name: "manual", Usage: "run manual jobs too (named jobs always run)"},
			&cli.IntFlag{Name: "concurrency", Usage: "most jobs run at once (default: the number of CPUs)"},
			&cli.StringFlag{Name: "output", Value: "auto", Usage: "how job logs are shown: raw, prefix (each line after its job's name), group (each job's log when it ends); auto: raw for one job at a time, else prefix on a terminal, group otherwise"},
			&cli.BoolFlag{Name: "list", Usage: "list the jobs of the pipeline (after rules) and exit"},
			&cli.StringFlag{Name: "print-variables", Usage: "print the variables job `JOB` starts with and exit"},
		},
		Action: runExec,
	}
}

func runExec(c *cli.Context) error {
	logger, err := loggerFor(c)
	if err != nil {
		return err
	}
	if !c.IsSet("log-level") {
		// The job logs are what exec is for: the operator log (stderr)
		// says only what goes wrong unless asked for more.
		if logger, err = newLogger(c.App.ErrWriter, slog.LevelWarn, c.String("log-format")); err != nil {
			return err
		}
	}
	modulesDir := c.String("modules")
	if modulesDir == "" {
		return usageError("--modules (or WASMRUNNER_MODULES) is required")
	}
	if fi, err := os.Stat(modulesDir); err != nil {
		return usageError(fmt.Sprintf("--modules: %v", err))
	} else if !fi.IsDir() {
		return usageError(fmt.Sprintf("--modules: %s is not a directory", modulesDir))
	}
	if h := c.String("default-handler"); h != "" && len(missingHandlers(modulesDir, []string{h})) > 0 {
		return usageError(fmt.Sprintf("--default-handler %q: no module in %s provides it (%s.wasm or %s@TAG.wasm)", h, modulesDir, h, h))
	}
	limit, err := parseOutputLimit(c.String("output-limit"))
	if err != nil {
		return err
	}
	extra, err := parseVars(c.StringSlice("var"), false)
	if err != nil {
		return err
	}
	masked, err := parseVars(c.StringSlice("masked-var"), true)
	if err != nil {
		return err
	}
	if f := c.String("variables-file"); f != "" {
		fromFile, err := local.ReadVariablesFile(f)
		if err != nil {
			return usageError(fmt.Sprintf("--variables-file: %v", err))
		}
		extra = append(fromFile, extra...)
	}
	extra = append(extra, masked...)
	file := c.String("file")
	data, err := os.ReadFile(file)
	if err != nil {
		// The file the command line names: a usage error. What it holds
		// is the pipeline's: a failure.
		return usageError(fmt.Sprintf("reading the pipeline: %v", err))
	}
	project, repo, err := local.Discover(file, c.String("pipeline-source"), time.Now())
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	opts := local.Options(project, repo, extra, c.String("compare-to"))
	p, err := pipeline.ParseWith(data, opts)
	if err != nil {
		// Parse errors name the file and line already; errors of the
		// main file say .gitlab-ci.yml, included files their path.
		msg := err.Error()
		if strings.HasPrefix(msg, pipeline.FileName+":") {
			msg = file + msg[len(pipeline.FileName):]
		}
		return cli.Exit(msg, exitFailure)
	}
	names := c.Args().Slice()
	jobs, err := p.Select(names...)
	if err != nil {
		return usageError(err.Error())
	}
	out := c.App.Writer
	concurrency := c.Int("concurrency")
	if concurrency <= 0 {
		concurrency = runtime.NumCPU()
	}
	terminal := false
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		terminal = true
	}
	style, err := outputStyle(c.String("output"), concurrency, terminal)
	if err != nil {
		return usageError(err.Error())
	}
	color := terminal && os.Getenv("NO_COLOR") == ""
	output := local.NewOutput(out, style, color)
	for _, w := range p.Warnings {
		output.Printf("\x1b[33;1mWARNING: %s\x1b[0;m\n", w)
	}
	cfg := local.PlanConfig{Pipeline: p, Predefined: opts.Predefined, Extra: extra, ProjectName: project.Name, ProjectFiles: !c.Bool("no-project-files")}
	if c.Bool("list") {
		return local.List(out, jobs)
	}
	if name := c.String("print-variables"); name != "" {
		return printVariables(out, cfg, p, name)
	}
	planned := local.Plan(cfg, jobs)
	local.Play(planned, names, c.Bool("manual"))

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	bg := context.WithoutCancel(ctx)

	buildsDir := c.String("builds-dir")
	if buildsDir == "" {
		if buildsDir, err = os.MkdirTemp("", "wasmrunner-exec-"); err != nil {
			return err
		}
		defer os.RemoveAll(buildsDir)
	}
	compiler, err := modules.SelfCompiler()
	if err != nil {
		return fmt.Errorf("finding the compiler (this executable): %w", err)
	}
	reg, err := modules.Open(ctx, modules.Config{
		Dir: modulesDir, CacheDir: filepath.Join(cacheDir(), "compiled", "exec"), Compiler: compiler,
		DefaultHandler: c.String("default-handler"), Logger: logger,
	})
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	defer reg.Close(bg)
	for name, perr := range reg.Problems() {
		output.Printf("\x1b[33;1mWARNING: handler %s not loaded: %v\x1b[0;m\n", name, perr)
	}

	src := local.New(out, c.String("artifacts-dir"))
	defer src.Close()
	src.SetOutput(output)
	// A job starts as soon as its upstream jobs end, not at the engine's
	// next poll.
	src.SetLongPoll(time.Minute)
	if cfg.ProjectFiles {
		zipPath := filepath.Join(buildsDir, ".project-files.zip")
		if err := writeProjectFiles(ctx, zipPath, project, repo, c.String("artifacts-dir"), c.String("builds-dir")); err != nil {
			return cli.Exit(err.Error(), exitFailure)
		}
		defer os.Remove(zipPath)
		src.SetProjectFiles(zipPath)
	}
	for _, pj := range planned {
		src.Add(pj.Payload, pj.Rule)
	}
	runner, err := engine.New(engine.Config{
		Client: src, Token: "local", Handler: reg.Factory(), BuildsDir: buildsDir, Concurrency: concurrency, ReuseBuildDirs: true, LinkDependencies: true,
		CheckInterval: 10 * time.Millisecond, UpdateInterval: 100 * time.Millisecond, MaxUpdateInterval: 100 * time.Millisecond, KeepAlive: 100 * time.Millisecond,
		OutputLimit: limit, Logger: logger,
		Info: gitlab.RunnerMeta{Name: "wasmrunner exec", Version: version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	select {
	case <-src.Done():
		runner.Drain()
		<-done
	case err := <-done:
		if err != nil {
			return err
		}
	}
	if failed := local.Summarize(out, planned, src); failed > 0 {
		return cli.Exit(fmt.Sprintf("%d job(s) did not succeed", failed), exitFailure)
	}
	return nil
}

// outputStyle picks how job logs are shown: as asked, else raw for one
// job at a time, prefixed lines on a terminal, grouped per job otherwise.
func outputStyle(flag string, concurrency int, terminal bool) (local.Style, error) {
	switch {
	case flag != "" && flag != "auto":
		return local.ParseStyle(flag)
	case concurrency == 1:
		return local.Raw, nil
	case terminal:
		return local.Prefix, nil
	}
	return local.Group, nil
}

// writeProjectFiles archives the project's files for the jobs.
func writeProjectFiles(ctx context.Context, path string, pr local.Project, repo *gitinfo.Repo, skip ...string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = local.WriteProjectFiles(ctx, f, pr, repo, skip...)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// printVariables prints the variables a job starts with.
func printVariables(out io.Writer, cfg local.PlanConfig, p *pipeline.Pipeline, name string) error {
	jobs, err := p.Select(name)
	if err != nil {
		return usageError(err.Error())
	}
	var matched []*pipeline.Job
	for _, j := range jobs {
		if j.Name == name || j.Parallel == name {
			matched = append(matched, j)
		}
	}
	for i, j := range matched {
		if len(matched) > 1 {
			if i > 0 {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "# %s\n", j.Name)
		}
		local.PrintVariables(out, cfg, j)
	}
	return nil
}

// parseVars reads KEY=VALUE flags.
func parseVars(kvs []string, masked bool) ([]gitlab.Variable, error) {
	var out []gitlab.Variable
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(fmt.Sprintf("variable %q is not KEY=VALUE", kv))
		}
		out = append(out, gitlab.Variable{Key: k, Value: v, Masked: masked, Public: !masked})
	}
	return out, nil
}
