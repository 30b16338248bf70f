package wasmrunner

import (
	"time"
)

// AddArtifactFile adds a file of the build dir (a path relative to it) to
// the job's artifacts, on top of those the job's artifacts:paths select.
func AddArtifactFile(path string) error { return status(host.ArtifactAddFile(path)) }

// AddArtifactData writes data to the file name of the build dir (a
// relative path; missing directories are made) and adds it to the job's
// artifacts. data may be at most MaxArtifactData bytes.
func AddArtifactData(name string, data []byte) error {
	return status(host.ArtifactAddData(name, data))
}

// Canceled reports whether the running step should stop: the job was
// cancelled or timed out. A handler has a short grace period (1 s by
// default) to notice and return before it is interrupted.
func Canceled() bool { return host.IsCanceled() == 1 }

// Sleep pauses for d (rounded up to a millisecond), or until the job is
// cancelled or times out, when it returns ErrCanceled. Prefer it to
// time.Sleep, which does not end early.
func Sleep(d time.Duration) error {
	ms := int64(0)
	if d > 0 {
		ms = int64(d / time.Millisecond)
		if d%time.Millisecond != 0 {
			ms++
		}
	}
	return status(host.SleepMillis(ms))
}
