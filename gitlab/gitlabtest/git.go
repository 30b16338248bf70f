package gitlabtest

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Endpoints of git's smart HTTP protocol, served for the repositories made
// with [Server.NewRepo].
const (
	EndpointGitInfoRefs   Endpoint = "git_info_refs"   // GET /:path.git/info/refs?service=git-upload-pack
	EndpointGitUploadPack Endpoint = "git_upload_pack" // POST /:path.git/git-upload-pack
)

// Repo is a project's git repository, served by its Server over git's
// smart HTTP protocol (upload-pack, protocol version 0/1: what fetch and
// clone use), with shallow fetches (deepen), at
// <Server.URL>/<Path>.git. A client authenticates as GitLab's job tokens
// do, with basic auth gitlab-ci-token:<job token> of a running job; a
// public repository also answers anonymous fetches. Build its history with
// [Repo.Commit], [Repo.SetRef] and [Repo.Tag]. A Repo is safe for
// concurrent use.
type Repo struct {
	s *Server
	// ProjectID and Path ("group/name") are the project's.
	ProjectID int64
	Path      string

	mu      sync.Mutex
	st      *memory.Storage
	tips    map[plumbing.Hash]map[string]object.TreeEntry // flat trees of recent commits
	public  bool
	fetches []GitFetch
	when    time.Time
}

// GitFetch is one request for a repository: how it authenticated.
type GitFetch struct {
	Endpoint Endpoint
	// User is the basic auth user name ("" without credentials); Token is
	// its password when it was a job token of the server.
	User, Token string
	Status      int
	// Duration is how long the server took to compute its answer (the
	// pack, for upload-pack), before sending it.
	Duration time.Duration
}

// File is a change to a repository's tree, for [Repo.Commit].
type File struct {
	Path    string
	Content string
	Mode    filemode.FileMode // default a regular file
	// Target is the commit of a submodule (Mode filemode.Submodule).
	Target string
	Delete bool
}

// Text is a regular file.
func Text(path, content string) File { return File{Path: path, Content: content} }

// Executable is an executable file.
func Executable(path, content string) File {
	return File{Path: path, Content: content, Mode: filemode.Executable}
}

// Symlink is a symbolic link to target.
func Symlink(path, target string) File {
	return File{Path: path, Content: target, Mode: filemode.Symlink}
}

// Submodule is a submodule's entry (a gitlink) pinned at commit; the
// repository also needs its .gitmodules.
func Submodule(path, commit string) File {
	return File{Path: path, Mode: filemode.Submodule, Target: commit}
}

// Remove deletes a file.
func Remove(path string) File { return File{Path: path, Delete: true} }

// NewRepo creates an empty repository for project id at path
// ("group/name"), served at <URL>/<path>.git. It panics if the path is
// taken.
func (s *Server) NewRepo(projectID int64, repoPath string) *Repo {
	repoPath = strings.Trim(repoPath, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos == nil {
		s.repos = make(map[string]*Repo)
	}
	if _, ok := s.repos[repoPath]; ok {
		panic(fmt.Sprintf("gitlabtest: repository %s exists", repoPath))
	}
	r := &Repo{s: s, ProjectID: projectID, Path: repoPath, st: memory.NewStorage(),
		when: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	_ = r.st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main")))
	s.repos[repoPath] = r
	return r
}

// URL returns the repository's URL without credentials.
func (r *Repo) URL() string { return r.s.URL + "/" + r.Path + ".git" }

// SetPublic makes the repository answer fetches without credentials.
func (r *Repo) SetPublic(public bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.public = public
}

// Fetches returns the git requests the repository answered, in order.
func (r *Repo) Fetches() []GitFetch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.fetches)
}

// Commit adds a commit to branch (created from nothing, or at its tip)
// with the changes files make to the tip's tree, and returns its hash.
func (r *Repo) Commit(branch, message string, files ...File) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref := plumbing.NewBranchReferenceName(branch)
	var parents []plumbing.Hash
	flat := map[string]object.TreeEntry{}
	if tip, err := r.st.Reference(ref); err == nil {
		parents = []plumbing.Hash{tip.Hash()}
		if known, ok := r.tips[tip.Hash()]; ok {
			flat = maps.Clone(known)
		} else {
			c, err := object.GetCommit(r.st, tip.Hash())
			if err != nil {
				panic(err)
			}
			r.flatten(c.TreeHash, "", flat)
		}
	}
	for _, f := range files {
		p := strings.Trim(f.Path, "/")
		if f.Delete {
			delete(flat, p)
			continue
		}
		mode := f.Mode
		if mode == filemode.Empty {
			mode = filemode.Regular
		}
		var h plumbing.Hash
		if mode == filemode.Submodule {
			h = plumbing.NewHash(f.Target)
		} else {
			h = r.blob([]byte(f.Content))
		}
		flat[p] = object.TreeEntry{Name: p, Mode: mode, Hash: h}
	}
	tree := r.buildTree(flat, ".")
	r.when = r.when.Add(time.Minute)
	sig := object.Signature{Name: "Test", Email: "test@example.com", When: r.when}
	c := &object.Commit{Author: sig, Committer: sig, Message: message + "\n", TreeHash: tree, ParentHashes: parents}
	h := r.store(c)
	if err := r.st.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		panic(err)
	}
	if r.tips == nil || len(r.tips) > 16 {
		r.tips = map[plumbing.Hash]map[string]object.TreeEntry{}
	}
	r.tips[h] = flat
	return h.String()
}

