package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// fileConfig is the --config file: several runners in one process.
//
// GitLab Runner's config.toml names of the settings that mean the same
// are taken too (concurrent, listen_address, runners' limit), with its
// units where a key of the same name has other ones (a plain number of
// check_interval or shutdown_timeout is seconds, of output_limit KiB);
// setting one thing under both names is an error (see resolve).
type fileConfig struct {
	// Concurrency bounds the jobs of all runners together (default: CPUs);
	// Concurrent is GitLab Runner's name for it.
	Concurrency *int `toml:"concurrency"`
	Concurrent  *int `toml:"concurrent"`
	// Listen is the address of /metrics and the health checks;
	// ListenAddress is GitLab Runner's name for it.
	Listen        *string `toml:"listen"`
	ListenAddress *string `toml:"listen_address"`
	// LogLevel and LogFormat apply unless --log-level or --log-format
	// (or their environment variables) are given, as in GitLab Runner.
	LogLevel  string `toml:"log_level"`
	LogFormat string `toml:"log_format"`
	// CheckInterval is every runner's default check_interval.
	CheckInterval   seconds           `toml:"check_interval"`
	BuildsDir       string            `toml:"builds_dir"`
	ShutdownTimeout seconds           `toml:"shutdown_timeout"`
	ReloadInterval  tomlfile.Duration `toml:"reload_interval"`
	// ReportDeadline: how long final updates are retried while GitLab
	// fails (--report-deadline).
	ReportDeadline tomlfile.Duration `toml:"report_deadline"`
	// Handler loading bounds (see serve's flags of the same names).
	MaxModuleSize    tomlfile.Size     `toml:"max_module_size"`
	CompileMemory    tomlfile.Size     `toml:"compile_memory"`
	CompileTimeout   tomlfile.Duration `toml:"compile_timeout"`
	CompileCacheSize tomlfile.Size     `toml:"compile_cache_size"`
	LoadTimeout      tomlfile.Duration `toml:"load_timeout"`
	// Handlers from OCI registries (modules = "oci://..."; see
	// ocisource.go): every runner's defaults.
	PullInterval       tomlfile.Duration `toml:"pull_interval"`
	InsecureRegistries []string          `toml:"insecure_registries"`
	RegistryAuthFile   string            `toml:"registry_auth_file"`
	// TokenRotation: runner tokens that expire are replaced before they
	// do (default true; false where several processes share a token).
	TokenRotation *bool `toml:"token_rotation"`
	// Policy is the ceiling over every runner's handler manifests.
	Policy  policyConfig   `toml:"policy"`
	Runners []runnerConfig `toml:"runners"`

	// concurrencyKey is the name Concurrency was set under.
	concurrencyKey string
}

// policyConfig is a [policy] table: the operator's ceiling over what
// handler manifests ask for (see resource.Policy). Unset keys keep the
// defaults, which are also the ceilings: a manifest can narrow them, never
// widen them.
type policyConfig struct {
	Memory      tomlfile.Size     `toml:"memory"`
	Timeout     tomlfile.Duration `toml:"timeout"`
	Log         tomlfile.Size     `toml:"log"`
	Disk        tomlfile.Size     `toml:"disk"`
	Files       int64             `toml:"files"`
	OpenFiles   int64             `toml:"open_files"`
	Instances   int               `toml:"instances"`
	HTTPTimeout tomlfile.Duration `toml:"http_timeout"`
	HTTPMaxBody tomlfile.Size     `toml:"http_max_body"`
	// HTTPAllow is the ceiling of manifests' [http] allow; unset: any host
	// or address but "*" and link-local ones; [] : no HTTP at all.
	HTTPAllow       *[]string `toml:"http_allow"`
	Trusted         []string  `toml:"trusted"`
	ExposeVariables []string  `toml:"expose_variables"`
	HideVariables   []string  `toml:"hide_variables"`
	MaxOutlived     int       `toml:"max_outlived"`
}

