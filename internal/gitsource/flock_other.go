//go:build !unix

package gitsource

// flock is a no-op where there is no flock: the cache is then locked
// within the process only.
func flock(string) (func(), error) { return func() {}, nil }
