// Command image builds wasmrunner's container image (package
// deploy/image) and pushes it to a registry or writes it to an OCI layout
// directory. Run it from the deploy module:
//
//	cd deploy && go run ./cmd/image --push registry.example.com/wasmrunner:v1.2.3
//	cd deploy && go run ./cmd/image --oci-layout /tmp/wasmrunner-image
//
// The version, revision and creation time default to the checkout's
// (git describe, the commit and its time), so that a rebuild of a commit
// gives the same digest. Registry credentials come from the docker config
// ($DOCKER_CONFIG/config.json or ~/.docker/config.json, as docker login or
// oras login write them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wasmrunner/wasmrunner/deploy/image"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var push stringList
	fs.Var(&push, "push", "push the index to this reference (repeatable: one per tag)")
	ociLayout := fs.String("oci-layout", "", "write the index to this OCI layout directory")
	root := fs.String("root", "..", "the wasmrunner module's directory")
	version := fs.String("version", "", "version stamped into the binary and labels (default: git describe --tags --always --dirty)")
	revision := fs.String("revision", "", "revision (default: git rev-parse HEAD)")
	created := fs.String("created", "", "creation time, RFC 3339 or Unix seconds (default: the commit's time; SOURCE_DATE_EPOCH wins)")
	source := fs.String("source", image.DefaultSource, "org.opencontainers.image.source label")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "platforms to build")
	insecure := fs.Bool("insecure", false, "reach the registry over plain HTTP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(push) == 0 && *ociLayout == "" {
		return fmt.Errorf("say where the image goes: --push REF or --oci-layout DIR: %w", flag.ErrHelp)
	}
	o := image.Options{Root: *root, Version: *version, Revision: *revision, Source: *source, Stderr: stderr}
	var err error
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return err
	}
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", o.Root}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w (give the value as a flag)", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if o.Version == "" {
		if o.Version, err = git("describe", "--tags", "--always", "--dirty"); err != nil {
			return err
		}
	}
	if o.Revision == "" {
		if o.Revision, err = git("rev-parse", "HEAD"); err != nil {
			return err
		}
	}
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" && *created == "" {
		*created = epoch
	}
	if *created == "" {
		if *created, err = git("log", "-1", "--format=%ct"); err != nil {
			return err
		}
	}
	if o.Created, err = parseTime(*created); err != nil {
		return err
	}
	for _, s := range strings.Split(*platforms, ",") {
		p, err := v1.ParsePlatform(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--platforms: %w", err)
		}
		o.Platforms = append(o.Platforms, *p)
	}

	idx, err := image.Build(ctx, o)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if *ociLayout != "" {
		if _, err := layout.Write(*ociLayout, idx); err != nil {
			return fmt.Errorf("--oci-layout: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s to %s\n", digest, *ociLayout)
	}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	for _, r := range push {
		ref, err := name.ParseReference(r, opts...)
		if err != nil {
			return fmt.Errorf("--push: %w", err)
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Fprintf(stdout, "pushed %s\n%s@%s\n", ref, ref.Context(), digest)
	}
	return nil
}

// parseTime reads RFC 3339 or Unix seconds.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("creation time %q: RFC 3339 or Unix seconds", s)
	}
	return t, nil
}
