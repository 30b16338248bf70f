package ocisource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
)

// Defaults of [Options].
const (
	DefaultInterval      = time.Minute
	DefaultTimeout       = 10 * time.Minute
	DefaultMaxModuleSize = 32 << 20
	DefaultMaxTotalSize  = 1 << 30
)

// Options configure a [Source].
type Options struct {
	// CacheDir is the source's cache (see cache.go): one per runner
	// entry. Required.
	CacheDir string
	// Interval is how often a tag is re-resolved. Default
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds one resolution and pull. Default DefaultTimeout.
	Timeout time.Duration
	// MaxModuleSize bounds each NAME.wasm (the modules registry's
	// limit); MaxTotalSize all the files of an artifact together.
	MaxModuleSize, MaxTotalSize int64
	// Access says how to reach the registry.
	Access Access
	// Logger receives the operator log; nil discards it.
	Logger *slog.Logger
	// Observer, if set, learns of versions and failures (for metrics).
	Observer Observer
}

// Observer learns what a source does. Its methods must return quickly.
type Observer interface {
	// Serving: the source's modules dir is now the artifact of digest.
	Serving(digest string)
	// Resolved: the reference was resolved (or, pinned, found in the
	// cache) at t, whether or not its digest changed.
	Resolved(t time.Time)
	// Failed: resolving or pulling failed; the last good version (if
	// any) keeps serving.
	Failed(err error)
}

// Source is a modules dir kept in line with an OCI reference.
type Source struct {
	ref  Ref
	opts Options
	c    cache
	log  *slog.Logger
	id   string
	self *os.File // live/<id>.lock, held while the source runs

	mu      sync.Mutex
	current digest.Digest
	held    *os.File // the current version's lock (shared)
	closed  bool
}

var sourceSeq atomic.Int64

// New makes a source of the reference s ("oci://..."). Nothing is
// fetched until [Source.Start].
func New(s string, opts Options) (*Source, error) {
	ref, err := ParseRef(s)
	if err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		return nil, errors.New("ocisource: Options.CacheDir is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxModuleSize <= 0 {
		opts.MaxModuleSize = DefaultMaxModuleSize
	}
	if opts.MaxTotalSize <= 0 {
		opts.MaxTotalSize = DefaultMaxTotalSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	src := &Source{ref: ref, opts: opts, c: cache{dir: opts.CacheDir}, log: opts.Logger.With("source", ref.String())}
	if err := src.c.init(); err != nil {
		return nil, fmt.Errorf("ocisource: cache: %w", err)
	}
	src.id = fmt.Sprintf("%d-%d", os.Getpid(), sourceSeq.Add(1))
	self, err := os.OpenFile(src.c.path("live", src.id+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ocisource: cache: %w", err)
	}
	if err := unix.Flock(int(self.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		self.Close()
		return nil, fmt.Errorf("ocisource: cache: %w", err)
	}
	src.self = self
	return src, nil
}

// Ref returns the source's reference.
func (s *Source) Ref() Ref { return s.ref }

// Dir is the modules dir: a link to the current version, replaced by a
// rename at each swap. It exists once [Source.Start] succeeded.
func (s *Source) Dir() string { return s.c.path("live", s.id) }

// Digest is the digest of the artifact served, "" before the first.
func (s *Source) Digest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.current)
}

// Start makes Dir hold the reference's artifact: the last good version
// of the reference from the cache, and then, unless the reference is a
// digest found there, what the registry has now. It fails only when no
// version could be had: with a cached one, a registry that cannot be
// reached is logged (and observed) and the cached one serves.
func (s *Source) Start(ctx context.Context) error {
	if err := s.useCached(ctx); err != nil {
		return err
	}
	if s.Digest() != "" && s.ref.Pinned {
		s.observe(func(o Observer) { o.Resolved(time.Now()) })
		return nil
	}
	prev, err := s.Sync(ctx)
	if err != nil {
		if d := s.Digest(); d != "" {
			s.log.Warn("handlers registry not reachable: serving the last good version from the cache", "digest", d, "error", err)
			return nil
		}
		return err
	}
	s.done(ctx, prev)
	return nil
}

// useCached serves the reference's last good version, when the cache has
// it.
func (s *Source) useCached(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	d := s.c.readState().Refs[s.ref.String()]
	if s.ref.Pinned {
		d, _ = s.ref.Digest()
	}
	if d == "" || d.Validate() != nil || !s.c.hasVersion(d) {
		return nil
	}
	prev, err := s.swap(ctx, d)
	if err != nil {
		return err
	}
	prev.Release()
	s.log.Info("handlers from the cache", "digest", d)
	return nil
}

// Run re-resolves a tag every Interval until ctx ends; when its digest
// changed, the new version is pulled and swapped in, then reload is
// called (the modules registry's Reload: jobs in flight keep the version
// they started with), and then what the cache no longer needs is
// removed. A failure is logged and observed; the last good version keeps
// serving. A digest reference is never re-resolved: Run only waits.
func (s *Source) Run(ctx context.Context, reload func(context.Context) error) {
	if s.ref.Pinned {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		prev, err := s.Sync(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("handlers registry: update failed; the last good version keeps serving", "digest", s.Digest(), "error", err)
			}
			continue
		}
		if prev == nil {
			continue
		}
		if reload != nil {
			if err := reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("reloading handlers after an update failed", "error", err)
			}
		}
		s.done(ctx, prev)
	}
}

