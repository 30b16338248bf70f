// Package wasmrunner is the Go SDK for wasmrunner job handlers: WebAssembly
// modules that run GitLab CI jobs inside wasmrunner.
//
// A handler is a WASI reactor built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o NAME.wasm .
//
// Its main package registers a [Handler] in an init function and leaves
// main empty:
//
//	func init() { wasmrunner.Handle(myHandler{}) }
//
//	func main() {}
//
// This package exports the module's entry points (wasmrunner_step and
// wasmrunner_cleanup) and calls the registered handler from them: Step once
// per phase of the job (script, then after_script) with that phase's script
// lines, and Cleanup once at the end, also after a cancel or a timeout.
// Each job gets a fresh instance of the module, so package variables live
// exactly as long as one job. A handler built without -buildmode=c-shared
// is a WASI command whose runtime is never initialised for the entry
// points: always build reactors.
//
// The rest of the package wraps the host functions of the guest ABI
// (import module "wasmrunner:host/v1", described in the repository's
// docs/abi.md): the job log and its sections, the job's fields and
// variables, the dependencies' artifacts, the job's own artifacts,
// cancellation-aware sleeping, and HTTP to the hosts the handler's manifest
// allows. Host failures come back as [Errno] values, which compare with
// errors.Is against [ErrNotFound], [ErrCanceled] and the other codes.
//
// The guest's file system is the job's build dir, mounted at "/": the os
// package reads and writes it with relative or absolute paths. Its standard
// output and standard error also go to the job log.
//
// Outside a WebAssembly guest (GOOS other than wasip1) the package builds
// so that handlers can be vetted and unit-tested: a test installs a fake
// host with package sdktest (in this module); without one every host call
// panics.
package wasmrunner
