package gitsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/go-git/go-billy/v5/osfs"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Logger is the job log.
type Logger interface {
	Printf(format string, a ...any)
}

// Job is what [Cache.Get] needs of a job.
type Job struct {
	Payload *gitlab.Job
	// Vars are the job's variables.
	Vars gitlab.Variables
	// Dir is the build dir: it exists and is empty.
	Dir string
	// Tmp returns a dir of the job's own outside Dir, removed when the job
	// ends (for GIT_STRATEGY=clone's repository).
	Tmp func() (string, error)
	// Budget, if set, is charged for what is written into Dir, and for a
	// clone's repository while it exists.
	Budget Budget
	// Log is the job log.
	Log Logger
}

// Error is a failure to get the sources, worded as git words it (e.g.
// "fatal: couldn't find remote ref refs/heads/nope"); the job token never
// appears in it. The job log has its lines already.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func failf(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// Get puts the job's sources into its build dir as GitLab Runner's
// get_sources stage does, with the trace lines it writes (the caller opens
// the section). It returns an [*Error] when the sources cannot be had
// after GET_SOURCES_ATTEMPTS tries, or the context's error.
func (c *Cache) Get(ctx context.Context, j Job) error {
	o := ParseOptions(j.Payload, j.Vars)
	g := &getter{c: c, j: j, o: o, token: j.Payload.Token}
	for _, w := range o.Warnings {
		g.printf("\x1b[33;1mWARNING: %s\x1b[0;m", w)
	}
	switch o.Strategy {
	case None:
		g.printf("Skipping Git repository setup")
		g.printf("Skipping Git checkout")
		g.printf("Skipping Git submodules setup")
		return nil
	case Empty:
		g.printf("Skipping Git repository setup and creating an empty build directory")
		g.printf("Skipping Git checkout")
		g.printf("Skipping Git submodules setup")
		return nil
	}
	if j.Payload.GitInfo.RepoURL == "" {
		// A job of no repository (wasmrunner exec's, for one).
		g.printf("Skipping Git repository setup: the job names no repository")
		return nil
	}
	var err error
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		if attempt > 1 {
			g.printf("Retrying get_sources (attempt %d of %d)...", attempt, o.Attempts)
		}
		if err = g.once(ctx); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var ge *Error
		if !errors.As(err, &ge) {
			err = &Error{Msg: "fatal: " + err.Error()}
		}
		err = &Error{Msg: g.redact(err.Error())}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			g.printf("%s", line)
		}
	}
	return err
}

// getter is one job's get_sources.
type getter struct {
	c     *Cache
	j     Job
	o     Options
	token string
	// cloned is what the clone's repository is charged, for
	// GIT_STRATEGY=clone.
	cloned int64
}

func (g *getter) printf(format string, a ...any) {
	g.j.Log.Printf("%s", g.redact(fmt.Sprintf(format, a...)))
}

// redact removes the job token from s, wherever it is (a URL's userinfo
// in a go-git error, for one).
func (g *getter) redact(s string) string {
	if g.token != "" {
		s = strings.ReplaceAll(s, g.token, "[MASKED]")
		s = strings.ReplaceAll(s, url.QueryEscape(g.token), "[MASKED]")
	}
	return s
}

// once tries to get the sources once; on failure the build dir is left
// empty and its budget as it was.
func (g *getter) once(ctx context.Context) error {
	root, err := os.OpenRoot(g.j.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	co := newCheckout(ctx, root, g.j.Budget)
	if err := g.run(ctx, co); err != nil {
		co.undo()
		return err
	}
	return nil
}

// remote splits a repo_url into its URL without credentials and its basic
// auth, if any.
func remote(raw string) (string, transport.AuthMethod, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", nil, errors.New("fatal: the job's repository URL is not valid")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil, fmt.Errorf("fatal: the job's repository URL is not http(s): %s is not supported", u.Scheme)
	}
	var auth transport.AuthMethod
	if u.User != nil {
		pass, _ := u.User.Password()
		auth = &githttp.BasicAuth{Username: u.User.Username(), Password: pass}
		u.User = nil
	}
	return strings.TrimSuffix(u.String(), "/"), auth, nil
}

