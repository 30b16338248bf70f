// Package hostabi lets package sdktest stand in for the host outside
// WebAssembly: the SDK calls the Host installed here instead of panicking,
// and lends sdktest its entry points.
package hostabi

import "sync"

// Host is the host module "wasmrunner:host/v1" as Go methods, with Go
// strings and slices in place of (ptr, len) pairs; results are those of
// the ABI (a length or value, or a negative error code).
type Host interface {
	LogWrite(b []byte) int32
	LogLine(b []byte) int32
	SectionStart(name, header string) int32
	SectionEnd(name string) int32

	JobID() int64
	JobProjectID() int64
	JobTimeout() int64
	JobString(field int32, buf []byte) int32
	Phase() int32
	ScriptCount() int32
	ScriptLine(index int32, buf []byte) int32

	VarGet(name string, buf []byte) int32
	VarMasked(name string) int32
	VarNames(buf []byte) int32

	DepCount() int32
	DepID(index int32) int64
	DepName(index int32, buf []byte) int32
	DepFiles(index int32, buf []byte) int32
	DepFileSize(index int32, name string) int64
	DepRead(index int32, name string, offset int64, buf []byte) int32

	ArtifactAddFile(path string) int32
	ArtifactAddData(name string, data []byte) int32

	SleepMillis(ms int64) int32
	IsCanceled() int32

	HTTPRequest(req, buf []byte) int32
	HTTPResponse(buf []byte) int32
}

var (
	mu      sync.Mutex
	current Host
)

// Install makes h the host; false if another one is installed.
func Install(h Host) bool {
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		return false
	}
	current = h
	return true
}

// Uninstall removes the installed host.
func Uninstall() {
	mu.Lock()
	defer mu.Unlock()
	current = nil
}

// Current returns the installed host, or nil.
func Current() Host {
	mu.Lock()
	defer mu.Unlock()
	return current
}

// The SDK's entry points, set by the SDK outside WebAssembly: Step runs
// one step of handler h (a wasmrunner.Handler, or nil for none) as the
// wasmrunner_step export does and returns its exit code; Cleanup runs
// its Cleanup as wasmrunner_cleanup does.
var (
	Step    func(h any, phase int32) int32
	Cleanup func(h any)
)
