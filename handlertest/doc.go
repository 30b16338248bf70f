// Package handlertest runs a wasmrunner handler (a .wasm module) on jobs
// described in Go, through the real engine and modules registry against a
// fake GitLab ([gitlabtest]) on loopback: the end-to-end test of a
// handler, in a few lines.
//
//	func TestHello(t *testing.T) {
//		r := handlertest.Load(t, "hello.wasm") // with hello.toml beside it, if any
//		res, err := r.Run(t.Context(), handlertest.Job{
//			Script:    []string{"greet"},
//			Variables: []handlertest.Variable{handlertest.Var("WHO", "world")},
//		})
//		if err != nil {
//			t.Fatal(err)
//		}
//		if res.State != "success" || !strings.Contains(res.Log, "hello world") {
//			t.Errorf("%s (exit %d):\n%s", res.State, res.ExitCode, res.Log)
//		}
//	}
//
// A [Runner] holds one handler (or a modules dir, [LoadDir]) loaded into a
// running engine until the test ends. [Runner.Run] enqueues a [Job] and
// waits for its [Result]: state, failure reason, exit code, the trace (raw,
// and as plain text without ANSI colours and section markers) and the
// artifacts the job uploaded, by file name. [Runner.Start] returns a
// [JobRun] instead, to watch the log ([JobRun.WaitLog]) and cancel the job
// ([JobRun.Cancel], [JobRun.CancelGracefully]) at a point of the test's
// choosing. Jobs of one Runner may run in parallel (t.Parallel subtests),
// which saves loading the handler for each.
//
// Jobs get what the fake GitLab and the engine give real jobs: GitLab's
// predefined variables, masking of masked variables and tokens in the
// trace, file variables, dependencies' artifacts extracted into the build
// dir and readable through the SDK, artifacts:paths uploads, timeouts,
// after_script with CI_JOB_STATUS. The handler's manifest and the
// operator's policy apply as in `wasmrunner serve`.
//
// Compiled modules are kept in a cache under the user's cache dir
// (wasmrunner/handlertest), so that a Go handler, which takes a second or
// more to compile (ten under -race), is compiled once across test runs;
// [CacheDir] changes or disables it.
//
// For unit tests of a handler's code without WebAssembly, the SDKs have
// fake hosts: the Go SDK's package sdktest and the Rust SDK's module
// wasmrunner::testing.
package handlertest
