package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

// The compilation cache of a registry (Config.CacheDir) holds one
// directory per module version:
//
//	CacheDir/<sha256 of the module's bytes>-<cpu policy>/
//	    lock                                   held (flock, shared) while a registry has the version loaded
//	    wazero-<version>-<arch>-<os>/<key>     wazero's compiled code, one file per CPU kind
//
// The bytes are those compiled (after wasmbin.Check) and the CPU policy
// ("interrupt" or "uninterrupted") is part of wazero's cache key. After
// each reload the registry evicts the versions it no longer has loaded,
// and then, while the cache holds more than Config.CacheMaxBytes, the
// least recently loaded versions no registry holds. A version held by any
// registry (of this process or another) is never evicted: eviction takes
// the version's lock exclusively, without waiting. Removing the whole
// directory while no wasmrunner runs is safe: modules are compiled anew.

// DefaultCacheMaxBytes bounds a registry's compilation cache by default.
const DefaultCacheMaxBytes = 1 << 30

const lockFileName = "lock"

var versionDirName = regexp.MustCompile(`^[0-9a-f]{64}-(interrupt|uninterrupted)$`)

// versionOf names the cache directory of a module's bytes under a CPU
// policy.
func versionOf(bin []byte, interrupt bool) string {
	sum := sha256.Sum256(bin)
	return hex.EncodeToString(sum[:]) + "-" + cpuPolicyName(interrupt)
}

func cpuPolicyName(interrupt bool) string {
	if interrupt {
		return "interrupt"
	}
	return "uninterrupted"
}

var wazeroVersion = sync.OnceValue(func() string {
	// As wazero's internal/version does: the version its cache files and
	// directory are named after.
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		return "dev"
	}
	return v
})

// compilerSupported reports whether wazero compiles to machine code here
// (elsewhere it interprets, and writes no cache files).
func compilerSupported() bool {
	return (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") && (runtime.GOOS == "linux" || runtime.GOOS == "darwin" || runtime.GOOS == "freebsd" || runtime.GOOS == "netbsd" || runtime.GOOS == "windows")
}

// cpuFeatures is what wazero's internal/platform puts of the CPU in its
// cache keys.
func cpuFeatures() uint64 {
	var f uint64
	switch runtime.GOARCH {
	case "amd64":
		if cpu.X86.HasSSE41 {
			f |= 1
		}
		if cpu.X86.HasBMI1 {
			f |= 2
		}
		if cpu.X86.HasBMI1 && cpu.X86.HasBMI2 && cpu.X86.HasPOPCNT {
			f |= 4
		}
	case "arm64":
		if cpu.ARM64.HasATOMICS {
			f |= 1
		}
	}
	return f
}

// wazeroMagic starts wazero's compiled-module files (and their keys).
var wazeroMagic = []byte("WAZEVO")

// entryPath is where wazero keeps the compiled code of bin (compiled with
// close-on-context-done off, without function listeners) in the
// cache directory dir. It repeats wazero v1.12's key: sha256 of (the
// module ID: sha256 of the bytes and the close-on-context-done flag), the
// magic and the CPU features; TestCacheEntryPath checks it against what
// wazero writes.
func entryPath(dir string, bin []byte) string {
	h := sha256.New()
	h.Write(bin)
	h.Write([]byte{boolByte(false)}) // close-on-context-done: see runtimeConfig
	id := h.Sum(nil)
	h = sha256.New()
	h.Write(id)
	h.Write(wazeroMagic)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], cpuFeatures())
	h.Write(b[:])
	return filepath.Join(dir, "wazero-"+wazeroVersion()+"-"+runtime.GOARCH+"-"+runtime.GOOS, hex.EncodeToString(h.Sum(nil)))
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// cachedEntry returns the identity of a compiled-module file that this
// wazero will load rather than compile anew: a regular file whose header
// names this wazero version (wazero deletes and recompiles stale ones).
// ok is false when there is none.
func cachedEntry(path string) (id fileID, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return fileID{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	v := wazeroVersion()
	head := make([]byte, len(wazeroMagic)+1+len(v))
	if _, err := io.ReadFull(f, head); err != nil {
		return fileID{}, false
	}
	if !bytes.Equal(head[:len(wazeroMagic)], wazeroMagic) || int(head[len(wazeroMagic)]) != len(v) || string(head[len(wazeroMagic)+1:]) != v {
		return fileID{}, false
	}
	return idOf(fi, nil), true
}

// lockVersion creates the version's directory if need be and takes its
// lock shared: while held, no registry evicts the version. It retries
// while an eviction removes the directory under it.
func lockVersion(ctx context.Context, dir string) (*os.File, error) {
	lockPath := filepath.Join(dir, lockFileName)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-time.After(time.Duration(min(attempt, 20)) * 5 * time.Millisecond):
			}
		}
		if attempt == 1000 {
			return nil, fmt.Errorf("the compilation cache's lock %s stays taken", lockPath)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if errors.Is(err, fs.ErrNotExist) {
			continue // evicted between MkdirAll and the open
		}
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue // being evicted
			}
			return nil, fmt.Errorf("locking %s: %w", lockPath, err)
		}
		if !stillLinked(f, lockPath) {
			f.Close()
			continue // evicted before the lock was ours
		}
		now := time.Now()
		_ = os.Chtimes(lockPath, now, now) // the version's last use, for eviction
		return f, nil
	}
}

