package local

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/archive"
	"github.com/wasmrunner/wasmrunner/internal/gitinfo"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
	"github.com/wasmrunner/wasmrunner/internal/varexpand"
)

// Project describes the project and pipeline a local run stands for: what
// GitLab's predefined variables say.
type Project struct {
	// Dir is the project directory (the working tree's root).
	Dir string
	// Name and Path are the project's name and path ("group/name").
	Name, Path string
	// Commit is the commit the pipeline runs for. Its Branch or Tag is
	// the pipeline's ref.
	Commit gitinfo.Commit
	// Source is the pipeline source (CI_PIPELINE_SOURCE): push, web,
	// schedule, merge_request_event, ...
	Source string
	// PipelineID is the pipeline's id and iid.
	PipelineID int64
	// Created is when the pipeline was created.
	Created time.Time
	// ConfigPath is the configuration's path relative to Dir.
	ConfigPath string
}

// Predefined returns the pipeline-level predefined variables GitLab sets
// (docs: ci/variables/predefined_variables), for rules and for every job.
func Predefined(pr Project) []pipeline.Variable {
	c := pr.Commit
	ref := c.Branch
	if ref == "" {
		ref = c.Tag
	}
	vars := []pipeline.Variable{
		{Key: "CI", Value: "true"},
		{Key: "GITLAB_CI", Value: "true"},
		{Key: "CI_SERVER", Value: "yes"},
		{Key: "CI_SERVER_NAME", Value: "GitLab"},
		{Key: "WASMRUNNER_EXEC", Value: "true"},
		{Key: "CI_PIPELINE_ID", Value: strconv.FormatInt(pr.PipelineID, 10)},
		{Key: "CI_PIPELINE_IID", Value: strconv.FormatInt(pr.PipelineID, 10)},
		{Key: "CI_PIPELINE_SOURCE", Value: pr.Source},
		{Key: "CI_PIPELINE_CREATED_AT", Value: pr.Created.UTC().Format(time.RFC3339)},
		{Key: "CI_CONFIG_PATH", Value: pr.ConfigPath},
		{Key: "CI_PROJECT_ID", Value: "1"},
		{Key: "CI_PROJECT_NAME", Value: pr.Name},
		{Key: "CI_PROJECT_TITLE", Value: pr.Name},
		{Key: "CI_PROJECT_PATH", Value: pr.Path},
		{Key: "CI_PROJECT_PATH_SLUG", Value: Slug(pr.Path)},
		{Key: "CI_PROJECT_NAMESPACE", Value: namespace(pr.Path)},
		{Key: "CI_PROJECT_ROOT_NAMESPACE", Value: strings.Split(pr.Path, "/")[0]},
		{Key: "CI_DEFAULT_BRANCH", Value: c.DefaultBranch},
		{Key: "CI_COMMIT_SHA", Value: c.SHA},
		{Key: "CI_COMMIT_SHORT_SHA", Value: c.SHA[:min(8, len(c.SHA))]},
		{Key: "CI_COMMIT_BEFORE_SHA", Value: c.BeforeSHA},
		{Key: "CI_COMMIT_REF_NAME", Value: ref},
		{Key: "CI_COMMIT_REF_SLUG", Value: Slug(ref)},
		{Key: "CI_COMMIT_REF_PROTECTED", Value: "false"},
		{Key: "CI_COMMIT_MESSAGE", Value: c.Message},
		{Key: "CI_COMMIT_TITLE", Value: c.Title},
		{Key: "CI_COMMIT_DESCRIPTION", Value: c.Description},
		{Key: "CI_COMMIT_AUTHOR", Value: c.Author},
		{Key: "GITLAB_USER_NAME", Value: authorName(c.Author)},
		{Key: "GITLAB_USER_EMAIL", Value: authorEmail(c.Author)},
	}
	if !c.Timestamp.IsZero() {
		vars = append(vars, pipeline.Variable{Key: "CI_COMMIT_TIMESTAMP", Value: c.Timestamp.Format(time.RFC3339)})
	}
	switch {
	case pr.Source == "merge_request_event" && c.Branch != "":
		// A merge request pipeline (docs: ci/pipelines/merge_request_pipelines):
		// no CI_COMMIT_BRANCH; the branch is the merge request's source
		// and the default branch its target.
		vars = append(vars,
			pipeline.Variable{Key: "CI_MERGE_REQUEST_ID", Value: "1"},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_IID", Value: "1"},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_EVENT_TYPE", Value: "detached"},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", Value: c.Branch},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", Value: c.SHA},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_TARGET_BRANCH_NAME", Value: c.DefaultBranch},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_TITLE", Value: c.Title},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_PROJECT_PATH", Value: pr.Path},
			pipeline.Variable{Key: "CI_MERGE_REQUEST_SOURCE_PROJECT_PATH", Value: pr.Path},
		)
	case c.Branch != "":
		vars = append(vars, pipeline.Variable{Key: "CI_COMMIT_BRANCH", Value: c.Branch})
	}
	if c.Tag != "" {
		vars = append(vars, pipeline.Variable{Key: "CI_COMMIT_TAG", Value: c.Tag})
	}
	for i := range vars {
		vars[i].Raw = true // predefined values are not expanded
	}
	return vars
}

