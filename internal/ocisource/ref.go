// Package ocisource serves a runner's handlers from an OCI registry: a
// modules source "oci://registry/repo:tag" (or "@sha256:...") is pulled
// with oras-go into a content-addressed cache and materialized as a
// modules dir that engine/modules' Registry reads. A tag is re-resolved on
// an interval and a new digest is pulled and swapped in; a digest
// reference is pulled once and never re-resolved.
//
// # The artifact
//
// A handler artifact is an OCI image manifest
// (application/vnd.oci.image.manifest.v1+json) whose artifactType is
// [ArtifactType] (or, as `oras push --image-spec v1.0` writes it, whose
// config's mediaType is), with one layer per file of a modules dir:
//
//	NAME.wasm       application/wasm   (at most the module size limit)
//	NAME@TAG.wasm   application/wasm
//	NAME.toml       application/toml   (the handler's manifest; at most 64 KiB)
//
// each named by its org.opencontainers.image.title annotation (a plain file
// name: letters, digits, '.', '_', '-', '@'; no path). One artifact may hold
// several handlers. An OCI image index whose manifests are all such
// artifacts is accepted too: the runner gets the files of all of them (a
// name in two is an error), so that a runner's set can be composed, by
// digest, from artifacts that teams publish on their own.
//
// # What is checked
//
// Everything the registry sends is untrusted. Manifests and indexes are at
// most [MaxManifestSize] (refused before they are fetched when the
// registry says they are larger); each layer's size is checked against its
// limit before it is fetched, and every blob is read through a verifier of
// its descriptor's size and digest (oras-go's content.NewVerifyReader:
// never more than size+1 bytes, refused on a digest mismatch or trailing
// data) into a temporary file that is renamed into the cache only once
// verified. A version whose pull fails in any way is not used: the last
// good one keeps serving.
package ocisource

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry"
)

const (
	// Scheme starts a modules value that names an OCI artifact.
	Scheme = "oci://"
	// ArtifactType is the artifactType of a handler artifact.
	ArtifactType = "application/vnd.wasmrunner.handler.v1"
	// MediaTypeWasm is the media type of a NAME.wasm layer.
	MediaTypeWasm = "application/wasm"
	// MediaTypeTOML is the media type of a NAME.toml (handler manifest)
	// layer.
	MediaTypeTOML = "application/toml"
	// MaxManifestSize bounds an OCI manifest or index, and a NAME.toml.
	MaxManifestSize = 64 << 10
	// MaxFiles bounds the files of an artifact (an index's together), and
	// maxIndexManifests the manifests of an index.
	MaxFiles          = 4096
	maxIndexManifests = 256
)

// IsRef says whether a modules value names an OCI artifact.
func IsRef(s string) bool { return strings.HasPrefix(s, Scheme) }

// Ref is a parsed oci:// reference.
type Ref struct {
	registry.Reference
	// Pinned: the reference is a digest (@sha256:...), never re-resolved.
	Pinned bool
}

// ParseRef parses "oci://registry/repo:tag", "oci://registry/repo@sha256:..."
// or "oci://registry/repo:tag@sha256:..." (the digest wins, as docker
// has it). A tag or a digest is required: there is no implicit "latest".
func ParseRef(s string) (Ref, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Ref{}, fmt.Errorf("%q is not an oci:// reference", s)
	}
	r, err := registry.ParseReference(rest)
	if err != nil {
		return Ref{}, fmt.Errorf("bad reference %q: %w", s, err)
	}
	if r.Reference == "" {
		return Ref{}, fmt.Errorf("bad reference %q: a tag (:TAG) or a digest (@sha256:...) is required", s)
	}
	_, derr := r.Digest()
	return Ref{Reference: r, Pinned: derr == nil}, nil
}

// String is the reference with its scheme.
func (r Ref) String() string { return Scheme + r.Reference.String() }

// plainHTTP says whether a registry host is reached over plain HTTP: a
// loopback one (localhost, 127.0.0.0/8, ::1), or one listed in insecure
// (as "host" or "host:port").
func plainHTTP(hostport string, insecure []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() {
		return true
	}
	return slices.Contains(insecure, hostport) || slices.Contains(insecure, host)
}

// fileName is what an artifact's file may be called: a plain name that
// the modules dir reads (NAME.wasm, NAME@TAG.wasm, NAME.toml).
var fileName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@-]{0,200}\.(wasm|toml)$`)

// checkFileName refuses a name that is not a plain handler file name.
func checkFileName(name string) error {
	if !fileName.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("file name %q is not a handler file: NAME.wasm, NAME@TAG.wasm or NAME.toml (letters, digits, '.', '_', '-', '@'; no path)", name)
	}
	return nil
}

// mediaTypeOf is the media type a file of the artifact must have, and the
// most bytes it may have.
func mediaTypeOf(name string, maxModule int64) (string, int64) {
	if strings.HasSuffix(name, ".toml") {
		return MediaTypeTOML, MaxManifestSize
	}
	return MediaTypeWasm, maxModule
}

// errNoDigest: a descriptor without a usable digest.
var errNoDigest = errors.New("no valid digest")

// checkDigest refuses a digest this cache cannot name or verify.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", errNoDigest, d, err)
	}
	return nil
}
