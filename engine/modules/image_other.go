//go:build !linux

package modules

import "fmt"

// memImage is a snapshot's linear memory, copied into each instance's
// (elsewhere than on Linux there is no copy-on-write mapping of it).
type memImage struct {
	b    []byte
	size uint64
	hot  []pageRun
	kept imageRegions
}

func newMemImage(b []byte) (*memImage, error) {
	return &memImage{b: append([]byte(nil), b...), size: uint64(len(b))}, nil
}

func (img *memImage) close() { img.kept.close() }

// resetImage copies img over r again and zeroes r past it, up to n bytes.
func resetImage(r region, img *memImage, n uint64) (ok, warm bool) {
	n = min(n, uint64(len(r)))
	copy(r, img.b)
	if n > img.size {
		clear(r[img.size:n])
	}
	return true, true
}

func (r region) mapImage(img *memImage) error {
	if uint64(len(r)) < img.size {
		return fmt.Errorf("a memory of %d bytes cannot hold a snapshot of %d", len(r), img.size)
	}
	copy(r, img.b)
	return nil
}

// pageRun is a run of pages of an image: [first, first+n).
type pageRun struct{ first, n uint32 }

// copiedPages is not known elsewhere than on Linux.
func copiedPages(b []byte) ([]pageRun, error) { return nil, nil }

func (r region) populate(runs []pageRun) bool { return false }

// unmapShared does nothing elsewhere than on Linux: the image is copied,
// never shared.
func (r region) unmapShared(img *memImage) bool { return false }
