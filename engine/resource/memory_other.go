//go:build !linux

package resource

// AvailableMemory returns the memory the process may use; on this system
// it is not known, and a conservative 4 GiB is assumed.
func AvailableMemory() int64 { return 4 << 30 }
