// Package gitsource puts a job's sources into its build dir before its
// first step, as GitLab Runner's get_sources stage does, with go-git (no
// git installed): the job's commit is fetched into a per-project cache of
// the runner (or, for GIT_STRATEGY=clone, into a repository of the job's
// own) and its tree written into the build dir through an [os.Root],
// charged to the job's disk and entry budget.
//
// What it honours, and how, is in [Options] and [ParseOptions]; the cache
// is [Cache]; [Get] runs the stage.
package gitsource

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Strategy is GIT_STRATEGY.
type Strategy string

// Values of GIT_STRATEGY.
const (
	// Fetch reuses the project's cached repository: only what changed
	// since the last job of the project on this runner is fetched.
	Fetch Strategy = "fetch"
	// Clone fetches into a repository of the job's own, as a fresh clone.
	Clone Strategy = "clone"
	// None leaves the build dir as it is (empty): no git operation.
	None Strategy = "none"
	// Empty makes an empty build dir (which it always is here).
	Empty Strategy = "empty"
)

// SubmoduleStrategy is GIT_SUBMODULE_STRATEGY.
type SubmoduleStrategy string

// Values of GIT_SUBMODULE_STRATEGY.
const (
	SubmodulesNone      SubmoduleStrategy = "none"
	SubmodulesNormal    SubmoduleStrategy = "normal"
	SubmodulesRecursive SubmoduleStrategy = "recursive"
)

// Options say how a job gets its sources.
type Options struct {
	// Strategy is GIT_STRATEGY; an unset or unknown value is fetch, or
	// clone when GitLab does not allow fetching (allow_git_fetch false),
	// as GitLab Runner decides.
	Strategy Strategy
	// Depth is GIT_DEPTH, else git_info.depth; 0 fetches the whole
	// history.
	Depth int
	// Checkout is GIT_CHECKOUT (default true): false fetches only.
	Checkout bool
	// Clean is GIT_CLEAN_FLAGS (default -ffdx), nil for "none".
	Clean *CleanFlags
	// Submodules is GIT_SUBMODULE_STRATEGY (default none), with
	// GIT_SUBMODULE_DEPTH (default Depth).
	Submodules     SubmoduleStrategy
	SubmoduleDepth int
	// Prune and Tags come from GIT_FETCH_EXTRA_FLAGS (default "--prune
	// --quiet"): --prune/--no-prune, --tags/--no-tags; --quiet and
	// --verbose are accepted and change nothing.
	Prune, Tags bool
	// Attempts is GET_SOURCES_ATTEMPTS, 1 to 10 (default 1).
	Attempts int
	// Warnings are the settings that were not understood and what was
	// done instead, for the job log.
	Warnings []string
}

// ParseOptions reads a job's source options from its payload and
// variables.
func ParseOptions(p *gitlab.Job, vars gitlab.Variables) Options {
	o := Options{Depth: p.GitInfo.Depth, Checkout: true, Submodules: SubmodulesNone, Prune: true, Attempts: 1}
	warn := func(format string, a ...any) { o.Warnings = append(o.Warnings, fmt.Sprintf(format, a...)) }

	switch s := vars.Value("GIT_STRATEGY"); Strategy(s) {
	case Fetch, Clone, None, Empty:
		o.Strategy = Strategy(s)
	default:
		if s != "" {
			warn("GIT_STRATEGY %q is not one of fetch, clone, none, empty; using the default", s)
		}
		o.Strategy = Fetch
		if !p.AllowGitFetch {
			o.Strategy = Clone
		}
	}
	if s := vars.Value("GIT_DEPTH"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			o.Depth = n
		} else {
			warn("GIT_DEPTH %q is not a number of commits; using %d", s, o.Depth)
		}
	}
	o.Depth = max(o.Depth, 0)
	if s := vars.Value("GIT_CHECKOUT"); s != "" {
		if b, err := strconv.ParseBool(s); err == nil {
			o.Checkout = b
		} else {
			warn("GIT_CHECKOUT %q is not true or false; checking out", s)
		}
	}
	cleanFlags := vars.Value("GIT_CLEAN_FLAGS")
	if cleanFlags == "" {
		cleanFlags = DefaultCleanFlags
	}
	if cleanFlags != "none" {
		c, err := ParseCleanFlags(cleanFlags)
		if err != nil {
			warn("GIT_CLEAN_FLAGS: %v; using %s", err, DefaultCleanFlags)
			c, _ = ParseCleanFlags(DefaultCleanFlags)
		}
		o.Clean = c
	}
	switch s := vars.Value("GIT_SUBMODULE_STRATEGY"); SubmoduleStrategy(s) {
	case "":
	case SubmodulesNone, SubmodulesNormal, SubmodulesRecursive:
		o.Submodules = SubmoduleStrategy(s)
	default:
		warn("GIT_SUBMODULE_STRATEGY %q is not one of none, normal, recursive; using none", s)
	}
	o.SubmoduleDepth = o.Depth
	if s := vars.Value("GIT_SUBMODULE_DEPTH"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			o.SubmoduleDepth = n
		} else {
			warn("GIT_SUBMODULE_DEPTH %q is not a number of commits; using %d", s, o.SubmoduleDepth)
		}
	}
	if s, ok := vars.Get("GIT_FETCH_EXTRA_FLAGS"); ok {
		o.Prune = false
		for _, f := range strings.Fields(s.Value) {
			switch f {
			case "--prune", "-p":
				o.Prune = true
			case "--no-prune":
				o.Prune = false
			case "--tags", "-t":
				o.Tags = true
			case "--no-tags", "-n":
				o.Tags = false
			case "--quiet", "-q", "--verbose", "-v", "--progress", "--no-progress":
			default:
				warn("GIT_FETCH_EXTRA_FLAGS: %s is not supported; ignored", f)
			}
		}
	}
	if s := vars.Value("GET_SOURCES_ATTEMPTS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= 10 {
			o.Attempts = n
		} else {
			warn("GET_SOURCES_ATTEMPTS %q is not a number from 1 to 10; using 1", s)
		}
	}
	return o
}