// SetRef points any ref (refs/merge-requests/1/head, refs/pipelines/7...)
// at commit; an empty commit deletes it.
func (r *Repo) SetRef(name, commit string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if commit == "" {
		_ = r.st.RemoveReference(plumbing.ReferenceName(name))
		return
	}
	if err := r.st.SetReference(plumbing.NewHashReference(plumbing.ReferenceName(name), plumbing.NewHash(commit))); err != nil {
		panic(err)
	}
}

// Tag adds a lightweight tag.
func (r *Repo) Tag(name, commit string) { r.SetRef("refs/tags/"+name, commit) }

// Branch returns the commit at the tip of branch, or "".
func (r *Repo) Branch(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.st.Reference(plumbing.NewBranchReferenceName(name))
	if err != nil {
		return ""
	}
	return ref.Hash().String()
}

func (r *Repo) store(o interface {
	Encode(plumbing.EncodedObject) error
}) plumbing.Hash {
	eo := r.st.NewEncodedObject()
	if err := o.Encode(eo); err != nil {
		panic(err)
	}
	h, err := r.st.SetEncodedObject(eo)
	if err != nil {
		panic(err)
	}
	return h
}

func (r *Repo) blob(data []byte) plumbing.Hash {
	eo := r.st.NewEncodedObject()
	eo.SetType(plumbing.BlobObject)
	eo.SetSize(int64(len(data)))
	w, _ := eo.Writer()
	_, _ = w.Write(data)
	_ = w.Close()
	h, err := r.st.SetEncodedObject(eo)
	if err != nil {
		panic(err)
	}
	return h
}

// flatten lists the non-tree entries under tree by their full path.
func (r *Repo) flatten(tree plumbing.Hash, prefix string, out map[string]object.TreeEntry) {
	t, err := object.GetTree(r.st, tree)
	if err != nil {
		panic(err)
	}
	for _, e := range t.Entries {
		p := path.Join(prefix, e.Name)
		if e.Mode == filemode.Dir {
			r.flatten(e.Hash, p, out)
			continue
		}
		out[p] = object.TreeEntry{Name: p, Mode: e.Mode, Hash: e.Hash}
	}
}

// buildTree stores the trees of the entries (full paths) under dir and
// returns dir's.
func (r *Repo) buildTree(flat map[string]object.TreeEntry, dir string) plumbing.Hash {
	// Each directory's direct entries, in one pass over the paths.
	byDir := map[string][]object.TreeEntry{}
	dirs := map[string]bool{}
	for p, e := range flat {
		d, name := path.Dir(p), path.Base(p)
		byDir[d] = append(byDir[d], object.TreeEntry{Name: name, Mode: e.Mode, Hash: e.Hash})
		for ; d != "."; d = path.Dir(d) {
			if dirs[d] {
				break
			}
			dirs[d] = true
		}
	}
	for d := range dirs {
		parent := path.Dir(d)
		byDir[parent] = append(byDir[parent], object.TreeEntry{Name: path.Base(d), Mode: filemode.Dir})
	}
	var build func(d string) plumbing.Hash
	build = func(d string) plumbing.Hash {
		t := &object.Tree{Entries: byDir[d]}
		for i, e := range t.Entries {
			if e.Mode == filemode.Dir {
				t.Entries[i].Hash = build(path.Join(d, e.Name))
			}
		}
		sort.Sort(object.TreeEntrySorter(t.Entries))
		return r.store(t)
	}
	if dir == "" {
		dir = "."
	}
	return build(dir)
}

// repoFor returns the repository served at p (its path with ".git"), and
// the rest of the path.
func (s *Server) repoFor(p string) (*Repo, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before, after, ok := strings.Cut(strings.TrimPrefix(p, "/"), ".git/")
	if !ok {
		return nil, ""
	}
	return s.repos[before], after
}

