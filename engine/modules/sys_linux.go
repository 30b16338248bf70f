package modules

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysID returns the inode, device and change time of fi.
func sysID(fi fs.FileInfo) (ino, dev uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Dev, st.Ctim.Nano()
	}
	return 0, 0, 0
}

// selfExecutable is the running executable, even if its file was replaced
// since it started (an upgrade): the compiler child must be the same
// program, with the same wazero, as its parent.
func selfExecutable() (string, error) {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe", nil
	}
	return os.Executable()
}

// limitChild makes the child die with its parent (should the parent end
// without killing it).
func limitChild(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// peakRSS is the most resident memory this process has used since it
// started (VmHWM; the exited child's rusage would count its parent's
// memory, shared until exec).
func peakRSS() int64 {
	n, _ := procStatus("VmHWM:")
	return n
}

// limitSelf holds the compiler child to budget bytes of memory: its
// address space may grow by budget beyond what it has mapped now (a Go
// program maps ~1.2 GiB of address space it never touches at start-up,
// so an absolute RLIMIT_AS would measure the runtime, not the compile),
// and Go's memory limit makes the collector work to stay under it. Past
// it, an allocation fails and the runtime ends the process with "fatal
// error: out of memory". It also caps the file it writes (RLIMIT_FSIZE:
// Go ignores SIGXFSZ, so the write fails) and forbids core dumps.
func limitSelf(budget, maxFile int64) error {
	base, err := vmSize()
	if err != nil {
		return fmt.Errorf("reading the address space size: %w", err)
	}
	// Never above a limit inherited from the parent (a runner started
	// under an address-space cap): it cannot be raised.
	set := func(res int, v int64) error {
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err == nil && cur.Max != unix.RLIM_INFINITY && uint64(v) > cur.Max {
			v = int64(cur.Max)
		}
		return unix.Setrlimit(res, &unix.Rlimit{Cur: uint64(v), Max: uint64(v)})
	}
	if err := set(unix.RLIMIT_AS, base+budget); err != nil {
		return fmt.Errorf("setting RLIMIT_AS: %w", err)
	}
	if maxFile > 0 {
		if err := set(unix.RLIMIT_FSIZE, maxFile); err != nil {
			return fmt.Errorf("setting RLIMIT_FSIZE: %w", err)
		}
	}
	_ = set(unix.RLIMIT_CORE, 0)
	debug.SetMemoryLimit(budget)
	return nil
}

// vmSize is the process's address space size.
func vmSize() (int64, error) { return procStatus("VmSize:") }

// procStatus reads a size (kB) of /proc/self/status, in bytes.
func procStatus(key string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", key)
}
