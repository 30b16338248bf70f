package sdktest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/internal/hostabi"
)

// abi is a Host as the SDK calls it: the host functions of the ABI, with
// its conventions (a function with output returns the full length and
// writes only if it fits; errors are negative codes).
type abi struct{ h *Host }

var _ hostabi.Host = abi{}

// maxRead is the most bytes one dep_read returns, so that readers loop.
const maxRead = 4096

func out(buf []byte, s string) int32 {
	if len(s) <= len(buf) {
		copy(buf, s)
	}
	return int32(len(s))
}

func code(e wasmrunner.Errno) int32 { return int32(e) }

func (a abi) LogWrite(b []byte) int32 {
	if len(b) > wasmrunner.MaxLogWrite {
		return code(wasmrunner.ErrTooLarge)
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.writeLog(b)
	return 0
}

func (a abi) LogLine(b []byte) int32 {
	if len(b) > wasmrunner.MaxLogWrite {
		return code(wasmrunner.ErrTooLarge)
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.writeLog(append(slices.Clip(b), '\n'))
	return 0
}

func (a abi) SectionStart(name, header string) int32 {
	if name == "" || len(name) > wasmrunner.MaxName || len(header) > wasmrunner.MaxName {
		return code(wasmrunner.ErrInvalid)
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.log.WriteString(header + "\n")
	a.h.sections = append(a.h.sections, Section{Name: name, Header: header})
	a.h.open = append(a.h.open, len(a.h.sections)-1)
	return 0
}

func (a abi) SectionEnd(name string) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	for j := len(a.h.open) - 1; j >= 0; j-- {
		if i := a.h.open[j]; a.h.sections[i].Name == name {
			a.h.sections[i].Ended = true
			a.h.open = slices.Delete(a.h.open, j, j+1)
			return 0
		}
	}
	return code(wasmrunner.ErrNotFound)
}

func (a abi) JobID() int64        { return a.h.JobID }
func (a abi) JobProjectID() int64 { return a.h.ProjectID }
func (a abi) JobTimeout() int64   { return int64(a.h.Timeout / time.Second) }

func (a abi) JobString(field int32, buf []byte) int32 {
	var s string
	switch field {
	case 0:
		s = a.h.Name
	case 1:
		s = a.h.Stage
	case 2:
		s = a.h.ProjectName
	case 3:
		s = a.h.Image
	default:
		return code(wasmrunner.ErrNotFound)
	}
	return out(buf, s)
}

func (a abi) Phase() int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	return int32(a.h.Phase)
}

func (a abi) ScriptCount() int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	return int32(len(a.h.script()))
}

func (a abi) ScriptLine(index int32, buf []byte) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	lines := a.h.script()
	if index < 0 || int(index) >= len(lines) {
		return code(wasmrunner.ErrInvalid)
	}
	return out(buf, lines[index])
}

func (a abi) VarGet(name string, buf []byte) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	v, ok := a.h.lookup(name)
	if !ok {
		return code(wasmrunner.ErrNotFound)
	}
	return out(buf, v.Value)
}

func (a abi) VarMasked(name string) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	v, ok := a.h.lookup(name)
	switch {
	case !ok:
		return code(wasmrunner.ErrNotFound)
	case v.Masked:
		return 1
	}
	return 0
}

func (a abi) VarNames(buf []byte) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	var names []string
	for _, v := range a.h.vars() {
		if !slices.Contains(names, v.Name) {
			names = append(names, v.Name)
		}
	}
	return out(buf, strings.Join(names, "\x00"))
}

func (a abi) dep(i int32) *Dependency {
	if i < 0 || int(i) >= len(a.h.Dependencies) {
		return nil
	}
	return &a.h.Dependencies[i]
}

func (a abi) DepCount() int32 { return int32(len(a.h.Dependencies)) }

func (a abi) DepID(i int32) int64 {
	if d := a.dep(i); d != nil {
		return d.ID
	}
	return int64(wasmrunner.ErrInvalid)
}

