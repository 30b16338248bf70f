package modules

import (
	"bytes"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memImage is a snapshot's linear memory: a sealed memfd (nothing can
// change it once made) that each instance maps copy-on-write, so that the
// pages it only reads stay shared and those it writes become its own.
// Pages of zeroes are holes: they take no memory.
type memImage struct {
	fd   int
	size uint64
}

func newMemImage(b []byte) (*memImage, error) {
	fd, err := unix.MemfdCreate("wasmrunner-snapshot", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	img := &memImage{fd: fd, size: uint64(len(b))}
	if err := img.fill(b); err != nil {
		img.close()
		return nil, err
	}
	return img, nil
}

func (img *memImage) fill(b []byte) error {
	if err := unix.Ftruncate(img.fd, int64(len(b))); err != nil {
		return fmt.Errorf("sizing the memfd: %w", err)
	}
	zero := make([]byte, pageSize)
	// Runs of pages that are not all zeroes, each written at once.
	for off := 0; off < len(b); {
		if bytes.Equal(b[off:min(off+pageSize, len(b))], zero[:min(pageSize, len(b)-off)]) {
			off += pageSize
			continue
		}
		end := off + pageSize
		for end < len(b) && !bytes.Equal(b[end:min(end+pageSize, len(b))], zero[:min(pageSize, len(b)-end)]) {
			end += pageSize
		}
		end = min(end, len(b))
		for w := off; w < end; {
			n, err := unix.Pwrite(img.fd, b[w:end], int64(w))
			if err != nil {
				return fmt.Errorf("writing the memfd: %w", err)
			}
			w += n
		}
		off = end
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(img.fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("sealing the memfd: %w", err)
	}
	return nil
}

func (img *memImage) close() {
	if img != nil && img.fd >= 0 {
		unix.Close(img.fd)
		img.fd = -1
	}
}

// mapImage maps img copy-on-write over the start of r: reading a page
// reads the image's, writing one gives r its own copy.
func (r region) mapImage(img *memImage) error {
	if img.size == 0 {
		return nil
	}
	if uint64(len(r)) < img.size {
		return fmt.Errorf("a memory of %d bytes cannot hold a snapshot of %d", len(r), img.size)
	}
	_, err := unix.MmapPtr(img.fd, 0, unsafe.Pointer(unsafe.SliceData(r)), uintptr(img.size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("mapping the snapshot: %w", err)
	}
	return nil
}
