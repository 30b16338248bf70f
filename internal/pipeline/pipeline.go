package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultStages are the stages of a configuration without `stages:`.
var DefaultStages = []string{".pre", "build", "test", "deploy", ".post"}

// ErrUnknownJob is returned by [Pipeline.Select] for a name that is not a
// runnable job.
var ErrUnknownJob = errors.New("unknown job")

// Pipeline is a resolved .gitlab-ci.yml.
type Pipeline struct {
	// Name is workflow:name with variables expanded; "" when not given.
	Name string
	// Variables are the global variables (the configuration's, then those
	// of the matching workflow:rules), in order; each job's Variables
	// starts with those it inherits.
	Variables []Variable
	// Stages lists the stages in order, ".pre" first and ".post" last.
	Stages []string
	// Jobs holds the jobs of the pipeline, in run order: manual and
	// delayed ones included (see Job.When). Hidden jobs (".name"),
	// templates, jobs that rules: or only/except leave out, and trigger
	// jobs are not.
	Jobs []*Job
	// Warnings lists, once each, every keyword that is not supported and
	// every job that is left out, naming the job and keyword concerned.
	Warnings []string

	skipped map[string]string // job left out -> why
}

// Variable is a CI/CD variable. When a key appears more than once in a
// list of variables, the later one wins.
type Variable struct {
	Key   string
	Value string
	// Raw: the value is not expanded (`expand: false`).
	Raw bool
}

// Artifacts describes the files a job uploads when it ends.
type Artifacts struct {
	Name      string
	Paths     []string
	Exclude   []string
	When      string // "on_success" (the default), "on_failure" or "always"
	ExpireIn  string // as written, e.g. "1 week" or "never"; "" when not given
	Untracked bool
	// Dotenv are the files of artifacts:reports:dotenv: their variables
	// go to the jobs that receive this job's artifacts.
	Dotenv []string
}

// Retry is a job's retry: (docs: ci/yaml "retry").
type Retry struct {
	// Max is how many times the job is run again after a failure (0 to 2).
	Max int
	// When lists the failure kinds that are retried ("always" when not
	// given: any failure): script_failure, runner_system_failure,
	// job_execution_timeout, stuck_or_timeout_failure, unknown_failure, ...
	When []string
	// ExitCodes, when not empty, limits retries to script failures with
	// those exit codes.
	ExitCodes []int
}

// Job is one resolved job: extends:, default: and global variables are
// already applied.
type Job struct {
	Name  string
	Stage string // "test" unless given
	Image string // image name; "" when neither the job nor default: sets one

	// Variables holds the global variables the job inherits, then its own;
	// the later of two variables with the same key wins.
	Variables []Variable

	// Script is before_script (the job's own, else the default one)
	// followed by script, with nested lists flattened.
	Script []string
	// AfterScript is the job's after_script, else the default one.
	AfterScript []string

	// Artifacts is nil when the job uploads nothing.
	Artifacts *Artifacts

	// Needs lists the jobs named in needs:, nil when there is no needs:.
	// NeedsSet reports whether needs: was given (`needs: []` included).
	Needs    []string
	NeedsSet bool
	// NeedsArtifacts tells, for each need, whether its artifacts are
	// downloaded (true unless `artifacts: false`).
	NeedsArtifacts map[string]bool

	// Dependencies lists the jobs named in dependencies:, nil when absent.
	// DependenciesSet reports whether dependencies: was given.
	Dependencies    []string
	DependenciesSet bool

	// Timeout is the job's timeout, 0 when neither the job nor default:
	// sets one.
	Timeout time.Duration

	// AllowFailure reports that a failure of the job does not fail the
	// pipeline. When AllowFailureExitCodes is not empty, only those exit
	// codes are allowed to fail.
	AllowFailure          bool
	AllowFailureExitCodes []int

	// When is "on_success" (the default), "on_failure", "always",
	// "manual" (runs only when started by hand) or "delayed" (runs
	// StartIn after it could have started), after rules: are applied.
	When    string
	StartIn time.Duration

	// Line is the line of the job's definition.
	Line int

	// Environment is the job's environment:, nil without one.
	Environment *Environment

	// Retry says when a failed job is run again.
	Retry Retry

	// Parallel is the name of the job parallel: made this one of ("" for
	// other jobs); NodeIndex (from 1) and NodeTotal are its
	// CI_NODE_INDEX and CI_NODE_TOTAL, Matrix its parallel:matrix values.
	Parallel             string
	NodeIndex, NodeTotal int
	Matrix               map[string]string

	fileIdx, stageIdx   int
	needsLine, depsLine int
	optional            map[string]bool
	skip                string                  // why the job does not run; "" when it runs
	excluded            string                  // why rules or only/except leave the job out of the pipeline
	needsMatrix         map[string][][]Variable // needs:parallel:matrix filters, by need
}

// Parse resolves the content of a .gitlab-ci.yml file. Errors are of type
// *Error and name the line, job and keyword concerned.
func Parse(data []byte) (*Pipeline, error) {
	return ParseWith(data, Options{})
}

