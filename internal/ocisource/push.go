package ocisource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// PushFile is a file pushed.
type PushFile struct {
	Name string
	Desc ocispec.Descriptor
}

// Pack reads the handler files of dir (every NAME.wasm, NAME@TAG.wasm and
// NAME.toml; other entries are ignored, links and special files refused)
// and returns the artifact's manifest and its files' contents. The
// manifest holds nothing but the files (no creation time): the same
// files give the same digest.
func Pack(dir string, maxModule int64) (manifest []byte, files []PushFile, blobs map[digest.Digest][]byte, err error) {
	if maxModule <= 0 {
		maxModule = DefaultMaxModuleSize
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	blobs = map[digest.Digest][]byte{}
	var layers []ocispec.Descriptor
	hasWasm := false
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".wasm") && !strings.HasSuffix(name, ".toml") {
			continue
		}
		if err := checkFileName(name); err != nil {
			return nil, nil, nil, err
		}
		if !e.Type().IsRegular() {
			return nil, nil, nil, fmt.Errorf("%s is not a regular file", name)
		}
		mt, limit := mediaTypeOf(name, maxModule)
		data, err := readBounded(filepath.Join(dir, name), limit)
		if err != nil {
			return nil, nil, nil, err
		}
		if mt == MediaTypeWasm {
			if !bytes.HasPrefix(data, []byte("\x00asm")) {
				return nil, nil, nil, fmt.Errorf("%s is not a WebAssembly module", name)
			}
			hasWasm = true
		}
		d := content.NewDescriptorFromBytes(mt, data)
		d.Annotations = map[string]string{ocispec.AnnotationTitle: name}
		layers = append(layers, d)
		files = append(files, PushFile{Name: name, Desc: d})
		blobs[d.Digest] = data
	}
	if !hasWasm {
		return nil, nil, nil, fmt.Errorf("%s has no handler (NAME.wasm)", dir)
	}
	if len(layers) > MaxFiles {
		return nil, nil, nil, fmt.Errorf("%s has %d handler files, more than %d", dir, len(layers), MaxFiles)
	}
	slices.SortFunc(layers, func(a, b ocispec.Descriptor) int {
		return strings.Compare(a.Annotations[ocispec.AnnotationTitle], b.Annotations[ocispec.AnnotationTitle])
	})
	blobs[ocispec.DescriptorEmptyJSON.Digest] = ocispec.DescriptorEmptyJSON.Data
	config := ocispec.DescriptorEmptyJSON
	config.Data = nil
	manifest, err = json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       config,
		Layers:       layers,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if len(manifest) > MaxManifestSize {
		return nil, nil, nil, fmt.Errorf("the manifest of %d files would be %d bytes, more than %d", len(layers), len(manifest), MaxManifestSize)
	}
	return manifest, files, blobs, nil
}

// readBounded reads a regular file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(path))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the limit of %d", filepath.Base(path), fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s grew past the limit of %d bytes", filepath.Base(path), limit)
	}
	return data, err
}

// Push packs dir (see [Pack]) and pushes it to ref ("oci://..."): the
// blobs the registry lacks, then the manifest, tagged when ref has a tag
// (a digest reference must be the artifact's own digest). It returns the
// manifest's descriptor and the files.
func Push(ctx context.Context, dir, ref string, maxModule int64, access Access) (ocispec.Descriptor, []PushFile, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	manifest, files, blobs, err := Pack(dir, maxModule)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
	desc.ArtifactType = ArtifactType
	if r.Pinned {
		if d, _ := r.Digest(); d != desc.Digest {
			return desc, files, fmt.Errorf("%s holds %s: its digest is %s, not the reference's", dir, ref, desc.Digest)
		}
	}
	repo, err := access.repository(r)
	if err != nil {
		return desc, files, err
	}
	digests := make([]digest.Digest, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	for _, d := range digests {
		data := blobs[d]
		bd := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: int64(len(data))}
		ok, err := repo.Blobs().Exists(ctx, bd)
		if err != nil {
			return desc, files, fmt.Errorf("pushing to %s: %w", r, err)
		}
		if ok {
			continue
		}
		if err := repo.Blobs().Push(ctx, bd, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return desc, files, fmt.Errorf("pushing to %s: %w", r, err)
		}
	}
	if r.Pinned {
		err = repo.Manifests().Push(ctx, desc, bytes.NewReader(manifest))
	} else {
		err = repo.Manifests().PushReference(ctx, desc, bytes.NewReader(manifest), r.Reference.Reference)
	}
	if err != nil {
		return desc, files, fmt.Errorf("pushing to %s: %w", r, err)
	}
	return desc, files, nil
}
