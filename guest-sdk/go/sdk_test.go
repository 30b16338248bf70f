package wasmrunner

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\x00b", []string{"a", "b"}},
		{"bin/tool\x00readme.md\x00x", []string{"bin/tool", "readme.md", "x"}},
		{"a\x00\x00b", []string{"a", "", "b"}},
		{"a\x00", []string{"a", ""}},
		{"\x00", []string{"", ""}},
	}
	for _, tt := range tests {
		if got := splitList([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fakeOutput is a host function with output whose result is s (or an
// error code), recording the capacities it was called with.
type fakeOutput struct {
	results []string // the result of each call; the last one repeats
	code    int32
	caps    []int
}

func (f *fakeOutput) call(buf []byte) int32 {
	f.caps = append(f.caps, len(buf))
	if f.code < 0 {
		return f.code
	}
	s := f.results[min(len(f.caps), len(f.results))-1]
	if len(s) <= len(buf) {
		copy(buf, s)
	}
	return int32(len(s))
}

func TestReadGrowing(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name     string
		first    int
		f        fakeOutput
		want     string
		wantErr  error
		wantCaps []int
	}{
		{"fits", 256, fakeOutput{results: []string{"value"}}, "value", nil, []int{256}},
		{"exactly fits", 5, fakeOutput{results: []string{"value"}}, "value", nil, []int{5}},
		{"empty", 256, fakeOutput{results: []string{""}}, "", nil, []int{256}},
		{"grows once to the exact size", 256, fakeOutput{results: []string{long}}, long, nil, []int{256, 1000}},
		{"asks the length first", 0, fakeOutput{results: []string{long}}, long, nil, []int{0, 1000}},
		{"error", 256, fakeOutput{code: int32(ErrNotFound)}, "", ErrNotFound, []int{256}},
		{"result grew between calls", 4, fakeOutput{results: []string{"12345", "1234567", "1234567"}}, "1234567", nil, []int{4, 5, 7}},
		{"result keeps growing", 1, fakeOutput{results: []string{"12", "123", "1234", "12345", "123456"}}, "", ErrTooLarge, []int{1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readGrowing(tt.first, tt.f.call)
			if string(got) != tt.want || err != tt.wantErr {
				t.Errorf("got %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			if !reflect.DeepEqual(tt.f.caps, tt.wantCaps) {
				t.Errorf("capacities %v, want %v", tt.f.caps, tt.wantCaps)
			}
		})
	}
}

func TestErrno(t *testing.T) {
	err := fmt.Errorf("polling: %w", Errno(-7))
	if !errors.Is(err, ErrCanceled) || errors.Is(err, ErrIO) {
		t.Errorf("errors.Is on %v", err)
	}
	var e Errno
	if !errors.As(err, &e) || e != ErrCanceled {
		t.Errorf("errors.As: %v", e)
	}
	for code, want := range map[Errno]string{
		ErrFault: "fault", ErrTooLarge: "too large", ErrNotFound: "not found", ErrInvalid: "invalid",
		ErrPhase: "wrong phase", ErrDenied: "denied", ErrCanceled: "canceled", ErrIO: "i/o error", -99: "error -99",
	} {
		if code.Error() != "wasmrunner: "+want {
			t.Errorf("%d: %q", int32(code), code.Error())
		}
	}
	if status(0) != nil || status(1) != nil || status(-3) != ErrNotFound {
		t.Error("status")
	}
}

func TestLog(t *testing.T) {
	f := useFake(t, &fakeHost{})
	Print("a", 1, 2, "b")
	Printf(" %s=%d\n", "x", 3)
	Println("line", 4)
	fmt.Fprintf(Log, "via %s\n", "Log")
	Section("build_step", "Building", func() { Println("inside") })
	want := "a1 2b x=3\nline 4\nvia Log\ninside\n"
	if got := f.log.String(); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
	if strings.Join(f.sections, "|") != "start build_step Building|end build_step" {
		t.Errorf("sections %q", f.sections)
	}
	// Text over the host's limit per call is split.
	f.log.Reset()
	big := strings.Repeat("y", 2*MaxLogWrite+10)
	Println(big)
	if n, err := io.WriteString(Log, big); n != len(big) || err != nil {
		t.Errorf("Log.Write: %d, %v", n, err)
	}
	if f.log.String() != big+"\n"+big {
		t.Errorf("split log: %d bytes", f.log.Len())
	}
}

func TestSectionClosesOnPanic(t *testing.T) {
	f := useFake(t, &fakeHost{})
	func() {
		defer func() { _ = recover() }()
		Section("s", "h", func() { panic("boom") })
	}()
	if strings.Join(f.sections, "|") != "start s h|end s" {
		t.Errorf("sections %q", f.sections)
	}
}

func TestJobAndVariables(t *testing.T) {
	long := strings.Repeat("v", 5000)
	useFake(t, &fakeHost{
		phaseNum: 1,
		vars: []Variable{
			{Name: "LAB_URL", Value: "http://lab"},
			{Name: "TOKEN", Value: "s3cret", Masked: true},
			{Name: "LONG", Value: long},
			{Name: "LAB_URL", Value: "http://lab2"},
		},
	})
	want := Job{ID: 42, ProjectID: 7, Timeout: time.Hour, Name: "build", Stage: "test", ProjectName: "proj", Image: "labsubmit"}
	if got := JobInfo(); got != want {
		t.Errorf("JobInfo %+v", got)
	}
	if CurrentPhase() != PhaseAfterScript || PhaseAfterScript.String() != "after_script" || Phase(9).String() != "phase 9" {
		t.Errorf("phase %v", CurrentPhase())
	}
	if v, ok := Var("LAB_URL"); !ok || v != "http://lab2" {
		t.Errorf("LAB_URL %q %v", v, ok)
	}
	if v, ok := Var("LONG"); !ok || v != long {
		t.Errorf("LONG: %d bytes, %v", len(v), ok)
	}
	if v, ok := Var("MISSING"); ok || v != "" {
		t.Errorf("MISSING %q %v", v, ok)
	}
	got := Variables()
	wantVars := []Variable{
		{Name: "LAB_URL", Value: "http://lab2"},
		{Name: "TOKEN", Value: "s3cret", Masked: true},
		{Name: "LONG", Value: long},
	}
	if !reflect.DeepEqual(got, wantVars) {
		t.Errorf("Variables %+v", got)
	}
}

func TestDependencies(t *testing.T) {
	content := strings.Repeat("0123456789", 100)
	useFake(t, &fakeHost{deps: []fakeDep{
		{id: 11, name: "build", files: map[string]string{"bin/tool": content, "empty": ""}, chunk: 64},
		{id: 12, name: "lint"},
	}})
	deps := Dependencies()
	if len(deps) != 2 || deps[0].ID != 11 || deps[0].Name != "build" || deps[1].ID != 12 || deps[1].Name != "lint" {
		t.Fatalf("deps %+v", deps)
	}
	files, err := deps[0].Files()
	if err != nil || !reflect.DeepEqual(files, []string{"bin/tool", "empty"}) {
		t.Errorf("files %q %v", files, err)
	}
	if files, err := deps[1].Files(); err != nil || files != nil {
		t.Errorf("no artifacts: %q %v", files, err)
	}
	data, err := deps[0].ReadFile("bin/tool") // read in 64-byte pieces
	if err != nil || string(data) != content {
		t.Errorf("ReadFile: %d bytes, %v", len(data), err)
	}
	if data, err := deps[0].ReadFile("empty"); err != nil || len(data) != 0 {
		t.Errorf("empty file: %q %v", data, err)
	}
	if _, err := deps[0].ReadFile("nope"); err != ErrNotFound {
		t.Errorf("missing file: %v", err)
	}
	p := make([]byte, 20)
	if n, err := deps[0].ReadAt("bin/tool", p, 990); n != 10 || err != io.EOF || string(p[:n]) != "0123456789" {
		t.Errorf("ReadAt at the end: %d %v %q", n, err, p[:n])
	}
	if size, err := deps[0].Size("bin/tool"); size != 1000 || err != nil {
		t.Errorf("Size %d %v", size, err)
	}
}

func TestArtifactsSleepCancel(t *testing.T) {
	f := useFake(t, &fakeHost{})
	if err := AddArtifactData("out/a.txt", []byte("A")); err != nil || string(f.artifacts["out/a.txt"]) != "A" {
		t.Errorf("AddArtifactData: %v", err)
	}
	if err := AddArtifactFile("../x"); err != ErrInvalid {
		t.Errorf("AddArtifactFile: %v", err)
	}
	for _, d := range []time.Duration{0, -time.Second, time.Nanosecond, 1500 * time.Microsecond, 200 * time.Millisecond, 1<<63 - 1} {
		if err := Sleep(d); err != nil {
			t.Errorf("Sleep(%v): %v", d, err)
		}
	}
	if want := []int64{0, 0, 1, 2, 200, (1<<63-1)/int64(time.Millisecond) + 1}; !reflect.DeepEqual(f.slept, want) {
		t.Errorf("slept %v, want %v", f.slept, want)
	}
	if Canceled() {
		t.Error("canceled too early")
	}
	f.canceled = true
	if !Canceled() || !errors.Is(Sleep(time.Second), ErrCanceled) {
		t.Error("cancel not seen")
	}
}

type testHandler struct {
	steps   []string
	code    int
	panicIn string
	cleaned bool
}

func (h *testHandler) Step(script []string, phase Phase) int {
	h.steps = append(h.steps, phase.String()+":"+strings.Join(script, ","))
	if h.panicIn == "step" {
		panic("step exploded")
	}
	return h.code
}

func (h *testHandler) Cleanup() {
	h.cleaned = true
	if h.panicIn == "cleanup" {
		panic(fmt.Errorf("cleanup exploded: %w", ErrIO))
	}
}

func TestEntryPoints(t *testing.T) {
	f := useFake(t, &fakeHost{script: []string{"submit a.bin", strings.Repeat("w", 300)}})
	registered = nil
	if code := runStep(PhaseScript); code != 1 || !strings.Contains(f.log.String(), "registered no handler") {
		t.Errorf("no handler: %d %q", code, f.log.String())
	}
	runCleanup() // nothing to do

	h := &testHandler{code: 127}
	Handle(h)
	if code := runStep(PhaseScript); code != 127 {
		t.Errorf("exit code %d", code)
	}
	if want := "script:submit a.bin," + strings.Repeat("w", 300); len(h.steps) != 1 || h.steps[0] != want {
		t.Errorf("steps %q", h.steps)
	}
	h.code = 1 << 40
	if code := runStep(PhaseAfterScript); code != 1 {
		t.Errorf("oversize exit code became %d", code)
	}

	f.log.Reset()
	h.panicIn = "step"
	if code := runStep(PhaseScript); code != 1 {
		t.Errorf("panicking step: %d", code)
	}
	if log := f.log.String(); !strings.Contains(log, "the handler panicked in step: step exploded") || !strings.Contains(log, "goroutine") {
		t.Errorf("panic log %q", log)
	}
	f.log.Reset()
	h.panicIn = "cleanup"
	runCleanup()
	if log := f.log.String(); !h.cleaned || !strings.Contains(log, "panicked in cleanup: cleanup exploded: wasmrunner: i/o error") {
		t.Errorf("cleanup panic log %q", log)
	}
}
