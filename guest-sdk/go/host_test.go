//go:build !wasip1

// The SDK's behaviour through its host functions, tested against the fake
// host of package sdktest.
package wasmrunner_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/sdktest"
)

func TestLog(t *testing.T) {
	host := sdktest.Install(t, &sdktest.Host{})
	wasmrunner.Print("a", 1, 2, "b")
	wasmrunner.Printf(" %s=%d\n", "x", 3)
	wasmrunner.Println("line", 4)
	fmt.Fprintf(wasmrunner.Log, "via %s\n", "Log")
	wasmrunner.Section("build_step", "Building", func() { wasmrunner.Println("inside") })
	want := "a1 2b x=3\nline 4\nvia Log\nBuilding\ninside\n"
	if got := host.Log(); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
	if s := host.Sections(); !reflect.DeepEqual(s, []sdktest.Section{{Name: "build_step", Header: "Building", Log: "inside\n", Ended: true}}) {
		t.Errorf("sections %+v", s)
	}
	// Text over the host's limit per call is split.
	big := strings.Repeat("y", 2*wasmrunner.MaxLogWrite+10)
	wasmrunner.Println(big)
	if n, err := io.WriteString(wasmrunner.Log, big); n != len(big) || err != nil {
		t.Errorf("Log.Write: %d, %v", n, err)
	}
	if !strings.HasSuffix(host.Log(), "inside\n"+big+"\n"+big) {
		t.Errorf("split log: %d bytes", len(host.Log()))
	}
}

func TestSectionClosesOnPanic(t *testing.T) {
	host := sdktest.Install(t, &sdktest.Host{})
	func() {
		defer func() { _ = recover() }()
		wasmrunner.Section("s", "h", func() { panic("boom") })
	}()
	if s := host.Sections(); len(s) != 1 || !s[0].Ended {
		t.Errorf("sections %+v", s)
	}
}

func TestJobAndVariables(t *testing.T) {
	long := strings.Repeat("v", 5000)
	host := sdktest.Install(t, &sdktest.Host{
		JobID: 42, ProjectID: 7, Name: "build", ProjectName: "proj", Image: "labsubmit",
		Phase: wasmrunner.PhaseAfterScript,
		Variables: []wasmrunner.Variable{
			{Name: "LAB_URL", Value: "http://lab"},
			{Name: "TOKEN", Value: "s3cret", Masked: true},
			{Name: "LONG", Value: long},
			{Name: "LAB_URL", Value: "http://lab2"},
		},
	})
	want := wasmrunner.Job{ID: 42, ProjectID: 7, Timeout: time.Hour, Name: "build", Stage: "test", ProjectName: "proj", Image: "labsubmit"}
	if got := wasmrunner.JobInfo(); got != want {
		t.Errorf("JobInfo %+v", got)
	}
	if wasmrunner.CurrentPhase() != wasmrunner.PhaseAfterScript || wasmrunner.PhaseAfterScript.String() != "after_script" || wasmrunner.Phase(9).String() != "phase 9" {
		t.Errorf("phase %v", wasmrunner.CurrentPhase())
	}
	if v, ok := wasmrunner.Var("LAB_URL"); !ok || v != "http://lab2" {
		t.Errorf("LAB_URL %q %v", v, ok)
	}
	if v, ok := wasmrunner.Var("LONG"); !ok || v != long {
		t.Errorf("LONG: %d bytes, %v", len(v), ok)
	}
	if v, ok := wasmrunner.Var("MISSING"); ok || v != "" {
		t.Errorf("MISSING %q %v", v, ok)
	}
	got := wasmrunner.Variables()
	wantVars := []wasmrunner.Variable{
		{Name: "LAB_URL", Value: "http://lab2"},
		{Name: "TOKEN", Value: "s3cret", Masked: true},
		{Name: "LONG", Value: long},
		{Name: "CI_JOB_STATUS", Value: "success"},
	}
	if !reflect.DeepEqual(got, wantVars) {
		t.Errorf("Variables %+v", got)
	}
	wasmrunner.Println("token", "s3cret")
	if host.Log() != "token [MASKED]\n" {
		t.Errorf("log %q", host.Log())
	}
}

