package engine

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/mask"
)

// Job is a running job as its handler sees it: what GitLab sent, the
// job's build dir, its dependencies' artifacts, and its log.
//
// Its methods are safe for concurrent use.
type Job struct {
	payload  *gitlab.Job
	runner   *Runner // for SharedFile
	buildDir string
	tmpDir   string // made on first use: see tmp
	log      *jobLog
	client   Client

	mu        sync.Mutex
	tmpMade   bool
	fileVars  string // dir of file variables, or ""
	vars      gitlab.Variables
	deps      []*Dependency
	artifacts []string // extra files (relative to the build dir) to upload

	diskBytes, diskEntries *resource.Pool // what the job may add to its build dir
	sources                bool           // WantSources was called

	slot *heldSlot // the job's slot of the process's job budget, or nil

	level   slog.Leveler // least level of slog records in the log
	forward slog.Handler // where slog records go too (the operator log), or nil
}

func (j *Job) logLevel() slog.Level {
	if j.level == nil {
		return slog.LevelInfo
	}
	return j.level.Level()
}

// WaitFor runs wait, which blocks until something the job needs is free
// (an instance of its handler, say). Meanwhile the job gives its slot of
// the process's job budget back, so that other runners' jobs are not
// held up behind it, and takes one again before WaitFor returns. An error
// of wait, or ctx ending before a slot is free again, is returned.
func (j *Job) WaitFor(ctx context.Context, wait func(context.Context) error) error {
	if j.slot == nil {
		return wait(ctx)
	}
	j.slot.release()
	if err := wait(ctx); err != nil {
		return err // the job ends: it needs no slot to be reported
	}
	return j.slot.acquire(ctx)
}

// LimitBuildDir bounds what the job adds to its build dir: dependency
// artifacts extracted for it are charged to these pools (and so is what its
// handler writes, if the handler charges them too). A handler factory
// calls it; nil pools bound nothing.
func (j *Job) LimitBuildDir(bytes, entries *resource.Pool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.diskBytes, j.diskEntries = bytes, entries
}

// WantSources makes the engine put the job's sources (its commit, fetched
// from GitLab as git_info and the GIT_* variables say) into the build dir
// before the first step, charged to the pools of [Job.LimitBuildDir]. A
// handler factory calls it for handlers whose jobs need their sources;
// other jobs start with an empty build dir.
func (j *Job) WantSources() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.sources = true
}

func (j *Job) wantsSources() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.sources
}

// BuildDirBudget returns the pools set by [Job.LimitBuildDir].
func (j *Job) BuildDirBudget() (bytes, entries *resource.Pool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.diskBytes, j.diskEntries
}

// poolBudget charges extractions to a job's build dir pools.
type poolBudget struct{ bytes, entries *resource.Pool }

func (b poolBudget) Take(bytes, entries int64) error {
	if !b.bytes.TakeAll(bytes) {
		return refusal(b.bytes)
	}
	if !b.entries.TakeAll(entries) {
		b.bytes.Give(bytes)
		return refusal(b.entries)
	}
	return nil
}

func (b poolBudget) Give(bytes, entries int64) {
	b.bytes.Give(bytes)
	b.entries.Give(entries)
}

// refusal describes why p refused a take.
func refusal(p *resource.Pool) error {
	by, ok := p.Refused()
	if !ok {
		by = p
	}
	return fmt.Errorf("%s is used up", by.Name())
}

// ID returns the job's id.
func (j *Job) ID() int64 { return j.payload.ID }

// Name returns the job's name.
func (j *Job) Name() string { return j.payload.JobInfo.Name }

// Stage returns the job's stage.
func (j *Job) Stage() string { return j.payload.JobInfo.Stage }

// ProjectID returns the id of the job's project.
func (j *Job) ProjectID() int64 { return j.payload.JobInfo.ProjectID }

// ProjectName returns the name of the job's project.
func (j *Job) ProjectName() string { return j.payload.JobInfo.ProjectName }

// Image returns the name of the job's image, or "".
func (j *Job) Image() string { return j.payload.Image.Name }

// Timeout returns the job's timeout.
func (j *Job) Timeout() time.Duration { return j.payload.Timeout() }

// BuildDir returns the job's own directory: the project dir, where
// dependency artifacts are extracted and artifacts are collected from.
func (j *Job) BuildDir() string { return j.buildDir }

// Script returns the script lines of a phase.
func (j *Job) Script(p Phase) []string {
	name := gitlab.StepScript
	if p == AfterScript {
		name = gitlab.StepAfterScript
	}
	s, _ := j.payload.Step(name)
	return slices.Clone(s.Script)
}

