package wasmbin

import (
	"errors"
	"fmt"
)

// errTruncated reports a read past the end of the bytes being read.
var errTruncated = errors.New("unexpected end")

// reader reads a part of a binary (a section, a function body): b[off:end].
// base is the offset of b[0] in the whole binary, for error messages.
type reader struct {
	b    []byte
	off  int
	base int
}

// sub returns a reader of the next n bytes and advances past them.
func (r *reader) sub(n uint32) (reader, error) {
	if uint64(n) > uint64(r.len()) {
		return reader{}, fmt.Errorf("%w: %d bytes at offset %#x, only %d left", errTruncated, n, r.pos(), r.len())
	}
	s := reader{b: r.b[r.off : r.off+int(n)], base: r.base + r.off}
	r.off += int(n)
	return s, nil
}

func (r *reader) len() int { return len(r.b) - r.off }

// pos is the offset of the next byte in the whole binary.
func (r *reader) pos() int { return r.base + r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, fmt.Errorf("%w at offset %#x", errTruncated, r.pos())
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) skip(n uint32) error {
	_, err := r.sub(n)
	return err
}

// u32 reads an unsigned LEB128 of at most 5 bytes whose value fits 32 bits.
// Padded encodings (0x80 0x00 for 0) are valid WebAssembly and accepted.
func (r *reader) u32() (uint32, error) {
	start := r.pos()
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && c&0xf0 != 0 { // continuation bit or bits 32..34
			return 0, fmt.Errorf("u32 at offset %#x: over-long or out of range", start)
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	panic("unreachable")
}

// signed reads a signed LEB128 of bits bits (at most 64): at most
// ceil(bits/7) bytes, the unused bits of the last byte all equal to the sign.
func (r *reader) signed(bits int) (int64, error) {
	start := r.pos()
	n := (bits + 6) / 7
	var v int64
	for i := 0; i < n; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		shift := 7 * i
		v |= int64(c&0x7f) << shift
		if c&0x80 != 0 {
			if i == n-1 {
				return 0, fmt.Errorf("s%d at offset %#x: over-long", bits, start)
			}
			continue
		}
		if shift+7 > bits { // last possible byte: bits past the value's width must copy its sign
			used := bits - shift         // value bits in this byte, sign included
			rest := int8(c<<1) >> (used) // bits 6..used-1 (the sign and the unused ones), sign-extended
			if rest != 0 && rest != -1 {
				return 0, fmt.Errorf("s%d at offset %#x: out of range", bits, start)
			}
		}
		if shift+7 < 64 && c&0x40 != 0 {
			v |= -1 << (shift + 7)
		}
		return v, nil
	}
	panic("unreachable")
}

// name reads a length-prefixed byte string (a name) and returns it,
// checking its length against what is left before anything else.
func (r *reader) name() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	s, err := r.sub(n)
	if err != nil {
		return nil, err
	}
	return s.b, nil
}

// count reads a vector length and checks it against what is left: every
// element of the vectors read with it takes at least one byte, so a larger
// count cannot be honest, and refusing it keeps a decoder that allocates by
// the count (wazero does) from allocating more than the input justifies.
func (r *reader) count(what string) (uint32, error) {
	start := r.pos()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n) > uint64(r.len()) {
		return 0, fmt.Errorf("%s count %d at offset %#x is more than the %d bytes left", what, n, start, r.len())
	}
	return n, nil
}