func TestDependencies(t *testing.T) {
	content := strings.Repeat("0123456789", 1000) // read in pieces
	sdktest.Install(t, &sdktest.Host{Dependencies: []sdktest.Dependency{
		{ID: 11, Name: "build", Files: map[string]string{"bin/tool": content, "empty": ""}},
		{Name: "lint"},
	}})
	deps := wasmrunner.Dependencies()
	if len(deps) != 2 || deps[0].ID != 11 || deps[0].Name != "build" || deps[1].ID != 101 || deps[1].Name != "lint" {
		t.Fatalf("deps %+v", deps)
	}
	files, err := deps[0].Files()
	if err != nil || !reflect.DeepEqual(files, []string{"bin/tool", "empty"}) {
		t.Errorf("files %q %v", files, err)
	}
	if files, err := deps[1].Files(); err != nil || files != nil {
		t.Errorf("no artifacts: %q %v", files, err)
	}
	data, err := deps[0].ReadFile("bin/tool")
	if err != nil || string(data) != content {
		t.Errorf("ReadFile: %d bytes, %v", len(data), err)
	}
	if data, err := deps[0].ReadFile("empty"); err != nil || len(data) != 0 {
		t.Errorf("empty file: %q %v", data, err)
	}
	if _, err := deps[0].ReadFile("nope"); err != wasmrunner.ErrNotFound {
		t.Errorf("missing file: %v", err)
	}
	p := make([]byte, 20)
	if n, err := deps[0].ReadAt("bin/tool", p, 9990); n != 10 || err != io.EOF || string(p[:n]) != "0123456789" {
		t.Errorf("ReadAt at the end: %d %v %q", n, err, p[:n])
	}
	if size, err := deps[0].Size("bin/tool"); size != 10000 || err != nil {
		t.Errorf("Size %d %v", size, err)
	}
}

func TestArtifactsSleepCancel(t *testing.T) {
	dir := t.TempDir()
	host := sdktest.Install(t, &sdktest.Host{Dir: dir, Dependencies: []sdktest.Dependency{{Name: "b", Files: map[string]string{"in/x.txt": "X"}}}})
	if err := wasmrunner.AddArtifactData("out/a.txt", []byte("A")); err != nil {
		t.Errorf("AddArtifactData: %v", err)
	}
	if err := wasmrunner.AddArtifactFile("in/x.txt"); err != nil { // extracted from the dependency
		t.Errorf("AddArtifactFile: %v", err)
	}
	if err := wasmrunner.AddArtifactFile("../x"); err != wasmrunner.ErrInvalid {
		t.Errorf("AddArtifactFile(../x): %v", err)
	}
	if err := wasmrunner.AddArtifactFile("missing"); err != wasmrunner.ErrNotFound {
		t.Errorf("AddArtifactFile(missing): %v", err)
	}
	if got := host.Artifacts(); !reflect.DeepEqual(got, map[string][]byte{"out/a.txt": []byte("A"), "in/x.txt": []byte("X")}) {
		t.Errorf("artifacts %q", got)
	}
	for _, d := range []time.Duration{0, -time.Second, time.Nanosecond, 1500 * time.Microsecond, 200 * time.Millisecond} {
		if err := wasmrunner.Sleep(d); err != nil {
			t.Errorf("Sleep(%v): %v", d, err)
		}
	}
	if want := []time.Duration{0, 0, time.Millisecond, 2 * time.Millisecond, 200 * time.Millisecond}; !reflect.DeepEqual(host.Sleeps(), want) {
		t.Errorf("slept %v, want %v", host.Sleeps(), want)
	}
	if wasmrunner.Canceled() {
		t.Error("canceled too early")
	}
	host.OnSleep = func(d time.Duration) {
		if d == time.Second {
			host.Cancel()
		}
	}
	if err := wasmrunner.Sleep(time.Second); !errors.Is(err, wasmrunner.ErrCanceled) || !wasmrunner.Canceled() {
		t.Errorf("a sleep during which the job is cancelled: %v", err)
	}
	if _, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://lab/"}); !errors.Is(err, wasmrunner.ErrCanceled) {
		t.Errorf("HTTP after a cancel: %v", err)
	}
}

