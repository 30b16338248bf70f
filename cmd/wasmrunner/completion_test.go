package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompletionBash sources the bash script in bash and completes
// command lines with the test binary acting as wasmrunner.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	code, script, _ := runCLI(t, context.Background(), "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d", code)
	}
	bin := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "wasmrunner")); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		var q []string
		for _, w := range words {
			q = append(q, "'"+w+"'")
		}
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script+`
COMP_WORDS=(`+strings.Join(q, " ")+`)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_wasmrunner_complete
printf '%s\n' "${COMPREPLY[@]}"
`)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "WASMRUNNER_TEST_AS_CLI=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"wasmrunner", "unre"}, []string{"unregister"}},
		{[]string{"wasmrunner", "mod"}, []string{"modules"}},
		{[]string{"wasmrunner", "modules", "p"}, []string{"push"}},
		{[]string{"wasmrunner", "serve", "--tls-c"}, []string{"--tls-ca-file", "--tls-cert-file"}},
		{[]string{"wasmrunner", "unregister", "--all"}, []string{"--all-runners"}},
		{[]string{"wasmrunner", "completion", "--nothing-like-it"}, nil},
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("%q: completions %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct {
		shell string
		want  []string
	}{
		{"bash", []string{"complete -o default -F _wasmrunner_complete wasmrunner", "--generate-bash-completion"}},
		{"zsh", []string{"#compdef wasmrunner", "compdef _wasmrunner_complete wasmrunner", "--generate-bash-completion"}},
		{"fish", []string{"complete -c wasmrunner", "__fish_seen_subcommand_from serve", "-l tls-ca-file"}},
	} {
		code, out, errOut := runCLI(t, context.Background(), "completion", tc.shell)
		if code != exitOK {
			t.Errorf("completion %s: exit %d %s", tc.shell, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("completion %s lacks %q", tc.shell, w)
			}
		}
	}
	if code, _, errOut := runCLI(t, context.Background(), "completion", "tcsh"); code != exitUsage || !strings.Contains(errOut, `no completion for the shell "tcsh"`) {
		t.Errorf("completion tcsh: exit %d %s", code, errOut)
	}
	if code, _, _ := runCLI(t, context.Background(), "completion"); code != exitUsage {
		t.Errorf("completion without a shell: exit %d", code)
	}
}
