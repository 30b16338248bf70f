package modules

import "golang.org/x/sys/unix"

// region is memory outside the Go heap: an anonymous private mapping,
// reserved (MAP_NORESERVE) but backed by physical pages only where the
// guest has written, and unmapped at once when released.
type region []byte

func reserve(size uint64) (region, error) {
	if size == 0 {
		return region{}, nil
	}
	b, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	return region(b), nil
}

func (r region) bytes() []byte { return r }

func (r region) release() {
	if len(r) > 0 {
		_ = unix.Munmap(r)
	}
}

// discard gives the bytes [from, to) back to the system; reading them
// again gives zeroes.
func (r region) discard(from, to uint64) bool {
	from = (from + pageSize - 1) &^ (pageSize - 1)
	if from >= to {
		return true
	}
	return unix.Madvise(r[from:to], unix.MADV_DONTNEED) == nil
}

const pageSize = 4096