// gitAuth checks a git request's credentials: a running job's token, or
// none for a public repository. It returns the reply that refuses it, or
// nil.
func (s *Server) gitAuth(r *http.Request, repo *Repo, f *GitFetch) *reply {
	user, pass, ok := r.BasicAuth()
	f.User = user
	s.mu.Lock()
	valid := false
	if ok && user == "gitlab-ci-token" {
		for _, j := range s.jobs {
			if j.active() && j.tokenOK(pass) {
				valid = true
				f.Token = pass
			}
		}
	}
	s.mu.Unlock()
	repo.mu.Lock()
	public := repo.public
	repo.mu.Unlock()
	if valid || (!ok && public) {
		return nil
	}
	rep := newReply(http.StatusUnauthorized)
	rep.header.Set("WWW-Authenticate", `Basic realm="GitLab"`)
	rep.header.Set("Content-Type", "text/plain; charset=utf-8")
	rep.body = []byte("HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password.\n")
	return rep
}

// handleGit serves git's smart HTTP for repo.
func (s *Server) handleGit(w http.ResponseWriter, r *http.Request, repo *Repo, ep Endpoint) {
	f := GitFetch{Endpoint: ep}
	start := time.Now()
	defer func() {
		repo.mu.Lock()
		repo.fetches = append(repo.fetches, f)
		repo.mu.Unlock()
	}()
	if rep := s.gitAuth(r, repo, &f); rep != nil {
		f.Status = rep.status
		writeReply(w, rep)
		return
	}
	var buf bytes.Buffer
	var err error
	var ctype string
	if ep == EndpointGitInfoRefs {
		if r.URL.Query().Get("service") != "git-upload-pack" {
			f.Status = http.StatusForbidden
			writeReply(w, errReply(http.StatusForbidden, "only git-upload-pack is served"))
			return
		}
		ctype = "application/x-git-upload-pack-advertisement"
		err = repo.advertise(&buf)
	} else {
		ctype = "application/x-git-upload-pack-result"
		body, rerr := readLimited(r.Body, 16<<20)
		if rerr != nil {
			f.Status = http.StatusBadRequest
			writeReply(w, errReply(http.StatusBadRequest, rerr.Error()))
			return
		}
		err = repo.uploadPack(body, &buf)
	}
	if err != nil {
		f.Status = http.StatusInternalServerError
		writeReply(w, errReply(http.StatusInternalServerError, err.Error()))
		return
	}
	f.Status = http.StatusOK
	f.Duration = time.Since(start)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// advertise writes the refs and capabilities of upload-pack.
func (r *Repo) advertise(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ar := packp.NewAdvRefs()
	ar.Prefix = [][]byte{[]byte("# service=git-upload-pack"), pktline.Flush}
	for _, c := range []capability.Capability{capability.OFSDelta, capability.Shallow, capability.NoProgress, capability.AllowReachableSHA1InWant} {
		_ = ar.Capabilities.Add(c)
	}
	_ = ar.Capabilities.Set(capability.Agent, "git/gitlabtest")
	refs, err := r.st.IterReferences()
	if err != nil {
		return err
	}
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference {
			ar.References[ref.Name().String()] = ref.Hash()
		}
		return nil
	})
	if head, err := r.st.Reference(plumbing.HEAD); err == nil && head.Type() == plumbing.SymbolicReference {
		if tip, ok := ar.References[head.Target().String()]; ok {
			ar.Head = &tip
			_ = ar.Capabilities.Add(capability.SymRef, "HEAD:"+head.Target().String())
		}
	}
	return ar.Encode(w)
}

