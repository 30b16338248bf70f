package modules

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
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
	// view maps the memfd read-only and shared: what a kept memory's
	// copied pages are reset from (see resetImage).
	view []byte
	// hot are the pages a step writes (see probeWrites): each instance
	// gets its own copies of them up front.
	hot []pageRun
	// kept are freed memories of its instances, reset to it.
	kept imageRegions
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
	if len(b) > 0 {
		view, err := unix.Mmap(fd, 0, len(b), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			img.close()
			return nil, fmt.Errorf("mapping the snapshot: %w", err)
		}
		img.view = view
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
		img.kept.close()
		if img.view != nil {
			_ = unix.Munmap(img.view)
			img.view = nil
		}
		unix.Close(img.fd)
		img.fd = -1
	}
}

// resetImage makes the first n bytes of r, whose start maps img, what a
// fresh mapping would read. /proc/self/pagemap says which pages are the
// memory's own: those the instance copied (wrote) in the image and those
// it touched past it. When they are few (keptResident bytes at most),
// each copied page gets the image's content again, copied from the
// memfd's read-only view, and each page past the image is zeroed: they
// stay resident and the memory's own, so the next instance writes them
// without a page fault, and no TLB flush of the process's other threads
// is needed. Otherwise MADV_DONTNEED drops them (a private file mapping
// then reads the file's again, from the memfd that nothing can write;
// past the image, zeroes). Either way the pages the instance only read
// still map the image's, read-only, so the next instance reads them
// without a page fault. warm reports the first way: the pages r had
// copied are still its own.
func resetImage(r region, img *memImage, n uint64) (ok, warm bool) {
	n = min((n+pageSize-1)&^(pageSize-1), uint64(len(r)))
	runs, err := copiedPages(r[:n])
	if err != nil {
		return unix.Madvise(r[:n], unix.MADV_DONTNEED) == nil, false
	}
	own := uint64(0)
	for _, run := range runs {
		own += uint64(run.n) * pageSize
	}
	if own <= keptResident && img.view != nil {
		for _, run := range runs {
			from, to := uint64(run.first)*pageSize, uint64(run.first+run.n)*pageSize
			if from < img.size {
				copy(r[from:min(to, img.size)], img.view[from:min(to, img.size)])
			}
			if to > img.size {
				clear(r[max(from, img.size):to])
			}
		}
		return true, true
	}
	if len(runs) > maxResetRuns {
		// One call over them all: fewer TLB flushes.
		first, last := runs[0], runs[len(runs)-1]
		runs = []pageRun{{first.first, last.first + last.n - first.first}}
	}
	for _, run := range runs {
		if unix.Madvise(r[uint64(run.first)*pageSize:uint64(run.first+run.n)*pageSize], unix.MADV_DONTNEED) != nil {
			return false, false
		}
	}
	return true, false
}

// maxResetRuns: past this many runs of pages to drop, resetImage drops
// the span from the first to the last at once.
const maxResetRuns = 16

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

// pageRun is a run of pages of an image: [first, first+n).
type pageRun struct{ first, n uint32 }

// copiedPages returns the runs of pages of b (the start of a memory that
// mapped an image) that are the memory's own now, no longer the image's:
// those its guest wrote (copy-on-write). /proc/self/pagemap says, per
// page, whether it is present and whether it is a file's page.
func copiedPages(b []byte) ([]pageRun, error) {
	return pageRuns(b, false)
}

// sharedPages returns the runs of pages of b (the start of a memory that
// mapped an image) that map the image's pages: those its guest read and
// did not write.
func sharedPages(b []byte) ([]pageRun, error) {
	return pageRuns(b, true)
}

// pagemap is /proc/self/pagemap, opened once: reading it is a pread at
// the offset of the pages asked about.
var pagemap = sync.OnceValues(func() (*os.File, error) { return os.Open("/proc/self/pagemap") })

// pageRuns returns the runs of pages of b that are present, and a file's
// (the image's) if file, or not a file's (the memory's own) if not.
func pageRuns(b []byte, file bool) ([]pageRun, error) {
	if len(b) == 0 {
		return nil, nil
	}
	f, err := pagemap()
	if err != nil {
		return nil, err
	}
	pages := (len(b) + pageSize - 1) / pageSize
	entries := make([]byte, 8*pages)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b))) / pageSize
	if _, err := f.ReadAt(entries, int64(start)*8); err != nil {
		return nil, fmt.Errorf("reading /proc/self/pagemap: %w", err)
	}
	const present, filePage = 1 << 63, 1 << 61
	var runs []pageRun
	for i := range pages {
		e := binary.LittleEndian.Uint64(entries[8*i:])
		if e&present == 0 || (e&filePage != 0) != file {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].first+runs[n-1].n == uint32(i) {
			runs[n-1].n++
		} else {
			runs = append(runs, pageRun{uint32(i), 1})
		}
	}
	return runs, nil
}

// unmapShared drops the pages of r's image that r maps but never wrote
// (MADV_DONTNEED): they are the sealed memfd's, so reading them again
// maps them again, unchanged. The pages the guest wrote are its own and
// are kept: only the exact runs of shared pages are dropped, never a span
// that holds one of the guest's. It is a hint: false when a step of it
// failed.
func (r region) unmapShared(img *memImage) bool {
	runs, err := sharedPages(r[:min(img.size, uint64(len(r)))])
	if err != nil {
		return false
	}
	ok := true
	for _, run := range runs {
		from, to := uint64(run.first)*pageSize, uint64(run.first+run.n)*pageSize
		if unix.Madvise(r[from:to], unix.MADV_DONTNEED) != nil {
			ok = false
		}
	}
	return ok
}

// populate makes the pages of runs r's own copies of the image's at once
// (MADV_POPULATE_WRITE, Linux 5.14), before the guest writes them: a
// write to a page the guest has read already is a copy-on-write fault
// that flushes the page from the TLB of every CPU running the process's
// other threads (an interrupt each), a copy made before anything mapped
// the page is not. It is a hint: false when the kernel does not do it.
func (r region) populate(runs []pageRun) bool {
	for _, run := range runs {
		from, to := uint64(run.first)*pageSize, uint64(run.first+run.n)*pageSize
		if to > uint64(len(r)) {
			return false
		}
		if unix.Madvise(r[from:to], unix.MADV_POPULATE_WRITE) != nil {
			return false
		}
	}
	return true
}
