// Package trace carries one job's log to GitLab.
//
// A [Trace] buffers the log bytes of a job (already masked: masking is the
// writer's job, not this package's), streams them to GitLab with
// incremental PATCH jobs/:id/trace calls while the job runs, and keeps the
// job alive when it prints nothing. It watches the Job-Status GitLab
// reports with every reply and tells its owner when the job is being
// canceled, was canceled or failed, or is gone. [Trace.Finish] delivers the
// rest of the log and sends the final PUT jobs/:id with the trace's CRC-32
// checksum and size, following GitLab's replies: 202 (update again later),
// 412 (send the whole trace again) and transient failures.
//
// The whole trace is kept in memory until the job ends, because GitLab may
// ask for all of it again; an output limit bounds it. Past the limit a
// single notice line is appended and later output is dropped, while the job
// goes on.
//
// Writing never waits for the network: one sender goroutine per trace does
// all the talking, from [Trace.Start] until [Trace.Finish] or the end of
// Start's context.
package trace
