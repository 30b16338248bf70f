// Package gitlab is a client for the GitLab runner API (api/v4): requesting
// jobs, streaming job traces, finishing jobs, uploading and downloading
// artifacts, and verifying or registering runners.
//
// The package is transport only. It knows nothing of how a job is executed;
// callers decide what to do with the replies it reports (resend a trace,
// abort a cancelled job, back off while GitLab is unavailable).
//
// Every call takes a [context.Context] and stops when it is done. Transport
// errors and 408, 429 and 5xx replies are retried with jittered exponential
// backoff, bounded in attempts and elapsed time, honouring Retry-After.
// Other replies are returned as a [*StatusError], which callers test with
// [errors.Is] against the sentinel errors ([ErrForbidden], [ErrConflict], ...)
// or with [errors.As]. Tokens never appear in errors or logs.
package gitlab
