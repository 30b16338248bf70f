package modules

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Handler versions. A job's image names a handler and, optionally, a
// version of it (its tag) and the sha256 of the module file:
//
//	image                          module file
//	shell, shell:latest            shell.wasm (+ shell.toml)
//	shell:1.0                      shell@1.0.wasm (+ shell@1.0.toml)
//	shell:1.0@sha256:HEX           shell@1.0.wasm, if its sha256 is HEX
//	shell@sha256:HEX               the version of shell whose sha256 is HEX
//	registry.example.com/t/shell:1.0   as shell:1.0 (only the last path element counts)
//
// Each version is a module of its own: its own manifest (none is
// inherited from shell.toml), limits, instances and compiled code, loaded,
// replaced and removed on its own. A missing version fails the job and
// names the versions there are.

// ref names one version of a handler: Tag "" is the untagged module
// (NAME.wasm), which images without a tag or with "latest" use.
type ref struct {
	Name, Tag string
}

// String is the ref as an image names it: "shell" or "shell:1.0".
func (r ref) String() string {
	if r.Tag == "" {
		return r.Name
	}
	return r.Name + ":" + r.Tag
}

// stem is the ref's file name without extension: "shell" or "shell@1.0".
func (r ref) stem() string {
	if r.Tag == "" {
		return r.Name
	}
	return r.Name + "@" + r.Tag
}

// tagPattern is a tag as container images have them.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// parseStem reads a module file's stem ("shell", "shell@1.0"). Its error
// says what is wrong with the file name.
func parseStem(stem string) (ref, error) {
	name, tag, tagged := strings.Cut(stem, "@")
	switch {
	case name == "":
		return ref{}, fmt.Errorf("%s.wasm: a module file is NAME.wasm or NAME@TAG.wasm; the name is empty", stem)
	case !tagged:
		return ref{Name: name}, nil
	case tag == "latest":
		return ref{}, fmt.Errorf("%s.wasm: the untagged %s.wasm is %s:latest; rename it %s.wasm (and its manifest %s.toml)", stem, name, name, name, name)
	case !tagPattern.MatchString(tag):
		return ref{}, fmt.Errorf("%s.wasm: %q is not a valid tag (letters, digits, '_', '.' and '-', at most 128, not starting with '.' or '-')", stem, tag)
	}
	return ref{Name: name, Tag: tag}, nil
}

// imageRef is what an image asks for: a handler version, and a digest
// its module file must have ("" for any).
type imageRef struct {
	ref
	Digest string // lower-case hex sha256, or ""
}

// parseImage reads a job's image. An empty image gives an empty Name.
func parseImage(image string) (imageRef, error) {
	image = strings.TrimSpace(image)
	var out imageRef
	if before, digest, ok := strings.Cut(image, "@"); ok {
		image = before
		hex, isSHA := strings.CutPrefix(digest, "sha256:")
		if !isSHA || !sha256Hex.MatchString(strings.ToLower(hex)) {
			return out, fmt.Errorf("image %q: only sha256 digests are supported (NAME@sha256:<64 hex digits>, the sha256 of the module file)", image+"@"+digest)
		}
		out.Digest = strings.ToLower(hex)
	}
	base := path.Base(image)
	if base == "." || base == "/" {
		base = ""
	}
	if i := strings.LastIndex(base, ":"); i >= 0 {
		base, out.Tag = base[:i], base[i+1:]
	}
	out.Name = base
	if out.Tag == "latest" {
		out.Tag = ""
	}
	return out, nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// HandlerName is the handler an image names: its last path element
// without tag or digest ("registry.example.com/team/shell:1.2" -> "shell").
func HandlerName(image string) string {
	image = strings.TrimSpace(image)
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	image = path.Base(image)
	if i := strings.LastIndex(image, ":"); i >= 0 {
		image = image[:i]
	}
	if image == "." || image == "/" {
		return ""
	}
	return image
}

// HandlerVersion is the handler version an image names, as metrics and
// logs label it: "shell", "shell:1.0" (without registry path or digest;
// "shell:latest" is "shell"), or "" for an empty or unreadable image.
func HandlerVersion(image string) string {
	img, err := parseImage(image)
	if err != nil {
		return ""
	}
	return img.ref.String()
}
