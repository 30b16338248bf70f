package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
)

// fileConfig is the --config file: several runners in one process.
type fileConfig struct {
	// Concurrency bounds the jobs of all runners together (default: CPUs).
	Concurrency     int               `toml:"concurrency"`
	Listen          string            `toml:"listen"`
	BuildsDir       string            `toml:"builds_dir"`
	ShutdownTimeout tomlfile.Duration `toml:"shutdown_timeout"`
	ReloadInterval  tomlfile.Duration `toml:"reload_interval"`
	// Handler loading bounds (see serve's flags of the same names).
	MaxModuleSize    tomlfile.Size     `toml:"max_module_size"`
	CompileMemory    tomlfile.Size     `toml:"compile_memory"`
	CompileTimeout   tomlfile.Duration `toml:"compile_timeout"`
	CompileCacheSize tomlfile.Size     `toml:"compile_cache_size"`
	LoadTimeout      tomlfile.Duration `toml:"load_timeout"`
	// Policy is the ceiling over every runner's handler manifests.
	Policy  policyConfig   `toml:"policy"`
	Runners []runnerConfig `toml:"runners"`
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
	Name           string            `toml:"name"`
	URL            string            `toml:"url"`
	Token          string            `toml:"token"`
	TokenFile      string            `toml:"token_file"`
	Modules        string            `toml:"modules"`
	Handlers       []string          `toml:"handlers"`
	DefaultHandler string            `toml:"default_handler"`
	Concurrency    int               `toml:"concurrency"`
	OutputLimit    tomlfile.Size     `toml:"output_limit"`
	CheckInterval  tomlfile.Duration `toml:"check_interval"`
	// Policy narrows or replaces the file's [policy] for this runner's
	// handlers (a tenant).
	Policy policyConfig `toml:"policy"`
}

// loadConfig reads and checks a config file.
func loadConfig(path string) (fileConfig, error) {
	var c fileConfig
	if err := tomlfile.Decode(path, &c); err != nil {
		return c, err
	}
	if len(c.Runners) == 0 {
		return c, fmt.Errorf("%s: no [[runners]]", path)
	}
	seen := map[string]bool{}
	var errs []error
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
		switch {
		case r.URL == "":
			errs = append(errs, fmt.Errorf("%s (%s): url is required", where, r.Name))
		case r.Modules == "":
			errs = append(errs, fmt.Errorf("%s (%s): modules is required", where, r.Name))
		case r.Token != "" && r.TokenFile != "":
			errs = append(errs, fmt.Errorf("%s (%s): token and token_file are exclusive", where, r.Name))
		case r.Token == "" && r.TokenFile == "":
			errs = append(errs, fmt.Errorf("%s (%s): token or token_file is required", where, r.Name))
		case r.Concurrency < 0:
			errs = append(errs, fmt.Errorf("%s (%s): concurrency must not be negative", where, r.Name))
		}
		if err := c.Policy.over(r.Policy).check(where + ".policy"); err != nil {
			errs = append(errs, err)
		}
		if r.TokenFile != "" {
			data, err := os.ReadFile(r.TokenFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): token_file: %w", where, r.Name, err))
			}
			r.Token = strings.TrimSpace(string(data))
		}
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("%s: concurrency must not be negative", path))
	}
	if err := c.Policy.check(path + ": policy"); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
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
	o.defaultHandler = r.DefaultHandler
	o.handlers = r.Handlers
	o.policy = *c.Policy.over(r.Policy).policy()
	if r.Concurrency > 0 {
		o.concurrency = r.Concurrency
	}
	if r.OutputLimit > 0 {
		o.outputLimit = int64(r.OutputLimit)
	}
	if r.CheckInterval > 0 {
		o.checkInterval = time.Duration(r.CheckInterval)
	}
	if c.BuildsDir != "" {
		o.buildsDir = c.BuildsDir
	}
	return o
}
