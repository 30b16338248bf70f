//go:build race

package modules

// raceEnabled: the test binary, and so the compiler child, is built with
// the race detector, which reserves terabytes of address space.
const raceEnabled = true
