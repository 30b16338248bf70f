package shell_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/handlertest"
)

// corpusDir holds the differential corpus: NNN-name.sh snippets modelled
// on real pipelines' scripts, and fixture/, the files each runs among.
const corpusDir = "testdata/shell-corpus"

// bashLine is how bash prefixes its own messages (a script read from
// standard input, as GitLab Runner feeds it): "bash: " or "bash: line N: ".
var bashLine = regexp.MustCompile(`(?m)^bash: (line \d+: )?`)

// fixture reads the corpus's fixture files.
func fixture(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join(corpusDir, "fixture")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// runBash runs script as GitLab Runner's bash shell does (bash -eo
// pipefail, the script on standard input) in a fresh dir holding files;
// its output (stdout and stderr interleaved) and exit status.
func runBash(t *testing.T, script string, files map[string]string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC", "HOME=/nonexistent"}
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	default:
		t.Fatalf("bash: %v", err)
		return "", 0
	}
}

// scriptOutput is what a one-entry script printed: the trace between the
// echo of the command and the end of the step's section.
func scriptOutput(trace string) string {
	start := strings.Index(trace, "\x1b[32;1m$ ")
	if start < 0 {
		return ""
	}
	rest := trace[start:]
	nl := strings.Index(rest, "\x1b[0;m\n")
	if nl < 0 {
		return ""
	}
	rest = rest[nl+len("\x1b[0;m\n"):]
	if end := strings.Index(rest, "section_end:"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// TestCorpusAgreesWithBash runs each snippet of the corpus with bash on
// the host and with shell.wasm through the engine (the fixture files as a
// dependency's artifacts, the whole snippet as one script entry), and
// compares their output and exit status. Bash's own messages are compared
// with its "bash: line N: " prefix read as the shell's "sh: ".
func TestCorpusAgreesWithBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("bash is needed for the differential corpus")
		}
		t.Skip("no bash")
	}
	files := fixture(t)
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	if len(paths) < 100 {
		t.Errorf("the corpus has %d snippets, want at least 100", len(paths))
	}
	r, _ := start(t)
	type snippet struct {
		name, script string
		run          *handlertest.JobRun
	}
	var snippets []snippet
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".sh")
		snippets = append(snippets, snippet{name: name, script: string(b), run: r.Start(handlertest.Job{
			Name:         name,
			Script:       []string{string(b)},
			Dependencies: []handlertest.Dependency{{Files: files}},
		})})
	}
	for _, s := range snippets {
		t.Run(s.name, func(t *testing.T) {
			wantOut, wantCode := runBash(t, s.script, files)
			wantOut = bashLine.ReplaceAllString(wantOut, "sh: ")
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			res, err := s.run.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := scriptOutput(string(res.Trace))
			if got != wantOut || res.ExitCode != wantCode {
				t.Errorf("shell.wasm: exit %d, output:\n%s\nbash: exit %d, output:\n%s", res.ExitCode, got, wantCode, wantOut)
			}
		})
	}
}
