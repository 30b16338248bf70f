package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pipeline500 is 10 stages of 50 jobs without needs: each job receives
// every earlier-stage job's artifacts (GitLab's default dependencies)
// when artifacts is true.
func pipeline500(artifacts bool) string {
	var b strings.Builder
	b.WriteString("stages: [")
	for s := range 10 {
		if s > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "s%d", s)
	}
	b.WriteString("]\ndefault:\n  image: shell\n")
	for s := range 10 {
		for j := range 50 {
			fmt.Fprintf(&b, "job-%d-%d:\n  stage: s%d\n  script: [echo $CI_JOB_NAME]\n", s, j, s)
			if artifacts {
				fmt.Fprintf(&b, "  artifacts: {paths: [out-%d-%d.txt]}\n  after_script: [echo x > out-%d-%d.txt]\n", s, j, s, j)
			}
		}
	}
	return b.String()
}

// BenchmarkExec500 runs a 500-job pipeline (10 stages x 50 jobs) through
// exec with the shell handler, without and with artifacts passed on, the
// handler already compiled.
func BenchmarkExec500(b *testing.B) {
	modules, err := filepath.Abs(filepath.Join("..", "..", "examples", "modules"))
	if err != nil {
		b.Fatal(err)
	}
	// The first run of a handler compiles it into the user's cache dir
	// (about half a second for the shell): done once here, as by a
	// user's first exec, so that the runs measured load it from there.
	warm := filepath.Join(b.TempDir(), ".gitlab-ci.yml")
	if err := os.WriteFile(warm, []byte("job:\n  image: shell\n  script: [echo warm]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if code, out, errOut := runCLI(&testing.T{}, context.Background(), "exec", "--modules", modules, "--file", warm,
		"--artifacts-dir", filepath.Join(b.TempDir(), "a"), "--no-project-files"); code != exitOK {
		b.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, arts := range []bool{false, true} {
		b.Run(fmt.Sprintf("artifacts=%v", arts), func(b *testing.B) {
			dir := b.TempDir()
			file := filepath.Join(dir, ".gitlab-ci.yml")
			if err := os.WriteFile(file, []byte(pipeline500(arts)), 0o644); err != nil {
				b.Fatal(err)
			}
			// CPU time too: on a shared machine the wall time says more
			// about the other processes than about exec.
			cpu0 := processCPU(b)
			for b.Loop() {
				code, out, errOut := runCLI(&testing.T{}, context.Background(), "exec", "--modules", modules, "--file", file,
					"--artifacts-dir", filepath.Join(b.TempDir(), "a"), "--no-project-files", "--output", "group")
				if code != exitOK {
					b.Fatalf("exit %d\n%s\n%s", code, out[max(0, len(out)-2000):], errOut)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// processCPU returns the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
