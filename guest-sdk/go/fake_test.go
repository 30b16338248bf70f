package wasmrunner

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// fakeHost is a host for tests: a job held in fields, and a record of the
// calls that matter to them.
type fakeHost struct {
	log      bytes.Buffer
	sections []string
	script   []string
	vars     []Variable
	deps     []fakeDep
	phaseNum int32
	canceled bool
	slept    []int64
	// http answers an encoded request with an encoded response or an
	// error code.
	http      func(req []byte) ([]byte, int32)
	lastResp  []byte
	caps      map[string][]int // capacity passed per function
	artifacts map[string][]byte
}

type fakeDep struct {
	id    int64
	name  string
	files map[string]string // nil: no artifacts
	chunk int               // most bytes one dep_read returns (0: all)
}

var _ hostABI = (*fakeHost)(nil)

// useFake installs a fake host for the test.
func useFake(t *testing.T, f *fakeHost) *fakeHost {
	t.Helper()
	if f.caps == nil {
		f.caps = map[string][]int{}
	}
	if f.artifacts == nil {
		f.artifacts = map[string][]byte{}
	}
	old, oldHandler := host, registered
	host = f
	t.Cleanup(func() { host, registered = old, oldHandler })
	return f
}

// out writes s to buf as a host function with output does.
func (f *fakeHost) out(fn string, buf []byte, s string) int32 {
	f.caps[fn] = append(f.caps[fn], len(buf))
	if len(s) <= len(buf) {
		copy(buf, s)
	}
	return int32(len(s))
}

func (f *fakeHost) logWrite(b []byte) int32 {
	if len(b) > MaxLogWrite {
		return int32(ErrTooLarge)
	}
	f.log.Write(b)
	return 0
}

func (f *fakeHost) logLine(b []byte) int32 {
	if len(b) > MaxLogWrite {
		return int32(ErrTooLarge)
	}
	f.log.Write(b)
	f.log.WriteByte('\n')
	return 0
}

func (f *fakeHost) sectionStart(name, header string) int32 {
	f.sections = append(f.sections, "start "+name+" "+header)
	return 0
}

func (f *fakeHost) sectionEnd(name string) int32 {
	f.sections = append(f.sections, "end "+name)
	return 0
}

func (f *fakeHost) jobID() int64        { return 42 }
func (f *fakeHost) jobProjectID() int64 { return 7 }
func (f *fakeHost) jobTimeout() int64   { return 3600 }

func (f *fakeHost) jobString(field int32, buf []byte) int32 {
	s, ok := map[int32]string{0: "build", 1: "test", 2: "proj", 3: "labsubmit"}[field]
	if !ok {
		return int32(ErrNotFound)
	}
	return f.out("job_string", buf, s)
}

func (f *fakeHost) phase() int32       { return f.phaseNum }
func (f *fakeHost) scriptCount() int32 { return int32(len(f.script)) }

func (f *fakeHost) scriptLine(i int32, buf []byte) int32 {
	if i < 0 || int(i) >= len(f.script) {
		return int32(ErrInvalid)
	}
	return f.out("script_line", buf, f.script[i])
}

func (f *fakeHost) lookup(name string) (Variable, bool) {
	for i := len(f.vars) - 1; i >= 0; i-- {
		if f.vars[i].Name == name {
			return f.vars[i], true
		}
	}
	return Variable{}, false
}

func (f *fakeHost) varGet(name string, buf []byte) int32 {
	v, ok := f.lookup(name)
	if !ok {
		return int32(ErrNotFound)
	}
	return f.out("var_get", buf, v.Value)
}

func (f *fakeHost) varMasked(name string) int32 {
	v, ok := f.lookup(name)
	switch {
	case !ok:
		return int32(ErrNotFound)
	case v.Masked:
		return 1
	}
	return 0
}

func (f *fakeHost) varNames(buf []byte) int32 {
	var names []string
	seen := map[string]bool{}
	for _, v := range f.vars {
		if !seen[v.Name] {
			seen[v.Name] = true
			names = append(names, v.Name)
		}
	}
	return f.out("var_names", buf, strings.Join(names, "\x00"))
}

func (f *fakeHost) dep(i int32) *fakeDep {
	if i < 0 || int(i) >= len(f.deps) {
		return nil
	}
	return &f.deps[i]
}

func (f *fakeHost) depCount() int32 { return int32(len(f.deps)) }

func (f *fakeHost) depID(i int32) int64 {
	if d := f.dep(i); d != nil {
		return d.id
	}
	return int64(ErrInvalid)
}

func (f *fakeHost) depName(i int32, buf []byte) int32 {
	d := f.dep(i)
	if d == nil {
		return int32(ErrInvalid)
	}
	return f.out("dep_name", buf, d.name)
}

func (f *fakeHost) depFiles(i int32, buf []byte) int32 {
	d := f.dep(i)
	switch {
	case d == nil:
		return int32(ErrInvalid)
	case d.files == nil:
		return int32(ErrNotFound)
	}
	var names []string
	for n := range d.files {
		names = append(names, n)
	}
	slices.Sort(names)
	return f.out("dep_files", buf, strings.Join(names, "\x00"))
}

func (f *fakeHost) depFileSize(i int32, name string) int64 {
	d := f.dep(i)
	if d == nil {
		return int64(ErrInvalid)
	}
	data, ok := d.files[name]
	if !ok {
		return int64(ErrNotFound)
	}
	return int64(len(data))
}

func (f *fakeHost) depRead(i int32, name string, off int64, buf []byte) int32 {
	d := f.dep(i)
	if d == nil {
		return int32(ErrInvalid)
	}
	data, ok := d.files[name]
	if !ok {
		return int32(ErrNotFound)
	}
	if off >= int64(len(data)) {
		return 0
	}
	n := copy(buf, data[off:])
	if d.chunk > 0 && n > d.chunk {
		n = d.chunk
	}
	return int32(n)
}

func (f *fakeHost) artifactAddFile(path string) int32 {
	if strings.HasPrefix(path, "/") || strings.Contains(path, "..") {
		return int32(ErrInvalid)
	}
	f.artifacts[path] = nil
	return 0
}

func (f *fakeHost) artifactAddData(name string, data []byte) int32 {
	f.artifacts[name] = bytes.Clone(data)
	return 0
}

func (f *fakeHost) sleepMillis(ms int64) int32 {
	f.slept = append(f.slept, ms)
	if f.canceled {
		return int32(ErrCanceled)
	}
	return 0
}

func (f *fakeHost) isCanceled() int32 {
	if f.canceled {
		return 1
	}
	return 0
}

func (f *fakeHost) httpRequest(req, buf []byte) int32 {
	f.lastResp = nil
	if f.http == nil {
		return int32(ErrDenied)
	}
	resp, code := f.http(req)
	if code < 0 {
		return code
	}
	f.lastResp = resp
	return f.out("http_request", buf, string(resp))
}

func (f *fakeHost) httpResponse(buf []byte) int32 {
	if f.lastResp == nil {
		return int32(ErrNotFound)
	}
	return f.out("http_response", buf, string(f.lastResp))
}