func namespace(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return path
}

func authorName(a string) string {
	name, _, _ := strings.Cut(a, " <")
	return name
}

func authorEmail(a string) string {
	_, email, ok := strings.Cut(a, " <")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(email, ">")
}

// Slug is GitLab's slug of a ref or path: lowercased, every character
// other than 0-9 and a-z replaced with -, at most 63 bytes, no leading or
// trailing -.
func Slug(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	out := string(b[:min(63, len(b))])
	return strings.Trim(out, "-")
}

// PlanConfig is what Plan needs besides the jobs.
type PlanConfig struct {
	Pipeline *pipeline.Pipeline
	// Predefined are the pipeline's predefined variables ([Predefined]).
	Predefined []pipeline.Variable
	// Extra are the pipeline variables (--var, --masked-var,
	// --variables-file): they override every other.
	Extra []gitlab.Variable
	// ProjectName names the project in payloads.
	ProjectName string
	// ProjectFiles: every job receives the project's files first, as the
	// artifacts of a dependency named "project files" ([ProjectFilesID],
	// see [Source.SetProjectFiles]).
	ProjectFiles bool
}

// ProjectFilesID is the dependency id of the project's files.
const ProjectFilesID = 0

// Planned is one job ready to be queued.
type Planned struct {
	Job     *pipeline.Job
	Payload *gitlab.Job
	Rule    Rule
}

// Plan builds the payloads GitLab would send for jobs (in run order) and
// the rules that decide when each runs.
func Plan(cfg PlanConfig, jobs []*pipeline.Job) []Planned {
	ids := make(map[string]int64, len(jobs))
	for i, j := range jobs {
		ids[j.Name] = int64(i + 1)
	}
	stage := map[string]int{}
	for i, s := range cfg.Pipeline.Stages {
		stage[s] = i
	}
	out := make([]Planned, 0, len(jobs))
	for i, j := range jobs {
		id := ids[j.Name]
		pl := payloadFor(id, j, cfg)
		rule := Rule{PipelineVars: len(cfg.Extra), Retry: j.Retry, When: j.When, AllowFailure: j.AllowFailure, AllowFailureExitCodes: j.AllowFailureExitCodes, StartIn: j.StartIn, ByNeeds: j.NeedsSet}
		for _, up := range upstreamOf(j, jobs[:i], stage) {
			if upID, ok := ids[up]; ok {
				rule.After = append(rule.After, upID)
			}
		}
		if cfg.ProjectFiles {
			pl.Dependencies = append(pl.Dependencies, gitlab.Dependency{ID: ProjectFilesID, Name: "project files", Token: pl.Token})
		}
		for _, dep := range dependenciesOf(j, jobs[:i], stage) {
			if depID, ok := ids[dep]; ok {
				pl.Dependencies = append(pl.Dependencies, gitlab.Dependency{ID: depID, Name: dep, Token: pl.Token})
			}
		}
		out = append(out, Planned{Job: j, Payload: pl, Rule: rule})
	}
	return out
}

