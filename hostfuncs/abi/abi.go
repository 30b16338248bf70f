// Package abi names the WebAssembly interface between wasmrunner and job
// handlers: the host module guests import, the functions in it, the
// exports guests provide, and the codes the host returns. It is the one
// place these names and numbers live; the guest SDKs mirror it and
// docs/abi.md describes it in prose.
//
// Conventions, for every function:
//   - Pointers and lengths are i32 offsets into the guest's exported
//     "memory". The host never allocates in guest memory: output goes to a
//     buffer (ptr, cap) the guest owns.
//   - A function with output returns the full length of the result
//     (>= 0). If it is larger than cap nothing is written; the guest calls
//     again with a buffer of that size.
//   - A negative return is an error code ([Errno]).
//   - Strings are UTF-8 bytes, not NUL-terminated. Lists of names are
//     NUL-separated.
//
// This package uses the standard library only, so that anything may
// depend on it.
package abi

// ModuleName is the import module of host functions, version 1.
const ModuleName = "wasmrunner:host/v1"

// Version is the ABI version this package describes.
const Version = 1

// Host functions of [ModuleName]. Signatures are given as
// (params) -> results in WebAssembly types.
const (
	// (ptr, len i32) -> i32: append bytes to the job log.
	FuncLogWrite = "log_write"
	// (ptr, len i32) -> i32: append bytes and a newline to the job log.
	FuncLogLine = "log_line"
	// (name_ptr, name_len, header_ptr, header_len i32) -> i32: open a
	// collapsible log section.
	FuncSectionStart = "section_start"
	// (name_ptr, name_len i32) -> i32: close a log section.
	FuncSectionEnd = "section_end"

	// () -> i64: the job id.
	FuncJobID = "job_id"
	// () -> i64: the project id.
	FuncJobProjectID = "job_project_id"
	// () -> i64: the job timeout in seconds.
	FuncJobTimeout = "job_timeout"
	// (field, buf, cap i32) -> i32: a text field of the job ([Field]).
	FuncJobString = "job_string"
	// () -> i32: the phase of the running step ([Phase]).
	FuncPhase = "phase"

	// (name_ptr, name_len, buf, cap i32) -> i32: a variable's value;
	// ErrNotFound if it does not exist or the handler may not see it.
	FuncVarGet = "var_get"
	// (name_ptr, name_len i32) -> i32: 1 if the variable is masked, 0 if
	// not, or ErrNotFound.
	FuncVarMasked = "var_masked"
	// (buf, cap i32) -> i32: names of the variables the handler may see,
	// NUL-separated.
	FuncVarNames = "var_names"

	// () -> i32: the number of script lines of the running step.
	FuncScriptCount = "script_count"
	// (index, buf, cap i32) -> i32: script line index of the running step.
	FuncScriptLine = "script_line"

	// () -> i32: the number of dependencies.
	FuncDepCount = "dep_count"
	// (index i32) -> i64: a dependency's job id.
	FuncDepID = "dep_id"
	// (index, buf, cap i32) -> i32: a dependency's job name.
	FuncDepName = "dep_name"
	// (index, buf, cap i32) -> i32: the files of a dependency's artifacts,
	// NUL-separated (downloads them the first time; ErrNotFound when the
	// dependency has none).
	FuncDepFiles = "dep_files"
	// (index, name_ptr, name_len i32) -> i64: the size of a file of a
	// dependency's artifacts.
	FuncDepFileSize = "dep_file_size"
	// (index, name_ptr, name_len i32, offset i64, buf, cap i32) -> i32:
	// read up to cap bytes of a dependency's file from offset; returns
	// the bytes read, 0 at the end.
	FuncDepRead = "dep_read"

	// (path_ptr, path_len i32) -> i32: add a file of the build dir
	// (relative path) to the job's artifacts.
	FuncArtifactAddFile = "artifact_add_file"
	// (name_ptr, name_len, data_ptr, data_len i32) -> i32: write data to
	// a file of the build dir and add it to the job's artifacts.
	FuncArtifactAddData = "artifact_add_data"

	// (millis i64) -> i32: sleep; ErrCanceled if the job ends first.
	FuncSleep = "sleep_ms"
	// () -> i32: 1 if the running step should stop (cancel or timeout).
	FuncCanceled = "is_canceled"

	// (req_ptr, req_len, buf, cap i32) -> i32: perform an HTTP request
	// (see docs/abi.md for the request and response format) to a host the
	// handler's manifest allows; returns the response length. A response
	// larger than cap stays available to FuncHTTPResponse.
	FuncHTTPRequest = "http_request"
	// (buf, cap i32) -> i32: the last HTTP response again.
	FuncHTTPResponse = "http_response"
)

