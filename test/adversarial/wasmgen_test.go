package adversarial_test

import "bytes"

// Modules no source file can hold compactly are written here, byte by
// byte: a function declaring 4,000,000,000 locals, and a module of tens of
// MB of code. Both are valid WebAssembly reactors (they export memory and
// wasmrunner_step) that a runner must refuse at load without spending its
// memory on them.

func uleb(n uint64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(content)))...), content...)
}

func vec(items ...[]byte) []byte {
	b := uleb(uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func name(s string) []byte { return append(uleb(uint64(len(s))), s...) }

// reactor assembles a module of functions of type (i32) -> i32 with the
// given bodies (each without its size prefix), exporting "memory" (one
// page) and function 0 as wasmrunner_step.
func reactor(bodies [][]byte) []byte {
	var m bytes.Buffer
	m.Write([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00})
	m.Write(section(1, vec([]byte{0x60, 0x01, 0x7f, 0x01, 0x7f})))
	funcs := make([][]byte, len(bodies))
	for i := range funcs {
		funcs[i] = []byte{0x00}
	}
	m.Write(section(3, vec(funcs...)))
	m.Write(section(5, vec([]byte{0x00, 0x01})))
	m.Write(section(7, vec(
		append(name("memory"), 0x02, 0x00),
		append(name("wasmrunner_step"), 0x00, 0x00),
	)))
	code := make([][]byte, len(bodies))
	for i, b := range bodies {
		code[i] = append(uleb(uint64(len(b))), b...)
	}
	m.Write(section(10, vec(code...)))
	return m.Bytes()
}

// absurdLocalsModule is a reactor whose one function declares
// 4,000,000,000 i32 locals (valid: fewer than 2^32).
func absurdLocalsModule() []byte {
	body := append(vec(append(uleb(4_000_000_000), 0x7f)), 0x41, 0x00, 0x0b) // i32.const 0, end
	return reactor([][]byte{body})
}

// callTreeModule is a reactor whose step never ends in practice without a
// loop: function i calls function i+1 twice, depth deep (2^depth calls).
// wazero itself checks for a stop only at loops; the runner adds a check
// on entry to functions (wasmbin.Interruptible).
func callTreeModule(depth int) []byte {
	bodies := make([][]byte, depth+1)
	for i := range depth {
		next := uleb(uint64(i + 1))
		// local.get 0, call next, local.get 0, call next, i32.add
		body := []byte{0x00, 0x20, 0x00, 0x10}
		body = append(append(body, next...), 0x20, 0x00, 0x10)
		bodies[i] = append(append(append(body, next...), 0x6a), 0x0b)
	}
	bodies[depth] = []byte{0x00, 0x20, 0x00, 0x0b} // local.get 0
	return reactor(bodies)
}

// hugeModule is a reactor of about size bytes of ordinary code: functions
// of 6,000 instructions (1,500 times: add 1 to the parameter).
func hugeModule(size int) []byte {
	const perFunc = 1500 // 7 bytes each: local.get 0, i32.const 1, i32.add, local.set 0
	var body []byte
	body = append(body, 0x00) // no locals
	for range perFunc {
		body = append(body, 0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00)
	}
	body = append(body, 0x20, 0x00, 0x0b)
	n := max(size/len(body), 1)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = body
	}
	return reactor(bodies)
}