// JobVariables returns the variables of a job's payload, in GitLab's order
// of precedence (later entries win): predefined, job-level predefined,
// the configuration's (global, job, rules), then the pipeline variables.
func JobVariables(id int64, j *pipeline.Job, cfg PlanConfig) gitlab.Variables {
	vars := make(gitlab.Variables, 0, len(cfg.Predefined)+len(j.Variables)+len(cfg.Extra)+8)
	for _, v := range cfg.Predefined {
		vars = append(vars, gitlab.Variable{Key: v.Key, Value: v.Value, Public: true, Raw: v.Raw})
	}
	pre := [][2]string{
		{"CI_JOB_ID", strconv.FormatInt(id, 10)},
		{"CI_JOB_NAME", j.Name},
		{"CI_JOB_NAME_SLUG", Slug(j.Name)},
		{"CI_JOB_STAGE", j.Stage},
	}
	if j.NodeTotal > 0 {
		pre = append(pre, [2]string{"CI_NODE_INDEX", strconv.Itoa(j.NodeIndex)}, [2]string{"CI_NODE_TOTAL", strconv.Itoa(j.NodeTotal)})
	} else {
		pre = append(pre, [2]string{"CI_NODE_TOTAL", "1"})
	}
	if j.When == "manual" {
		pre = append(pre, [2]string{"CI_JOB_MANUAL", "true"})
	}
	for _, kv := range pre {
		vars = append(vars, gitlab.Variable{Key: kv[0], Value: kv[1], Public: true, Raw: true})
	}
	if n, ok := cfg.Pipeline.NameVar(); ok {
		vars = append(vars, gitlab.Variable{Key: "CI_PIPELINE_NAME", Value: n, Public: true, Raw: true})
	}
	predefined := len(vars)
	for _, v := range j.Variables {
		vars = append(vars, gitlab.Variable{Key: v.Key, Value: v.Value, Public: true, Raw: v.Raw})
	}
	vars = append(vars, cfg.Extra...)
	if j.Environment != nil {
		env := environmentVariables(j.Environment, vars)
		vars = slices.Insert(vars, predefined, env...)
	}
	return vars
}

// environmentVariables returns the CI_ENVIRONMENT_* variables of a job
// with an environment (docs: ci/variables/predefined_variables): its name
// and URL expanded with the job's variables, the name's slug, the action
// and the tier, given or guessed from the name as GitLab guesses it.
func environmentVariables(e *pipeline.Environment, vars gitlab.Variables) []gitlab.Variable {
	in := make([]varexpand.Var, len(vars))
	for i, v := range vars {
		in[i] = varexpand.Var{Key: v.Key, Value: v.Value, Raw: v.Raw}
	}
	name := varexpand.New(in).Expand(e.Name)
	tier := e.Tier
	if tier == "" {
		tier = GuessTier(name)
	}
	kv := [][2]string{{"CI_ENVIRONMENT_NAME", name}, {"CI_ENVIRONMENT_SLUG", EnvironmentSlug(name)}}
	if e.URL != "" {
		// The URL may use the name and slug (docs: ci/environments,
		// dynamic environments: url: https://$CI_ENVIRONMENT_SLUG.example.com).
		for _, v := range kv {
			in = append(in, varexpand.Var{Key: v[0], Value: v[1], Raw: true})
		}
		kv = append(kv, [2]string{"CI_ENVIRONMENT_URL", varexpand.New(in).Expand(e.URL)})
	}
	kv = append(kv, [2]string{"CI_ENVIRONMENT_ACTION", e.Action}, [2]string{"CI_ENVIRONMENT_TIER", tier})
	out := make([]gitlab.Variable, len(kv))
	for i, v := range kv {
		out[i] = gitlab.Variable{Key: v[0], Value: v[1], Public: true, Raw: true}
	}
	return out
}

// tierGuesses are GitLab's patterns for an environment's tier when
// deployment_tier is not given, tried in order (Environment#guess_tier).
var tierGuesses = []struct {
	re   *regexp.Regexp
	tier string
}{
	{regexp.MustCompile(`(?i)(dev|review|trunk)`), "development"},
	{regexp.MustCompile(`(?i)(test|tst|int|ac(ce|)pt|qa|qc|control|quality)`), "testing"},
	{regexp.MustCompile(`(?i)(st(a|)g|mod(e|)l|pre|demo|non)`), "staging"},
	{regexp.MustCompile(`(?i)(pr(o|)d|live)`), "production"},
}

