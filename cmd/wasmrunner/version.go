package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// version and revision may be set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.revision=$(git rev-parse HEAD)" ./cmd/wasmrunner
//
// Otherwise they come from what the Go toolchain recorded in the binary
// (see buildVersion).
var version, revision string

// build is what the binary says of its build.
var build = readBuild(debug.ReadBuildInfo)

func init() {
	if version == "" {
		version = build.version
	}
	if revision != "" {
		build.revision, build.time, build.modified = revision, "", false
	}
}

// buildInfo is what a binary records of its build.
type buildInfo struct {
	// version is the module's version: v1.2.3 when installed with
	// go install .../cmd/wasmrunner@v1.2.3; a pseudo-version
	// (v0.0.0-20250102150405-abcdef123456, "+dirty" if the checkout had
	// changes) when built in a git checkout of wasmrunner; else
	// "devel", or "devel-REVISION".
	version string
	// revision, time and modified are the commit a checkout's build was
	// made from ("" if unknown), its time, and whether the checkout had
	// changes.
	revision, time string
	modified       bool
}

// readBuild reads the build information the Go toolchain recorded.
func readBuild(read func() (*debug.BuildInfo, bool)) buildInfo {
	b := buildInfo{version: "devel"}
	bi, ok := read()
	if !ok {
		return b
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	switch v := bi.Main.Version; {
	case v != "" && v != "(devel)":
		b.version = v
	case b.revision != "":
		b.version = "devel-" + shortRevision(b.revision)
		if b.modified {
			b.version += "+dirty"
		}
	}
	return b
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// revisionLine describes the commit of the build.
func (b buildInfo) revisionLine() string {
	if b.revision == "" {
		return "unknown (built without version control information)"
	}
	s := b.revision
	if b.time != "" {
		s += " (" + b.time
		if b.modified {
			s += ", with uncommitted changes"
		}
		s += ")"
	} else if b.modified {
		s += " (with uncommitted changes)"
	}
	return s
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the guest ABI version and the Go version",
		Description: `version prints wasmrunner's version (the module version "go install" built,
a pseudo-version with the commit when built in a git checkout, or what
-ldflags "-X main.version=..." set), the commit, the guest ABI and the Go
toolchain. GitLab shows the same version for the runner, the job log says
"Running with wasmrunner VERSION", and /metrics has it in
gitlab_runner_version_info.

Example:
   wasmrunner version`,
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wasmrunner %s\nrevision: %s\nguest ABI: %s (v%d)\ngo: %s %s/%s\n",
				version, build.revisionLine(), abi.ModuleName, abi.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
