//go:build !linux

package modules

// region is a Go slice of the memory's maximum size: elsewhere than on
// Linux the memory is not reserved outside the Go heap.
type region []byte

func reserve(size uint64) (region, error) { return make(region, size), nil }

func (r region) bytes() []byte { return r }

func (r region) release() {}

// discard zeroes the bytes [from, to).
func (r region) discard(from, to uint64) bool {
	clear(r[from:to])
	return true
}
