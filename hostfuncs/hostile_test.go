package hostfuncs_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// Addresses in the hostile guest (one page of memory). hostile.wat holds
// "A" at 0x00, invalid UTF-8 at 0x10 (2 bytes) and 0x18 (3 bytes), "a.txt"
// at 0x20 and an HTTP request with a bad request line at 0x30 (36 bytes);
// the test writes the rest.
const (
	oob     = 0xFFFFFFF0 // far outside memory
	neg1    = 0xFFFFFFFF // -1 as i32
	memSize = 0x10000
	badPath = 0x100 // "../x"
	missing = 0x110 // "missing"
	broken  = 0x120 // "broken"
	okName  = 0x130 // "ok.txt"
	goodReq = 0x200 // "GET http://example.com/\r\n\r\n", 27 bytes
	zeros   = 0x1000
)

type hostileCase struct {
	fn   string
	args []uint64
	want int64
}

func c(fn string, want any, args ...uint64) hostileCase {
	var w int64
	switch v := want.(type) {
	case abi.Errno:
		w = int64(v)
	case int:
		w = int64(v)
	default:
		panic(fmt.Sprintf("want %T", want))
	}
	return hostileCase{fn, args, w}
}

var hostileCases = []hostileCase{
	// log_write and log_line: pointers and lengths.
	c(abi.FuncLogWrite, abi.ErrFault, oob, 100),
	c(abi.FuncLogWrite, abi.ErrTooLarge, 0, neg1),
	c(abi.FuncLogWrite, abi.ErrFault, neg1, 2),                 // ptr+len wraps around
	c(abi.FuncLogWrite, abi.ErrFault, 0xFFFF0000, 0x10000),     // ends at 2^32
	c(abi.FuncLogWrite, abi.ErrFault, memSize-10, 11),          // one byte past the end
	c(abi.FuncLogWrite, abi.ErrTooLarge, 0, abi.MaxLogWrite+1), // the limit comes first
	c(abi.FuncLogWrite, abi.ErrFault, 0, abi.MaxLogWrite),      // within the limit, not in memory
	c(abi.FuncLogWrite, 0, memSize, 0),                         // empty, at the end
	c(abi.FuncLogWrite, abi.ErrFault, memSize+1, 0),            // empty, past the end
	c(abi.FuncLogWrite, 0, memSize-1, 1),                       // the last byte
	c(abi.FuncLogLine, abi.ErrFault, oob, 100),
	c(abi.FuncLogLine, abi.ErrTooLarge, 0, neg1),
	c(abi.FuncLogLine, abi.ErrFault, neg1, 2),
	c(abi.FuncLogLine, abi.ErrTooLarge, 0, abi.MaxLogWrite+1),
	c(abi.FuncLogLine, 0, 0x10, 2), // log text need not be UTF-8

	// Sections: names are checked like all names, headers like log text.
	c(abi.FuncSectionStart, abi.ErrFault, oob, 100, 0, 0),
	c(abi.FuncSectionStart, abi.ErrTooLarge, 0, abi.MaxName+1, 0, 0),
	c(abi.FuncSectionStart, abi.ErrTooLarge, 0, neg1, 0, 0),
	c(abi.FuncSectionStart, abi.ErrInvalid, 0x10, 2, 0, 0),
	c(abi.FuncSectionStart, abi.ErrInvalid, 0x18, 3, 0, 0),
	c(abi.FuncSectionStart, abi.ErrFault, 0, 1, oob, 100),
	c(abi.FuncSectionStart, abi.ErrTooLarge, 0, 1, 0, neg1),
	c(abi.FuncSectionStart, abi.ErrFault, 0, 1, neg1, 2),
	c(abi.FuncSectionStart, 0, 0, 1, 0x10, 2),
	c(abi.FuncSectionStart, 0, zeros, abi.MaxName, 0, 0), // 4096 NULs: long, valid UTF-8
	c(abi.FuncSectionEnd, abi.ErrFault, oob, 100),
	c(abi.FuncSectionEnd, abi.ErrTooLarge, 0, neg1),
	c(abi.FuncSectionEnd, abi.ErrInvalid, 0x10, 2),
	c(abi.FuncSectionEnd, 0, 0, 1),

	// Job fields.
	c(abi.FuncJobString, abi.ErrNotFound, 4, 0, 0),
	c(abi.FuncJobString, abi.ErrNotFound, neg1, 0, 0),
	c(abi.FuncJobString, abi.ErrNotFound, 0x7FFFFFFF, oob, 100), // the field comes first
	c(abi.FuncJobString, abi.ErrFault, 0, oob, 100),
	c(abi.FuncJobString, abi.ErrFault, 0, memSize-2, 3),
	c(abi.FuncJobString, abi.ErrFault, 0, 0, neg1), // a buffer larger than memory
	c(abi.FuncJobString, 3, 0, oob, 0),             // a size query: buf does not matter
	c(abi.FuncJobString, 3, 0, memSize-3, 3),       // fits exactly at the end
	c(abi.FuncJobString, 3, 0, memSize-6, 2),       // too small: nothing written

	// Variables.
	c(abi.FuncVarGet, abi.ErrFault, oob, 100, 0, 0),
	c(abi.FuncVarGet, abi.ErrTooLarge, 0, neg1, 0, 0),
	c(abi.FuncVarGet, abi.ErrTooLarge, 0, abi.MaxName+1, 0, 0),
	c(abi.FuncVarGet, abi.ErrInvalid, 0x10, 2, 0, 0),
	c(abi.FuncVarGet, abi.ErrFault, 0, 1, oob, 100),
	c(abi.FuncVarGet, abi.ErrFault, 0, 1, neg1, 2),
	c(abi.FuncVarGet, abi.ErrNotFound, zeros, abi.MaxName, 0, 0),
	c(abi.FuncVarGet, abi.ErrNotFound, 0, 0, 0, 0), // the empty name
	c(abi.FuncVarGet, 5, 0, 1, 0, 0),
	c(abi.FuncVarMasked, abi.ErrFault, oob, 100),
	c(abi.FuncVarMasked, abi.ErrTooLarge, 0, neg1),
	c(abi.FuncVarMasked, abi.ErrInvalid, 0x18, 3),
	c(abi.FuncVarMasked, abi.ErrNotFound, 0x18, 2),
	c(abi.FuncVarMasked, 0, 0, 1),
	c(abi.FuncVarNames, abi.ErrFault, oob, 100),
	c(abi.FuncVarNames, abi.ErrFault, 0, neg1),
	c(abi.FuncVarNames, 1, 0, 0),

	// Script lines.
	c(abi.FuncScriptLine, abi.ErrInvalid, neg1, 0, 0),
	c(abi.FuncScriptLine, abi.ErrInvalid, 3, 0, 0),
	c(abi.FuncScriptLine, abi.ErrInvalid, 0x80000000, 0, 0),
	c(abi.FuncScriptLine, abi.ErrFault, 0, oob, 100),
	c(abi.FuncScriptLine, 3, 2, 0, 0),

	// Dependencies.
	c(abi.FuncDepID, abi.ErrInvalid, neg1),
	c(abi.FuncDepID, abi.ErrInvalid, 2),
	c(abi.FuncDepID, abi.ErrInvalid, 0x80000000),
	c(abi.FuncDepID, 100, 0),
	c(abi.FuncDepName, abi.ErrInvalid, 5, 0, 0),
	c(abi.FuncDepName, abi.ErrInvalid, neg1, oob, 100),
	c(abi.FuncDepName, abi.ErrFault, 0, oob, 100),
	c(abi.FuncDepFiles, abi.ErrInvalid, neg1, 0, 0),
	c(abi.FuncDepFiles, abi.ErrFault, 0, oob, 100),
	c(abi.FuncDepFiles, abi.ErrFault, 0, 0, neg1),
	c(abi.FuncDepFiles, abi.ErrNotFound, 1, 0, 0), // no artifacts
	c(abi.FuncDepFiles, 15, 0, 0, 0),
	c(abi.FuncDepFileSize, abi.ErrInvalid, 9, 0x20, 5),
	c(abi.FuncDepFileSize, abi.ErrFault, 0, oob, 100),
	c(abi.FuncDepFileSize, abi.ErrTooLarge, 0, 0, neg1),
	c(abi.FuncDepFileSize, abi.ErrInvalid, 0, 0x10, 2),
	c(abi.FuncDepFileSize, abi.ErrNotFound, 0, 0, 1), // no file "A"
	c(abi.FuncDepFileSize, abi.ErrNotFound, 1, 0x20, 5),
	c(abi.FuncDepFileSize, 10, 0, 0x20, 5),
	c(abi.FuncDepRead, abi.ErrInvalid, neg1, 0x20, 5, 0, 0, 4),
	c(abi.FuncDepRead, abi.ErrFault, 0, oob, 100, 0, 0, 4),
	c(abi.FuncDepRead, abi.ErrTooLarge, 0, 0, neg1, 0, 0, 4),
	c(abi.FuncDepRead, abi.ErrInvalid, 0, 0x10, 2, 0, 0, 4),
	c(abi.FuncDepRead, abi.ErrInvalid, 0, 0x20, 5, ^uint64(0), 0, 4), // offset -1
	c(abi.FuncDepRead, abi.ErrInvalid, 0, 0x20, 5, 1<<63, 0, 4),      // offset min int64
	c(abi.FuncDepRead, abi.ErrFault, 0, 0x20, 5, 0, oob, 100),
	c(abi.FuncDepRead, abi.ErrFault, 0, 0x20, 5, 0, 0, neg1),
	c(abi.FuncDepRead, abi.ErrFault, 0, 0x20, 5, 0, memSize-3, 4),
	c(abi.FuncDepRead, abi.ErrNotFound, 0, 0, 1, 0, 0, 4),
	c(abi.FuncDepRead, 0, 0, 0x20, 5, 10, 0x800, 4),    // at the end
	c(abi.FuncDepRead, 0, 0, 0x20, 5, 1<<62, 0x800, 4), // far past it
	c(abi.FuncDepRead, 2, 0, 0x20, 5, 8, 0x800, 100),   // the last bytes
	c(abi.FuncDepRead, 0, 0, 0x20, 5, 0, 0x800, 0),     // no room
	c(abi.FuncDepRead, 4, 0, 0x20, 5, 0, memSize-4, 4), // the last bytes of memory

	// Artifacts.
	c(abi.FuncArtifactAddFile, abi.ErrFault, oob, 100),
	c(abi.FuncArtifactAddFile, abi.ErrTooLarge, 0, neg1),
	c(abi.FuncArtifactAddFile, abi.ErrInvalid, 0x10, 2),
	c(abi.FuncArtifactAddFile, abi.ErrInvalid, badPath, 4),
	c(abi.FuncArtifactAddFile, abi.ErrNotFound, missing, 7),
	c(abi.FuncArtifactAddFile, abi.ErrIO, broken, 6),
	c(abi.FuncArtifactAddFile, 0, okName, 6),
	c(abi.FuncArtifactAddData, abi.ErrFault, oob, 100, 0, 1),
	c(abi.FuncArtifactAddData, abi.ErrTooLarge, 0, neg1, 0, 1),
	c(abi.FuncArtifactAddData, abi.ErrInvalid, 0x18, 3, 0, 1),
	c(abi.FuncArtifactAddData, abi.ErrTooLarge, okName, 6, 0, abi.MaxArtifactData+1),
	c(abi.FuncArtifactAddData, abi.ErrTooLarge, okName, 6, 0, neg1),
	c(abi.FuncArtifactAddData, abi.ErrFault, okName, 6, 0, abi.MaxArtifactData),
	c(abi.FuncArtifactAddData, abi.ErrFault, okName, 6, oob, 100),
	c(abi.FuncArtifactAddData, abi.ErrInvalid, badPath, 4, 0, 1),
	c(abi.FuncArtifactAddData, abi.ErrIO, broken, 6, 0, 1),
	c(abi.FuncArtifactAddData, 0, okName, 6, 0, 0),

	// Time.
	c(abi.FuncSleep, abi.ErrInvalid, ^uint64(0)),
	c(abi.FuncSleep, abi.ErrInvalid, 1<<63),
	c(abi.FuncSleep, 0, 0),
	c(abi.FuncSleep, 0, 1),

	// HTTP: nothing here may reach the network.
	c(abi.FuncHTTPResponse, abi.ErrFault, oob, 100),
	c(abi.FuncHTTPResponse, abi.ErrNotFound, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrFault, oob, 100, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrTooLarge, 0, neg1, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrTooLarge, 0, abi.MaxHTTPRequest+1, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrFault, 0, abi.MaxHTTPRequest, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrFault, neg1, 2, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrInvalid, 0x30, 36, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrInvalid, 0x10, 2, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrInvalid, 0, 0, 0, 0),
	c(abi.FuncHTTPRequest, abi.ErrFault, goodReq, 27, oob, 100),
	c(abi.FuncHTTPRequest, abi.ErrFault, goodReq, 27, 0, neg1),
	c(abi.FuncHTTPRequest, abi.ErrDenied, goodReq, 27, 0, 0), // example.com is not allowed
	c(abi.FuncHTTPResponse, abi.ErrNotFound, 0, 0),
}

