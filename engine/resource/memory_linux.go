package resource

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AvailableMemory returns the memory the process may use: the machine's,
// or its cgroup's limit or its address-space limit when lower.
func AvailableMemory() int64 {
	var total int64
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		total = int64(si.Totalram) * int64(si.Unit)
	}
	if total <= 0 {
		total = 4 << 30
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && n > 0 && n < total {
			total = n
		}
	}
	// Under an address-space limit (ulimit -v), guest memories are
	// reserved within it too.
	var as unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_AS, &as); err == nil && as.Cur != unix.RLIM_INFINITY && int64(as.Cur) > 0 && int64(as.Cur) < total {
		total = int64(as.Cur)
	}
	return total
}
