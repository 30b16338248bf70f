// Package fleet supervises the runners one wasmrunner process serves: each
// [Runner] entry (a runner token of a GitLab instance, its handlers and
// bounds) loads its handlers on its own and then takes jobs.
//
// [Fleet.Apply] makes the running set that of a new list of entries, as a
// reload of the configuration does: an entry that is [Runner.Equal] to the
// running one is kept untouched; a new entry loads and starts; a changed one
// loads anew while the old one keeps serving, which drains (finishes its
// jobs, takes no more) once the new one is ready; a removed one drains.
// Nothing is changed when an entry cannot be taken (a bad URL, a missing
// modules dir).
//
// The fleet also knows whether it is ready to take jobs ([Fleet.Ready]):
// each runner's job requests tell whether GitLab answers and takes its
// token. And it replaces a runner's token before it expires
// ([Runner.RotateToken], [RotateAt]), handing the new one to
// Config.TokenRotated to be saved.
//
// Runners reach GitLab through one transport per TLS setting
// (gitlab.NewTransport unless Config.Transport says otherwise), so their
// connections are pooled together.
package fleet