func TestHostile(t *testing.T) {
	for engine, cfg := range engines {
		t.Run(engine, func(t *testing.T) {
			g := newGuest(t, "hostile", cfg())
			g.put(badPath, "../x")
			g.put(missing, "missing")
			g.put(broken, "broken")
			g.put(okName, "ok.txt")
			g.put(goodReq, "GET http://example.com/\r\n\r\n")
			var roundTrips atomic.Int32
			log := &syncbuf.Buffer{}
			env := &hostfuncs.Env{
				Log:       log,
				Sections:  sections{log},
				Job:       hostfuncs.JobInfo{Name: "job"},
				Script:    []string{"a", "bb", "ccc"},
				Vars:      []hostfuncs.Var{{Name: "A", Value: "value"}},
				Deps:      testDeps(),
				Artifacts: &sink{},
				HTTP: policy(t, hostfuncs.HTTPOptions{
					AllowedHosts: []string{"127.0.0.1"},
					Dial: func(context.Context, string, string) (net.Conn, error) {
						roundTrips.Add(1)
						return nil, fmt.Errorf("no network in this test")
					},
				}),
				Stop:   context.Background(),
				Logger: panicLog(t),
			}
			ctx := hostfuncs.WithEnv(context.Background(), env)
			results := map[string]api.ValueType{}
			for name, f := range g.mod.ExportedFunctionDefinitions() {
				results[name] = f.ResultTypes()[0]
			}
			for _, tc := range hostileCases {
				raw := g.call(ctx, tc.fn, tc.args...)
				got := int64(raw)
				if results[tc.fn] == api.ValueTypeI32 {
					got = int64(int32(uint32(raw)))
				}
				if got != tc.want {
					t.Errorf("%s%s = %s, want %s", tc.fn, fmtArgs(tc.args), fmtResult(got), fmtResult(tc.want))
				}
			}
			if n := roundTrips.Load(); n != 0 {
				t.Errorf("%d HTTP requests were sent", n)
			}
			// The ErrIO results say why in the job log.
			if got := log.String(); !strings.Contains(got, "wasmrunner: artifact_add_file: disk full\n") ||
				!strings.Contains(got, "wasmrunner: artifact_add_data: disk full\n") {
				t.Errorf("job log does not explain the ErrIO results:\n%q", got)
			}
			// The instance still works.
			g.put(0x800, "still alive")
			if r := g.call32(ctx, abi.FuncLogLine, 0x800, 11); r != 0 {
				t.Fatalf("log_line after the hostile calls = %d", r)
			}
			if got := log.String(); !strings.HasSuffix(got, "\nstill alive\n") {
				t.Errorf("job log ends with %q", got[max(0, len(got)-40):])
			}
			// Too small a buffer is left alone; one that fits at the end of
			// memory is written.
			if got := g.get(memSize-6, 2); got != "\x00\x00" {
				t.Errorf("a buffer too small for the result was written: %q", got)
			}
			if got := g.get(memSize-4, 4); got != "0123" {
				t.Errorf("dep_read wrote %q at the end of memory", got)
			}
		})
	}
}