// Swapped is what a swap replaced: the previous version, held until
// nothing reads it any more.
type Swapped struct{ held *os.File }

// Release lets a clean-up remove the previous version.
func (p *Swapped) Release() {
	if p != nil && p.held != nil {
		p.held.Close()
	}
}

// done releases the previous version after a swap and cleans the cache.
func (s *Source) done(ctx context.Context, prev *Swapped) {
	prev.Release()
	if err := s.Clean(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("cleaning the handlers cache failed", "dir", s.opts.CacheDir, "error", err)
	}
}

// Clean removes from the cache what no source holds: versions, links of
// sources that are gone, blobs no remaining version was made of.
func (s *Source) Clean(ctx context.Context) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	n, err := s.c.clean()
	if n > 0 {
		s.log.Debug("old handler versions removed", "dir", s.opts.CacheDir, "versions", n)
	}
	return err
}

// Sync resolves the reference and, if its digest is not the one served,
// pulls it and swaps it in. It returns what the swap replaced (nil if
// nothing changed): the caller releases it once the modules registry has
// reloaded. Failures are observed.
func (s *Source) Sync(ctx context.Context) (*Swapped, error) {
	prev, err := s.sync(ctx)
	if err != nil {
		s.observe(func(o Observer) { o.Failed(err) })
		return nil, err
	}
	return prev, nil
}