func TestHTTP(t *testing.T) {
	body := strings.Repeat("0123456789", 1000) // larger than the first buffer
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /x", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-A") != "1" || string(b) != "payload" || r.Host != "lab" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", "/x")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
	})
	host := sdktest.Install(t, &sdktest.Host{HTTP: mux})
	req := &wasmrunner.Request{Method: "PUT", URL: "http://lab/x", Header: wasmrunner.Header{}, Body: []byte("payload")}
	req.Header.Set("x-a", "1")
	resp, err := wasmrunner.HTTP(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || resp.Header.Get("Location") != "/x" || string(resp.Body) != body {
		t.Errorf("response %d %v, %d bytes", resp.Status, resp.Header, len(resp.Body))
	}
	if resp, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://lab/nope"}); err != nil || resp.Status != 404 {
		t.Errorf("404: %v %v", resp, err)
	}
	if reqs := host.Requests(); len(reqs) != 2 || !reflect.DeepEqual(reqs[0], *req) || reqs[1].Method != "GET" {
		t.Errorf("requests %+v", reqs)
	}

	// A func answers instead; its Errno errors are the request's.
	host.HTTPFunc = func(r *wasmrunner.Request) (*wasmrunner.Response, error) {
		switch r.URL {
		case "http://lab/ok":
			return &wasmrunner.Response{Body: []byte("ok")}, nil
		case "http://lab/canceled":
			return nil, fmt.Errorf("lab: %w", wasmrunner.ErrCanceled)
		}
		return nil, errors.New("connection refused")
	}
	if resp, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://lab/ok"}); err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
		t.Errorf("func: %+v %v", resp, err)
	}
	if _, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://lab/canceled"}); !errors.Is(err, wasmrunner.ErrCanceled) {
		t.Errorf("canceled request: %v", err)
	}
	if _, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://lab/down"}); !errors.Is(err, wasmrunner.ErrIO) || !strings.Contains(host.Log(), "connection refused") {
		t.Errorf("failed request: %v; log %q", err, host.Log())
	}
	host.HTTPFunc, host.HTTP = nil, nil
	if _, err := wasmrunner.HTTP(&wasmrunner.Request{URL: "http://elsewhere/"}); err != wasmrunner.ErrDenied {
		t.Errorf("denied request: %v", err)
	}
}

type testHandler struct {
	steps   []string
	code    int
	panicIn string
	cleaned bool
}

func (h *testHandler) Step(script []string, phase wasmrunner.Phase) int {
	status, _ := wasmrunner.Var("CI_JOB_STATUS")
	h.steps = append(h.steps, phase.String()+":"+strings.Join(script, ",")+":"+status)
	if h.panicIn == "step" {
		panic("step exploded")
	}
	if wasmrunner.Sleep(time.Second) != nil {
		return 130
	}
	return h.code
}

func (h *testHandler) Cleanup() {
	h.cleaned = true
	if h.panicIn == "cleanup" {
		panic(fmt.Errorf("cleanup exploded: %w", wasmrunner.ErrIO))
	}
}

func TestRun(t *testing.T) {
	host := sdktest.Install(t, &sdktest.Host{Script: []string{"submit a.bin", strings.Repeat("w", 300)}, AfterScript: []string{"after"}})
	if code := host.Step(nil, wasmrunner.PhaseScript); code != 1 || !strings.Contains(host.Log(), "registered no handler") {
		t.Errorf("no handler: %d %q", code, host.Log())
	}

	h := &testHandler{code: 127}
	if code := host.Run(h); code != 127 || !h.cleaned {
		t.Errorf("exit code %d, cleaned %v", code, h.cleaned)
	}
	if want := []string{"script:submit a.bin," + strings.Repeat("w", 300) + ":", "after_script:after:failed"}; !reflect.DeepEqual(h.steps, want) {
		t.Errorf("steps %q", h.steps)
	}

	h = &testHandler{code: 1 << 40}
	if code := host.Step(h, wasmrunner.PhaseScript); code != 1 {
		t.Errorf("oversize exit code became %d", code)
	}

	h = &testHandler{}
	host.OnSleep = func(time.Duration) { host.Cancel() }
	if code := host.Run(h); code != 130 || len(h.steps) != 2 || h.steps[1] != "after_script:after:canceled" {
		t.Errorf("canceled job: exit code %d, steps %q", code, h.steps)
	}
	host.OnSleep = nil

	h = &testHandler{panicIn: "step"}
	if code := host.Step(h, wasmrunner.PhaseScript); code != 1 {
		t.Errorf("panicking step: %d", code)
	}
	if log := host.Log(); !strings.Contains(log, "the handler panicked in step: step exploded") || !strings.Contains(log, "goroutine") {
		t.Errorf("panic log %q", log)
	}
	h = &testHandler{panicIn: "cleanup"}
	host.Run(h)
	if log := host.Log(); !h.cleaned || !strings.Contains(log, "panicked in cleanup: cleanup exploded: wasmrunner: i/o error") {
		t.Errorf("cleanup panic log %q", log)
	}
}

// fatalTB records the message of Fatal and stops there.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	panic(f)
}

func TestInstallTwice(t *testing.T) {
	sdktest.Install(t, &sdktest.Host{})
	f := &fatalTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		sdktest.Install(f, &sdktest.Host{})
	}()
	if !strings.Contains(f.msg, "cannot run in parallel") {
		t.Errorf("second Install: %q", f.msg)
	}
}
