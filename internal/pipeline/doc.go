// Package pipeline reads a .gitlab-ci.yml file and resolves it into the
// jobs that `wasmrunner exec` runs locally, in the order GitLab would run
// them.
//
// Resolution follows GitLab's rules for stages, default:, the deprecated
// top-level image/before_script/after_script, extends:, inherit:, global
// and job variables, needs: and dependencies:. YAML anchors, aliases and
// merge keys (<<) are honoured.
//
// Keywords that only make sense on a GitLab server (rules, cache, services,
// tags, include, ...) are not supported. Each one is reported once per job
// and keyword in [Pipeline.Warnings] and otherwise ignored; nothing is
// dropped silently. Keywords that GitLab itself does not know are errors, as
// they are in GitLab.
package pipeline
