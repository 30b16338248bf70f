package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/ocisource"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Handlers from OCI registries: a runner's modules value
// "oci://registry/repo:tag" (or "@sha256:...") is pulled into
// <cache>/oci/<runner>/ and served as a modules dir, kept in line with the
// tag (see internal/ocisource).

// ociOptions say how a runner's oci:// modules are pulled.
type ociOptions struct {
	pullInterval time.Duration
	insecure     []string
	authFile     string
}

// ociFlags are serve's flags of oci:// modules.
func ociFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.DurationFlag{Name: "pull-interval", Value: ocisource.DefaultInterval, Usage: "how often an oci:// --modules tag is re-resolved (a new digest is pulled and swapped in)", EnvVars: []string{"WASMRUNNER_PULL_INTERVAL"}},
	}, registryFlags()...)
}

// registryFlags say how registries are reached.
func registryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "insecure-registry", Usage: "a registry (host or host:port) reached over plain HTTP (loopback ones always are)", EnvVars: []string{"WASMRUNNER_INSECURE_REGISTRY"}},
		&cli.StringFlag{Name: "registry-auth-file", Usage: "docker config.json with registry credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)", EnvVars: []string{"WASMRUNNER_REGISTRY_AUTH_FILE"}},
	}
}

// ociFlagOptions reads those of ociFlags the command has.
func ociFlagOptions(c *cli.Context) ociOptions {
	return ociOptions{pullInterval: c.Duration("pull-interval"), insecure: c.StringSlice("insecure-registry"), authFile: c.String("registry-auth-file")}
}

// ociOver returns o with what the file's global keys and the runner entry
// r set.
func (c fileConfig) ociOver(r runnerConfig, o ociOptions) ociOptions {
	for _, d := range []tomlfile.Duration{c.PullInterval, r.PullInterval} {
		if d > 0 {
			o.pullInterval = time.Duration(d)
		}
	}
	if c.InsecureRegistries != nil {
		o.insecure = c.InsecureRegistries
	}
	for _, f := range []string{c.RegistryAuthFile, r.RegistryAuthFile} {
		if f != "" {
			o.authFile = f
		}
	}
	return o
}

// access is how o reaches registries.
func (o ociOptions) access() ocisource.Access {
	return ocisource.Access{AuthFile: o.authFile, Insecure: o.insecure,
		UserAgent: fmt.Sprintf("wasmrunner %s (%s; %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)}
}

// isOCI says whether a modules value names an OCI artifact.
func isOCI(modules string) bool { return ocisource.IsRef(modules) }

// checkModulesValue refuses an oci:// modules value that is no reference.
func checkModulesValue(modules string) error {
	if !isOCI(modules) {
		return nil
	}
	_, err := ocisource.ParseRef(modules)
	return err
}

// sourceMetrics are the metrics of oci:// modules sources.
type sourceMetrics struct {
	errors   *prometheus.CounterVec
	digest   *prometheus.GaugeVec
	resolved *prometheus.GaugeVec
}

func newSourceMetrics(reg prometheus.Registerer) *sourceMetrics {
	m := &sourceMetrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmrunner_modules_source_errors_total", Help: "Failed resolutions or pulls of a runner's oci:// modules (the last good version keeps serving), by runner.",
		}, []string{"runner"}),
		digest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmrunner_modules_source_digest_info", Help: "The digest of the handler artifact a runner serves (1), by runner and digest.",
		}, []string{"runner", "digest"}),
		resolved: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmrunner_modules_source_resolved_timestamp_seconds", Help: "When a runner's oci:// modules reference was last resolved (Unix time), by runner: alert when it is old.",
		}, []string{"runner"}),
	}
	reg.MustRegister(m.errors, m.digest, m.resolved)
	return m
}

type sourceObserver struct {
	m      *sourceMetrics
	runner string
}

func (m *sourceMetrics) forRunner(runner string) ocisource.Observer {
	return sourceObserver{m, runner}
}

func (o sourceObserver) Serving(digest string) {
	o.m.digest.DeletePartialMatch(prometheus.Labels{"runner": o.runner})
	o.m.digest.WithLabelValues(o.runner, digest).Set(1)
}

func (o sourceObserver) Resolved(t time.Time) {
	o.m.resolved.WithLabelValues(o.runner).Set(float64(t.UnixNano()) / 1e9)
}

func (o sourceObserver) Failed(error) { o.m.errors.WithLabelValues(o.runner).Inc() }

