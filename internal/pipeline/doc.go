// Package pipeline reads a .gitlab-ci.yml file and resolves it into the
// jobs that `wasmrunner exec` runs locally, in the order GitLab would run
// them.
//
// Resolution follows GitLab's rules for include: (local files of
// Options.Project, nested, with wildcards and rules; the including file's
// keys merged over the included ones), !reference tags, stages, default:,
// the deprecated top-level image/before_script/after_script, extends:,
// inherit:, global and job variables, parallel: (a number or a matrix,
// with GitLab's job names), needs: (with parallel:matrix) and
// dependencies:. YAML anchors, aliases and
// merge keys (<<) are honoured.
//
// [ParseWith] evaluates rules: (if, changes, exists, when, allow_failure,
// variables, needs, start_in), workflow: (rules, name) and only/except
// (refs, variables, changes) for the pipeline its [Options] describe, as
// GitLab does when it creates a pipeline: jobs they leave out are not in
// the pipeline, manual and delayed jobs are, with Job.When saying so.
// Expressions are evaluated by package ciexpr, variables expanded for
// them by package varexpand.
//
// Keywords that only make sense on a GitLab server (cache, services,
// tags, ...) are not supported; include: of remote, project, template or
// component files is an error. Each one is reported once per job
// and keyword in [Pipeline.Warnings] and otherwise ignored; nothing is
// dropped silently. Keywords that GitLab itself does not know are errors, as
// they are in GitLab.
package pipeline