// Guest exports.
const (
	// ExportMemory is the guest's linear memory (required).
	ExportMemory = "memory"
	// ExportStep is (phase i32) -> i32, the exit code of the step: the
	// entry point of reactor guests.
	ExportStep = "wasmrunner_step"
	// ExportCleanup is () -> (), called once after the last step
	// (optional).
	ExportCleanup = "wasmrunner_cleanup"
	// ExportInitialize is the reactor initializer (optional), called once
	// when the instance starts.
	ExportInitialize = "_initialize"
	// ExportStart is the command entry point: a command guest (no
	// ExportStep) runs _start once per step, with a fresh instance, and
	// its exit status is the step's exit code.
	ExportStart = "_start"
)

// Phase is the step a guest runs.
type Phase int32

// Phases.
const (
	PhaseScript      Phase = 0
	PhaseAfterScript Phase = 1
)

// Field selects a text field of the job for [FuncJobString].
type Field int32

// Fields.
const (
	FieldName        Field = 0
	FieldStage       Field = 1
	FieldProjectName Field = 2
	FieldImage       Field = 3
)

// Errno is a negative return of a host function.
type Errno int32

// Error codes. Guest mistakes are reported with these, never by trapping.
const (
	// OK is success (for functions without output).
	OK Errno = 0
	// ErrFault: a pointer and length do not lie inside guest memory.
	ErrFault Errno = -1
	// ErrTooLarge: an argument exceeds a limit of the host.
	ErrTooLarge Errno = -2
	// ErrNotFound: no such variable, dependency, file or field.
	ErrNotFound Errno = -3
	// ErrInvalid: an argument is malformed (bad UTF-8, bad index, bad
	// path, bad request).
	ErrInvalid Errno = -4
	// ErrPhase: the function cannot be called now (e.g. a script line
	// outside a step).
	ErrPhase Errno = -5
	// ErrDenied: the handler's manifest does not allow it.
	ErrDenied Errno = -6
	// ErrCanceled: the job was cancelled or timed out meanwhile.
	ErrCanceled Errno = -7
	// ErrIO: the host failed (network, disk); the log says why.
	ErrIO Errno = -8
)

// String returns the code's name.
func (e Errno) String() string {
	switch e {
	case OK:
		return "ok"
	case ErrFault:
		return "fault"
	case ErrTooLarge:
		return "too large"
	case ErrNotFound:
		return "not found"
	case ErrInvalid:
		return "invalid"
	case ErrPhase:
		return "wrong phase"
	case ErrDenied:
		return "denied"
	case ErrCanceled:
		return "canceled"
	case ErrIO:
		return "i/o error"
	}
	return "unknown error"
}

// Limits of single host calls.
const (
	// MaxLogWrite is the most bytes one log call takes.
	MaxLogWrite = 1 << 20
	// MaxName is the longest name (variable, file, section) accepted.
	MaxName = 4096
	// MaxArtifactData is the most bytes artifact_add_data takes.
	MaxArtifactData = 64 << 20
	// MaxHTTPRequest is the largest encoded HTTP request accepted.
	MaxHTTPRequest = 16 << 20
)