// pulledTarget is t with an oci:// dir pulled into a temporary dir (the
// cache of modules check), and a function that removes it.
func pulledTarget(ctx context.Context, w io.Writer, t checkTarget) (checkTarget, func(), error) {
	if !isOCI(t.dir) {
		return t, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "wasmrunner-pull-")
	if err != nil {
		return t, nil, err
	}
	src, err := ocisource.New(t.dir, ocisource.Options{CacheDir: tmp, MaxModuleSize: t.proc.Compile.MaxModuleSize, Access: t.access})
	if err == nil {
		err = src.Start(ctx)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return t, nil, err
	}
	fmt.Fprintf(w, "%s: %s\n", t.dir, src.Digest())
	t.dir = src.Dir()
	return t, func() { src.Close(); os.RemoveAll(tmp) }, nil
}

func modulesPushCommand() *cli.Command {
	return &cli.Command{
		Name:      "push",
		Usage:     "publish the handlers of a directory to an OCI registry",
		ArgsUsage: "DIR oci://REGISTRY/REPO:TAG",
		Description: `push checks the modules of DIR as modules check does (and refuses broken
ones), then publishes every NAME.wasm, NAME@TAG.wasm and NAME.toml of DIR as
one OCI artifact (artifactType ` + ocisource.ArtifactType + `, one layer per
file: application/wasm, application/toml, named by its
org.opencontainers.image.title), and tags it. It prints the artifact's digest:
serve pins it with --modules oci://REGISTRY/REPO@DIGEST, or follows the tag.
The same files give the same digest.

Credentials come from the docker config ($DOCKER_CONFIG/config.json or
~/.docker/config.json, with its credential helpers; --registry-auth-file
for another), as docker login or oras login write them. Registries on
loopback addresses are reached over plain HTTP, others over HTTPS unless
given with --insecure-registry.

Examples:
   wasmrunner modules push ./handlers oci://registry.example.com/team/handlers:v1
   wasmrunner modules push ./handlers oci://localhost:5000/handlers:latest`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "max-module-size", Value: "32MiB", Usage: "largest .wasm file pushed (serve refuses larger ones unread)"},
			&cli.BoolFlag{Name: "no-check", Usage: "push without loading the modules first"},
		}, registryFlags()...),
		Action: modulesPush,
	}
}

func modulesPush(c *cli.Context) error {
	if c.NArg() != 2 || !isOCI(c.Args().Get(1)) {
		return usageError("modules push takes a directory and an oci:// reference")
	}
	dir, ref := c.Args().Get(0), c.Args().Get(1)
	if err := checkModulesValue(ref); err != nil {
		return usageError(err.Error())
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usageError(fmt.Sprintf("%s is not a directory", dir))
	}
	maxModule, err := units.ParseSize(c.String("max-module-size"))
	if err != nil || maxModule <= 0 {
		return usageError(fmt.Sprintf("invalid --max-module-size %q", c.String("max-module-size")))
	}
	if !c.Bool("no-check") {
		proc := resource.NewProcess(resource.ProcessConfig{Compile: resource.CompileLimits{MaxModuleSize: maxModule}})
		compiler, err := modules.SelfCompiler()
		if err != nil {
			return cli.Exit(fmt.Sprintf("finding the compiler (this executable): %v", err), exitFailure)
		}
		out := checkDir(c.Context, checkTarget{dir: dir, proc: proc}, compiler)
		printCheck(c.App.Writer, checkOutput{Format: checkFormat, Runners: []checkRunner{out}})
		broken, problems := 0, len(out.Problems)
		for _, m := range out.Modules {
			problems += len(m.Problems)
			if !m.Loaded {
				broken++
			}
		}
		switch {
		case len(out.Modules) == 0:
			return cli.Exit("no modules (*.wasm) found: nothing pushed", exitFailure)
		case problems > 0:
			return cli.Exit(fmt.Sprintf("%d broken module(s), %d problem(s): not pushed", broken, problems), exitFailure)
		}
	}
	access := ociFlagOptions(c).access()
	desc, files, err := ocisource.Push(c.Context, dir, ref, maxModule, access)
	if err != nil {
		return cli.Exit(err.Error(), exitFailure)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	r, _ := ocisource.ParseRef(ref)
	pinned := r
	pinned.Reference.Reference = desc.Digest.String()
	fmt.Fprintf(c.App.Writer, "pushed %s (%s)\n%s\n", ref, strings.Join(names, ", "), pinned)
	return nil
}
