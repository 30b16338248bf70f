package hostfuncs_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

func testDeps() []hostfuncs.Dependency {
	return []hostfuncs.Dependency{
		&dep{id: 100, name: "compile", files: []string{"a.txt", "dir/b.bin"},
			data: map[string]string{"a.txt": "0123456789", "dir/b.bin": "\x00\x01"}},
		&dep{id: 101, name: "lint"},
	}
}

func TestGuest(t *testing.T) {
	g := newGuest(t, "guest", wazero.NewRuntimeConfig())
	for _, tc := range []struct {
		fn  string
		env func(*hostfuncs.Env)
		log string
	}{
		{"t_log", nil,
			"hello world!\n[start build: Building things]\ninside\n[end build]\n\n"},
		{"t_job", nil,
			"id=42\nproject=7\ntimeout=3600\nbuild-linux\ntest\ngroup/project\nalpine:3\nret=-3\nlen=11\nphase=1\n"},
		{"t_vars", nil,
			"A\x00B\x00SECRET\nsecond\nbee\nmasked=1\nmasked=0\nret=-3\nret=-3\nlen=8\n#\n"},
		{"t_vars", func(e *hostfuncs.Env) { e.Vars = nil },
			"\nret=-3\nret=-3\nmasked=-3\nmasked=-3\nret=-3\nret=-3\nlen=-3\n#\n"},
		{"t_script", nil,
			"count=3\nmake\nmake test\n\nret=-4\n"},
		{"t_deps", nil,
			"count=2\nid=100\ncompile\na.txt\x00dir/b.bin\nid=101\nlint\nret=-3\nsize=10\n0123|4567|89|ret=0\n"},
		{"t_artifacts", nil, "ret=0\nret=0\n"},
		{"t_artifacts", func(e *hostfuncs.Env) { e.Artifacts = nil }, "ret=-6\nret=-6\n"},
		// Without Log or Sections the guest runs the same, and nothing is written.
		{"t_log", func(e *hostfuncs.Env) { e.Log, e.Sections = nil, nil }, ""},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			log := &syncbuf.Buffer{}
			art := &sink{}
			env := &hostfuncs.Env{
				Log:      log,
				Sections: sections{log},
				Job: hostfuncs.JobInfo{ID: 42, ProjectID: 7, Name: "build-linux", Stage: "test",
					ProjectName: "group/project", Image: "alpine:3", Timeout: time.Hour + 999*time.Millisecond},
				Phase:  abi.PhaseAfterScript,
				Script: []string{"make", "make test", ""},
				Vars: []hostfuncs.Var{
					{Name: "A", Value: "first"},
					{Name: "B", Value: "bee"},
					{Name: "SECRET", Value: "hunter22", Masked: true},
					{Name: "A", Value: "second"},
				},
				Deps:      testDeps(),
				Artifacts: art,
				Logger:    panicLog(t),
			}
			if tc.env != nil {
				tc.env(env)
			}
			if fails := g.call32(hostfuncs.WithEnv(context.Background(), env), tc.fn); fails != 0 {
				t.Errorf("%s: %d host calls returned something unexpected", tc.fn, fails)
			}
			if got := log.String(); got != tc.log {
				t.Errorf("%s logged\n%q\nwant\n%q", tc.fn, got, tc.log)
			}
			if tc.fn == "t_artifacts" && env.Artifacts != nil {
				if len(art.files) != 1 || art.files[0] != "out/report.txt" || len(art.data) != 1 || art.data["data.bin"] != "payload" {
					t.Errorf("artifacts: files %q, data %q", art.files, art.data)
				}
			}
		})
	}
}