// over returns p with the keys o sets replaced by o's.
func (p policyConfig) over(o policyConfig) policyConfig {
	set := func(dst *tomlfile.Size, v tomlfile.Size) {
		if v > 0 {
			*dst = v
		}
	}
	setD := func(dst *tomlfile.Duration, v tomlfile.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&p.Memory, o.Memory)
	setD(&p.Timeout, o.Timeout)
	set(&p.Log, o.Log)
	set(&p.Disk, o.Disk)
	set(&p.HTTPMaxBody, o.HTTPMaxBody)
	setD(&p.HTTPTimeout, o.HTTPTimeout)
	if o.Files > 0 {
		p.Files = o.Files
	}
	if o.OpenFiles > 0 {
		p.OpenFiles = o.OpenFiles
	}
	if o.Instances > 0 {
		p.Instances = o.Instances
	}
	if o.HTTPAllow != nil {
		p.HTTPAllow = o.HTTPAllow
	}
	if o.Trusted != nil {
		p.Trusted = o.Trusted
	}
	if o.ExposeVariables != nil {
		p.ExposeVariables = o.ExposeVariables
	}
	if o.HideVariables != nil {
		p.HideVariables = o.HideVariables
	}
	if o.MaxOutlived > 0 {
		p.MaxOutlived = o.MaxOutlived
	}
	return p
}

// check reports what cannot be a policy.
func (p policyConfig) check(where string) error {
	var errs []error
	if p.Memory > resource.MaxMemory {
		errs = append(errs, fmt.Errorf("%s: memory must be at most 4GiB", where))
	}
	if p.Files < 0 || p.OpenFiles < 0 || p.Instances < 0 || p.MaxOutlived < 0 {
		errs = append(errs, fmt.Errorf("%s: files, open_files, instances and max_outlived must not be negative", where))
	}
	if p.HTTPAllow != nil {
		for _, e := range *p.HTTPAllow {
			if _, err := resource.ParseHostPattern(e); err != nil {
				errs = append(errs, fmt.Errorf("%s: http_allow: %w", where, err))
			}
		}
	}
	for _, list := range [][]string{p.ExposeVariables, p.HideVariables} {
		for _, pat := range list {
			if _, err := path.Match(pat, ""); err != nil {
				errs = append(errs, fmt.Errorf("%s: bad variable pattern %q: %w", where, pat, err))
			}
		}
	}
	return errors.Join(errs...)
}

// policy returns the resource.Policy p describes.
func (p policyConfig) policy() *resource.Policy {
	out := &resource.Policy{
		Max: resource.Limits{
			Memory: int64(p.Memory), Timeout: time.Duration(p.Timeout), Log: int64(p.Log), Disk: int64(p.Disk),
			Files: p.Files, OpenFiles: p.OpenFiles, Instances: p.Instances,
			HTTP: resource.HTTPLimits{Timeout: time.Duration(p.HTTPTimeout), MaxResponse: int64(p.HTTPMaxBody)},
		},
		Trusted: p.Trusted, Expose: p.ExposeVariables, Hide: p.HideVariables, MaxOutlived: p.MaxOutlived,
	}
	if p.HTTPAllow != nil {
		out.HTTPAllow = append([]string{}, *p.HTTPAllow...)
	}
	return out
}

// runnerConfig is one [[runners]] entry: a runner token and what its jobs
// may use.
type runnerConfig struct {
	Name      string `toml:"name"`
	URL       string `toml:"url"`
	Token     string `toml:"token"`
	TokenFile string `toml:"token_file"`
	// TokenObtainedAt and TokenExpiresAt are the token's times, as
	// gitlab-runner register writes them; serve writes them when it
	// replaces the token before it expires.
	TokenObtainedAt time.Time `toml:"token_obtained_at"`
	TokenExpiresAt  time.Time `toml:"token_expires_at"`
	// TokenRotation replaces the file's token_rotation for this runner.
	TokenRotation  *bool    `toml:"token_rotation"`
	Modules        string   `toml:"modules"`
	Handlers       []string `toml:"handlers"`
	DefaultHandler string   `toml:"default_handler"`
	// Concurrency bounds this runner's jobs (default: the global
	// concurrency); Limit is GitLab Runner's name for it.
	Concurrency *int `toml:"concurrency"`
	Limit       *int `toml:"limit"`
	// OutputLimit: a plain number is KiB, as in GitLab Runner.
	OutputLimit   kibSize `toml:"output_limit"`
	CheckInterval seconds `toml:"check_interval"`
	// BuildsDir replaces the file's builds_dir for this runner (its jobs'
	// build dirs are still under BuildsDir/<name>).
	BuildsDir string `toml:"builds_dir"`
	// RequestConcurrency is GitLab Runner's: wasmrunner asks for one job
	// at a time per runner, so only 0 and 1 are taken.
	RequestConcurrency int `toml:"request_concurrency"`
	// Policy narrows or replaces the file's [policy] for this runner's
	// handlers (a tenant).
	Policy policyConfig `toml:"policy"`
	// PullInterval and RegistryAuthFile replace the file's for this
	// runner's oci:// modules.
	PullInterval     tomlfile.Duration `toml:"pull_interval"`
	RegistryAuthFile string            `toml:"registry_auth_file"`
	// TLSCAFile holds PEM certificates trusted for GitLab besides the
	// system's; TLSCertFile and TLSKeyFile a client certificate shown to
	// it. GitLab Runner's names (tls-ca-file, tls-cert-file,
	// tls-key-file) are taken too.
	TLSCAFile     string `toml:"tls_ca_file"`
	TLSCertFile   string `toml:"tls_cert_file"`
	TLSKeyFile    string `toml:"tls_key_file"`
	TLSCAFileGR   string `toml:"tls-ca-file"`
	TLSCertFileGR string `toml:"tls-cert-file"`
	TLSKeyFileGR  string `toml:"tls-key-file"`

	// concurrencyKey is the name Concurrency was set under.
	concurrencyKey string
}

