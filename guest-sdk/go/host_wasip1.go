//go:build wasip1

package wasmrunner

import "unsafe"

// The host functions of the guest ABI, version 1. Pointers are offsets
// into this module's memory; the host reads and writes only the ranges
// passed, during the call.

//go:wasmimport wasmrunner:host/v1 log_write
//go:noescape
func hostLogWrite(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmrunner:host/v1 log_line
//go:noescape
func hostLogLine(ptr unsafe.Pointer, n uint32) int32

//go:wasmimport wasmrunner:host/v1 section_start
//go:noescape
func hostSectionStart(namePtr unsafe.Pointer, nameLen uint32, headerPtr unsafe.Pointer, headerLen uint32) int32

//go:wasmimport wasmrunner:host/v1 section_end
//go:noescape
func hostSectionEnd(namePtr unsafe.Pointer, nameLen uint32) int32

//go:wasmimport wasmrunner:host/v1 job_id
func hostJobID() int64

//go:wasmimport wasmrunner:host/v1 job_project_id
func hostJobProjectID() int64

//go:wasmimport wasmrunner:host/v1 job_timeout
func hostJobTimeout() int64

//go:wasmimport wasmrunner:host/v1 job_string
//go:noescape
func hostJobString(field int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 phase
func hostPhase() int32

//go:wasmimport wasmrunner:host/v1 script_count
func hostScriptCount() int32

//go:wasmimport wasmrunner:host/v1 script_line
//go:noescape
func hostScriptLine(index int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 var_get
//go:noescape
func hostVarGet(namePtr unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 var_masked
//go:noescape
func hostVarMasked(namePtr unsafe.Pointer, nameLen uint32) int32

//go:wasmimport wasmrunner:host/v1 var_names
//go:noescape
func hostVarNames(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 dep_count
func hostDepCount() int32

//go:wasmimport wasmrunner:host/v1 dep_id
func hostDepID(index int32) int64

//go:wasmimport wasmrunner:host/v1 dep_name
//go:noescape
func hostDepName(index int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 dep_files
//go:noescape
func hostDepFiles(index int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 dep_file_size
//go:noescape
func hostDepFileSize(index int32, namePtr unsafe.Pointer, nameLen uint32) int64

//go:wasmimport wasmrunner:host/v1 dep_read
//go:noescape
func hostDepRead(index int32, namePtr unsafe.Pointer, nameLen uint32, offset int64, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 artifact_add_file
//go:noescape
func hostArtifactAddFile(pathPtr unsafe.Pointer, pathLen uint32) int32

//go:wasmimport wasmrunner:host/v1 artifact_add_data
//go:noescape
func hostArtifactAddData(namePtr unsafe.Pointer, nameLen uint32, dataPtr unsafe.Pointer, dataLen uint32) int32

//go:wasmimport wasmrunner:host/v1 sleep_ms
func hostSleep(millis int64) int32

//go:wasmimport wasmrunner:host/v1 is_canceled
func hostIsCanceled() int32

//go:wasmimport wasmrunner:host/v1 http_request
//go:noescape
func hostHTTPRequest(reqPtr unsafe.Pointer, reqLen uint32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport wasmrunner:host/v1 http_response
//go:noescape
func hostHTTPResponse(buf unsafe.Pointer, capacity uint32) int32

// bytesArg and stringArg turn Go memory into a (ptr, len) pair. Empty
// values may give a nil pointer: the host accepts any pointer with length
// or capacity 0.
func bytesArg(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func stringArg(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

// wasmHost calls the imported host functions.
type wasmHost struct{}

var host hostABI = wasmHost{}

func (wasmHost) LogWrite(b []byte) int32 { return hostLogWrite(bytesArg(b)) }
func (wasmHost) LogLine(b []byte) int32  { return hostLogLine(bytesArg(b)) }

func (wasmHost) SectionStart(name, header string) int32 {
	np, nl := stringArg(name)
	hp, hl := stringArg(header)
	return hostSectionStart(np, nl, hp, hl)
}

func (wasmHost) SectionEnd(name string) int32 { return hostSectionEnd(stringArg(name)) }

func (wasmHost) JobID() int64        { return hostJobID() }
func (wasmHost) JobProjectID() int64 { return hostJobProjectID() }
func (wasmHost) JobTimeout() int64   { return hostJobTimeout() }

func (wasmHost) JobString(field int32, buf []byte) int32 {
	p, c := bytesArg(buf)
	return hostJobString(field, p, c)
}

func (wasmHost) Phase() int32       { return hostPhase() }
func (wasmHost) ScriptCount() int32 { return hostScriptCount() }

func (wasmHost) ScriptLine(index int32, buf []byte) int32 {
	p, c := bytesArg(buf)
	return hostScriptLine(index, p, c)
}

func (wasmHost) VarGet(name string, buf []byte) int32 {
	np, nl := stringArg(name)
	p, c := bytesArg(buf)
	return hostVarGet(np, nl, p, c)
}

func (wasmHost) VarMasked(name string) int32 { return hostVarMasked(stringArg(name)) }
func (wasmHost) VarNames(buf []byte) int32   { return hostVarNames(bytesArg(buf)) }

func (wasmHost) DepCount() int32         { return hostDepCount() }
func (wasmHost) DepID(index int32) int64 { return hostDepID(index) }
func (wasmHost) DepName(index int32, buf []byte) int32 {
	p, c := bytesArg(buf)
	return hostDepName(index, p, c)
}

func (wasmHost) DepFiles(index int32, buf []byte) int32 {
	p, c := bytesArg(buf)
	return hostDepFiles(index, p, c)
}

func (wasmHost) DepFileSize(index int32, name string) int64 {
	np, nl := stringArg(name)
	return hostDepFileSize(index, np, nl)
}

func (wasmHost) DepRead(index int32, name string, offset int64, buf []byte) int32 {
	np, nl := stringArg(name)
	p, c := bytesArg(buf)
	return hostDepRead(index, np, nl, offset, p, c)
}

func (wasmHost) ArtifactAddFile(path string) int32 { return hostArtifactAddFile(stringArg(path)) }

func (wasmHost) ArtifactAddData(name string, data []byte) int32 {
	np, nl := stringArg(name)
	dp, dl := bytesArg(data)
	return hostArtifactAddData(np, nl, dp, dl)
}

func (wasmHost) SleepMillis(ms int64) int32 { return hostSleep(ms) }
func (wasmHost) IsCanceled() int32          { return hostIsCanceled() }

func (wasmHost) HTTPRequest(req, buf []byte) int32 {
	rp, rl := bytesArg(req)
	p, c := bytesArg(buf)
	return hostHTTPRequest(rp, rl, p, c)
}

func (wasmHost) HTTPResponse(buf []byte) int32 { return hostHTTPResponse(bytesArg(buf)) }