// TestNoEnv: every function called without an Env is ErrPhase.
func TestNoEnv(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	defs := g.mod.ExportedFunctionDefinitions()
	if len(defs) != 26 {
		t.Fatalf("hostile.wat exports %d functions, want 26", len(defs))
	}
	initCtx, calls := hostfuncs.WithInit(context.Background(), []string{"A=1"})
	for _, ctx := range []context.Context{context.Background(), hostfuncs.WithEnv(context.Background(), nil), initCtx} {
		for name, f := range defs {
			got := g.call(ctx, name, make([]uint64, len(f.ParamTypes()))...)
			phase := int64(abi.ErrPhase)
			want := uint64(uint32(phase))
			if f.ResultTypes()[0] == api.ValueTypeI64 {
				want = uint64(phase)
			}
			if got != want {
				t.Errorf("%s without Env = %#x, want ErrPhase", name, got)
			}
		}
	}
	// During an initialization outside any job, each call is counted.
	if n := calls.HostCalls(); n != int64(len(defs)) {
		t.Errorf("WithInit counted %d host calls, want %d", n, len(defs))
	}
}

// TestNoMemory: a guest without memory gets ErrFault for pointers.
func TestNoMemory(t *testing.T) {
	g := newGuest(t, "nomem", wazero.NewRuntimeConfig())
	log := &syncbuf.Buffer{}
	ctx := hostfuncs.WithEnv(context.Background(), &hostfuncs.Env{Log: log, Job: hostfuncs.JobInfo{ID: 9}, Logger: panicLog(t)})
	if r := g.call32(ctx, abi.FuncLogLine, 0, 0); r != errno(abi.ErrFault) {
		t.Errorf("log_line(0, 0) = %d, want ErrFault", r)
	}
	if r := g.call32(ctx, abi.FuncVarNames, 0, 0); r != 0 {
		t.Errorf("var_names(0, 0) = %d, want 0", r)
	}
	if r := g.call32(ctx, abi.FuncVarNames, 0, 1); r != errno(abi.ErrFault) {
		t.Errorf("var_names(0, 1) = %d, want ErrFault", r)
	}
	if r := g.call(ctx, abi.FuncJobID); r != 9 {
		t.Errorf("job_id = %d, want 9", r)
	}
	if log.String() != "" {
		t.Errorf("job log: %q", log.String())
	}
}

