package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
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
they need) through the same engine and sandbox as serve: stages and needs
decide the order, each job's image picks its handler, dependency artifacts
are passed on, and each job's log streams to the terminal. Artifacts are
written to --artifacts-dir/<job>/. Keywords wasmrunner does not support are
reported once. It exits 1 if a job failed (unless allow_failure) or the
pipeline is invalid, 2 on a usage error (a flag, a --modules dir or
--file that does not exist, a job name the pipeline does not have).

Examples:
   wasmrunner exec --modules ./handlers
   wasmrunner exec --modules examples/modules --file examples/pipeline/.gitlab-ci.yml
   wasmrunner exec --modules ./handlers --var GREETING=hi --masked-var TOKEN=s3cr3t-value build test`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "modules", Usage: "directory of handler modules (required)", EnvVars: []string{"WASMRUNNER_MODULES"}},
			&cli.StringFlag{Name: "file", Value: ".gitlab-ci.yml", Usage: "the pipeline file"},
			&cli.StringFlag{Name: "artifacts-dir", Value: "artifacts", Usage: "where job artifacts are written"},
			&cli.StringFlag{Name: "builds-dir", Usage: "where job build dirs live (default: a temporary dir)"},
			&cli.StringFlag{Name: "default-handler", Usage: "handler for jobs without an image"},
			&cli.StringSliceFlag{Name: "var", Usage: "add a variable KEY=VALUE (repeatable)"},
			&cli.StringSliceFlag{Name: "masked-var", Usage: "add a masked variable KEY=VALUE (repeatable)"},
			&cli.StringFlag{Name: "output-limit", Value: "4MiB", Usage: "most bytes of each job's log: a size with a unit (4MiB), or a plain number of KiB (4096)"},
		},
		Action: runExec,
	}
}

func runExec(c *cli.Context) error {
	logger, err := loggerFor(c)
	if err != nil {
		return err
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
	file := c.String("file")
	data, err := os.ReadFile(file)
	if err != nil {
		// The file the command line names: a usage error. What it holds
		// is the pipeline's: a failure.
		return usageError(fmt.Sprintf("reading the pipeline: %v", err))
	}
	p, err := pipeline.Parse(data)
	if err != nil {
		// Parse errors name the file and line already.
		return cli.Exit(strings.Replace(err.Error(), pipeline.FileName, file, 1), exitFailure)
	}
	jobs, err := p.Select(c.Args().Slice()...)
	if err != nil {
		return usageError(err.Error())
	}
	out := c.App.Writer
	for _, w := range p.Warnings {
		fmt.Fprintf(out, "\x1b[33;1mWARNING: %s\x1b[0;m\n", w)
	}

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
		fmt.Fprintf(out, "\x1b[33;1mWARNING: handler %s not loaded: %v\x1b[0;m\n", name, perr)
	}

	src := local.New(out, c.String("artifacts-dir"))
	project := filepath.Base(filepath.Dir(mustAbs(file)))
	ids := map[string]int64{}
	payloads := make([]*gitlab.Job, 0, len(jobs))
	for i, j := range jobs {
		id := int64(i + 1)
		ids[j.Name] = id
		pl := payloadFor(id, j, jobs[:i], ids, p, project, extra, masked)
		payloads = append(payloads, pl)
		rule := local.Rule{When: j.When, AllowFailure: j.AllowFailure, AllowFailureExitCodes: j.AllowFailureExitCodes}
		for _, up := range upstreamOf(j, jobs[:i], p) {
			rule.After = append(rule.After, ids[up])
		}
		src.Add(pl, rule)
	}

	runner, err := engine.New(engine.Config{
		Client: src, Token: "local", Handler: reg.Factory(), BuildsDir: buildsDir, Concurrency: 1,
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

	return summarize(out, jobs, payloads, src)
}

// summarize prints each job's result and decides the exit code.
func summarize(out io.Writer, jobs []*pipeline.Job, payloads []*gitlab.Job, src *local.Source) error {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTAGE\tRESULT\tARTIFACTS")
	failed := 0
	for i, j := range jobs {
		res := src.Result(payloads[i].ID)
		result := "not run"
		var arts []string
		if res != nil {
			result = string(res.State)
			if res.FailureReason != "" {
				result += " (" + string(res.FailureReason)
				if res.ExitCode != 0 {
					result += fmt.Sprintf(", exit code %d", res.ExitCode)
				}
				result += ")"
			}
			arts = res.Artifacts
		}
		switch {
		case res != nil && res.State == gitlab.StateSuccess:
		case res != nil && res.State == gitlab.StateSkipped && j.When != "" && j.When != "on_success":
			// An on_failure job not needed is not a failure.
		case src.AllowedToFail(payloads[i].ID):
			result += " [allowed to fail]"
		default:
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, j.Stage, result, strings.Join(arts, " "))
	}
	tw.Flush()
	if failed > 0 {
		return cli.Exit(fmt.Sprintf("%d job(s) did not succeed", failed), exitFailure)
	}
	return nil
}

// payloadFor builds the job payload GitLab would send for j.
func payloadFor(id int64, j *pipeline.Job, earlier []*pipeline.Job, ids map[string]int64, p *pipeline.Pipeline, project string, extra, masked []gitlab.Variable) *gitlab.Job {
	timeout := int64(j.Timeout / time.Second)
	if timeout <= 0 {
		timeout = 3600
	}
	vars := gitlab.Variables{
		{Key: "CI", Value: "true", Public: true},
		{Key: "WASMRUNNER_EXEC", Value: "true", Public: true},
		{Key: "CI_JOB_ID", Value: fmt.Sprint(id), Public: true},
		{Key: "CI_JOB_NAME", Value: j.Name, Public: true},
		{Key: "CI_JOB_STAGE", Value: j.Stage, Public: true},
		{Key: "CI_PROJECT_NAME", Value: project, Public: true},
		{Key: "CI_PIPELINE_SOURCE", Value: "local", Public: true},
	}
	for _, v := range j.Variables {
		vars = append(vars, gitlab.Variable{Key: v.Key, Value: v.Value, Public: true})
	}
	vars = append(vars, extra...)
	vars = append(vars, masked...)

	steps := []gitlab.Step{{Name: gitlab.StepScript, Script: j.Script, Timeout: timeout, When: gitlab.StepWhenOnSuccess}}
	if len(j.AfterScript) > 0 {
		steps = append(steps, gitlab.Step{Name: gitlab.StepAfterScript, Script: j.AfterScript, Timeout: 300, When: gitlab.StepWhenAlways, AllowFailure: true})
	}
	pl := &gitlab.Job{
		ID: id, Token: local.NewToken(),
		JobInfo:    gitlab.JobInfo{Name: j.Name, Stage: j.Stage, ProjectID: 1, ProjectName: project},
		RunnerInfo: gitlab.RunnerInfo{Timeout: timeout},
		Variables:  vars, Steps: steps, Image: gitlab.Image{Name: j.Image},
		Features: gitlab.JobFeatures{FailureReasons: []string{
			string(gitlab.ScriptFailure), string(gitlab.RunnerSystemFailure), string(gitlab.JobExecutionTimeout),
			string(gitlab.JobCanceled), string(gitlab.UnknownFailure),
		}},
	}
	if a := j.Artifacts; a != nil {
		pl.Artifacts = []gitlab.ArtifactSpec{{
			Name: a.Name, Paths: a.Paths, Exclude: a.Exclude, When: gitlab.ArtifactWhen(a.When),
			ExpireIn: a.ExpireIn, Untracked: a.Untracked, Type: "archive", Format: gitlab.FormatZip,
		}}
	}
	for _, dep := range dependenciesOf(j, earlier, p) {
		if depID, ok := ids[dep]; ok {
			pl.Dependencies = append(pl.Dependencies, gitlab.Dependency{ID: depID, Name: dep, Token: pl.Token})
		}
	}
	return pl
}

// upstreamOf names the jobs whose results decide whether j runs: its
// needs, else every job of an earlier stage.
func upstreamOf(j *pipeline.Job, earlier []*pipeline.Job, p *pipeline.Pipeline) []string {
	if j.NeedsSet {
		return j.Needs
	}
	stage := map[string]int{}
	for i, s := range p.Stages {
		stage[s] = i
	}
	var out []string
	for _, e := range earlier {
		if stage[e.Stage] < stage[j.Stage] {
			out = append(out, e.Name)
		}
	}
	return out
}

// dependenciesOf names the jobs whose artifacts j receives: its needs
// (with artifacts), else its dependencies, else every earlier-stage job.
func dependenciesOf(j *pipeline.Job, earlier []*pipeline.Job, p *pipeline.Pipeline) []string {
	switch {
	case j.NeedsSet:
		var out []string
		for _, n := range j.Needs {
			if art, ok := j.NeedsArtifacts[n]; !ok || art {
				out = append(out, n)
			}
		}
		return out
	case j.DependenciesSet:
		return j.Dependencies
	}
	return upstreamOf(j, earlier, p)
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

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
