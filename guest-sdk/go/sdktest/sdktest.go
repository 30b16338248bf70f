// Package sdktest is a fake wasmrunner host for unit tests of handlers
// written with the Go SDK: plain `go test`, no WebAssembly, no runner.
//
// Outside WebAssembly the SDK's host functions panic, unless a test
// installs a [Host] that stands in for the runner: the job (its fields,
// script, variables, dependencies with their files), the HTTP services
// the handler calls (an [net/http.Handler] or a func), and cancellation.
// It records what the handler did: the job log (with its sections, and
// masked variables masked), artifacts, HTTP requests and sleeps.
//
//	func TestGreet(t *testing.T) {
//		host := sdktest.Install(t, &sdktest.Host{
//			Script:    []string{"greet"},
//			Variables: []wasmrunner.Variable{{Name: "WHO", Value: "world"}},
//		})
//		if code := host.Run(&handler{}); code != 0 {
//			t.Fatalf("exit code %d:\n%s", code, host.Log())
//		}
//		if got := host.Log(); got != "hello world\n" {
//			t.Errorf("log %q", got)
//		}
//	}
//
// [Host.Run] runs a handler as the runner runs a job: its Step with the
// script lines, then with the after_script lines (if any; CI_JOB_STATUS
// says how the script ended), then its Cleanup. Handler code may also
// call the SDK directly in a test: the Host answers for the step its
// Phase names.
//
// The SDK has one host per process, so tests that install one must not
// run in parallel (Install fails the test if another test's host is
// installed). Sleeps do not sleep: they are recorded and return at once
// (see [Host.OnSleep]).
//
// The end-to-end counterpart, which runs the built .wasm through the real
// engine against a fake GitLab, is the runner module's package
// github.com/wasmrunner/wasmrunner/handlertest.
package sdktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/internal/hostabi"
)

// Host is a fake host: the job a handler sees and a record of what it
// did. Set its fields, then [Install] it; zero fields take the defaults
// given. The fields may be changed between steps, not while the handler
// runs.
type Host struct {
	// JobID and ProjectID are the job's and its project's ids; default 1.
	JobID, ProjectID int64
	// Name and Stage are the job's; default "test".
	Name, Stage string
	// ProjectName is the project's name; default "demo".
	ProjectName string
	// Image is the job's image ("" by default).
	Image string
	// Timeout is the job's timeout; default one hour.
	Timeout time.Duration

	// Script and AfterScript are the lines of the job's steps.
	Script, AfterScript []string
	// Phase is the step the handler runs, for calls outside Run and Step
	// (which set it).
	Phase wasmrunner.Phase

	// Variables are the job's variables the handler may see; the last
	// definition of a name wins. Install also sets them in the process
	// environment for the test, as the runner does in the guest's.
	Variables []wasmrunner.Variable

	// Dependencies are the jobs whose artifacts the job receives.
	Dependencies []Dependency

	// Dir is the build dir. If set, Install makes it the test's working
	// directory (as the build dir is the guest's) and extracts the
	// dependencies' files into it, and AddArtifactData writes its files
	// there. AddArtifactFile reads its file from Dir, or from the working
	// directory when Dir is empty.
	Dir string

	// HTTPFunc answers the handler's HTTP requests; if it is nil, HTTP
	// does, in-process (redirects are not followed). With neither, every
	// request fails with ErrDenied, as for a handler whose manifest allows
	// no host. An error HTTPFunc returns that is (or wraps) a
	// wasmrunner.Errno is the request's error; any other is ErrIO.
	HTTPFunc func(*wasmrunner.Request) (*wasmrunner.Response, error)
	HTTP     http.Handler

	// OnSleep, if set, is called by each wasmrunner.Sleep with its
	// duration (after it is recorded), e.g. to cancel the job at a point
	// of the test: a Sleep during which the job is cancelled returns
	// ErrCanceled.
	OnSleep func(d time.Duration)

	t         testing.TB
	mu        sync.Mutex
	log       bytes.Buffer
	sections  []Section
	open      []int // indexes of the open sections
	artifacts map[string][]byte
	requests  []wasmrunner.Request
	sleeps    []time.Duration
	canceled  bool
	status    string // CI_JOB_STATUS in after_script
	lastResp  []byte
}

// Dependency is a job whose artifacts the job receives.
type Dependency struct {
	// ID is the job's id; default 100 plus its index.
	ID int64
	// Name is the job's name.
	Name string
	// Files are the files of its artifacts (name -> content); nil means it
	// has no artifacts.
	Files map[string]string
}

