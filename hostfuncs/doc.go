// Package hostfuncs implements the host module [abi.ModuleName] that
// wasmrunner's WebAssembly job handlers import: the job log and its
// sections, the job's fields, variables and script, the dependencies'
// artifacts, the job's own artifacts, sleeping, cancellation and HTTP.
//
// [Instantiate] defines the module once in a wazero runtime. Every guest
// call that may reach it carries the [Env] of one job step in its context
// ([WithEnv]); the functions act on that Env, so one instantiated module
// serves all jobs of a runtime. A call whose context has no Env gets
// [abi.ErrPhase].
//
// # Conventions
//
// The package follows the conventions of [abi]: pointers and lengths are
// i32 offsets into the calling guest's memory, output goes to a buffer
// (buf, cap) the guest owns, a function with output returns the full
// length of its result and writes it only if it fits in cap, and a
// negative result is an [abi.Errno]. Beyond these:
//
//   - Lengths and capacities are unsigned: a length of -1 is 4 GiB - 1.
//   - Arguments are checked in the order of the signature, and the first
//     bad one decides the error. For an input (ptr, len): a length over the
//     function's limit ([abi.MaxName] for names, paths and sections,
//     [abi.MaxLogWrite] for log text, [abi.MaxArtifactData],
//     [abi.MaxHTTPRequest]) is ErrTooLarge, bytes outside memory are
//     ErrFault, and a name that is not valid UTF-8 is ErrInvalid. An output
//     buffer (buf, cap) with cap > 0 must lie inside memory as a whole, or
//     the call is ErrFault and does nothing; cap == 0 asks for the length
//     only, whatever buf is.
//   - Indexes (script lines, dependencies) are signed; one out of range is
//     ErrInvalid. An unknown [abi.Field] is ErrNotFound.
//   - Only after its arguments are checked does a function look at
//     permissions (ErrDenied) or do anything.
//   - ErrIO (the host failed) writes one line saying why to the job log,
//     except when writing the job log is what failed. A host function
//     never traps: an unexpected panic in the host becomes ErrIO, reported
//     to [Env.Logger] and not to the job log.
//   - Blocking functions (HTTP, dependency downloads, sleep_ms) end early
//     with ErrCanceled when [Env.Stop] or the context of the guest call
//     ends.
//
// The format of HTTP requests and responses is described at [HTTPPolicy].
package hostfuncs