// uploadPack answers an upload-pack request (wants, shallows, deepen,
// haves, done) with the shallow update, a NAK and a pack of what the
// client lacks.
func (r *Repo) uploadPack(body []byte, w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wants, haves, clientShallow []plumbing.Hash
	depth := 0
	sc := pktline.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSuffix(string(sc.Bytes()), "\n")
		word, rest, _ := strings.Cut(line, " ")
		if len(rest) > 40 {
			rest = rest[:40]
		}
		switch word {
		case "want":
			wants = append(wants, plumbing.NewHash(rest))
		case "have":
			haves = append(haves, plumbing.NewHash(rest))
		case "shallow":
			clientShallow = append(clientShallow, plumbing.NewHash(rest))
		case "deepen":
			n, err := strconv.Atoi(rest)
			if err != nil {
				return fmt.Errorf("bad deepen %q", rest)
			}
			depth = n
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(wants) == 0 {
		return fmt.Errorf("no wants")
	}
	for _, h := range wants {
		if _, err := r.st.EncodedObject(plumbing.AnyObject, h); err != nil {
			return fmt.Errorf("upload-pack: not our ref %s", h)
		}
	}
	// What the client has: the commits reachable from its haves (down to
	// its shallow boundary) and the objects of the haves' trees.
	isShallow := map[plumbing.Hash]bool{}
	for _, h := range clientShallow {
		isShallow[h] = true
	}
	hasCommit := map[plumbing.Hash]bool{}
	hasObject := map[plumbing.Hash]bool{}
	stack := slices.Clone(haves)
	for _, h := range haves {
		if c, err := object.GetCommit(r.st, h); err == nil {
			r.treeObjects(c.TreeHash, hasObject, nil)
		}
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if hasCommit[h] {
			continue
		}
		c, err := object.GetCommit(r.st, h)
		if err != nil {
			continue
		}
		hasCommit[h] = true
		if !isShallow[h] {
			stack = append(stack, c.ParentHashes...)
		}
	}
	// What to send: the commits within depth of the wants that the client
	// lacks, their trees' objects it lacks.
	var send []plumbing.Hash
	sent := map[plumbing.Hash]bool{}
	var shallow []plumbing.Hash
	type item struct {
		h plumbing.Hash
		d int
	}
	queue := []item{}
	for _, h := range wants {
		queue = append(queue, item{h, 1})
	}
	seen := map[plumbing.Hash]bool{}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if seen[it.h] || hasCommit[it.h] {
			continue
		}
		seen[it.h] = true
		c, err := object.GetCommit(r.st, it.h)
		if err != nil {
			continue
		}
		send = append(send, it.h)
		sent[it.h] = true
		r.treeObjects(c.TreeHash, hasObject, func(h plumbing.Hash) {
			if !sent[h] {
				sent[h] = true
				send = append(send, h)
			}
		})
		if depth > 0 && it.d >= depth {
			if len(c.ParentHashes) > 0 {
				shallow = append(shallow, it.h)
			}
			continue
		}
		for _, p := range c.ParentHashes {
			queue = append(queue, item{p, it.d + 1})
		}
	}
	if depth > 0 {
		up := packp.ShallowUpdate{Shallows: shallow}
		if err := up.Encode(w); err != nil {
			return err
		}
	}
	if err := pktline.NewEncoder(w).EncodeString("NAK\n"); err != nil {
		return err
	}
	_, err := packfile.NewEncoder(w, r.st, false).Encode(send, 10)
	return err
}

// treeObjects calls add for tree and every object under it that has is
// without, marking them in has; add nil only marks.
func (r *Repo) treeObjects(tree plumbing.Hash, has map[plumbing.Hash]bool, add func(plumbing.Hash)) {
	if has[tree] {
		return
	}
	has[tree] = true
	if add != nil {
		add(tree)
	}
	t, err := object.GetTree(r.st, tree)
	if err != nil {
		return
	}
	for _, e := range t.Entries {
		switch {
		case e.Mode == filemode.Dir:
			r.treeObjects(e.Hash, has, add)
		case e.Mode == filemode.Submodule:
		case !has[e.Hash]:
			has[e.Hash] = true
			if add != nil {
				add(e.Hash)
			}
		}
	}
}

// gitInfo returns the git_info of a job for ref: see [JobBuilder.Sources].
func (r *Repo) gitInfo(ref string) gitlab.GitInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := gitlab.GitInfo{Ref: ref, RefType: "branch", BeforeSha: strings.Repeat("0", 40), Depth: 20}
	full := plumbing.ReferenceName(ref)
	switch {
	case strings.HasPrefix(ref, "refs/"):
		g.Refspecs = []string{"+" + ref + ":" + ref}
	case r.has(plumbing.NewBranchReferenceName(ref)):
		full = plumbing.NewBranchReferenceName(ref)
		g.Refspecs = []string{"+" + full.String() + ":refs/remotes/origin/" + ref}
	case r.has(plumbing.NewTagReferenceName(ref)):
		full = plumbing.NewTagReferenceName(ref)
		g.RefType = "tag"
		g.Refspecs = []string{"+" + full.String() + ":" + full.String()}
	default:
		full = plumbing.NewBranchReferenceName(ref)
		g.Refspecs = []string{"+" + full.String() + ":refs/remotes/origin/" + ref}
	}
	if tip, err := r.st.Reference(full); err == nil {
		g.Sha = tip.Hash().String()
	} else {
		g.Sha = strings.Repeat("0", 40)
	}
	return g
}

func (r *Repo) has(name plumbing.ReferenceName) bool {
	_, err := r.st.Reference(name)
	return err == nil
}