func TestSleep(t *testing.T) {
	g := newGuest(t, "guest", wazero.NewRuntimeConfig())

	t.Run("full", func(t *testing.T) {
		var idle []time.Duration
		env := &hostfuncs.Env{Stop: context.Background(), Idle: func(d time.Duration) { idle = append(idle, d) }}
		ctx := hostfuncs.WithEnv(context.Background(), env)
		start := time.Now()
		if r := g.call32(ctx, "t_sleep", 30); r != 0 {
			t.Errorf("sleep_ms(30) = %d, want 0", r)
		}
		if d := time.Since(start); d < 30*time.Millisecond {
			t.Errorf("sleep_ms(30) returned after %v", d)
		}
		if r := g.call32(ctx, "t_sleep", 0); r != 0 {
			t.Errorf("sleep_ms(0) = %d, want 0", r)
		}
		// Idle hears of the wait before it begins, and not of a zero sleep.
		if want := []time.Duration{30 * time.Millisecond}; !slices.Equal(idle, want) {
			t.Errorf("Idle was told %v, want %v", idle, want)
		}
		if r := g.call32(ctx, "t_canceled"); r != 0 {
			t.Errorf("is_canceled = %d, want 0", r)
		}
	})

	for _, tc := range []struct {
		name string
		// stop returns Env.Stop and the guest call's context.
		stop func() (stop, call context.Context)
	}{
		{"Stop cancelled", func() (context.Context, context.Context) {
			stop, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return stop, context.Background()
		}},
		{"Stop deadline", func() (context.Context, context.Context) {
			stop, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			t.Cleanup(cancel)
			return stop, context.Background()
		}},
		{"call cancelled, no Stop", func() (context.Context, context.Context) {
			call, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return nil, call
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stop, call := tc.stop()
			env := &hostfuncs.Env{Stop: stop}
			ctx := hostfuncs.WithEnv(call, env)
			start := time.Now()
			if r := g.call32(ctx, "t_sleep", 600_000); r != errno(abi.ErrCanceled) {
				t.Errorf("sleep_ms(600000) = %d, want ErrCanceled", r)
			}
			if d := time.Since(start); d > time.Minute {
				t.Errorf("sleep_ms(600000) returned %v after the cancel", d)
			}
			if r := g.call32(ctx, "t_canceled"); r != 1 {
				t.Errorf("is_canceled = %d, want 1", r)
			}
			// Once stopped, even a zero sleep reports it at once.
			if r := g.call32(ctx, "t_sleep", 0); r != errno(abi.ErrCanceled) {
				t.Errorf("sleep_ms(0) after the cancel = %d, want ErrCanceled", r)
			}
		})
	}
}

// TestDepErrors: a failing dependency is ErrIO with the reason in the job
// log; a download cut short by Stop is ErrCanceled.
func TestDepErrors(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	log := &syncbuf.Buffer{}
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := &hostfuncs.Env{
		Log: log,
		Deps: []hostfuncs.Dependency{
			&dep{id: 1, name: "flaky", err: errors.New("502 Bad Gateway")},
			&dep{id: 2, name: "slow", block: true},
		},
		Stop:   stop,
		Logger: panicLog(t),
	}
	ctx := hostfuncs.WithEnv(context.Background(), env)
	if r := g.call32(ctx, abi.FuncDepFiles, 0, 0, 0); r != errno(abi.ErrIO) {
		t.Errorf("dep_files = %s, want ErrIO", fmtResult(r))
	}
	if r := int64(g.call(ctx, abi.FuncDepFileSize, 0, 0x20, 5)); r != errno(abi.ErrIO) {
		t.Errorf("dep_file_size = %s, want ErrIO", fmtResult(r))
	}
	if r := g.call32(ctx, abi.FuncDepRead, 0, 0x20, 5, 0, 0x800, 4); r != errno(abi.ErrIO) {
		t.Errorf("dep_read = %s, want ErrIO", fmtResult(r))
	}
	const want = "wasmrunner: dep_files: 502 Bad Gateway\n" +
		"wasmrunner: dep_file_size: 502 Bad Gateway\n" +
		"wasmrunner: dep_read: 502 Bad Gateway\n"
	if got := log.String(); got != want {
		t.Errorf("job log:\n%q\nwant\n%q", got, want)
	}

	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if r := g.call32(ctx, abi.FuncDepFiles, 1, 0, 0); r != errno(abi.ErrCanceled) {
		t.Errorf("dep_files during a cancel = %s, want ErrCanceled", fmtResult(r))
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("dep_files returned %v after the cancel", d)
	}
	if r := g.call32(ctx, abi.FuncDepRead, 1, 0x20, 5, 0, 0x800, 4); r != errno(abi.ErrCanceled) {
		t.Errorf("dep_read after the cancel = %s, want ErrCanceled", fmtResult(r))
	}
	if got := log.String(); got != want {
		t.Errorf("a cancel was logged: %q", got[len(want):])
	}
}
