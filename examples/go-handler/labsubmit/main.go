// Command labsubmit is a wasmrunner job handler that hands work to a lab
// submission service (a package build farm, a test lab) over HTTP and
// follows it: each script line is a command.
//
//	submit FILE   POST FILE (from the build dir) to $LAB_URL/jobs; the
//	              service answers {"id": "..."}
//	wait          follow the submitted job: print its log into the job
//	              trace until its status is "done" (exit 0) or "failed"
//	              (exit 1)
//	fetch NAME    download the job's result to NAME in the build dir and
//	              add it to the job's artifacts
//	noop          print "ok"
//
// When the GitLab job is cancelled or times out, a submitted job that has
// not finished is cancelled with DELETE $LAB_URL/jobs/ID.
//
// Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o labsubmit.wasm .
package main

import (
	"log/slog"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/joblog"
)

func init() {
	// Records of log/slog, the handler's and its libraries', go to the
	// job log.
	slog.SetDefault(slog.New(joblog.NewHandler(nil)))
	wasmrunner.Handle(&handler{})
}

// main is not called in a reactor; the runner calls the SDK's entry
// points, which call the handler.
func main() {}