func (s *Source) sync(ctx context.Context) (*Swapped, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	repo, err := s.opts.Access.repository(s.ref)
	if err != nil {
		return nil, err
	}
	desc, err := s.resolve(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", s.ref, err)
	}
	s.observe(func(o Observer) { o.Resolved(time.Now()) })
	if desc.Digest == digest.Digest(s.Digest()) {
		return nil, nil
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now()
	files, fetched, err := s.pull(ctx, repo, desc)
	if err != nil {
		return nil, fmt.Errorf("pulling %s@%s: %w", s.ref, desc.Digest, err)
	}
	prev, err := s.swap(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	if err := s.c.remember(s.ref.String(), desc.Digest); err != nil {
		s.log.Warn("recording the handlers version failed", "error", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	s.log.Info("handlers pulled", "digest", desc.Digest, "files", names, "fetched_bytes", fetched, "duration", time.Since(start))
	return prev, nil
}

// resolve finds the descriptor of the reference's manifest or index: a
// HEAD request, except for a digest whose manifest is cached.
func (s *Source) resolve(ctx context.Context, repo *remote.Repository) (ocispec.Descriptor, error) {
	if s.ref.Pinned {
		d, _ := s.ref.Digest()
		// Cached blobs were verified when they were fetched.
		if data, err := s.c.readBlob(d, MaxManifestSize); err == nil {
			var p parsed
			if json.Unmarshal(data, &p) == nil && p.MediaType != "" {
				return ocispec.Descriptor{MediaType: p.MediaType, Digest: d, Size: int64(len(data))}, nil
			}
		}
	}
	desc, err := repo.Resolve(ctx, s.ref.Reference.Reference)
	if err != nil {
		return desc, err
	}
	if s.ref.Pinned {
		if d, _ := s.ref.Digest(); desc.Digest != d {
			return desc, fmt.Errorf("the registry answered %s for %s", desc.Digest, d)
		}
	}
	return desc, nil
}

// pull fetches (or finds in the cache) the manifest or index desc and
// the blobs it lists, verified, and writes its version. It returns the
// version's files and how many bytes were fetched.
func (s *Source) pull(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]file, int64, error) {
	var fetched int64
	getManifest := func(desc ocispec.Descriptor) (parsed, error) {
		var data []byte
		var err error
		if s.c.hasBlob(desc.Digest, desc.Size) {
			data, err = s.c.readBlob(desc.Digest, MaxManifestSize)
		} else {
			data, err = fetchManifest(ctx, repo, desc)
			if err == nil {
				fetched += int64(len(data))
				err = s.c.putBlob(desc.Digest, bytes.NewReader(data), func() error { return nil })
			}
		}
		if err != nil {
			return parsed{}, err
		}
		return parseManifest(data, desc.MediaType)
	}
	p, err := getManifest(desc)
	if err != nil {
		return nil, fetched, err
	}
	blobs := []digest.Digest{desc.Digest}
	var files []file
	var layers []ocispec.Descriptor
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest:
		files, layers, err = handlerFiles(p, s.opts.MaxModuleSize)
		if err != nil {
			return nil, fetched, err
		}
	case ocispec.MediaTypeImageIndex:
		if len(p.Manifests) == 0 || len(p.Manifests) > maxIndexManifests {
			return nil, fetched, fmt.Errorf("the index lists %d manifests: between 1 and %d are served", len(p.Manifests), maxIndexManifests)
		}
		seen := map[string]digest.Digest{}
		for _, m := range p.Manifests {
			if m.MediaType != ocispec.MediaTypeImageManifest {
				return nil, fetched, fmt.Errorf("the index lists a %s (%s): an index of handlers lists handler artifacts' manifests only", m.MediaType, m.Digest)
			}
			mp, err := getManifest(m)
			if err != nil {
				return nil, fetched, fmt.Errorf("manifest %s of the index: %w", m.Digest, err)
			}
			f, l, err := handlerFiles(mp, s.opts.MaxModuleSize)
			if err != nil {
				return nil, fetched, fmt.Errorf("manifest %s of the index: %w", m.Digest, err)
			}
			for _, x := range f {
				if other, dup := seen[x.name]; dup {
					return nil, fetched, fmt.Errorf("%s is in two manifests of the index (%s and %s)", x.name, other, m.Digest)
				}
				seen[x.name] = m.Digest
			}
			files, layers = append(files, f...), append(layers, l...)
			blobs = append(blobs, m.Digest)
			if len(files) > MaxFiles {
				return nil, fetched, fmt.Errorf("the index's artifacts have more than %d files", MaxFiles)
			}
		}
	default:
		return nil, fetched, fmt.Errorf("%s is a %q: a handler artifact is an OCI image manifest (or an index of them)", desc.Digest, desc.MediaType)
	}
	names := map[string]bool{}
	var total int64
	for _, f := range files {
		if names[f.name] {
			return nil, fetched, fmt.Errorf("the artifact has two files named %s", f.name)
		}
		names[f.name] = true
		if total += f.size; total > s.opts.MaxTotalSize {
			return nil, fetched, fmt.Errorf("the artifact's files are more than %d bytes together; refused", s.opts.MaxTotalSize)
		}
	}
	if !s.c.hasVersion(desc.Digest) {
		for i, l := range layers {
			blobs = append(blobs, l.Digest)
			if s.c.hasBlob(l.Digest, l.Size) {
				continue
			}
			if err := s.fetchBlob(ctx, repo, l); err != nil {
				return nil, fetched, fmt.Errorf("%s (%s): %w", files[i].name, l.Digest, err)
			}
			fetched += l.Size
		}
		if err := s.c.materialize(desc.Digest, files, blobs); err != nil {
			return nil, fetched, err
		}
	}
	return files, fetched, nil
}

// fetchBlob fetches a layer through a verifier of its size and digest
// into the cache.
func (s *Source) fetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) error {
	rc, err := repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := content.NewVerifyReader(rc, desc) // reads at most desc.Size+1 bytes
	if err := s.c.putBlob(desc.Digest, vr, vr.Verify); err != nil {
		return fmt.Errorf("%w; refused", err)
	}
	return nil
}

// swap points Dir at the version of d (complete on disk), holding it, and
// returns what it replaced. Under the cache lock.
func (s *Source) swap(ctx context.Context, d digest.Digest) (*Swapped, error) {
	held, err := flock(ctx, s.c.path("versions", versionName(d)+".lock"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	if err := s.c.link(s.id, d); err != nil {
		held.Close()
		return nil, err
	}
	s.mu.Lock()
	prev := &Swapped{held: s.held}
	s.current, s.held = d, held
	closed := s.closed
	s.mu.Unlock()
	if closed {
		prev.Release()
		return nil, errors.New("ocisource: source closed")
	}
	s.observe(func(o Observer) { o.Serving(string(d)) })
	return prev, nil
}

// lock takes the cache lock.
func (s *Source) lock(ctx context.Context) (func(), error) {
	f, err := flock(ctx, s.c.path(lockName), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Close removes the source's link and releases its version (to be
// removed by a later clean-up). Call it once nothing reads Dir any more.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := os.Remove(s.Dir())
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if s.held != nil {
		s.held.Close()
		s.held = nil
	}
	os.Remove(s.c.path("live", s.id+".lock"))
	s.self.Close()
	return err
}

func (s *Source) observe(f func(Observer)) {
	if s.opts.Observer != nil {
		f(s.opts.Observer)
	}
}
