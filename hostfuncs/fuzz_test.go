package hostfuncs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// relay is an instance of testdata/hostfuncs/relay.wasm, which re-exports
// every host function with its memory.
type relay struct {
	mod   api.Module
	funcs []api.Function // sorted by name
	names []string
}

var (
	relayOnce sync.Once
	relayMod  *relay
	relayErr  error
)

// newRelay instantiates relay.wasm once per test binary: the fuzz
// function calls into it many times.
func newRelay(t testing.TB) *relay {
	wasm := wasmFile(t, "relay")
	relayOnce.Do(func() {
		ctx := context.Background()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		if _, err := hostfuncs.InstantiateWASI(ctx, r); err != nil {
			relayErr = err
			return
		}
		if _, err := hostfuncs.Instantiate(ctx, r); err != nil {
			relayErr = err
			return
		}
		mod, err := r.Instantiate(ctx, wasm)
		if err != nil {
			relayErr = err
			return
		}
		rl := &relay{mod: mod}
		for name := range mod.ExportedFunctionDefinitions() {
			rl.names = append(rl.names, name)
		}
		slices.Sort(rl.names)
		for _, n := range rl.names {
			rl.funcs = append(rl.funcs, mod.ExportedFunction(n))
		}
		relayMod = rl
	})
	if relayErr != nil {
		t.Fatal(relayErr)
	}
	return relayMod
}

// lockedBuffer is a concurrency-safe bytes.Buffer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FuzzHostFunctions calls the host functions with random arguments over
// random guest memory, as a hostile guest would: none may panic (a panic
// is recovered into ErrIO and logged to the operator log, which the test
// reads), trap, or change the guest's memory size.
func FuzzHostFunctions(f *testing.F) {
	// Seeds: a memory prefix, then calls of (function, 6 arguments).
	seed := func(mem string, calls ...[]uint64) []byte {
		var b bytes.Buffer
		binary.Write(&b, binary.LittleEndian, uint16(len(mem)))
		b.WriteString(mem)
		for _, c := range calls {
			b.WriteByte(byte(c[0]))
			for i := 1; i < 7; i++ {
				var v uint64
				if i < len(c) {
					v = c[i]
				}
				binary.Write(&b, binary.LittleEndian, v)
			}
		}
		return b.Bytes()
	}
	for i := 0; i < 28; i++ {
		f.Add(seed("GREETING\x00GET http://127.0.0.1:1/ HTTP\r\n\r\nhello", []uint64{uint64(i), 0, 8, 100, 60, 200, 1000}))
		f.Add(seed("", []uint64{uint64(i), 0xffffffff, 0xffffffff, 0xfffffff0, 0x7fffffff, 65530, 65535}))
	}
	f.Add(seed("GET http://127.0.0.1:1/x\r\nA: b\r\n\r\nbody", []uint64{24, 0, 33, 1000, 60000}, []uint64{25, 1000, 60000}))
	f.Fuzz(func(t *testing.T, data []byte) {
		rl := newRelay(t)
		if len(data) < 2 {
			return
		}
		n := int(binary.LittleEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		mem := rl.mod.Memory()
		// Fresh memory of one page: zeroes, then the input's prefix at a
		// place the input picks.
		zero := make([]byte, 65536)
		mem.Write(0, zero)
		off := uint32(0)
		if n > 0 {
			off = uint32(data[0]) * 97 % 60000
		}
		mem.Write(off, data[:n])
		data = data[n:]

		var opLog lockedBuffer
		jobLog := &lockedBuffer{}
		stop, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		env := &hostfuncs.Env{
			Log:      jobLog,
			Sections: sections{jobLog},
			Job:      hostfuncs.JobInfo{ID: 1, ProjectID: 2, Name: "fuzz", Stage: "test", ProjectName: "p", Image: "i", Timeout: time.Hour},
			Phase:    abi.PhaseScript,
			Script:   []string{"line one", "", strings.Repeat("x", 5000)},
			Vars:     []hostfuncs.Var{{Name: "GREETING", Value: "hi"}, {Name: "SECRET", Value: "s3cret", Masked: true}, {Name: "GREETING", Value: "again"}},
			Environ:  []string{"A=1", "GREETING=hi", "EMPTY="},
			Deps: []hostfuncs.Dependency{
				&dep{id: 7, name: "build", files: []string{"a.txt", "b/c.txt"}, data: map[string]string{"a.txt": "hello", "b/c.txt": strings.Repeat("y", 3000)}},
				&dep{id: 8, name: "none"},
			},
			Artifacts: &sink{},
			Stop:      stop,
			HTTP: hostfuncs.NewHTTPPolicy(hostfuncs.HTTPOptions{
				AllowedHosts: []string{"127.0.0.1", "example.com"},
				Timeout:      100 * time.Millisecond,
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					return nil, errors.New("no network in this test")
				},
			}),
			Logger: slog.New(slog.NewTextHandler(&opLog, nil)),
		}
		ctx := hostfuncs.WithEnv(context.Background(), env)
		const callSize = 1 + 6*8
		for calls := 0; len(data) >= callSize && calls < 16; calls++ {
			fn := rl.funcs[int(data[0])%len(rl.funcs)]
			name := rl.names[int(data[0])%len(rl.names)]
			def := fn.Definition()
			args := make([]uint64, len(def.ParamTypes()))
			for i := range args {
				args[i] = binary.LittleEndian.Uint64(data[1+8*i:])
				if def.ParamTypes()[i] == api.ValueTypeI32 {
					args[i] = uint64(uint32(args[i]))
				}
			}
			if name == abi.FuncSleep {
				args[0] %= 20 // a long sleep is legal, just slow to fuzz
			}
			data = data[callSize:]
			if _, err := fn.Call(ctx, args...); err != nil {
				t.Fatalf("%s%v trapped: %v", name, args, err)
			}
		}
		if s := opLog.String(); strings.Contains(s, "panicked") {
			t.Fatalf("a host function panicked:\n%s", s)
		}
		if mem.Size() != 65536 {
			t.Fatalf("memory is %d bytes", mem.Size())
		}
	})
}
