package pipeline

import (
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Limits of include: (GitLab's defaults: 150 files, 100 levels).
const (
	maxIncludes     = 150
	maxIncludeDepth = 100
	maxIncludeSize  = 1 << 20
	// maxReferenceDepth is how many !reference tags may be nested
	// (GitLab: 10).
	maxReferenceDepth = 10
)

// include applies include: of root (docs: ci/yaml "include"): each
// included file, with its own includes applied, is merged in order, and
// root's own keys are merged over the result (maps key by key, other
// values replaced). Only local files of the project are read.
func (p *parser) include(root *value, depth int, seen map[string]bool) (*value, error) {
	v, ok := root.get("include")
	if !ok {
		return root, nil
	}
	rest := root.without("include")
	if v.isNull() {
		return rest, nil
	}
	if depth >= maxIncludeDepth {
		return nil, errAt(v, "", "include: nested deeper than %d levels", maxIncludeDepth)
	}
	items := []*value{v}
	if v.kind == kList {
		items = v.list
	}
	var merged *value
	for _, it := range items {
		files, err := p.includeFiles(it)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if seen[f] {
				continue // GitLab includes a file once
			}
			seen[f] = true
			if len(seen) > maxIncludes {
				return nil, errAt(it, "", "include: more than %d files are included", maxIncludes)
			}
			data, err := fs.ReadFile(p.opts.Project, f)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil, errAt(it, "", "include: local file `/%s` does not exist", f)
				}
				return nil, errAt(it, "", "include: local file `/%s`: %v", f, err)
			}
			if len(data) > maxIncludeSize {
				return nil, errAt(it, "", "include: local file `/%s` is larger than %d bytes", f, maxIncludeSize)
			}
			inc, warnings, err := load(data, f)
			if err != nil {
				var e *Error
				if errors.As(err, &e) && e.Msg == "the configuration is empty" {
					continue
				}
				return nil, err
			}
			for _, w := range warnings {
				p.warn(w)
			}
			if inc, err = p.include(inc, depth+1, seen); err != nil {
				return nil, err
			}
			merged = deepMerge(merged, inc)
			if merged.size > maxNodes {
				return nil, errAt(it, "", "the configuration is too large once include: is applied")
			}
		}
	}
	if merged == nil {
		return rest, nil
	}
	out := deepMerge(merged, rest)
	out.file = root.file
	return out, nil
}

// includeFiles returns the project files one include: entry names, or an
// error for what exec cannot include.
func (p *parser) includeFiles(it *value) ([]string, error) {
	s := &scope{p: p, label: "include"}
	switch it.kind {
	case kString:
		if strings.HasPrefix(it.text, "http://") || strings.HasPrefix(it.text, "https://") {
			return nil, s.errf(it, "remote file %q: include:remote is not supported by wasmrunner exec (only local files are read)", it.text)
		}
		return p.localFiles(it, it.text)
	case kMap:
	default:
		return nil, s.errf(it, "must be a file name or a map with local, remote, project, template or component")
	}
	var local string
	for i, k := range it.keys {
		x := it.vals[i]
		switch k {
		case "local":
			l, err := s.str(x, "include:local")
			if err != nil {
				return nil, err
			}
			local = l
		case "remote", "project", "template", "component":
			t, _ := scalarText(x)
			return nil, s.errf(x, "include:%s (%s) is not supported by wasmrunner exec: only local files of the project are read", k, t)
		case "rules":
			ev := p.evaluator(s, nil)
			res, err := ev.evalRules(x, "include:rules", true)
			if err != nil {
				return nil, err
			}
			if !res.matched || res.when == "never" {
				return nil, nil
			}
		case "inputs":
			return nil, s.errf(x, "include:inputs is not supported by wasmrunner exec")
		case "file", "ref", "cache", "integrity":
		default:
			return nil, s.errf(x, "unknown keyword %q", k)
		}
	}
	if local == "" {
		return nil, s.errf(it, "include: local is required")
	}
	return p.localFiles(it, local)
}

// localFiles resolves an include:local path (relative to the project's
// root, a leading / allowed, * and ** wildcards) to project files.
func (p *parser) localFiles(v *value, name string) ([]string, error) {
	clean := path.Clean("/" + name)[1:]
	if clean == "" || clean == "." {
		return nil, errAt(v, "", "include: local file %q is not a file", name)
	}
	if !strings.HasSuffix(clean, ".yml") && !strings.HasSuffix(clean, ".yaml") {
		return nil, errAt(v, "", "include: local file `%s` does not have a valid YAML extension (.yml or .yaml)", name)
	}
	if p.opts.Project == nil {
		return nil, errAt(v, "", "include: local file `%s`: no project directory to read it from", name)
	}
	if !strings.ContainsAny(clean, "*?[{") {
		return []string{clean}, nil
	}
	matches, err := doublestar.Glob(p.opts.Project, clean, doublestar.WithFilesOnly(), doublestar.WithNoFollow())
	if err != nil {
		return nil, errAt(v, "", "include: %q: %v", name, err)
	}
	slices.Sort(matches)
	return matches, nil
}

// resolveReferences replaces every !reference tag with the value it names
// (docs: ci/yaml "!reference tags"): a list that lands in a list is
// nested in it, which script:, rules: and needs: flatten.
func resolveReferences(root *value) (*value, error) {
	r := &refResolver{root: root, done: map[*value]*value{}}
	return r.resolve(root, 0)
}

type refResolver struct {
	root *value
	done map[*value]*value
}

func (r *refResolver) resolve(v *value, depth int) (*value, error) {
	if v == nil {
		return nil, nil
	}
	if out, ok := r.done[v]; ok {
		return out, nil
	}
	var out *value
	switch v.kind {
	case kRef:
		if depth >= maxReferenceDepth {
			return nil, errAt(v, "", "!reference %s: references nested deeper than %d levels", v.text, maxReferenceDepth)
		}
		target := r.root
		for _, k := range v.ref {
			next, ok := target.get(k)
			if !ok {
				return nil, errAt(v, "", "!reference %s could not be found", v.text)
			}
			target = next
		}
		res, err := r.resolve(target, depth+1)
		if err != nil {
			return nil, err
		}
		out = res
	case kList:
		out = &value{kind: kList, line: v.line, file: v.file, size: 1}
		changed := false
		for _, x := range v.list {
			y, err := r.resolve(x, depth)
			if err != nil {
				return nil, err
			}
			changed = changed || y != x
			out.list = append(out.list, y)
			out.size = addSize(out.size, y.size)
		}
		if !changed {
			out = v
		}
	case kMap:
		out = newMap(v.line)
		out.file = v.file
		changed := false
		for i, k := range v.keys {
			y, err := r.resolve(v.vals[i], depth)
			if err != nil {
				return nil, err
			}
			changed = changed || y != v.vals[i]
			out.set(k, y)
		}
		if !changed {
			out = v
		}
	default:
		out = v
	}
	if out.size > maxNodes {
		return nil, errAt(v, "", "the configuration is too large once !reference tags are resolved")
	}
	if depth == 0 {
		r.done[v] = out
	}
	return out, nil
}