// Variables returns the job's variables in GitLab's order (later entries
// win), including those the runner adds (CI_PROJECT_DIR, CI_BUILDS_DIR,
// and CI_JOB_STATUS during after_script).
func (j *Job) Variables() []gitlab.Variable {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.vars)
}

// AllVariables yields the job's variables as [Job.Variables] returns
// them, without copying them: those of the moment it is called (the
// runner never changes a variable in place; it adds or replaces the
// list).
func (j *Job) AllVariables() iter.Seq[gitlab.Variable] {
	j.mu.Lock()
	vars := j.vars[:len(j.vars):len(j.vars)]
	j.mu.Unlock()
	return func(yield func(gitlab.Variable) bool) {
		for _, v := range vars {
			if !yield(v) {
				return
			}
		}
	}
}

// Variable returns the variable named key.
func (j *Job) Variable(key string) (gitlab.Variable, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.vars.Get(key)
}

func (j *Job) setVariable(v gitlab.Variable) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.vars = append(j.vars, v)
}

// Dependencies returns the jobs whose artifacts this job depends on.
func (j *Job) Dependencies() []*Dependency {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.deps)
}

// AddArtifact adds a file of the build dir (a path relative to it) to the
// job's artifacts archive, in addition to what the job's artifacts:paths
// select. It is uploaded with the first archive entry of the job's
// artifacts that applies to the job's result, or as "artifacts" when the
// job has none.
func (j *Job) AddArtifact(rel string) error {
	return j.addArtifact(rel, func(root *os.Root, clean string) error {
		_, err := root.Lstat(clean)
		return err
	})
}

// AddArtifactData writes data to name (relative to the build dir) and adds
// it to the job's artifacts like [Job.AddArtifact].
func (j *Job) AddArtifactData(name string, data []byte) error {
	return j.addArtifact(name, func(root *os.Root, clean string) error {
		if dir := path.Dir(clean); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := j.unshare(root, clean); err != nil {
			return err
		}
		return root.WriteFile(clean, data, 0o644)
	})
}

// unshare removes name, if it is a shared file (see SharedFile), before
// it is written: the write makes a new file instead of changing what other
// jobs received. A symbolic link is left alone: WriteFile writes through
// it, and a write that reaches a shared file that way is refused.
func (j *Job) unshare(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			if fi, err = root.Stat(name); err == nil && j.sharedInfo(fi) {
				return fmt.Errorf("%s leads to a file other jobs share", name)
			}
		}
		return nil
	}
	if j.sharedInfo(fi) {
		return root.Remove(name)
	}
	return nil
}

// sharedInfo reports whether fi describes a shared file.
func (j *Job) sharedInfo(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && j.SharedFile(uint64(st.Dev), uint64(st.Ino))
}

// addArtifact checks rel, runs prepare on it inside the build dir, and
// lists it for upload.
func (j *Job) addArtifact(rel string, prepare func(root *os.Root, clean string) error) error {
	clean, err := relPath(rel)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(j.buildDir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := prepare(root, clean); err != nil {
		return fmt.Errorf("engine: adding artifact %q: %w", rel, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if !slices.Contains(j.artifacts, clean) {
		j.artifacts = append(j.artifacts, clean)
	}
	return nil
}

func (j *Job) extraArtifacts() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.artifacts)
}

// FileVariablesDir returns the directory holding the job's file
// variables (whose values are paths into it), or "" when it has none.
func (j *Job) FileVariablesDir() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fileVars
}

// writeFileVariables writes each file variable's content to a file of its
// own outside the build dir and makes the variable's value that file's
// path, as GitLab runners do.
func (j *Job) writeFileVariables() error {
	j.mu.Lock()
	has := slices.ContainsFunc(j.vars, func(v gitlab.Variable) bool { return v.File })
	j.mu.Unlock()
	if !has {
		return nil
	}
	tmp, err := j.tmp()
	if err != nil {
		return err
	}
	dir := filepath.Join(tmp, "file-variables")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	vars := slices.Clone(j.vars) // never changed in place: see AllVariables
	defer func() { j.vars = vars }()
	for i, v := range vars {
		if !v.File {
			continue
		}
		if !validVarName(v.Key) {
			return fmt.Errorf("file variable %q: invalid name", v.Key)
		}
		p := filepath.Join(dir, v.Key)
		if err := os.WriteFile(p, []byte(v.Value), 0o600); err != nil {
			return err
		}
		vars[i].Value = p
	}
	j.fileVars = dir
	return nil
}

