//go:build unix && !linux

package sandboxfs

import "syscall"

func renameExchange(a, b string) error { return syscall.ENOSYS }

// ctime is not compared off Linux (syscall.Stat_t names it differently).
func ctime(*syscall.Stat_t) int64 { return 0 }
