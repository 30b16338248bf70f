package main

// Unit tests of the handler through the Go SDK's fake host (sdktest):
// plain `go test`, no WebAssembly. The lab service is an http.Handler
// whose jobs advance one step per poll; ../e2e_test.go runs the built
// labsubmit.wasm through the real engine against a real lab server.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/sdktest"
)

// fakeLab is the lab service: a submitted job logs one line per poll of
// its status, then ends as its input says ("fail..." fails, "hang..."
// never ends, anything else is done).
type fakeLab struct {
	mu       sync.Mutex
	input    string
	polls    int
	deleted  bool
	failNext bool // the next status poll answers 500
}

var labLog = []string{"lab: building", "lab: running 3 tests", "lab: 3 passed"}

func (l *fakeLab) status() (string, string) {
	n := min(l.polls, len(labLog))
	log := strings.Join(labLog[:n], "\n")
	if n > 0 {
		log += "\n"
	}
	switch {
	case l.deleted:
		return "canceled", log
	case n < len(labLog) || strings.HasPrefix(l.input, "hang"):
		return "running", log
	case strings.HasPrefix(l.input, "fail"):
		return "failed", log
	}
	return "done", log
}

func (l *fakeLab) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.input = string(b)
		l.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"id": "lab-1"})
	})
	mux.HandleFunc("GET /jobs/lab-1", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.failNext {
			l.failNext = false
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		l.polls++
		st, _ := l.status()
		json.NewEncoder(w).Encode(map[string]string{"id": "lab-1", "status": st})
	})
	mux.HandleFunc("GET /jobs/lab-1/log", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, log := l.status()
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		io.WriteString(w, log[min(off, len(log)):])
	})
	mux.HandleFunc("GET /jobs/lab-1/result", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintf(w, "package of %q\n", l.input)
	})
	mux.HandleFunc("DELETE /jobs/lab-1", func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.deleted = true
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// job is a labsubmit job whose build dir holds pkg/input.txt, from a
// dependency's artifacts, and whose lab is l.
func job(t *testing.T, l *fakeLab, input string, script ...string) *sdktest.Host {
	return sdktest.Install(t, &sdktest.Host{
		Script:       script,
		Variables:    []wasmrunner.Variable{{Name: "LAB_URL", Value: "http://lab/"}},
		Dependencies: []sdktest.Dependency{{Name: "prepare", Files: map[string]string{"pkg/input.txt": input}}},
		Dir:          t.TempDir(),
		HTTP:         l.handler(),
	})
}

func TestSubmitWaitFetch(t *testing.T) {
	l := &fakeLab{failNext: true}
	host := job(t, l, "source 1.0", "submit pkg/input.txt", "wait", "fetch out/result.txt")
	if code := host.Run(&handler{}); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, host.Log())
	}
	log := host.Log()
	for _, want := range []string{
		"labsubmit: submitted pkg/input.txt (10 bytes) as job lab-1\n",
		"Remote job lab-1\n\x1b[33;1mWARN\x1b[0;m labsubmit: polling the lab failed, retrying job=lab-1 error=\"GET http://lab/jobs/lab-1: status 500",
		"\nlab: building\nlab: running 3 tests\nlab: 3 passed\nlabsubmit: job lab-1 is done\n",
		"labsubmit: fetched the result of job lab-1 to out/result.txt",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if s := host.Sections(); len(s) != 1 || s[0].Name != "lab_job" || !s[0].Ended || !strings.Contains(s[0].Log, "\nlab: building\n") {
		t.Errorf("sections %+v", s)
	}
	if got := string(host.Artifacts()["out/result.txt"]); got != "package of \"source 1.0\"\n" {
		t.Errorf("artifact %q", got)
	}
	if reqs := host.Requests(); reqs[0].Method != "POST" || string(reqs[0].Body) != "source 1.0" || reqs[0].Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("submission %+v", reqs[0])
	}
	if n := len(host.Sleeps()); n != 3 { // after the 500 and the two running polls
		t.Errorf("%d sleeps: %v", n, host.Sleeps())
	}
}