// stillLinked reports whether the open file f is still the file at path.
func stillLinked(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// cacheVersion is a version directory of the cache.
type cacheVersion struct {
	name     string
	size     int64
	lastUsed time.Time
}

// scanCache lists the version directories of root with their sizes.
func scanCache(root string) ([]cacheVersion, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []cacheVersion
	for _, e := range ents {
		if !e.IsDir() || !versionDirName.MatchString(e.Name()) {
			continue
		}
		v := cacheVersion{name: e.Name()}
		dir := filepath.Join(root, e.Name())
		if fi, err := os.Stat(filepath.Join(dir, lockFileName)); err == nil {
			v.lastUsed = fi.ModTime()
		} else if fi, err := e.Info(); err == nil {
			v.lastUsed = fi.ModTime()
		}
		v.size = dirSize(dir, 3)
		out = append(out, v)
	}
	return out, nil
}

// dirSize sums the sizes of the files under dir, depth levels deep.
func dirSize(dir string, depth int) int64 {
	if depth == 0 {
		return 0
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		switch {
		case e.IsDir():
			n += dirSize(filepath.Join(dir, e.Name()), depth-1)
		case e.Type().IsRegular():
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// evictVersion removes a version directory unless a registry holds it;
// it reports whether it did.
func evictVersion(root, name string) (bool, error) {
	dir := filepath.Join(root, name)
	lockPath := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // gone already
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil // in use
		}
		return false, err
	}
	if !stillLinked(f, lockPath) {
		return false, nil
	}
	return true, os.RemoveAll(dir)
}

// evictCache evicts the versions of drop that no registry holds, then,
// while the versions of root take more than maxBytes, those no registry
// holds, least recently loaded first. It returns the bytes left.
func evictCache(root string, drop map[string]bool, maxBytes int64) (int64, []string, error) {
	vs, err := scanCache(root)
	if err != nil {
		return 0, nil, err
	}
	var evicted []string
	var errs []error
	kept := vs[:0]
	var total int64
	for _, v := range vs {
		if drop[v.name] {
			gone, err := evictVersion(root, v.name)
			if err != nil {
				errs = append(errs, err)
			}
			if gone {
				evicted = append(evicted, v.name)
				continue
			}
		}
		kept = append(kept, v)
		total += v.size
	}
	slices.SortFunc(kept, func(a, b cacheVersion) int { return a.lastUsed.Compare(b.lastUsed) })
	for _, v := range kept {
		if total <= maxBytes {
			break
		}
		gone, err := evictVersion(root, v.name)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			evicted = append(evicted, v.name)
			total -= v.size
		}
	}
	return total, evicted, errors.Join(errs...)
}