// loadConfig reads and checks a config file.
func loadConfig(path string) (fileConfig, error) {
	var c fileConfig
	if err := tomlfile.Decode(path, &c); err != nil {
		return c, withKeyHints(err)
	}
	var errs []error
	if err := c.resolve(path); err != nil {
		errs = append(errs, err)
	}
	if len(c.Runners) == 0 {
		errs = append(errs, fmt.Errorf("%s: no [[runners]]", path))
	}
	seen := map[string]bool{}
	for i := range c.Runners {
		r := &c.Runners[i]
		where := fmt.Sprintf("%s: runners[%d]", path, i)
		if r.Name == "" {
			r.Name = fmt.Sprintf("runner-%d", i+1)
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("%s: name %q is used twice", where, r.Name))
		}
		seen[r.Name] = true
		where = fmt.Sprintf("%s (%s)", where, r.Name)
		switch {
		case r.URL == "":
			errs = append(errs, fmt.Errorf("%s: url is required", where))
		case r.Modules == "":
			errs = append(errs, fmt.Errorf("%s: modules is required", where))
		case r.Token != "" && r.TokenFile != "":
			errs = append(errs, fmt.Errorf("%s: token and token_file are exclusive", where))
		case r.Token == "" && r.TokenFile == "":
			errs = append(errs, fmt.Errorf("%s: token or token_file is required", where))
		}
		if n := deref(r.Concurrency); n < 0 {
			errs = append(errs, fmt.Errorf("%s: concurrency must not be negative", where))
		} else if g := deref(c.Concurrency); g > 0 && n > g {
			errs = append(errs, fmt.Errorf("%s: %s = %d is more than the global %s = %d, which bounds all runners' jobs together", where, r.concurrencyKey, n, c.concurrencyKey, g))
		}
		if r.RequestConcurrency < 0 || r.RequestConcurrency > 1 {
			errs = append(errs, fmt.Errorf("%s: request_concurrency must be 1: wasmrunner asks GitLab for one job at a time per runner", where))
		}
		if err := checkModulesValue(r.Modules); r.Modules != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: modules: %w", where, err))
		}
		if r.Modules != "" {
			names := slices.Clone(r.Handlers)
			if r.DefaultHandler != "" && !slices.Contains(names, r.DefaultHandler) {
				names = append(names, r.DefaultHandler)
			}
			if missing := missingHandlers(r.Modules, names); len(missing) > 0 {
				what := "handler"
				if len(missing) > 1 {
					what = "handlers"
				}
				errs = append(errs, fmt.Errorf("%s: no module in %s provides the %s %s (NAME.wasm or NAME@TAG.wasm)",
					where, r.Modules, what, quoteList(missing)))
			}
		}
		if (r.TLSCertFile == "") != (r.TLSKeyFile == "") {
			errs = append(errs, fmt.Errorf("%s: tls_cert_file and tls_key_file go together (a client certificate and its key)", where))
		}
		if r.DefaultHandler != "" && len(r.Handlers) > 0 && !slices.Contains(r.Handlers, r.DefaultHandler) {
			errs = append(errs, fmt.Errorf("%s: default_handler %q is not in handlers", where, r.DefaultHandler))
		}
		if err := c.Policy.over(r.Policy).check(where + ".policy"); err != nil {
			errs = append(errs, err)
		}
		if r.TokenFile != "" {
			data, err := os.ReadFile(r.TokenFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: token_file: %w", where, err))
			}
			r.Token = strings.TrimSpace(string(data))
		}
	}
	if deref(c.Concurrency) < 0 {
		errs = append(errs, fmt.Errorf("%s: concurrency must not be negative", path))
	}
	if _, err := parseLogLevel(c.LogLevel); c.LogLevel != "" && err != nil {
		errs = append(errs, fmt.Errorf("%s: log_level: %w", path, err))
	}
	if _, err := parseLogFormat(c.LogFormat); c.LogFormat != "" && err != nil {
		errs = append(errs, fmt.Errorf("%s: log_format: %w", path, err))
	}
	if err := c.Policy.check(path + ": policy"); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// resolve takes GitLab Runner's names of settings (concurrent,
