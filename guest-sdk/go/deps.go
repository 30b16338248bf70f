package wasmrunner

import (
	"errors"
	"io"
)

// Dependency is a job whose artifacts this job depends on. Its files are
// readable without extracting them; the runner also extracts them into the
// build dir before the script, as GitLab runners do.
type Dependency struct {
	// ID and Name are the dependency's job id and name.
	ID   int64
	Name string

	index int32
}

// Dependencies returns the jobs whose artifacts this job depends on.
func Dependencies() []Dependency {
	n := host.DepCount()
	if n <= 0 {
		return nil
	}
	deps := make([]Dependency, 0, n)
	for i := range n {
		name, _ := readString(func(buf []byte) int32 { return host.DepName(i, buf) })
		deps = append(deps, Dependency{ID: host.DepID(i), Name: name, index: i})
	}
	return deps
}

// Files returns the paths of the files in the dependency's artifacts
// (none when it has no artifacts). The first call may download them.
func (d Dependency) Files() ([]string, error) {
	b, err := readGrowing(4096, func(buf []byte) int32 { return host.DepFiles(d.index, buf) })
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return splitList(b), nil
}

// Size returns the size of a file of the dependency's artifacts;
// ErrNotFound if there is no such file.
func (d Dependency) Size(name string) (int64, error) {
	n := host.DepFileSize(d.index, name)
	if n < 0 {
		return 0, Errno(n)
	}
	return n, nil
}

// ReadAt reads len(p) bytes of a file of the dependency's artifacts from
// offset off, as io.ReaderAt does.
func (d Dependency) ReadAt(name string, p []byte, off int64) (int, error) {
	read := 0
	for read < len(p) {
		n := host.DepRead(d.index, name, off+int64(read), p[read:])
		switch {
		case n < 0:
			return read, Errno(n)
		case n == 0:
			return read, io.EOF
		}
		read += int(n)
	}
	return read, nil
}

// ReadFile returns the content of a file of the dependency's artifacts;
// ErrNotFound if there is no such file.
func (d Dependency) ReadFile(name string) ([]byte, error) {
	size, err := d.Size(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := d.ReadAt(name, buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}
