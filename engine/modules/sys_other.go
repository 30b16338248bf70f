//go:build !linux

package modules

import (
	"io/fs"
	"os"
	"os/exec"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

func sysID(fs.FileInfo) (ino, dev uint64, ctime int64) { return 0, 0, 0 }

func selfExecutable() (string, error) { return os.Executable() }

func limitChild(*exec.Cmd) {}

func peakRSS() int64 { return 0 }

// limitSelf holds the compiler child to budget bytes with Go's memory
// limit only: this system's RLIMIT_AS is not a usable bound (it is not
// enforced, or counts the runtime's reservations). The file it writes is
// capped with RLIMIT_FSIZE.
func limitSelf(budget, maxFile int64) error {
	if maxFile > 0 {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: uint64(maxFile), Max: uint64(maxFile)}); err != nil {
			return err
		}
	}
	debug.SetMemoryLimit(budget)
	return nil
}
