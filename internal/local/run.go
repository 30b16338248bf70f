package local

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/gitinfo"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
	"github.com/wasmrunner/wasmrunner/internal/varexpand"
)

// Options returns what the pipeline parser needs to evaluate rules for
// the project: its predefined variables, the pipeline variables extra, its
// files, and the files changed since compareTo ("" for HEAD's parent) in
// repo (nil: no repository, changes: always match).
func Options(pr Project, repo *gitinfo.Repo, extra []gitlab.Variable, compareTo string) pipeline.Options {
	opts := pipeline.Options{Predefined: Predefined(pr), Project: os.DirFS(pr.Dir)}
	for _, v := range extra {
		opts.PipelineVars = append(opts.PipelineVars, pipeline.Variable{Key: v.Key, Value: v.Value, Raw: v.Raw})
	}
	if repo != nil {
		if compareTo == "" && pr.Source == "merge_request_event" && pr.Commit.Branch != pr.Commit.DefaultBranch {
			// A merge request's changes are those of its source branch
			// against its target (docs: ci/yaml "rules:changes").
			if _, _, err := repo.Changes(pr.Commit.DefaultBranch); err == nil {
				compareTo = pr.Commit.DefaultBranch
			}
		}
		opts.Changes = func(base string) ([]string, bool, error) {
			if base == "" {
				base = compareTo
			}
			return repo.Changes(base)
		}
	}
	return opts
}

// maxVariablesFile bounds a --variables-file.
const maxVariablesFile = 1 << 20

// ReadVariablesFile reads pipeline variables from a file of KEY=VALUE
// lines (blank lines and lines starting with # are skipped; a value may be
// quoted with ' or ").
func ReadVariablesFile(path string) ([]gitlab.Variable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxVariablesFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxVariablesFile)
	}
	return ParseVariables(data, path)
}

// ParseVariables parses KEY=VALUE lines; name is used in errors.
func ParseVariables(data []byte, name string) ([]gitlab.Variable, error) {
	var out []gitlab.Variable
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxVariablesFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !validKey(k) {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE", name, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, gitlab.Variable{Key: k, Value: v, Public: true})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Play decides which manual jobs run: those named, or all with all. The
// others keep When "manual" and are not run.
func Play(planned []Planned, named []string, all bool) {
	for i := range planned {
		if planned[i].Rule.When != "manual" {
			continue
		}
		if all || slices.Contains(named, planned[i].Job.Name) {
			planned[i].Rule.When = "on_success"
		}
	}
}

// List prints the jobs of the pipeline, in run order.
func List(out io.Writer, jobs []*pipeline.Job) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTAGE\tWHEN\tNEEDS")
	for _, j := range jobs {
		when := j.When
		if j.When == "delayed" {
			when += " (" + j.StartIn.String() + ")"
		}
		if j.AllowFailure {
			when += ", allow_failure"
		}
		needs := "-"
		if j.NeedsSet {
			needs = "[" + strings.Join(j.Needs, ", ") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, j.Stage, when, needs)
	}
	return tw.Flush()
}

// PrintVariables prints the variables job j starts with, expanded as the
// engine expands them, in GitLab's order of precedence; masked values are
// shown as [MASKED]. CI_PROJECT_DIR and CI_BUILDS_DIR, which depend on
// where the job runs, are not listed.
func PrintVariables(out io.Writer, cfg PlanConfig, j *pipeline.Job) {
	vars := JobVariables(1, j, cfg)
	in := make([]varexpand.Var, len(vars))
	for i, v := range vars {
		in[i] = varexpand.Var{Key: v.Key, Value: v.Value, Raw: v.Raw}
	}
	exp := varexpand.All(in)
	last := map[string]int{}
	for i, v := range vars {
		last[v.Key] = i
	}
	for i, v := range vars {
		if last[v.Key] != i || v.Key == "CI_JOB_ID" {
			continue
		}
		val := exp[i].Value
		if v.Masked {
			val = "[MASKED]"
		}
		fmt.Fprintf(out, "%s=%s\n", v.Key, quoteValue(val))
	}
}

func quoteValue(s string) string {
	if strings.ContainsAny(s, " \t\n\"'$\\") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// Summarize prints each job's result and duration and returns how many
// jobs did not succeed (failures allowed, and manual jobs not started,
// excepted).
func Summarize(out io.Writer, planned []Planned, src *Source) int {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTAGE\tRESULT\tDURATION\tARTIFACTS")
	failed := 0
	for _, pj := range planned {
		j, id := pj.Job, pj.Payload.ID
		res := src.Result(id)
		result, dur := "not run", "-"
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
			if res.State == gitlab.StateSuccess || res.State == gitlab.StateFailed {
				dur = res.Duration.Round(time.Millisecond).String()
			}
		}
		switch {
		case res != nil && (res.State == gitlab.StateSuccess || res.State == StateManual || res.State == StateWaiting):
		case res != nil && res.State == gitlab.StateSkipped && pj.Rule.When != "" && pj.Rule.When != "on_success" && pj.Rule.When != "delayed":
			// An on_failure job not needed is not a failure.
		case src.AllowedToFail(id):
			result += " [allowed to fail]"
		default:
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.Stage, result, dur, strings.Join(arts, " "))
	}
	tw.Flush()
	return failed
}
