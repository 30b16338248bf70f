// Package gitlabtest provides a fake GitLab runner API (api/v4) for tests,
// in the spirit of net/http/httptest.
//
// [NewServer] starts a real HTTP server on a random port of 127.0.0.1 that
// answers the calls a runner makes: requesting jobs, streaming traces,
// updating and finishing jobs, uploading and downloading artifacts, and
// verifying, registering and creating runners. It checks what GitLab checks
// (tokens, job states, Content-Range offsets, trace checksums, artifact
// sizes, failure reasons) and replies with GitLab's status codes and headers,
// so a client that works against it is likely to work against GitLab.
//
// Tests queue jobs with [Server.Enqueue] and [NewJob] (for one of several
// runners with [Server.AddRunner] and [JobBuilder.ForRunner]), cancel them
// with [Server.Cancel] or [Server.CancelGracefully], and read back what the
// runner did with [Server.Job], [Server.Requests] and [Server.Violations]. Faults
// (error statuses, delays, connection resets, lost trace patches, deferred
// final updates, upload redirects) are injected per endpoint with
// [Server.FailNext] and its siblings; [Server.Down] and [Server.Up] take the
// whole server down (503 to everything) and back, for outages.
//
// Projects' git repositories ([Server.NewRepo]: commits, branches, tags,
// any ref, submodules) are served over git's smart HTTP protocol with
// GitLab's job-token auth, and [JobBuilder.Sources] points a job's
// git_info at one of them, so that a runner fetches its sources with the
// real protocol.
//
// A Server is safe for concurrent use. [Server.Close] unblocks waiting
// requests, closes every connection and waits for all of its goroutines.
package gitlabtest