// ParseWith resolves the content of a .gitlab-ci.yml file for the
// pipeline opts describes: rules:, workflow:rules and only/except are
// evaluated, and jobs they leave out are not in the pipeline. When
// workflow:rules keep the pipeline from being created, the error wraps
// [ErrFiltered].
func ParseWith(data []byte, opts Options) (*Pipeline, error) {
	root, warnings, err := load(data, "")
	if err != nil {
		return nil, err
	}
	p := &parser{seen: map[string]bool{}, opts: opts}
	if root, err = p.include(root, 0, map[string]bool{}); err != nil {
		return nil, err
	}
	if root, err = resolveReferences(root); err != nil {
		return nil, err
	}
	for _, w := range warnings {
		p.warn(w)
	}
	return p.parse(root)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns an error of the YAML library into an *Error.
func yamlError(err error) error {
	msg := err.Error()
	e := &Error{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Err: err}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	}
	return e
}

// load decodes the YAML document. A leading `spec:` header document, as
// used by CI/CD components, is skipped with a warning.
func load(data []byte, file string) (*value, []string, error) {
	root, warnings, err := loadDoc(data, file)
	var e *Error
	if errors.As(err, &e) && e.File == "" {
		e.File = file
	}
	return root, warnings, err
}

func loadDoc(data []byte, file string) (*value, []string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &Error{Msg: "the configuration is empty"}
		}
		return nil, nil, yamlError(err)
	}
	var warnings []string
	if isSpecHeader(&doc) {
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case err == nil:
			warnings = append(warnings, `keyword "spec" (header) is not supported; ignored`)
			doc = next
		case !errors.Is(err, io.EOF):
			return nil, nil, yamlError(err)
		}
	}
	c := newConverter()
	c.file = file
	root, err := c.convert(&doc)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, c.warnings...)
	if root.kind == kNull {
		return nil, nil, &Error{Msg: "the configuration is empty"}
	}
	if root.kind != kMap {
		return nil, nil, &Error{Line: root.line, Msg: "the configuration must be a map of keywords and jobs"}
	}
	return root, warnings, nil
}

func isSpecHeader(doc *yaml.Node) bool {
	if len(doc.Content) != 1 {
		return false
	}
	m := doc.Content[0]
	return m.Kind == yaml.MappingNode && len(m.Content) == 2 && m.Content[0].Value == "spec"
}

// NameVar returns the pipeline's name (CI_PIPELINE_NAME), if
// workflow:name gives one.
func (p *Pipeline) NameVar() (string, bool) { return p.Name, p.Name != "" }

// Select returns the named jobs and every job they need, transitively, in
// run order. The name of a job that parallel: made several of names them
// all. A job's needs: are followed; for a job without needs:, its
// dependencies:. Without names it returns all jobs.
func (p *Pipeline) Select(names ...string) ([]*Job, error) {
	if len(names) == 0 {
		return slices.Clone(p.Jobs), nil
	}
	byName := make(map[string]*Job, len(p.Jobs))
	groups := map[string][]string{}
	for _, j := range p.Jobs {
		byName[j.Name] = j
		if j.Parallel != "" {
			groups[j.Parallel] = append(groups[j.Parallel], j.Name)
		}
	}
	want := map[string]bool{}
	todo := slices.Clone(names)
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if want[n] {
			continue
		}
		j, ok := byName[n]
		if !ok && len(groups[n]) > 0 {
			// The name of a parallel: job stands for all its jobs.
			todo = append(todo, groups[n]...)
			continue
		}
		if !ok {
			return nil, p.unknownJob(n)
		}
		want[n] = true
		switch {
		case j.NeedsSet:
			todo = append(todo, j.Needs...)
		case j.DependenciesSet:
			todo = append(todo, j.Dependencies...)
		}
	}
	var out []*Job
	for _, j := range p.Jobs {
		if want[j.Name] {
			out = append(out, j)
		}
	}
	return out, nil
}

func (p *Pipeline) unknownJob(name string) error {
	avail := make([]string, len(p.Jobs))
	for i, j := range p.Jobs {
		avail[i] = j.Name
	}
	list := strings.Join(avail, ", ")
	if len(avail) == 0 {
		list = "none"
	}
	if why, ok := p.skipped[name]; ok {
		return fmt.Errorf("%w: job %q does not run (%s); available jobs: %s", ErrUnknownJob, name, why, list)
	}
	return fmt.Errorf("%w %q; available jobs: %s", ErrUnknownJob, name, list)
}

// Environment is a job's environment: (docs: ci/yaml "environment"). Name
// and URL may hold variables; GitLab expands them with the job's
// variables before it sets CI_ENVIRONMENT_NAME and CI_ENVIRONMENT_URL.
type Environment struct {
	Name   string
	URL    string
	Action string // start (the default), prepare, stop, verify or access
	Tier   string // deployment_tier; "" when not given
}
