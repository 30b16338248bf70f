package local

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// MergeThreshold is how many dependencies with artifacts a job needs for
// them to be merged: a job of a late stage without needs receives the
// artifacts of every job before it (GitLab's default dependencies), and
// downloading and extracting hundreds of archives per job costs far more
// than extracting one.
const MergeThreshold = 10

// mergeDepsLocked replaces a job's dependencies with artifacts, when
// there are at least MergeThreshold, by one archive that holds their
// files (a later dependency's file wins over an earlier one's, as when
// they are extracted one after the other). The archive is made once per
// set of dependencies and shared by every job with that set. The project
// files dependency stays first, on its own.
func (s *Source) mergeDepsLocked(job *gitlab.Job) error {
	var with []gitlab.Dependency
	for _, d := range job.Dependencies {
		if d.ID != ProjectFilesID && s.archive[d.ID] != "" {
			with = append(with, d)
		}
	}
	if len(with) < MergeThreshold {
		return nil
	}
	ids := make([]string, len(with))
	for i, d := range with {
		ids[i] = strconv.FormatInt(d.ID, 10)
	}
	key := strings.Join(ids, ",")
	id, ok := s.merged[key]
	if !ok {
		if s.mergeDir == "" {
			dir, err := os.MkdirTemp("", "wasmrunner-exec-merged-")
			if err != nil {
				return err
			}
			s.mergeDir = dir
		}
		id = s.nextID
		s.nextID++
		path := filepath.Join(s.mergeDir, strconv.FormatInt(id, 10)+".zip")
		var paths []string
		for _, d := range with {
			paths = append(paths, s.archive[d.ID])
		}
		if err := mergeZips(path, paths); err != nil {
			return fmt.Errorf("merging the artifacts of %d jobs: %w", len(with), err)
		}
		s.archive[id] = path
		s.names[id] = fmt.Sprintf("%d jobs", len(with))
		s.merged[key] = id
	}
	deps := make([]gitlab.Dependency, 0, 2)
	for _, d := range job.Dependencies {
		if d.ID == ProjectFilesID {
			deps = append(deps, d)
		}
	}
	names := []string{with[0].Name, with[1].Name, "...", with[len(with)-1].Name}
	deps = append(deps, gitlab.Dependency{ID: id, Name: fmt.Sprintf("%d jobs (%s)", len(with), strings.Join(names, ", ")), Token: job.Token})
	job.Dependencies = deps
	return nil
}

// mergeZips writes to dst a zip of the entries of srcs, the last one of
// each name winning, copied without recompressing.
func mergeZips(dst string, srcs []string) error {
	type entry struct {
		src int
		f   *zip.File
	}
	readers := make([]*zip.ReadCloser, 0, len(srcs))
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	last := map[string]entry{}
	var order []string
	for i, p := range srcs {
		r, err := zip.OpenReader(p)
		if err != nil {
			return err
		}
		readers = append(readers, r)
		for _, f := range r.File {
			if _, seen := last[f.Name]; !seen {
				order = append(order, f.Name)
			}
			last[f.Name] = entry{i, f}
		}
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(out)
	for _, name := range order {
		f := last[name].f
		raw, err := f.OpenRaw()
		if err != nil {
			out.Close()
			return err
		}
		w, err := zw.CreateRaw(&f.FileHeader)
		if err == nil {
			_, err = io.Copy(w, raw)
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Close removes the merged archives.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mergeDir == "" {
		return nil
	}
	return os.RemoveAll(s.mergeDir)
}
