//go:build wasip1

package wasmrunner

// The entry points the runner calls; see Handler.

//lint:ignore U1000 exported to the host by go:wasmexport
//go:wasmexport wasmrunner_step
func wasmrunnerStep(phase int32) int32 { return runStep(Phase(phase)) }

//lint:ignore U1000 exported to the host by go:wasmexport
//go:wasmexport wasmrunner_cleanup
func wasmrunnerCleanup() { runCleanup() }