// listen_address, runners' limit) into wasmrunner's; one setting under
// both names is an error.
func (c *fileConfig) resolve(path string) error {
	var errs []error
	c.concurrencyKey = "concurrency"
	if c.Concurrent != nil {
		c.concurrencyKey = "concurrent"
	}
	errs = append(errs, alias(path, "concurrency", "concurrent", &c.Concurrency, &c.Concurrent))
	errs = append(errs, alias(path, "listen", "listen_address", &c.Listen, &c.ListenAddress))
	for i := range c.Runners {
		r := &c.Runners[i]
		r.concurrencyKey = "concurrency"
		if r.Limit != nil {
			r.concurrencyKey = "limit"
		}
		where := fmt.Sprintf("%s: runners[%d]", path, i)
		errs = append(errs, alias(where, "concurrency", "limit", &r.Concurrency, &r.Limit))
		for _, k := range []struct {
			name       string
			dst, other *string
		}{{"tls_ca_file", &r.TLSCAFile, &r.TLSCAFileGR}, {"tls_cert_file", &r.TLSCertFile, &r.TLSCertFileGR}, {"tls_key_file", &r.TLSKeyFile, &r.TLSKeyFileGR}} {
			if *k.other == "" {
				continue
			}
			if *k.dst != "" {
				errs = append(errs, fmt.Errorf("%s: %s and %s are one setting: keep one", where, k.name, strings.ReplaceAll(k.name, "_", "-")))
			}
			*k.dst, *k.other = *k.other, ""
		}
	}
	return errors.Join(errs...)
}

// alias moves the value of GitLab Runner's key official into wasmrunner's
// key name, unless both are set.
func alias[T any](where, name, official string, dst, src **T) error {
	if *src == nil {
		return nil
	}
	if *dst != nil {
		return fmt.Errorf("%s: %s and %s are one setting (%s is GitLab Runner's name for %s): keep one", where, name, official, official, name)
	}
	*dst, *src = *src, nil
	return nil
}

