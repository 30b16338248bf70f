package wasmbin

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// compile compiles bin with a fresh wazero runtime configured as the
// runner's (compiler, default features).
func compile(bin []byte) error {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	_, err := rt.CompileModule(ctx, bin)
	return err
}

func TestWazeroCompilesRewritten(t *testing.T) {
	for _, bin := range [][]byte{
		withFunc(section(secTable, vec(tableNoMax(6568)))),
		withFunc(section(secTable, vec(tableNoMax(0)))),
		withFunc(section(secTable, vec(tableNoMax(1), tableMax(2, 3), b(0x6f, 0x00, u(300))))),
		withFunc(section(secTable, vec(b(funcref, 0x00, 0x85, 0x80, 0x00)))),
		withFunc(section(secTable, vec(b(0x40, 0x00, funcref, 0x00, 3, 0xd2, 0, end)))),
		withFunc(section(secTable, vec(tableNoMax(1_000_000))), section(secElement, vec(b(0, 0x41, 0, end, vec(u(0), u(0)))))),
		growModule,
	} {
		if err := compile(bin); err != nil {
			t.Fatalf("wazero refuses the input %x: %v", bin, err)
		}
		out, info := mustCheck(t, bin)
		if len(info.Tables) == 0 || !info.Tables[0].Capped {
			t.Fatalf("tables %+v", info.Tables)
		}
		if err := compile(out); err != nil {
			t.Errorf("wazero refuses the output %x: %v", out, err)
		}
	}
}

// growModule has a funcref table of 2 elements without maximum, and exports
// grow(delta) = table.grow(ref.null func, delta) and size() = table.size.
var growModule = module(
	section(secType, vec(funcType([]byte{i32}, []byte{i32}), funcType(nil, []byte{i32}))),
	section(secFunction, vec(u(0), u(1))),
	section(secTable, vec(tableNoMax(2))),
	section(secExport, vec(b(str("grow"), 0, 0), b(str("size"), 0, 1))),
	section(secCode, vec(
		body(noLocals, 0xd0, 0x70, 0x20, 0x00, 0xfc, 0x0f, 0x00, end),
		body(noLocals, 0xfc, 0x10, 0x00, end))),
)

// call instantiates bin and calls its exports in turn, each with its args.
func callGrow(t *testing.T, bin []byte, deltas ...uint32) (results []uint32, size uint32) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deltas {
		r, err := mod.ExportedFunction("grow").Call(ctx, uint64(d))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, uint32(r[0]))
	}
	r, err := mod.ExportedFunction("size").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return results, uint32(r[0])
}

// Without a maximum the table grows (up to 2^32-1 elements of 8 bytes: a
// "fatal error: out of memory" that ends the process, so it is not tried
// here); with the maximum Check adds, table.grow fails with -1.
func TestTableGrowCapped(t *testing.T) {
	got, size := callGrow(t, growModule, 10)
	if got[0] != 2 || size != 12 {
		t.Fatalf("input: grow(10) = %d, size %d; want 2, 12", got[0], size)
	}
	out, info := mustCheck(t, growModule)
	if !reflect.DeepEqual(info.Tables, []Table{{Min: 2, Max: 2, Capped: true, Grows: true}}) {
		t.Fatalf("tables %+v", info.Tables)
	}
	got, size = callGrow(t, out, 0, 1, 10, 0x7fff_ffff, 0xffff_fff0, 0xffff_ffff)
	if want := []uint32{2, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff}; !reflect.DeepEqual(got, want) || size != 2 {
		t.Errorf("output: grow = %#x, size %d; want %#x, 2", got, size, want)
	}
}

