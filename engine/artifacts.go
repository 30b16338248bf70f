package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/archive"
)

// appliesTo reports whether an artifacts entry's when matches a result.
func appliesTo(when gitlab.ArtifactWhen, res result) bool {
	switch when {
	case gitlab.ArtifactsAlways:
		return true
	case gitlab.ArtifactsOnFailure:
		return res.state != gitlab.StateSuccess
	default: // on_success, or empty
		return res.state == gitlab.StateSuccess
	}
}

// uploadArtifacts collects and uploads the job's artifacts entries that
// apply to res, plus the files the handler added. It returns the first
// failure after trying every entry.
func (jr *jobRun) uploadArtifacts(res result) error {
	job := jr.job
	extra := job.extraArtifacts()
	specs := jr.payload.Artifacts
	if len(extra) > 0 && !slices.ContainsFunc(specs, func(s gitlab.ArtifactSpec) bool { return isArchive(s) && appliesTo(s.When, res) }) {
		// The handler's files need an archive of their own.
		specs = append(slices.Clone(specs), gitlab.ArtifactSpec{Name: "artifacts", When: gitlab.ArtifactsAlways, Type: "archive", Format: gitlab.FormatZip})
	}
	var todo []gitlab.ArtifactSpec
	for _, s := range specs {
		if appliesTo(s.When, res) {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(jr.hard, jr.r.cfg.ReportTimeout)
	defer cancel()

	section := "upload_artifacts_on_success"
	if res.state != gitlab.StateSuccess {
		section = "upload_artifacts_on_failure"
	}
	job.StartSection(section, "Uploading artifacts for "+map[bool]string{true: "successful", false: "failed"}[res.state == gitlab.StateSuccess]+" job")
	defer job.EndSection(section)

	var errs []error
	extraUsed := false
	for _, spec := range todo {
		if spec.Untracked {
			job.Printf("\x1b[33;1mWARNING: artifacts:untracked is not supported (there is no git checkout); ignored\x1b[0;m")
		}
		files, err := archive.Collect(job.buildDir, spec.Paths, spec.Exclude)
		if err != nil {
			errs = append(errs, fmt.Errorf("collecting artifacts: %w", err))
			job.Printf("\x1b[31;1mERROR: collecting artifacts failed: %v\x1b[0;m", err)
			continue
		}
		if isArchive(spec) && !extraUsed {
			extraUsed = true
			for _, f := range extra {
				if !slices.Contains(files, f) {
					files = append(files, f)
				}
			}
			slices.Sort(files)
		}
		name := artifactName(spec)
		if len(files) == 0 {
			job.Printf("\x1b[33;1mWARNING: %s: no files to upload matched %q (paths are relative to the project dir)\x1b[0;m", name, spec.Paths)
			continue
		}
		if err := jr.uploadOne(ctx, spec, files); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			job.Printf("\x1b[31;1mERROR: uploading artifacts %s failed: %v\x1b[0;m", name, err)
		}
	}
	return errors.Join(errs...)
}

func isArchive(s gitlab.ArtifactSpec) bool {
	return (s.Format == "" || s.Format == gitlab.FormatZip) && (s.Type == "" || s.Type == "archive")
}

func artifactName(s gitlab.ArtifactSpec) string {
	if s.Name != "" {
		return s.Name
	}
	return "artifacts"
}

// uploadOne archives files as spec asks and uploads them.
func (jr *jobRun) uploadOne(ctx context.Context, spec gitlab.ArtifactSpec, files []string) error {
	job := jr.job
	format := spec.Format
	if format == "" {
		format = gitlab.FormatZip
	}
	typ := spec.Type
	if typ == "" {
		typ = "archive"
	}
	up := gitlab.ArtifactUpload{Name: artifactName(spec), Format: format, Type: typ, ExpireIn: spec.ExpireIn}

	tmpDir, err := job.tmp()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(tmpDir, "artifact-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := jr.r.hostWrite("artifacts"); err != nil {
		return fmt.Errorf("archiving: %w", err)
	}

	switch format {
	case gitlab.FormatZip:
		err = archive.WriteZip(ctx, tmp, job.buildDir, files)
	case gitlab.FormatGzip, gitlab.FormatRaw:
		if len(files) != 1 {
			return fmt.Errorf("%s artifacts hold exactly one file, %d matched", format, len(files))
		}
		if format == gitlab.FormatGzip {
			err = archive.WriteGzip(ctx, tmp, job.buildDir, files[0])
		} else {
			err = copyFromRoot(tmp, job.buildDir, files[0])
			up.Filename = path.Base(files[0])
		}
	default:
		return fmt.Errorf("unsupported artifact format %q", format)
	}
	if err != nil {
		return fmt.Errorf("archiving: %w", err)
	}
	size, err := tmp.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	job.Printf("Uploading artifacts %q as %q (%s, %d files, %d bytes)...", up.Name, typ, format, len(files), size)
	if err := jr.r.cfg.Client.UploadArtifact(ctx, jr.payload.ID, jr.payload.Token, up, tmp, size); err != nil {
		return err
	}
	job.Printf("Uploaded artifacts %q", up.Name)
	return nil
}

// copyFromRoot copies a regular file inside root to w without following
// symlinks out of root.
func copyFromRoot(w io.Writer, root, rel string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Lstat(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", rel)
	}
	f, err := r.Open(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