// deref is *p, or the zero value when p is nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// missingHandlers returns those of names that no module of the modules dir
// provides: a handler NAME is NAME.wasm or a version of it, NAME@TAG.wasm.
// When the dir cannot be read (or lists more entries than modules dirs
// may), it returns nil: handlers may be added to it later (they are picked
// up while running), and the loader reports what is wrong with the dir.
func missingHandlers(dir string, names []string) []string {
	if len(names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	// Stat first, and open with O_NONBLOCK: a FIFO in its place does not
	// block.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer d.Close()
	for read := 0; len(want) > 0; {
		if read >= maxModulesDirEntries {
			return nil
		}
		ents, err := d.ReadDir(512)
		read += len(ents)
		for _, e := range ents {
			base, ok := strings.CutSuffix(e.Name(), ".wasm")
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(base, "@")
			delete(want, name)
		}
		if errors.Is(err, io.EOF) || len(ents) == 0 {
			break
		}
		if err != nil {
			return nil
		}
	}
	var missing []string
	for _, n := range names {
		if want[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

// maxModulesDirEntries is how many entries of a modules dir missingHandlers
// reads at most, as many as the loader does.
const maxModulesDirEntries = 1 << 16

// seconds is a duration written as Go does ("90s", "1h30m") or, as GitLab
// Runner's config.toml has it, as a plain number of seconds (3, "3"). It
// is a struct: the TOML decoder would store an integer into an integer
// type (as nanoseconds) without calling UnmarshalText.
type seconds struct{ d time.Duration }

// UnmarshalText parses a duration.
func (d *seconds) UnmarshalText(b []byte) error {
	s := string(b)
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) {
			return fmt.Errorf("%s seconds is too long", s)
		}
		d.d = time.Duration(n) * time.Second
		return nil
	}
	var v tomlfile.Duration
	if err := v.UnmarshalText(b); err != nil {
		return err
	}
	d.d = time.Duration(v)
	return nil
}

// MarshalText formats the duration.
func (d seconds) MarshalText() ([]byte, error) { return []byte(d.d.String()), nil }

// kibSize is a byte size with a unit ("4MiB") or, as GitLab Runner's
// output_limit has it, a plain number of KiB (4096, "4096"). A struct, as
// seconds is.
type kibSize struct{ n int64 }

// UnmarshalText parses a size.
func (s *kibSize) UnmarshalText(b []byte) error {
	n, err := parseKiBSize(string(b))
	if err != nil {
		return err
	}
	s.n = n
	return nil
}

// MarshalText formats the size.
func (s kibSize) MarshalText() ([]byte, error) { return []byte(units.FormatSize(s.n)), nil }

// parseKiBSize parses a size with a unit, or a plain number of KiB.
func parseKiBSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64>>10 {
			return 0, fmt.Errorf("%s KiB is too large", s)
		}
		return n << 10, nil
	}
	var v tomlfile.Size
	if err := v.UnmarshalText([]byte(s)); err != nil {
		return 0, err
	}
	return int64(v), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// compileOver sets the loading bounds the file sets in o.
func (c fileConfig) compileOver(o *serveOptions) {
	if c.MaxModuleSize > 0 {
		o.compile.MaxModuleSize = int64(c.MaxModuleSize)
	}
	if c.CompileMemory > 0 {
		o.compile.Memory = int64(c.CompileMemory)
	}
	if c.CompileTimeout > 0 {
		o.compile.Timeout = time.Duration(c.CompileTimeout)
	}
	if c.CompileCacheSize > 0 {
		o.cacheMax = int64(c.CompileCacheSize)
	}
	if c.LoadTimeout > 0 {
		o.loadTimeout = time.Duration(c.LoadTimeout)
	}
}

// options turns a runner entry into serve options, with the file's and
// the command line's settings as defaults.
func (r runnerConfig) options(c fileConfig, base serveOptions) serveOptions {
	o := base
	o.name = r.Name
	o.url, o.token, o.modulesDir = r.URL, r.Token, r.Modules
	o.tokenObtainedAt, o.tokenExpiresAt = r.TokenObtainedAt, r.TokenExpiresAt
	for _, v := range []*bool{c.TokenRotation, r.TokenRotation} {
		if v != nil {
			o.rotateToken = *v
		}
	}
	if r.DefaultHandler != "" {
		o.defaultHandler = r.DefaultHandler
	}
	o.handlers = r.Handlers
	o.policy = *c.Policy.over(r.Policy).policy()
	if n := deref(r.Concurrency); n > 0 {
		o.concurrency = n
	}
	if r.OutputLimit.n > 0 {
		o.outputLimit = r.OutputLimit.n
	}
	if c.CheckInterval.d > 0 {
		o.checkInterval = c.CheckInterval.d
	}
	if r.CheckInterval.d > 0 {
		o.checkInterval = r.CheckInterval.d
	}
	if c.BuildsDir != "" {
		o.buildsDir = c.BuildsDir
	}
	if r.BuildsDir != "" {
		o.buildsDir = r.BuildsDir
	}
	o.oci = c.ociOver(r, o.oci)
	if r.TLSCAFile != "" {
		o.tls.CAFile = r.TLSCAFile
	}
	if r.TLSCertFile != "" {
		o.tls.CertFile, o.tls.KeyFile = r.TLSCertFile, r.TLSKeyFile
	}
	return o
}

// keyHint is what an unknown key of GitLab Runner's config.toml is in
// wasmrunner, when it is not simply the same key.
var keyHints = map[string]string{
	"sentry_dsn":                      "GitLab Runner's Sentry reporting; wasmrunner has none: remove it",
	"connection_max_age":              "GitLab Runner's; wasmrunner's HTTP client manages its own connections: remove it",
	"session_server":                  "GitLab Runner's interactive web terminal; wasmrunner has none: remove the table",
	"runners.executor":                "wasmrunner has one executor, its WebAssembly handlers (a job's image names one in modules): remove it",
	"runners.shell":                   "wasmrunner runs no host shell (the shell handler, modules/shell.wasm, is a sandboxed one): remove it",
	"runners.cache":                   "GitLab Runner's cache: is not supported: remove it",
	"runners.cache_dir":               "GitLab Runner's cache: is not supported: remove it",
	"runners.custom_build_dir":        "wasmrunner picks each job's build dir under builds_dir: remove it",
	"runners.environment":             "not supported: set job variables in GitLab, or the guest's environment in a handler's manifest ([env] set)",
	"runners.clone_url":               "wasmrunner does not fetch a project's sources (jobs get their dependencies' artifacts): remove it",
	"runners.pre_get_sources_script":  "wasmrunner does not fetch a project's sources: remove it",
	"runners.post_get_sources_script": "wasmrunner does not fetch a project's sources: remove it",
	"runners.pre_clone_script":        "wasmrunner does not fetch a project's sources: remove it",
	"runners.post_clone_script":       "wasmrunner does not fetch a project's sources: remove it",
	"runners.pre_build_script":        "not supported: put the commands in the jobs' script",
	"runners.post_build_script":       "not supported: put the commands in the jobs' script",
	"runners.id":                      "written by gitlab-runner register; wasmrunner does not use it: remove it",
	"runners.concurrent":              `per runner that is "concurrency" (GitLab Runner: "limit")`,
	"runners.listen_address":          `a global key ("listen"), not a runner's`,
	"runners.listen":                  "a global key, not a runner's",
	"runners.log_level":               "a global key, not a runner's",
	"runners.log_format":              "a global key, not a runner's",
	"runners.shutdown_timeout":        "a global key, not a runner's",
	"runners.reload_interval":         "a global key, not a runner's",
	"runners.report_deadline":         "a global key, not a runner's",
	"modules":                         "a runner's key: put it in a [[runners]] entry",
	"url":                             "a runner's key: put it in a [[runners]] entry",
	"token":                           "a runner's key: put it in a [[runners]] entry",
	"token_file":                      "a runner's key: put it in a [[runners]] entry",
	"handlers":                        "a runner's key: put it in a [[runners]] entry",
	"default_handler":                 "a runner's key: put it in a [[runners]] entry",
	"output_limit":                    "a runner's key: put it in a [[runners]] entry",
	"limit":                           `per runner, in a [[runners]] entry; globally that is "concurrency" (GitLab Runner: "concurrent")`,
}

// executorTables are GitLab Runner's executors' tables in a [[runners]]
// entry.
var executorTables = []string{"docker", "kubernetes", "custom", "ssh", "parallels", "virtualbox", "machine", "autoscaler", "instance", "referees"}

// unsupportedRunnerKeys are GitLab Runner's other [[runners]] keys.
var unsupportedRunnerKeys = []string{"debug_trace_disabled", "unhealthy_requests_limit", "unhealthy_interval",
	"job_status_final_update_retry_limit", "feature_flags", "safety_checks", "shell_options"}

// keyHint says what to do about an unknown key: what it is in wasmrunner
// if it is GitLab Runner's, else the known key it may be a typo of.
func keyHint(key string) string {
	if h, ok := keyHints[key]; ok {
		return h
	}
	if t, ok := strings.CutPrefix(key, "runners."); ok {
		first, _, _ := strings.Cut(t, ".")
		if slices.Contains(executorTables, first) {
			return "a GitLab Runner executor's settings; wasmrunner runs jobs in the WebAssembly handlers of modules: remove the table"
		}
		if slices.Contains(unsupportedRunnerKeys, first) {
			return "GitLab Runner's, not supported by wasmrunner: remove it"
		}
	}
	if k := tomlfile.Suggest(key, configKeys); k != "" {
		return fmt.Sprintf("did you mean %q?", k)
	}
	return ""
}

var configKeys = tomlfile.Keys(fileConfig{})

// keyError is an unknown key's error with a hint.
type keyError struct {
	err  *tomlfile.Error
	hint string
}

func (e *keyError) Error() string { return e.err.Error() + ": " + e.hint }
func (e *keyError) Unwrap() error { return e.err }

// withKeyHints adds hints to the unknown keys' errors of err.
func withKeyHints(err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	changed := false
	for i, e := range list {
		var te *tomlfile.Error
		if errors.As(e, &te) && te.UnknownKey {
			if h := keyHint(te.Key); h != "" {
				list[i] = &keyError{te, h}
				changed = true
			}
		}
	}
	if !changed {
		return err
	}
	return errors.Join(list...)
}