// Section is a collapsible section of the job log.
type Section struct {
	Name, Header string
	// Log is what was written to the job log inside the section.
	Log string
	// Ended reports whether the section was closed.
	Ended bool
}

// Install makes h the host of the SDK until the test ends, and returns
// it. It fails the test if another test's host is installed.
func Install(t testing.TB, h *Host) *Host {
	t.Helper()
	if h.JobID == 0 {
		h.JobID = 1
	}
	if h.ProjectID == 0 {
		h.ProjectID = 1
	}
	if h.Name == "" {
		h.Name = "test"
	}
	if h.Stage == "" {
		h.Stage = "test"
	}
	if h.ProjectName == "" {
		h.ProjectName = "demo"
	}
	if h.Timeout == 0 {
		h.Timeout = time.Hour
	}
	for i := range h.Dependencies {
		if h.Dependencies[i].ID == 0 {
			h.Dependencies[i].ID = 100 + int64(i)
		}
	}
	h.t = t
	h.artifacts = map[string][]byte{}
	h.status = "success"
	if h.Dir != "" {
		for _, d := range h.Dependencies {
			for name, content := range d.Files {
				if err := writeFile(h.Dir, name, []byte(content)); err != nil {
					t.Fatalf("sdktest: dependency %s: %v", d.Name, err)
				}
			}
		}
		t.Chdir(h.Dir)
	}
	for _, v := range h.Variables {
		t.Setenv(v.Name, v.Value)
	}
	if !hostabi.Install(abi{h}) {
		t.Fatal("sdktest: another test's fake host is installed: tests that use sdktest cannot run in parallel")
	}
	t.Cleanup(hostabi.Uninstall)
	return h
}

// Run runs handler as the runner runs a job: Step with the script lines,
// then, if the job has after_script lines, Step with those (CI_JOB_STATUS
// is "success", "failed", or "canceled" after Cancel, and the after_script
// step is not cancelled, as after a graceful cancel), then Cleanup. It
// returns the script step's exit code. A panic in the handler is logged and
// fails its step with exit code 1, as in a guest.
func (h *Host) Run(handler wasmrunner.Handler) int {
	code := h.Step(handler, wasmrunner.PhaseScript)
	h.mu.Lock()
	switch {
	case h.canceled:
		h.status = "canceled"
	case code != 0:
		h.status = "failed"
	default:
		h.status = "success"
	}
	h.canceled = false
	after := len(h.AfterScript) > 0
	h.mu.Unlock()
	if after {
		h.Step(handler, wasmrunner.PhaseAfterScript)
	}
	hostabi.Cleanup(handler)
	return code
}

// Step runs one step of handler as the runner does (the phase's script
// lines, a panic logged and turned into exit code 1) and returns its exit
// code.
func (h *Host) Step(handler wasmrunner.Handler, phase wasmrunner.Phase) int {
	h.mu.Lock()
	h.Phase = phase
	status := h.status
	h.mu.Unlock()
	if phase == wasmrunner.PhaseAfterScript {
		h.t.Setenv("CI_JOB_STATUS", status)
	}
	return int(hostabi.Step(handler, int32(phase)))
}

// Cancel cancels the job: from now on wasmrunner.Canceled reports true,
// and Sleep and HTTP fail with ErrCanceled, until Run moves on to
// after_script. It may be called from any goroutine, an HTTP handler or
// OnSleep.
func (h *Host) Cancel() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.canceled = true
}

// Log returns the job log so far, with masked variables' values replaced
// by [MASKED] as the runner does. A section's header shows as a line where
// the section starts, as in the job log.
func (h *Host) Log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mask(h.log.String())
}

// Sections returns the sections of the job log, in the order they were
// opened.
func (h *Host) Sections() []Section {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.sections)
	for i := range out {
		out[i].Log = h.mask(out[i].Log)
	}
	return out
}

// Artifacts returns the files the handler added to the job's artifacts,
// by name, with their content when they were added.
func (h *Host) Artifacts() map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]byte, len(h.artifacts))
	for k, v := range h.artifacts {
		out[k] = bytes.Clone(v)
	}
	return out
}

// Requests returns the HTTP requests the handler sent, in order (denied
// ones too).
func (h *Host) Requests() []wasmrunner.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// Sleeps returns the durations the handler slept (asked for, in whole
// milliseconds), in order.
func (h *Host) Sleeps() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sleeps)
}