// TestPanic: a panic in the host (here: in the engine's objects) becomes
// ErrIO, goes to the operator log only, and leaves the instance usable.
func TestPanic(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	g.put(0x800, "line")
	opLog := &syncbuf.Buffer{}
	jobLog := &syncbuf.Buffer{}
	env := &hostfuncs.Env{
		Log:    jobLog,
		Deps:   []hostfuncs.Dependency{&dep{id: 1, name: "boom", panic: true}},
		Logger: slogTo(opLog),
	}
	ctx := hostfuncs.WithEnv(context.Background(), env)
	if r := g.call32(ctx, abi.FuncDepFiles, 0, 0, 0); r != errno(abi.ErrIO) {
		t.Errorf("dep_files with a panicking dependency = %d, want ErrIO", r)
	}
	if r := g.call(ctx, abi.FuncDepFileSize, 0, 0x20, 5); int64(r) != errno(abi.ErrIO) {
		t.Errorf("dep_file_size with a panicking dependency = %d, want ErrIO", int64(r))
	}
	env.Log = panicWriter{}
	if r := g.call32(ctx, abi.FuncLogLine, 0x800, 4); r != errno(abi.ErrIO) {
		t.Errorf("log_line with a panicking log = %d, want ErrIO", r)
	}
	env.Log = jobLog
	if r := g.call32(ctx, abi.FuncLogLine, 0x800, 4); r != 0 {
		t.Errorf("log_line after the panics = %d, want 0", r)
	}
	if got := jobLog.String(); got != "line\n" {
		t.Errorf("job log = %q, want only the last line", got)
	}
	op := opLog.String()
	for _, want := range []string{"func=dep_files", "func=dep_file_size", "func=log_line", "dependency exploded"} {
		if !strings.Contains(op, want) {
			t.Errorf("operator log has no %q:\n%s", want, op)
		}
	}
}

type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("log exploded") }

func fmtArgs(args []uint64) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = fmt.Sprintf("%#x", a)
	}
	return "(" + strings.Join(s, ", ") + ")"
}

func fmtResult(r int64) string {
	if r < 0 {
		return fmt.Sprintf("%d (%v)", r, abi.Errno(r))
	}
	return fmt.Sprint(r)
}