func (g *getter) run(ctx context.Context, co *checkout) error {
	p := g.j.Payload
	gi := p.GitInfo
	url, auth, err := remote(gi.RepoURL)
	if err != nil {
		return &Error{Msg: err.Error()}
	}
	if g.o.Depth > 0 {
		g.printf("Fetching changes with git depth set to %d...", g.o.Depth)
	} else {
		g.printf("Fetching changes...")
	}

	var repo *git.Repository
	var fresh bool
	var modules string // where submodules' repositories go
	strategy := g.o.Strategy
	if strategy == Fetch && p.JobInfo.ProjectID <= 0 {
		strategy = Clone // nothing to key a cache on
	}
	if strategy == Fetch {
		h, err := g.c.lock(ctx, p.JobInfo.ProjectID, func() {
			g.printf("Waiting for another job of this project to finish with the project's cached repository...")
		})
		if err != nil {
			return err
		}
		defer func() {
			h.unlock()
			g.c.evict(p.JobInfo.ProjectID)
		}()
		repo, fresh, err = openRepo(filepath.Join(h.dir, "repo.git"), url, g.o.Depth == 0)
		if err != nil {
			return fmt.Errorf("opening the project's cached repository: %w", err)
		}
		modules = filepath.Join(h.dir, "modules")
	} else {
		tmp, err := g.j.Tmp()
		if err != nil {
			return err
		}
		dir := filepath.Join(tmp, "clone")
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if repo, fresh, err = openRepo(filepath.Join(dir, "repo.git"), url, true); err != nil {
			return err
		}
		modules = filepath.Join(dir, "modules")
		// The clone is the job's own: it counts against its disk limit
		// while it exists.
		defer g.releaseClone()
	}
	if fresh {
		g.printf("Initialized empty Git repository")
		g.printf("Created fresh repository.")
	} else {
		g.printf("Reinitialized existing Git repository")
	}

	specs, err := refspecs(gi)
	if err != nil {
		return err
	}
	if err := fetch(ctx, repo, url, auth, specs, g.o.Depth, g.o.Prune, g.o.Tags); err != nil {
		return fetchError(ctx, err, url)
	}
	if strategy == Clone {
		if err := g.charge(filepath.Dir(modules)); err != nil {
			return err
		}
	}
	commit, err := repo.CommitObject(plumbing.NewHash(gi.Sha))
	if err != nil || !plumbing.IsHash(gi.Sha) {
		return failf("fatal: reference is not a tree: %s", gi.Sha)
	}
	if !g.o.Checkout {
		g.printf("Skipping Git checkout")
		g.printf("Skipping Git submodules setup")
		return nil
	}
	g.printf("Checking out %s as detached HEAD (ref is %s)...", short(gi.Sha), gi.Ref)
	tree, err := commit.Tree()
	if err != nil {
		return failf("fatal: reading the tree of %s: %v", gi.Sha, err)
	}
	links := map[string]plumbing.Hash{}
	if err := co.tree(repo.Storer, tree, ".", links); err != nil {
		return failf("fatal: could not check out %s: %v", short(gi.Sha), err)
	}
	if g.o.Clean != nil {
		if err := clean(co.root, co.tracked, g.o.Clean, func(p string) { g.printf("Removing %s", p) }); err != nil {
			return failf("fatal: git clean: %v", err)
		}
	}
	switch g.o.Submodules {
	case SubmodulesNone:
		g.printf("Skipping Git submodules setup")
		return nil
	case SubmodulesNormal:
		g.printf("Updating/initializing submodules%s...", withDepth(g.o.SubmoduleDepth))
	case SubmodulesRecursive:
		g.printf("Updating/initializing submodules recursively%s...", withDepth(g.o.SubmoduleDepth))
	}
	sm := &submodules{g: g, co: co, dir: modules, projectURL: url, auth: auth,
		recursive: g.o.Submodules == SubmodulesRecursive, chargeClone: strategy == Clone}
	return sm.update(ctx, commit, ".", url, links, 1)
}

func withDepth(d int) string {
	if d > 0 {
		return " with git depth set to " + strconv.Itoa(d)
	}
	return ""
}

func short(sha string) string { return sha[:min(8, len(sha))] }

// charge charges the budget for the bytes under dir beyond what was
// charged for it already (a clone's repository grows with each fetch).
func (g *getter) charge(dir string) error {
	if g.j.Budget == nil {
		return nil
	}
	n := dirSize(dir) - g.cloned
	if n <= 0 {
		return nil
	}
	if err := g.j.Budget.Take(n, 0); err != nil {
		return failf("fatal: the cloned repository (%d bytes) does not fit: %v", n, err)
	}
	g.cloned += n
	return nil
}

// releaseClone gives back the clone's charge once it is removed.
func (g *getter) releaseClone() {
	if g.j.Budget != nil {
		g.j.Budget.Give(g.cloned, 0)
	}
	g.cloned = 0
}

