//go:build !linux

package modules

import "fmt"

// memImage is a snapshot's linear memory, copied into each instance's
// (elsewhere than on Linux there is no copy-on-write mapping of it).
type memImage struct {
	b    []byte
	size uint64
}

func newMemImage(b []byte) (*memImage, error) {
	return &memImage{b: append([]byte(nil), b...), size: uint64(len(b))}, nil
}

func (img *memImage) close() {}

func (r region) mapImage(img *memImage) error {
	if uint64(len(r)) < img.size {
		return fmt.Errorf("a memory of %d bytes cannot hold a snapshot of %d", len(r), img.size)
	}
	copy(r, img.b)
	return nil
}