// validVarName reports a variable name GitLab accepts (letters, digits,
// underscores).
func validVarName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ScratchDir returns a directory of the job's own outside its build dir,
// for files a handler keeps during the job; it is removed when the job
// ends.
func (j *Job) ScratchDir() (string, error) {
	tmp, err := j.tmp()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tmp, "scratch")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// tmp returns the job's scratch dir outside the build dir (downloads,
// archives being built), creating it on first use: most jobs never need it.
func (j *Job) tmp() (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.tmpMade {
		mk := func(dir string) error { return os.MkdirAll(dir, 0o700) }
		if j.runner != nil {
			mk = j.runner.takeTmpDir
		}
		if err := mk(j.tmpDir); err != nil {
			return "", err
		}
		j.tmpMade = true
	}
	return j.tmpDir, nil
}

// relPath checks a path relative to the build dir.
func relPath(p string) (string, error) {
	clean := path.Clean(filepath.ToSlash(p))
	if p == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		return "", fmt.Errorf("engine: %q is not a path inside the build dir: %w", p, fs.ErrInvalid)
	}
	return clean, nil
}

// Println writes a line to the job log, formatted as fmt.Sprintln does.
func (j *Job) Println(a ...any) {
	j.log.writeString(fmt.Sprintln(a...))
}

// Printf writes a line to the job log, formatted as fmt.Sprintf does; a
// newline is added unless the text ends with one.
func (j *Job) Printf(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	j.log.writeString(s)
}

// Writer returns the job log as a raw byte stream: what is written appears
// in the log as it is (masked, like all output).
func (j *Job) Writer() io.Writer { return j.log }

// StartSection opens a collapsible section of the log with a header line.
// Section names keep only letters, digits, '_', '.' and '-'.
func (j *Job) StartSection(name, header string) {
	j.log.writeString(sectionStart(name, header))
}

// EndSection closes the section opened with the same name.
func (j *Job) EndSection(name string) {
	j.log.writeString(sectionEnd(name))
}

func sectionStart(name, header string) string {
	return fmt.Sprintf("section_start:%d:%s\r\x1b[0K\x1b[36;1m%s\x1b[0;m\n", time.Now().Unix(), sectionName(name), header)
}

func sectionEnd(name string) string {
	return fmt.Sprintf("section_end:%d:%s\r\x1b[0K\n", time.Now().Unix(), sectionName(name))
}

// BoundedLog returns a part of the job log for a handler that may write at
// most limit bytes of it (0: no bound beyond the runner's output limit).
// Bytes count as they appear in the log, after masking, so a cut never
// reveals part of a secret; past the limit, output is dropped and notice
// is written once in its place. Sections opened through it count too.
// Flush it when the handler's step ends.
func (j *Job) BoundedLog(limit int64, notice string) *BoundedLog {
	b := &BoundedLog{log: j.log, left: limit, notice: notice}
	if limit > 0 {
		b.m = mask.New(boundedSink{b}, j.log.secrets, j.log.prefixes)
	}
	return b
}

// BoundedLog is a part of the job log bounded in size: see
// [Job.BoundedLog]. It is safe for concurrent use.
type BoundedLog struct {
	log *jobLog

	mu     sync.Mutex
	m      *mask.Writer // nil: no limit
	left   int64
	notice string
	hit    bool
}

// Write writes p to the job log, up to the limit.
func (b *BoundedLog) Write(p []byte) (int, error) {
	if b.m == nil {
		return b.log.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hit {
		_, _ = b.m.Write(p)
	}
	return len(p), nil
}

// Flush writes out what masking held back (the start of what might have
// become a secret).
func (b *BoundedLog) Flush() {
	if b.m == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.hit {
		_ = b.m.Flush()
	}
}

// Hit reports whether the limit cut the output.
func (b *BoundedLog) Hit() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hit
}

// StartSection opens a collapsible section, as [Job.StartSection] does,
// within the limit.
func (b *BoundedLog) StartSection(name, header string) {
	_, _ = io.WriteString(b, sectionStart(name, header))
}

// EndSection closes a section, as [Job.EndSection] does, within the limit.
func (b *BoundedLog) EndSection(name string) {
	_, _ = io.WriteString(b, sectionEnd(name))
}

// boundedSink counts the masked output of a BoundedLog (called with its
// mutex held).
type boundedSink struct{ b *BoundedLog }