// openRepo opens the bare repository in dir for url, or makes it anew: it
// is made anew when it cannot be read, or when it is shallow and full is
// asked (go-git does not deepen a shallow repository to its full history).
func openRepo(dir, url string, full bool) (*git.Repository, bool, error) {
	open := func() (*git.Repository, error) {
		st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
		return git.Open(st, nil)
	}
	fresh := false
	r, err := open()
	if err == nil && full {
		if s, serr := r.Storer.Shallow(); serr != nil || len(s) > 0 {
			err = errors.New("shallow")
		}
	}
	if err != nil {
		if err := os.RemoveAll(dir); err != nil {
			return nil, false, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, err
		}
		st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
		if r, err = git.Init(st, nil); err != nil {
			return nil, false, err
		}
		fresh = true
	}
	// The remote's URL, never its credentials, is kept with the
	// repository; a project may have moved since the last job.
	_ = r.DeleteRemote("origin")
	if _, err := r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, false, err
	}
	return r, fresh, nil
}

// refspecs returns the job's refspecs: git_info.refspecs, else the ref's.
func refspecs(gi gitlab.GitInfo) ([]config.RefSpec, error) {
	raw := gi.Refspecs
	if len(raw) == 0 {
		switch {
		case strings.HasPrefix(gi.Ref, "refs/"):
			raw = []string{"+" + gi.Ref + ":" + gi.Ref}
		case gi.RefType == "tag":
			raw = []string{"+refs/tags/" + gi.Ref + ":refs/tags/" + gi.Ref}
		default:
			raw = []string{"+refs/heads/" + gi.Ref + ":refs/remotes/origin/" + gi.Ref}
		}
	}
	var specs []config.RefSpec
	for _, s := range raw {
		rs := config.RefSpec(s)
		if err := rs.Validate(); err != nil {
			return nil, failf("fatal: invalid refspec '%s'", s)
		}
		specs = append(specs, rs)
	}
	return specs, nil
}

// fetch fetches specs of url into repo.
func fetch(ctx context.Context, repo *git.Repository, url string, auth transport.AuthMethod, specs []config.RefSpec, depth int, prune, tags bool) error {
	tm := git.NoTags
	if tags {
		tm = git.AllTags
	}
	err := repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin", RemoteURL: url, RefSpecs: specs, Depth: depth,
		Auth: auth, Tags: tm, Force: true, Prune: prune,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

// fetchError words a fetch's error as git does.
func fetchError(ctx context.Context, err error, url string) error {
	msg := err.Error()
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return failf("remote: HTTP Basic: Access denied\nfatal: Authentication failed for '%s/'", url)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return failf("remote: The project you were looking for could not be found or you don't have permission to view it.\nfatal: repository '%s/' not found", url)
	case strings.HasPrefix(msg, "couldn't find remote ref"):
		return failf("fatal: %s", strings.ReplaceAll(msg, `"`, ""))
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return failf("fatal: couldn't find remote ref: the repository is empty")
	default:
		return failf("fatal: unable to access '%s/': %v", url, err)
	}
}

