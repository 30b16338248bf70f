// Package engine runs GitLab CI jobs: it takes jobs from GitLab, drives
// each through its life (build dir, dependency artifacts, script,
// after_script, artifacts upload, final update) and lets a [Handler]
// decide what the job's steps do.
//
// A [Runner] polls GitLab for up to N concurrent jobs. For each job it
// calls the [HandlerFactory] once, then the handler's Step for the script
// and after_script phases, and always its Cleanup. The job log the handler
// writes through [Job] is masked (masked variable values and GitLab
// tokens), bounded by an output limit and streamed to GitLab as it is
// written; the operator log (a *slog.Logger) is a separate stream.
// Handler code and the libraries it calls log with log/slog into the job
// log through [Job.Logger], or through the default logger when its
// handler is [NewLogHandler]: every context the engine gives a handler
// carries its job ([JobFromContext]).
//
// The engine guarantees GitLab's semantics around the handler: the job
// timeout, graceful (canceling) and hard (canceled) cancellation, the
// failure reasons GitLab knows, retries of every call, and that a job is
// reported successful only when everything it had to do finished.
package engine
