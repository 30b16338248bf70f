//go:build !unix

package journal

import (
	"errors"
	"os"
)

// syscallNoFollow is not available: links are followed.
const syscallNoFollow = 0

var errLocked = errors.New("locked by another process")

// lockFile refuses: without flock a partition of a live process could not
// be told from an orphan, so there is no journal here.
func lockFile(*os.File) error { return errors.ErrUnsupported }

func unlockFile(f *os.File) { _ = f.Close() }

func syncData(f *os.File) error { return f.Sync() }