// GuessTier returns the deployment tier GitLab gives an environment named
// name that does not set deployment_tier.
func GuessTier(name string) string {
	for _, g := range tierGuesses {
		if g.re.MatchString(name) {
			return g.tier
		}
	}
	return "other"
}

// EnvironmentSlug returns CI_ENVIRONMENT_SLUG for an environment name, as
// GitLab makes it (Gitlab::Slug::Environment): lowercase letters, digits
// and single dashes, starting with a letter, at most 24 bytes, and, when
// that changed the name, the first 17 bytes and a 6-character suffix from
// the name's SHA-256 (its last 6 digits in base 36), so that two names
// keep two slugs.
func EnvironmentSlug(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	s := string(b)
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "env-" + s
	}
	for strings.Contains(s, "--") {
		s = strings.ReplaceAll(s, "--", "-")
	}
	if len(s) <= 24 && s == name {
		return strings.TrimSuffix(s, "-")
	}
	s = s[:min(17, len(s))]
	if !strings.HasSuffix(s, "-") {
		s += "-"
	}
	sum := sha256.Sum256([]byte(name))
	digits := new(big.Int).SetBytes(sum[:]).Text(36)
	return s + digits[max(0, len(digits)-6):]
}

// payloadFor builds the job payload GitLab would send for j.
func payloadFor(id int64, j *pipeline.Job, cfg PlanConfig) *gitlab.Job {
	timeout := int64(j.Timeout / time.Second)
	if timeout <= 0 {
		timeout = 3600
	}
	steps := []gitlab.Step{{Name: gitlab.StepScript, Script: j.Script, Timeout: timeout, When: gitlab.StepWhenOnSuccess}}
	if len(j.AfterScript) > 0 {
		steps = append(steps, gitlab.Step{Name: gitlab.StepAfterScript, Script: j.AfterScript, Timeout: 300, When: gitlab.StepWhenAlways, AllowFailure: true})
	}
	vars := JobVariables(id, j, cfg)
	image := j.Image
	if strings.Contains(image, "$") {
		// GitLab expands variables in image names (docs:
		// ci/variables/where_variables_can_be_used, "image").
		in := make([]varexpand.Var, len(vars))
		for i, v := range vars {
			in[i] = varexpand.Var{Key: v.Key, Value: v.Value, Raw: v.Raw}
		}
		image = varexpand.New(in).Expand(image)
	}
	token := NewToken()
	timeoutVar := strconv.FormatInt(timeout, 10)
	vars = slices.Insert(vars, len(cfg.Predefined),
		gitlab.Variable{Key: "CI_JOB_TOKEN", Value: token, Masked: true, Raw: true},
		gitlab.Variable{Key: "CI_JOB_TIMEOUT", Value: timeoutVar, Public: true, Raw: true},
		gitlab.Variable{Key: "CI_RUNNER_DESCRIPTION", Value: "wasmrunner exec", Public: true, Raw: true},
	)
	pl := &gitlab.Job{
		ID: id, Token: token,
		JobInfo:    gitlab.JobInfo{Name: j.Name, Stage: j.Stage, ProjectID: 1, ProjectName: cfg.ProjectName},
		RunnerInfo: gitlab.RunnerInfo{Timeout: timeout},
		Variables:  vars, Steps: steps, Image: gitlab.Image{Name: image},
		Features: gitlab.JobFeatures{FailureReasons: []string{
			string(gitlab.ScriptFailure), string(gitlab.RunnerSystemFailure), string(gitlab.JobExecutionTimeout),
			string(gitlab.JobCanceled), string(gitlab.UnknownFailure),
		}},
	}
	if a := j.Artifacts; a != nil {
		if len(a.Paths) > 0 || a.Untracked {
			pl.Artifacts = append(pl.Artifacts, gitlab.ArtifactSpec{
				Name: a.Name, Paths: a.Paths, Exclude: a.Exclude, When: gitlab.ArtifactWhen(a.When),
				ExpireIn: a.ExpireIn, Untracked: a.Untracked, Type: "archive", Format: gitlab.FormatZip,
			})
		}
		// As GitLab sends a dotenv report: a gzip of the one file.
		for _, f := range a.Dotenv {
			pl.Artifacts = append(pl.Artifacts, gitlab.ArtifactSpec{
				Name: "dotenv", Paths: []string{f}, When: gitlab.ArtifactWhen(a.When), ExpireIn: a.ExpireIn,
				Type: "dotenv", Format: gitlab.FormatGzip,
			})
		}
	}
	return pl
}