func (s boundedSink) Write(p []byte) (int, error) {
	b := s.b
	if b.hit {
		return len(p), nil
	}
	if int64(len(p)) <= b.left {
		b.left -= int64(len(p))
		return b.log.Write(p)
	}
	if b.left > 0 {
		_, _ = b.log.Write(p[:b.left])
	}
	b.left = 0
	b.hit = true
	b.log.writeString(b.notice)
	return len(p), nil
}

var sectionJunk = regexp.MustCompile(`[^A-Za-z0-9_.\-]+`)

func sectionName(name string) string {
	s := sectionJunk.ReplaceAllString(name, "_")
	if s == "" {
		s = "section"
	}
	return s
}

// Dependency is a job whose artifacts this job needs.
type Dependency struct {
	// ID and Name identify the dependency job.
	ID   int64
	Name string
	// HasArtifacts reports whether GitLab announced artifacts for it.
	HasArtifacts bool

	job   *Job
	token string

	mu      sync.Mutex
	archive *Archive
	charged int64          // bytes of the archive charged to budget
	budget  *resource.Pool // the job's disk budget, or nil
}

// maxArchive bounds a dependency's artifacts archive.
const maxArchive = 10 << 30

// ErrNoArtifacts is returned for a dependency without artifacts.
var ErrNoArtifacts = errors.New("engine: dependency has no artifacts")

// Artifacts returns the dependency's artifacts archive, downloading it
// the first time (with retries); later calls reuse the download. The
// archive lives until the job ends.
func (d *Dependency) Artifacts(ctx context.Context) (*Archive, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.archive != nil {
		return d.archive, nil
	}
	if !d.HasArtifacts {
		return nil, fmt.Errorf("%w: %s (job %d)", ErrNoArtifacts, d.Name, d.ID)
	}
	tmp, err := d.job.tmp()
	if err != nil {
		return nil, err
	}
	file := filepath.Join(tmp, fmt.Sprintf("dependency-%d.zip", d.ID))
	// The archive counts against the job's disk limit while it is kept.
	bytes, _ := d.job.BuildDirBudget()
	max := int64(maxArchive)
	if free := bytes.Free(); bytes != nil && free >= 0 {
		max = min(max, free)
	}
	n, err := d.job.client.DownloadArtifactToFile(ctx, d.ID, d.token, file, max)
	if errors.Is(err, gitlab.ErrTooLarge) && bytes != nil && max < maxArchive {
		return nil, fmt.Errorf("downloading artifacts of %s (job %d): %w: %s is used up", d.Name, d.ID, err, bytes.Name())
	}
	if err != nil {
		return nil, fmt.Errorf("downloading artifacts of %s (job %d): %w", d.Name, d.ID, err)
	}
	if !bytes.TakeAll(n) {
		os.Remove(file)
		return nil, fmt.Errorf("downloading artifacts of %s (job %d): %w", d.Name, d.ID, refusal(bytes))
	}
	d.charged, d.budget = n, bytes
	a, err := openArchive(file)
	if err != nil {
		return nil, fmt.Errorf("artifacts of %s (job %d): %w", d.Name, d.ID, err)
	}
	d.archive = a
	return a, nil
}

func (d *Dependency) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.archive != nil {
		d.archive.close()
		d.archive = nil
	}
	d.budget.Give(d.charged)
	d.charged = 0
}

// Archive is a dependency's artifacts archive (a zip file).
type Archive struct {
	f    *os.File
	size int64
	zr   *zip.Reader
}

func openArchive(file string) (*Archive, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("not a valid zip archive: %w", err)
	}
	return &Archive{f: f, size: fi.Size(), zr: zr}, nil
}

func (a *Archive) close() { a.f.Close() }

// Files returns the names of the regular files in the archive, in archive
// order.
func (a *Archive) Files() []string {
	var names []string
	for _, f := range a.zr.File {
		if f.Mode().IsRegular() {
			names = append(names, f.Name)
		}
	}
	return names
}

// FS returns the archive as a read-only file system.
func (a *Archive) FS() fs.FS { return a.zr }

// Open opens a file of the archive.
func (a *Archive) Open(name string) (fs.File, error) { return a.zr.Open(name) }

// ReadFile reads a file of the archive whole.
func (a *Archive) ReadFile(name string) ([]byte, error) { return fs.ReadFile(a.zr, name) }

// readerAt exposes the raw archive for extraction.
func (a *Archive) readerAt() (io.ReaderAt, int64) { return a.f, a.size }
