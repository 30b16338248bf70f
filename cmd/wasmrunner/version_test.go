package main

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuild(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/wasmrunner/wasmrunner", Version: version}}
			for i := 0; i < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	rev := "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		name         string
		read         func() (*debug.BuildInfo, bool)
		version, rev string
	}{
		{"go install @version", info("v1.2.3"), "v1.2.3", "unknown (built without version control information)"},
		{"checkout", info("v0.0.0-20250102150405-0123456789ab", "vcs.revision", rev, "vcs.time", "2025-01-02T15:04:05Z", "vcs.modified", "false"),
			"v0.0.0-20250102150405-0123456789ab", rev + " (2025-01-02T15:04:05Z)"},
		{"dirty checkout", info("v0.0.0-20250102150405-0123456789ab+dirty", "vcs.revision", rev, "vcs.time", "2025-01-02T15:04:05Z", "vcs.modified", "true"),
			"v0.0.0-20250102150405-0123456789ab+dirty", rev + " (2025-01-02T15:04:05Z, with uncommitted changes)"},
		{"devel with VCS", info("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "devel-0123456789ab+dirty", rev + " (with uncommitted changes)"},
		{"no VCS", info("(devel)"), "devel", "unknown (built without version control information)"},
		{"no build info", func() (*debug.BuildInfo, bool) { return nil, false }, "devel", "unknown (built without version control information)"},
	} {
		b := readBuild(tt.read)
		if b.version != tt.version || b.revisionLine() != tt.rev {
			t.Errorf("%s: version %q, revision %q; want %q, %q", tt.name, b.version, b.revisionLine(), tt.version, tt.rev)
		}
	}
}

// TestVersionEverywhere: the version command and the metrics say the
// same version (TestServe checks the job log's).
func TestVersionEverywhere(t *testing.T) {
	old := version
	version = "v9.8.7-test"
	t.Cleanup(func() { version = old })
	code, out, _ := runCLI(t, context.Background(), "version")
	if code != exitOK || !strings.HasPrefix(out, "wasmrunner v9.8.7-test\nrevision: ") || !strings.Contains(out, "wasmrunner:host/v1") {
		t.Errorf("version: %d %s", code, out)
	}
	m := newMetrics(1)
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "gitlab_runner_version_info" {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		found = labels["version"] == "v9.8.7-test" && labels["name"] == "wasmrunner" && labels["go_version"] != "" && labels["os"] != "" && labels["architecture"] != ""
	}
	if !found {
		t.Error("gitlab_runner_version_info lacks the version")
	}
}