func (a abi) DepName(i int32, buf []byte) int32 {
	d := a.dep(i)
	if d == nil {
		return code(wasmrunner.ErrInvalid)
	}
	return out(buf, d.Name)
}

func (a abi) DepFiles(i int32, buf []byte) int32 {
	d := a.dep(i)
	switch {
	case d == nil:
		return code(wasmrunner.ErrInvalid)
	case d.Files == nil:
		return code(wasmrunner.ErrNotFound)
	}
	names := make([]string, 0, len(d.Files))
	for n := range d.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	return out(buf, strings.Join(names, "\x00"))
}

func (a abi) DepFileSize(i int32, name string) int64 {
	d := a.dep(i)
	if d == nil {
		return int64(wasmrunner.ErrInvalid)
	}
	data, ok := d.Files[name]
	if !ok {
		return int64(wasmrunner.ErrNotFound)
	}
	return int64(len(data))
}

func (a abi) DepRead(i int32, name string, off int64, buf []byte) int32 {
	d := a.dep(i)
	if d == nil || off < 0 {
		return code(wasmrunner.ErrInvalid)
	}
	data, ok := d.Files[name]
	if !ok {
		return code(wasmrunner.ErrNotFound)
	}
	if off >= int64(len(data)) {
		return 0
	}
	return int32(copy(buf[:min(len(buf), maxRead)], data[off:]))
}

func (a abi) ArtifactAddFile(path string) int32 {
	if !checkPath(path) {
		return code(wasmrunner.ErrInvalid)
	}
	data, err := os.ReadFile(filepath.Join(a.h.Dir, filepath.FromSlash(path)))
	if err != nil {
		return code(wasmrunner.ErrNotFound)
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.artifacts[path] = data
	return 0
}

func (a abi) ArtifactAddData(name string, data []byte) int32 {
	switch {
	case !checkPath(name):
		return code(wasmrunner.ErrInvalid)
	case len(data) > wasmrunner.MaxArtifactData:
		return code(wasmrunner.ErrTooLarge)
	}
	if a.h.Dir != "" {
		if err := writeFile(a.h.Dir, name, data); err != nil {
			return code(wasmrunner.ErrIO)
		}
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.artifacts[name] = bytes.Clone(data)
	return 0
}

func (a abi) SleepMillis(ms int64) int32 {
	if ms < 0 {
		return code(wasmrunner.ErrInvalid)
	}
	a.h.mu.Lock()
	if a.h.canceled {
		a.h.mu.Unlock()
		return code(wasmrunner.ErrCanceled)
	}
	d := time.Duration(ms) * time.Millisecond
	if ms > int64(1<<63-1)/int64(time.Millisecond) {
		d = 1<<63 - 1
	}
	a.h.sleeps = append(a.h.sleeps, d)
	hook := a.h.OnSleep
	a.h.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	if a.IsCanceled() == 1 {
		return code(wasmrunner.ErrCanceled)
	}
	return 0
}

func (a abi) IsCanceled() int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	if a.h.canceled {
		return 1
	}
	return 0
}

func (a abi) HTTPRequest(enc, buf []byte) int32 {
	req, ok := decodeRequest(enc)
	a.h.mu.Lock()
	a.h.lastResp = nil
	if !ok {
		a.h.mu.Unlock()
		return code(wasmrunner.ErrInvalid)
	}
	a.h.requests = append(a.h.requests, req)
	canceled := a.h.canceled
	a.h.mu.Unlock()
	if canceled {
		return code(wasmrunner.ErrCanceled)
	}
	resp, c := a.h.serveHTTP(&req)
	if c < 0 {
		return c
	}
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	a.h.lastResp = resp
	return out(buf, string(resp))
}

func (a abi) HTTPResponse(buf []byte) int32 {
	a.h.mu.Lock()
	defer a.h.mu.Unlock()
	if a.h.lastResp == nil {
		return code(wasmrunner.ErrNotFound)
	}
	return out(buf, string(a.h.lastResp))
}
