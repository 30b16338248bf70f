// Command goreactor is a tiny Go reactor (go build -buildmode=c-shared for
// GOOS=wasip1 GOARCH=wasm) for the wasmbin tests: Go's toolchain gives its
// funcref table an initial size and no maximum, which wasmbin.Check caps.
package main

import "fmt"

var total int32

// add adds x to a running total and returns the total, going through an
// interface and fmt so that indirect calls (the table) are exercised.
//
//go:wasmexport add
func add(x int32) int32 {
	var s fmt.Stringer = number(x)
	var n int32
	if _, err := fmt.Sscan(s.String(), &n); err != nil {
		panic(err)
	}
	total += n
	return total
}

type number int32

func (n number) String() string { return fmt.Sprint(int32(n)) }

func main() {}
