package sandboxfs

import (
	"syscall"

	"golang.org/x/sys/unix"
)

func renameExchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

func ctime(st *syscall.Stat_t) int64 { return st.Ctim.Nano() }
