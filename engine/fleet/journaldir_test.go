package fleet

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestJournalDir: one journal dir per runner entry and GitLab, under the
// builds dir; replicas of an entry (same name, URL, builds dir) share it,
// whatever their tokens (a rotated token keeps it).
func TestJournalDir(t *testing.T) {
	base := Runner{Name: "team-a", URL: "https://gitlab.example.com", Token: "glrt-one", BuildsDir: "/var/lib/wasmrunner/builds"}
	dir := JournalDir(base)
	if !strings.HasPrefix(dir, filepath.Join(base.BuildsDir, ".wasmrunner-journal", "team-a-")) {
		t.Errorf("JournalDir = %s, want it under the builds dir's .wasmrunner-journal", dir)
	}
	for _, tc := range []struct {
		name string
		edit func(*Runner)
		same bool
	}{
		{"rotated token", func(r *Runner) { r.Token = "glrt-two" }, true},
		{"other settings", func(r *Runner) { r.Concurrency, r.Modules = 9, "/srv/other" }, true},
		{"other name", func(r *Runner) { r.Name = "team-b" }, false},
		{"other GitLab", func(r *Runner) { r.URL = "https://gitlab.other.example" }, false},
		{"other builds dir", func(r *Runner) { r.BuildsDir = "/srv/builds" }, false},
		{"name with a slash", func(r *Runner) { r.Name = "../escape" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			tc.edit(&r)
			got := JournalDir(r)
			if (got == dir) != tc.same {
				t.Errorf("JournalDir = %s (base %s), same: %v, want %v", got, dir, got == dir, tc.same)
			}
			if rel, err := filepath.Rel(filepath.Join(r.BuildsDir, ".wasmrunner-journal"), got); err != nil || strings.Contains(rel, "/") || strings.HasPrefix(rel, "..") {
				t.Errorf("JournalDir = %s: not one dir under %s/.wasmrunner-journal", got, r.BuildsDir)
			}
		})
	}
}
