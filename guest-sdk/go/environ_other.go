//go:build !wasip1

package wasmrunner

// refreshEnv does nothing outside WebAssembly: the process environment is
// the test's own.
func refreshEnv() {}