// submodules sets up the submodules of a checkout.
type submodules struct {
	g           *getter
	co          *checkout
	dir         string // their repositories, one per URL
	projectURL  string
	auth        transport.AuthMethod // the job token's
	recursive   bool
	chargeClone bool
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// update sets up the submodules of commit, checked out at dir (the build
// dir's "." or a submodule's path), whose repository is at parentURL.
func (s *submodules) update(ctx context.Context, commit *object.Commit, dir, parentURL string, links map[string]plumbing.Hash, level int) error {
	if len(links) == 0 {
		return nil
	}
	if level > 10 {
		return failf("fatal: submodules nested more than 10 deep")
	}
	mods := config.NewModules()
	if f, err := commit.File(".gitmodules"); err == nil {
		data, err := f.Contents()
		if err == nil {
			err = mods.Unmarshal([]byte(data))
		}
		if err != nil {
			return failf("fatal: bad .gitmodules in %s: %v", dir, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(links)) {
		rel := strings.TrimPrefix(p, dir+"/")
		if dir == "." {
			rel = p
		}
		var sm *config.Submodule
		for _, m := range mods.Submodules {
			if path.Clean(m.Path) == rel {
				sm = m
			}
		}
		if sm == nil {
			return failf("fatal: No url found for submodule path '%s' in .gitmodules", p)
		}
		u, auth, err := s.resolve(sm.URL, parentURL)
		if err != nil {
			return failf("fatal: submodule '%s': %v", sm.Name, err)
		}
		s.g.printf("Submodule '%s' (%s) registered for path '%s'", sm.Name, u, p)
		sum := sha256.Sum256([]byte(u))
		repoDir := filepath.Join(s.dir, unsafeName.ReplaceAllString(sm.Name, "_")+"-"+hex.EncodeToString(sum[:6])+".git")
		repo, _, err := openRepo(repoDir, u, s.g.o.SubmoduleDepth == 0)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", sm.Name, err)
		}
		want := links[p]
		if _, err := repo.CommitObject(want); err != nil {
			specs := []config.RefSpec{config.RefSpec(want.String() + ":refs/wasmrunner/submodule")}
			err := fetch(ctx, repo, u, auth, specs, s.g.o.SubmoduleDepth, false, false)
			if errors.Is(err, git.ErrExactSHA1NotSupported) {
				specs = []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"}
				err = fetch(ctx, repo, u, auth, specs, s.g.o.SubmoduleDepth, false, false)
			}
			if err != nil {
				var ge *Error
				if e := fetchError(ctx, err, u); errors.As(e, &ge) {
					return failf("%s\nfatal: clone of '%s' into submodule path '%s' failed", ge.Msg, u, p)
				}
				return err
			}
		}
		if s.chargeClone {
			if err := s.g.charge(filepath.Dir(s.dir)); err != nil {
				return err
			}
		}
		sub, err := repo.CommitObject(want)
		if err != nil {
			return failf("fatal: Fetched in submodule path '%s', but it did not contain %s. Direct fetching of that commit failed.", p, want)
		}
		tree, err := sub.Tree()
		if err != nil {
			return failf("fatal: submodule path '%s': %v", p, err)
		}
		subLinks := map[string]plumbing.Hash{}
		if err := s.co.tree(repo.Storer, tree, p, subLinks); err != nil {
			return failf("fatal: could not check out submodule path '%s': %v", p, err)
		}
		s.g.printf("Submodule path '%s': checked out '%s'", p, want)
		if s.recursive {
			if err := s.update(ctx, sub, p, u, subLinks, level+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// resolve returns the URL of a submodule and its credentials: a relative
// URL is resolved against the parent's; the project's host gets the job
// token (as GitLab Runner gives it), other hosts what their URL carries,
// if anything. With GIT_SUBMODULE_FORCE_HTTPS, an SSH URL of the
// project's host is fetched over the project's scheme instead.
func (s *submodules) resolve(raw, parentURL string) (string, transport.AuthMethod, error) {
	if strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../") {
		base := strings.TrimSuffix(parentURL, "/")
		rest := raw
		for {
			if r, ok := strings.CutPrefix(rest, "./"); ok {
				rest = r
				continue
			}
			if r, ok := strings.CutPrefix(rest, "../"); ok {
				i := strings.LastIndex(base, "/")
				if i < 0 || strings.HasSuffix(base[:i], "/") {
					return "", nil, fmt.Errorf("relative URL %s climbs above its host", raw)
				}
				base, rest = base[:i], r
				continue
			}
			break
		}
		raw = base + "/" + rest
	}
	project, _ := url.Parse(s.projectURL)
	force, _ := strconv.ParseBool(s.g.j.Vars.Value("GIT_SUBMODULE_FORCE_HTTPS"))
	if host, p, ok := scpLike(raw); ok {
		if !force || host != project.Hostname() {
			return "", nil, fmt.Errorf("%s: only http(s) submodule URLs are supported (GIT_SUBMODULE_FORCE_HTTPS=true fetches the project's host's over http(s))", raw)
		}
		raw = project.Scheme + "://" + project.Host + "/" + strings.TrimPrefix(p, "/")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", nil, fmt.Errorf("invalid URL %s", raw)
	}
	if u.Scheme == "ssh" || u.Scheme == "git+ssh" {
		if !force || u.Hostname() != project.Hostname() {
			return "", nil, fmt.Errorf("%s: only http(s) submodule URLs are supported (GIT_SUBMODULE_FORCE_HTTPS=true fetches the project's host's over http(s))", u.Redacted())
		}
		u.Scheme, u.Host, u.User = project.Scheme, project.Host, nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil, fmt.Errorf("%s: only http(s) submodule URLs are supported", u.Redacted())
	}
	var auth transport.AuthMethod
	if u.User != nil {
		pass, _ := u.User.Password()
		auth = &githttp.BasicAuth{Username: u.User.Username(), Password: pass}
		u.User = nil
	}
	if u.Host == project.Host && u.Scheme == project.Scheme {
		auth = s.auth
	}
	return strings.TrimSuffix(u.String(), "/"), auth, nil
}

// scpLike splits git@host:path.
func scpLike(s string) (host, p string, ok bool) {
	if strings.Contains(s, "://") {
		return "", "", false
	}
	at := strings.Index(s, "@")
	colon := strings.Index(s, ":")
	if colon < 0 || at > colon {
		return "", "", false
	}
	return s[at+1 : colon], s[colon+1:], true
}
