//go:build !wasip1

package wasmrunner

import "github.com/wasmrunner/wasmrunner/guest-sdk/go/internal/hostabi"

// Outside a WebAssembly guest the host is the fake one a test installed
// with package sdktest; without one every call panics, so that a handler
// run natively by mistake fails loudly instead of seeing an empty job.
type otherHost struct{}

var host hostABI = otherHost{}

const notWasm = "wasmrunner: host functions exist only in a WebAssembly handler (GOOS=wasip1 GOARCH=wasm, run by wasmrunner), or in a test that installed a fake host (package sdktest)"

func fake() hostabi.Host {
	if h := hostabi.Current(); h != nil {
		return h
	}
	panic(notWasm)
}

func init() {
	hostabi.Step = func(h any, phase int32) int32 {
		prev := registered
		registered, _ = h.(Handler)
		defer func() { registered = prev }()
		return runStep(Phase(phase))
	}
	hostabi.Cleanup = func(h any) {
		prev := registered
		registered, _ = h.(Handler)
		defer func() { registered = prev }()
		runCleanup()
	}
}

func (otherHost) LogWrite(b []byte) int32                { return fake().LogWrite(b) }
func (otherHost) LogLine(b []byte) int32                 { return fake().LogLine(b) }
func (otherHost) SectionStart(name, header string) int32 { return fake().SectionStart(name, header) }
func (otherHost) SectionEnd(name string) int32           { return fake().SectionEnd(name) }
func (otherHost) JobID() int64                           { return fake().JobID() }
func (otherHost) JobProjectID() int64                    { return fake().JobProjectID() }
func (otherHost) JobTimeout() int64                      { return fake().JobTimeout() }
func (otherHost) JobString(field int32, buf []byte) int32 {
	return fake().JobString(field, buf)
}
func (otherHost) Phase() int32       { return fake().Phase() }
func (otherHost) ScriptCount() int32 { return fake().ScriptCount() }
func (otherHost) ScriptLine(index int32, buf []byte) int32 {
	return fake().ScriptLine(index, buf)
}
func (otherHost) VarGet(name string, buf []byte) int32 { return fake().VarGet(name, buf) }
func (otherHost) VarMasked(name string) int32          { return fake().VarMasked(name) }
func (otherHost) VarNames(buf []byte) int32            { return fake().VarNames(buf) }
func (otherHost) DepCount() int32                      { return fake().DepCount() }
func (otherHost) DepID(index int32) int64              { return fake().DepID(index) }
func (otherHost) DepName(index int32, buf []byte) int32 {
	return fake().DepName(index, buf)
}
func (otherHost) DepFiles(index int32, buf []byte) int32 {
	return fake().DepFiles(index, buf)
}
func (otherHost) DepFileSize(index int32, name string) int64 {
	return fake().DepFileSize(index, name)
}
func (otherHost) DepRead(index int32, name string, offset int64, buf []byte) int32 {
	return fake().DepRead(index, name, offset, buf)
}
func (otherHost) ArtifactAddFile(path string) int32 { return fake().ArtifactAddFile(path) }
func (otherHost) ArtifactAddData(name string, data []byte) int32 {
	return fake().ArtifactAddData(name, data)
}
func (otherHost) SleepMillis(ms int64) int32        { return fake().SleepMillis(ms) }
func (otherHost) IsCanceled() int32                 { return fake().IsCanceled() }
func (otherHost) HTTPRequest(req, buf []byte) int32 { return fake().HTTPRequest(req, buf) }
func (otherHost) HTTPResponse(buf []byte) int32     { return fake().HTTPResponse(buf) }