// upstreamOf names the jobs whose results decide whether j runs: its
// needs, else every job of an earlier stage.
func upstreamOf(j *pipeline.Job, earlier []*pipeline.Job, stage map[string]int) []string {
	if j.NeedsSet {
		return j.Needs
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
func dependenciesOf(j *pipeline.Job, earlier []*pipeline.Job, stage map[string]int) []string {
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
	return upstreamOf(j, earlier, stage)
}

// String describes a planned job for messages.
func (p Planned) String() string { return fmt.Sprintf("%s (stage %s)", p.Job.Name, p.Job.Stage) }

// Discover describes the project a pipeline file belongs to: the git
// repository holding it (its working tree's root is the project
// directory, HEAD the pipeline's commit), else the file's directory, on a
// branch named main with no commit. repo is nil outside a repository.
func Discover(configFile, source string, created time.Time) (Project, *gitinfo.Repo, error) {
	abs, err := filepath.Abs(configFile)
	if err != nil {
		return Project{}, nil, err
	}
	pr := Project{Dir: filepath.Dir(abs), Source: source, PipelineID: 1, Created: created}
	repo, err := gitinfo.Open(pr.Dir)
	switch {
	case errors.Is(err, gitinfo.ErrNotRepository):
		pr.Commit = gitinfo.Commit{SHA: gitinfo.ZeroSHA, BeforeSHA: gitinfo.ZeroSHA, Branch: "main", DefaultBranch: "main"}
		repo = nil
	case err != nil:
		return Project{}, nil, err
	default:
		pr.Dir = repo.Root()
		if pr.Commit, err = repo.Head(); err != nil {
			return Project{}, nil, err
		}
		if pr.Commit.Branch == "" && pr.Commit.Tag == "" {
			// A detached HEAD without a tag: GitLab runs pipelines for
			// refs; the default branch stands in.
			pr.Commit.Branch = pr.Commit.DefaultBranch
		}
	}
	pr.Name = filepath.Base(pr.Dir)
	pr.Path = "local/" + pr.Name
	if rel, err := filepath.Rel(pr.Dir, abs); err == nil {
		pr.ConfigPath = filepath.ToSlash(rel)
	}
	return pr, repo, nil
}

// WriteProjectFiles writes to w a zip archive of what a fresh checkout of
// the project's working tree holds: with a repository, the tracked files
// and the untracked ones .gitignore does not ignore; without, every file
// under the project's directory. Paths under skip (absolute or relative
// to the project's directory: the artifacts and builds dirs) are left
// out. It returns how many files it wrote.
func WriteProjectFiles(ctx context.Context, w io.Writer, pr Project, repo *gitinfo.Repo, skip ...string) (int, error) {
	var rel []string
	for _, s := range skip {
		if s == "" {
			continue
		}
		abs, err := filepath.Abs(s)
		if err != nil {
			continue
		}
		if r, err := filepath.Rel(pr.Dir, abs); err == nil && r != "." && !strings.HasPrefix(r, "..") {
			rel = append(rel, filepath.ToSlash(r))
		}
	}
	var files []string
	var err error
	if repo != nil {
		files, err = repo.Files(rel...)
	} else {
		files, err = archive.Collect(pr.Dir, []string{"."}, rel)
	}
	if err != nil {
		return 0, fmt.Errorf("listing the project's files: %w", err)
	}
	if err := archive.WriteZip(ctx, w, pr.Dir, files); err != nil {
		return 0, fmt.Errorf("archiving the project's files: %w", err)
	}
	return len(files), nil
}
