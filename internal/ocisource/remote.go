package ocisource

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Access says how to reach registries.
type Access struct {
	// AuthFile is a docker config.json with the registries' credentials
	// ("auths", "credsStore" and "credHelpers": a helper is run as
	// docker-credential-NAME). Empty: docker's, $DOCKER_CONFIG/config.json
	// or ~/.docker/config.json. It is read at each authentication, so
	// that rotated credentials apply without a restart.
	AuthFile string
	// Insecure lists registries ("host" or "host:port") reached over
	// plain HTTP. Loopback ones (localhost, 127.0.0.1, ::1) always are;
	// every other registry is reached over HTTPS, verified with the
	// system's CAs (SSL_CERT_FILE and SSL_CERT_DIR add others).
	Insecure []string
	// Transport, if set, is the HTTP transport (tests); nil: Go's default
	// with bounded dial, TLS and response header times.
	Transport http.RoundTripper
	// UserAgent, if set, is sent with each request.
	UserAgent string
}

// defaultTransport is the transport of registry requests: each request is
// also bounded by the sync's context.
var defaultTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = time.Minute
	return t
}()

// retryPolicy retries a request that failed in passing (5xx, 429, a
// reset connection) twice, soon: a registry that stays down is tried
// again at the next interval, with the last good version serving.
var retryPolicy = &retry.GenericPolicy{
	Retryable: retry.DefaultPredicate,
	Backoff:   retry.DefaultBackoff,
	MinWait:   200 * time.Millisecond,
	MaxWait:   time.Second,
	MaxRetry:  2,
}

// credentialStore reads the docker config of a.
func (a Access) credentialStore() (credentials.Store, error) {
	opts := credentials.StoreOptions{}
	if a.AuthFile != "" {
		if _, err := os.Stat(a.AuthFile); err != nil {
			return nil, fmt.Errorf("registry auth file: %w", err)
		}
		return credentials.NewStore(a.AuthFile, opts)
	}
	return credentials.NewStoreFromDocker(opts)
}

// repository is a client of ref's repository.
func (a Access) repository(ref Ref) (*remote.Repository, error) {
	repo, err := remote.NewRepository(ref.Registry + "/" + ref.Repository)
	if err != nil {
		return nil, err
	}
	transport := a.Transport
	if transport == nil {
		transport = defaultTransport
	}
	client := &auth.Client{
		Client: &http.Client{Transport: &retry.Transport{Base: transport, Policy: func() retry.Policy { return retryPolicy }}},
		Cache:  auth.NewCache(),
		Credential: func(ctx context.Context, hostport string) (auth.Credential, error) {
			store, err := a.credentialStore()
			if err != nil {
				return auth.EmptyCredential, err
			}
			return credentials.Credential(store)(ctx, hostport)
		},
	}
	if a.UserAgent != "" {
		client.SetUserAgent(a.UserAgent)
	}
	repo.Client = client
	repo.PlainHTTP = plainHTTP(ref.Registry, a.Insecure)
	repo.ManifestMediaTypes = []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex}
	repo.MaxMetadataBytes = MaxManifestSize
	repo.TagListMaxPages = 1
	repo.ReferrerListMaxPages = 1
	return repo, nil
}

// fetchManifest fetches and verifies the manifest or index desc
// describes, refusing one larger than MaxManifestSize unfetched.
func fetchManifest(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size <= 0 || desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("%s: the registry says it is %d bytes: a manifest is at most %d; refused unread", desc.Digest, desc.Size, MaxManifestSize)
	}
	if err := checkDigest(desc.Digest); err != nil {
		return nil, err
	}
	rc, err := repo.Manifests().Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := content.ReadAll(rc, desc) // verifies size and digest
	if err != nil {
		return nil, fmt.Errorf("%s: %w; refused", desc.Digest, err)
	}
	return data, nil
}

// parsed is a manifest or index, of which only what is used here is read.
type parsed struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       ocispec.Descriptor   `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
}

// parseManifest reads a manifest or index of the media type the registry
// said it was.
func parseManifest(data []byte, mediaType string) (parsed, error) {
	var p parsed
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("not a manifest: %w", err)
	}
	if p.MediaType != "" && p.MediaType != mediaType {
		return p, fmt.Errorf("the registry says it is a %s, its JSON that it is a %s", mediaType, p.MediaType)
	}
	return p, nil
}

// handlerFiles checks a handler artifact's manifest and returns its
// files.
func handlerFiles(p parsed, maxModule int64) ([]file, []ocispec.Descriptor, error) {
	if p.ArtifactType != ArtifactType && !(p.ArtifactType == "" && p.Config.MediaType == ArtifactType) {
		at := p.ArtifactType
		if at == "" {
			at = p.Config.MediaType
		}
		return nil, nil, fmt.Errorf("not a handler artifact: its artifactType is %q, not %q (push it with `wasmrunner modules push`)", at, ArtifactType)
	}
	if len(p.Layers) == 0 {
		return nil, nil, fmt.Errorf("the artifact has no files")
	}
	if len(p.Layers) > MaxFiles {
		return nil, nil, fmt.Errorf("the artifact has %d files, more than %d", len(p.Layers), MaxFiles)
	}
	var files []file
	for _, l := range p.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		if name == "" {
			return nil, nil, fmt.Errorf("layer %s has no %s annotation naming its file", l.Digest, ocispec.AnnotationTitle)
		}
		if err := checkFileName(name); err != nil {
			return nil, nil, err
		}
		if err := checkDigest(l.Digest); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		mt, limit := mediaTypeOf(name, maxModule)
		if l.MediaType != mt {
			return nil, nil, fmt.Errorf("%s: its media type is %q, not %q", name, l.MediaType, mt)
		}
		if l.Size < 0 || l.Size > limit {
			return nil, nil, fmt.Errorf("%s: the artifact says it is %d bytes, more than the limit of %d; refused unread", name, l.Size, limit)
		}
		files = append(files, file{name: name, blob: l.Digest, size: l.Size})
	}
	return files, p.Layers, nil
}