// realModules returns the repo's committed modules, the testdata modules
// that scripts/build-guests built, and its WAT sources compiled with
// wat2wasm when that is installed.
func realModules(t *testing.T) map[string][]byte {
	mods := map[string][]byte{}
	read := func(name, path string) {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mods[strings.TrimPrefix(name, "../../")] = bin
	}
	read("examples/modules/shell.wasm", "../../examples/modules/shell.wasm")
	wat2wasm, _ := exec.LookPath("wat2wasm")
	dir := t.TempDir()
	err := filepath.WalkDir("../../testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "hostile" {
			return filepath.SkipDir // made to be refused (test/adversarial)
		}
		switch {
		case strings.HasSuffix(path, ".wasm"):
			read(path, path)
		case strings.HasSuffix(path, ".wat") && wat2wasm != "":
			out := filepath.Join(dir, strings.ReplaceAll(path, "/", "_")+".wasm")
			if msg, err := exec.Command(wat2wasm, path, "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm %s: %v\n%s", path, err, msg)
			}
			read(path, out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mods
}

// splitSections returns bin's sections (id byte and contents) in order.
func splitSections(t *testing.T, bin []byte) (ids []byte, contents [][]byte) {
	t.Helper()
	r := reader{b: bin, off: 8}
	for r.len() > 0 {
		id, _ := r.byte()
		n, err := r.u32()
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.sub(n)
		if err != nil {
			t.Fatal(err)
		}
		ids, contents = append(ids, id), append(contents, s.b)
	}
	return ids, contents
}

// sameButTables checks that out is in when Check capped no table, and that
// only the table section changed when it did.
func sameButTables(t *testing.T, in, out []byte, info Info) {
	t.Helper()
	capped := false
	for _, tb := range info.Tables {
		capped = capped || tb.Capped
	}
	if !capped && &out[0] != &in[0] {
		t.Errorf("no table capped, yet out is not its input")
	}
	inIDs, inSecs := splitSections(t, in)
	outIDs, outSecs := splitSections(t, out)
	if !bytes.Equal(inIDs, outIDs) {
		t.Fatalf("sections %v became %v", inIDs, outIDs)
	}
	for i, id := range inIDs {
		if same := bytes.Equal(inSecs[i], outSecs[i]); same == (id == secTable && capped) {
			t.Errorf("section %d (id %d) changed: %v", i, id, !same)
		}
	}
}

// The repo's real modules pass, unchanged but for tables given a maximum,
// and wazero compiles the output exactly when it compiles the input.
func TestRealModules(t *testing.T) {
	mods := realModules(t)
	t.Logf("%d modules", len(mods))
	for path, in := range mods {
		t.Run(path, func(t *testing.T) {
			out, info := mustCheck(t, in)
			t.Logf("%d bytes, tables %+v, %d functions, largest %d bytes, most locals %d",
				len(in), info.Tables, info.Functions, info.LargestFunction, info.MostLocals)
			sameButTables(t, in, out, info)
			errIn, errOut := compile(in), error(nil)
			if &out[0] != &in[0] {
				errOut = compile(out)
			} else {
				errOut = errIn
			}
			if (errIn == nil) != (errOut == nil) {
				t.Errorf("wazero: input %v, output %v", errIn, errOut)
			}
		})
	}
	shell := mods["examples/modules/shell.wasm"]
	// Rust declares its table's maximum (= its minimum): nothing to cap.
	if out, info := mustCheck(t, shell); &out[0] != &shell[0] || len(info.Tables) != 1 || info.Tables[0].Max != info.Tables[0].Min || info.Tables[0].Capped {
		t.Errorf("shell.wasm: tables %+v", info.Tables)
	}
}

var goReactor struct {
	once sync.Once
	bin  []byte
	err  error
	msg  []byte
}

// buildGoReactor builds testdata/goreactor with Go's wasip1 toolchain, once.
func buildGoReactor(tb testing.TB) []byte {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds a Go reactor for wasip1")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Skip("no go tool")
	}
	goReactor.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasmbin")
		if err != nil {
			goReactor.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "reactor.wasm")
		cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", path, "./testdata/goreactor")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if goReactor.msg, goReactor.err = cmd.CombinedOutput(); goReactor.err == nil {
			goReactor.bin, goReactor.err = os.ReadFile(path)
		}
	})
	if goReactor.err != nil {
		tb.Fatalf("building the Go reactor: %v\n%s", goReactor.err, goReactor.msg)
	}
	return goReactor.bin
}

func TestGoReactor(t *testing.T) {
	in := buildGoReactor(t)
	out, info := mustCheck(t, in)
	if len(info.Tables) != 1 || !info.Tables[0].Capped || info.Tables[0].Min < 1000 {
		t.Fatalf("tables %+v, want one capped table of Go's size", info.Tables)
	}
	t.Logf("%d bytes, tables %+v, %d functions, largest %d bytes, most locals %d",
		len(in), info.Tables, info.Functions, info.LargestFunction, info.MostLocals)
	sameButTables(t, in, out, info)

	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	add := mod.ExportedFunction("add")
	for i, want := range []int32{2, 5, -5} {
		arg := []int32{2, 3, -10}[i]
		r, err := add.Call(ctx, uint64(uint32(arg)))
		if err != nil {
			t.Fatal(err)
		}
		if got := int32(uint32(r[0])); got != want {
			t.Errorf("add(%d) = %d, want %d", arg, got, want)
		}
	}
}