// mask replaces the values of masked variables in s.
func (h *Host) mask(s string) string {
	for _, v := range h.Variables {
		if v.Masked && v.Value != "" {
			s = strings.ReplaceAll(s, v.Value, "[MASKED]")
		}
	}
	return s
}

// writeLog appends b to the log and to the open sections.
func (h *Host) writeLog(b []byte) {
	h.log.Write(b)
	for _, i := range h.open {
		h.sections[i].Log += string(b)
	}
}

// lookup returns the variable name as the phase sees it.
func (h *Host) lookup(name string) (wasmrunner.Variable, bool) {
	vars := h.vars()
	for i := len(vars) - 1; i >= 0; i-- {
		if vars[i].Name == name {
			return vars[i], true
		}
	}
	return wasmrunner.Variable{}, false
}

// vars returns the variables of the running phase: after_script has
// CI_JOB_STATUS too.
func (h *Host) vars() []wasmrunner.Variable {
	if h.Phase != wasmrunner.PhaseAfterScript {
		return h.Variables
	}
	return append(slices.Clip(h.Variables), wasmrunner.Variable{Name: "CI_JOB_STATUS", Value: h.status})
}

func (h *Host) script() []string {
	if h.Phase == wasmrunner.PhaseAfterScript {
		return h.AfterScript
	}
	return h.Script
}

// checkPath checks a relative artifact path as the host does.
func checkPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || len(p) > wasmrunner.MaxName {
		return false
	}
	return !slices.Contains(strings.Split(p, "/"), "..")
}

func writeFile(dir, name string, data []byte) error {
	if !checkPath(name) {
		return fmt.Errorf("bad path %q", name)
	}
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// serveHTTP answers an encoded request with an encoded response or an
// error code.
func (h *Host) serveHTTP(req *wasmrunner.Request) ([]byte, int32) {
	var resp *wasmrunner.Response
	switch {
	case h.HTTPFunc != nil:
		var err error
		resp, err = h.HTTPFunc(req)
		if err != nil {
			var e wasmrunner.Errno
			if errors.As(err, &e) {
				return nil, int32(e)
			}
			h.mu.Lock()
			h.writeLog([]byte("wasmrunner: http_request: " + err.Error() + "\n"))
			h.mu.Unlock()
			return nil, int32(wasmrunner.ErrIO)
		}
	case h.HTTP != nil:
		hr := httptest.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		for name, values := range req.Header {
			hr.Header[http.CanonicalHeaderKey(name)] = slices.Clone(values)
		}
		rec := httptest.NewRecorder()
		h.HTTP.ServeHTTP(rec, hr)
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		resp = &wasmrunner.Response{Status: res.StatusCode, Header: wasmrunner.Header(res.Header), Body: body}
	default:
		h.mu.Lock()
		h.writeLog([]byte("wasmrunner: http_request: denied: the fake host answers no HTTP (set Host.HTTP or Host.HTTPFunc)\n"))
		h.mu.Unlock()
		return nil, int32(wasmrunner.ErrDenied)
	}
	return encodeResponse(resp), 0
}

// decodeRequest decodes a request in the format of http_request.
func decodeRequest(b []byte) (wasmrunner.Request, bool) {
	head, body, ok := bytes.Cut(b, []byte("\r\n\r\n"))
	if !ok {
		return wasmrunner.Request{}, false
	}
	lines := strings.Split(string(head), "\r\n")
	method, url, ok := strings.Cut(lines[0], " ")
	if !ok {
		return wasmrunner.Request{}, false
	}
	req := wasmrunner.Request{Method: method, URL: url, Header: wasmrunner.Header{}, Body: bytes.Clone(body)}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return wasmrunner.Request{}, false
		}
		req.Header.Add(name, strings.TrimLeft(value, " \t"))
	}
	return req, true
}

// encodeResponse encodes a response in the format of http_request: the
// status line, header lines (canonical names, sorted), an empty line, the
// body.
func encodeResponse(resp *wasmrunner.Response) []byte {
	var b bytes.Buffer
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	b.WriteString(strconv.Itoa(status) + "\r\n")
	names := make([]string, 0, len(resp.Header))
	for name := range resp.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range resp.Header[name] {
			b.WriteString(wasmrunner.CanonicalHeaderKey(name) + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	b.Write(resp.Body)
	return b.Bytes()
}
