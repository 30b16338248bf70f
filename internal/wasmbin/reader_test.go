package wasmbin

import (
	"math"
	"strings"
	"testing"
)

func TestLEB128(t *testing.T) {
	for _, c := range []struct {
		bits int // 0: u32
		in   []byte
		want int64
		err  string // "" when valid
	}{
		{0, []byte{0x00}, 0, ""},
		{0, []byte{0x80, 0x80, 0x80, 0x80, 0x00}, 0, ""}, // padded to 5 bytes: valid
		{0, []byte{0xe5, 0x8e, 0x26}, 624485, ""},
		{0, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, math.MaxUint32, ""},
		{0, []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, 0, "out of range"},
		{0, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, "over-long"},
		{0, []byte{0x80, 0x80}, 0, "unexpected end"},
		{0, nil, 0, "unexpected end"},

		{32, []byte{0x7f}, -1, ""},
		{32, []byte{0xff, 0x7f}, -1, ""},
		{32, []byte{0x3f}, 63, ""},
		{32, []byte{0x40}, -64, ""},
		{32, []byte{0xc0, 0xbb, 0x78}, -123456, ""},
		{32, []byte{0xff, 0xff, 0xff, 0xff, 0x07}, math.MaxInt32, ""},
		{32, []byte{0x80, 0x80, 0x80, 0x80, 0x78}, math.MinInt32, ""},
		{32, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0, "out of range"}, // 2^32-1
		{32, []byte{0x80, 0x80, 0x80, 0x80, 0x70}, 0, "out of range"}, // -2^32
		{32, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, "over-long"},

		{33, []byte{0x70}, -16, ""}, // funcref's heap type
		{33, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, math.MaxUint32, ""},
		{33, []byte{0x80, 0x80, 0x80, 0x80, 0x70}, -1 << 32, ""},
		{33, []byte{0xff, 0xff, 0xff, 0xff, 0x1f}, 0, "out of range"},
		{33, []byte{0x80, 0x80, 0x80, 0x80, 0x60}, 0, "out of range"},
		{33, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, "over-long"},

		{64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, math.MaxInt64, ""},
		{64, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, math.MinInt64, ""},
		{64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 0, "out of range"},
		{64, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, "over-long"},
	} {
		r := reader{b: c.in}
		var got int64
		var err error
		if c.bits == 0 {
			var v uint32
			v, err = r.u32()
			got = int64(v)
		} else {
			got, err = r.signed(c.bits)
		}
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%d-bit % x: %v", c.bits, c.in, err)
		case c.err == "" && (got != c.want || r.len() != 0):
			t.Errorf("%d-bit % x = %d (%d bytes left), want %d", c.bits, c.in, got, r.len(), c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%d-bit % x: err %v, want %q", c.bits, c.in, err, c.err)
		}
	}
}

func TestAppendU32(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 16383, 16384, 1 << 21, 1<<28 - 1, 1 << 28, math.MaxUint32} {
		enc := appendU32(nil, v)
		r := reader{b: enc}
		if got, err := r.u32(); err != nil || got != v || r.len() != 0 {
			t.Errorf("appendU32(%d) = % x, reads back as %d, %v", v, enc, got, err)
		}
	}
}