func TestRemoteFailure(t *testing.T) {
	host := sdktest.Install(t, &sdktest.Host{
		Script:       []string{"submit pkg/input.txt", "wait", "fetch out/result.txt"},
		Variables:    []wasmrunner.Variable{{Name: "LAB_URL", Value: "http://lab/"}},
		Dependencies: []sdktest.Dependency{{Files: map[string]string{"pkg/input.txt": "fail: broken"}}},
		Dir:          t.TempDir(), // the build dir: the test's working dir
		HTTP:         (&fakeLab{}).handler(),
	})
	if code := host.Run(&handler{}); code != 1 || !strings.Contains(host.Log(), "job lab-1 failed") {
		t.Errorf("exit code %d:\n%s", code, host.Log())
	}
}

// TestCancelWhileWaiting: a graceful cancel during wait cancels the remote
// job from after_script, whose requests are not cancelled.
func TestCancelWhileWaiting(t *testing.T) {
	l := &fakeLab{}
	host := job(t, l, "hang: no machine", "submit pkg/input.txt", "wait")
	host.AfterScript = []string{"noop"}
	host.OnSleep = func(time.Duration) {
		if len(host.Sleeps()) == 2 {
			host.Cancel()
		}
	}
	if code := host.Run(&handler{}); code != 1 {
		t.Errorf("exit code %d", code)
	}
	if !l.deleted || !strings.HasSuffix(host.Log(), "labsubmit: canceling job lab-1\nok\n") {
		t.Errorf("deleted %v:\n%s", l.deleted, host.Log())
	}
	if reqs := host.Requests(); reqs[len(reqs)-1].Method != "DELETE" {
		t.Errorf("last request %+v", reqs[len(reqs)-1])
	}
}

// TestCleanupCancels: without after_script, Cleanup cancels a remote job
// the script left running.
func TestCleanupCancels(t *testing.T) {
	l := &fakeLab{}
	host := job(t, l, "hang", "submit pkg/input.txt", "exit-unknown")
	if code := host.Run(&handler{}); code != 127 || !l.deleted {
		t.Errorf("exit code %d, deleted %v:\n%s", code, l.deleted, host.Log())
	}
}

func TestCommands(t *testing.T) {
	for _, tt := range []struct {
		script []string
		http   bool
		vars   bool
		code   int
		log    string
	}{
		{[]string{"", "# comment", "noop"}, true, true, 0, "ok\n"},
		{[]string{"deploy prod"}, true, true, 127, `unknown command "deploy"`},
		{[]string{"wait"}, true, true, 1, "wait: nothing submitted"},
		{[]string{"submit"}, true, true, 1, "submit takes one argument"},
		{[]string{"submit pkg/missing.txt"}, true, true, 1, "open pkg/missing.txt: no such file or directory"},
		{[]string{"submit pkg/input.txt"}, true, false, 1, "the job sets no LAB_URL variable"},
		{[]string{"submit pkg/input.txt"}, false, true, 1, "wasmrunner: denied"},
	} {
		t.Run(strings.Join(tt.script, ";"), func(t *testing.T) {
			h := &sdktest.Host{Script: tt.script, Dir: t.TempDir(), Dependencies: []sdktest.Dependency{{Files: map[string]string{"pkg/input.txt": "x"}}}}
			if tt.http {
				h.HTTP = (&fakeLab{}).handler()
			}
			if tt.vars {
				h.Variables = []wasmrunner.Variable{{Name: "LAB_URL", Value: "http://lab"}}
			}
			host := sdktest.Install(t, h)
			if code := host.Run(&handler{}); code != tt.code || !strings.Contains(host.Log(), tt.log) {
				t.Errorf("exit code %d, want %d with %q:\n%s", code, tt.code, tt.log, host.Log())
			}
		})
	}
}
