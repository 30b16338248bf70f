package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

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
	Runners         []runnerConfig    `toml:"runners"`
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
	return c, errors.Join(errs...)
}

// options turns a runner entry into serve options, with the file's and
// the command line's settings as defaults.
func (r runnerConfig) options(c fileConfig, base serveOptions) serveOptions {
	o := base
	o.name = r.Name
	o.url, o.token, o.modulesDir = r.URL, r.Token, r.Modules
	o.defaultHandler = r.DefaultHandler
	o.handlers = r.Handlers
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
