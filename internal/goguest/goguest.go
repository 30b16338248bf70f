// Package goguest builds Go handlers for tests the way handler authors
// build them (GOOS=wasip1 GOARCH=wasm go build), against this
// repository's Go SDK.
package goguest

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// SDK is a Go handler on the SDK: a script line "fail" fails the
// step; others are printed.
const SDK = `package main

import wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"

type handler struct{}

func (handler) Step(script []string, phase wasmrunner.Phase) int {
	for _, line := range script {
		if line == "fail" {
			return 1
		}
		wasmrunner.Printf("go handler: %s\n", line)
	}
	return 0
}

func (handler) Cleanup() {}

func init() { wasmrunner.Handle(handler{}) }

func main() {}
`

// Command is a plain Go program: a command module whose main runs
// at each step.
const Command = `package main

import "os"

func main() { os.Stdout.WriteString("go command ran\n") }
`

var goBuilds sync.Map // key -> *goBuild

type goBuild struct {
	once sync.Once
	bin  []byte
	err  error
	out  string
}

// Module builds the Go program src for GOOS=wasip1 GOARCH=wasm, as a
// reactor (-buildmode=c-shared) when cshared is set, else as a command
// (what `go build` gives without the flag), and returns the module. Each
// distinct build runs once per test binary. It skips the test when no go
// command is found (and fails it under CI).
func Module(t testing.TB, src string, cshared bool) []byte {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go"
		if _, serr := os.Stat(goCmd); serr != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("no go command to build a Go guest: %v", err)
			}
			t.Skipf("no go command to build a Go guest: %v", err)
		}
	}
	sum := sha256.Sum256([]byte(src))
	key := hex.EncodeToString(sum[:8])
	if cshared {
		key += "-c-shared"
	}
	v, _ := goBuilds.LoadOrStore(key, &goBuild{})
	b := v.(*goBuild)
	b.once.Do(func() { b.bin, b.out, b.err = buildGo(goCmd, src, cshared) })
	if b.err != nil {
		t.Fatalf("building a Go guest: %v\n%s", b.err, b.out)
	}
	return b.bin
}

func buildGo(goCmd, src string, cshared bool) ([]byte, string, error) {
	dir, err := os.MkdirTemp("", "wasmrunner-goguest-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	_, self, _, _ := runtime.Caller(0)
	sdk := filepath.Join(filepath.Dir(self), "..", "..", "guest-sdk", "go")
	mod := "module goguest\n\ngo 1.26\n\nrequire github.com/wasmrunner/wasmrunner/guest-sdk/go v0.0.0\n\nreplace github.com/wasmrunner/wasmrunner/guest-sdk/go => " + sdk + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return nil, "", err
	}
	args := []string{"build", "-trimpath", "-o", "guest.wasm"}
	if cshared {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.Command(goCmd, append(args, ".")...)
	cmd.Dir = dir
	env := []string{"GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0"}
	for _, e := range os.Environ() {
		if k, _, _ := strings.Cut(e, "="); k != "GOOS" && k != "GOARCH" && k != "GOFLAGS" && k != "GOWORK" {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, string(out), err
	}
	bin, err := os.ReadFile(filepath.Join(dir, "guest.wasm"))
	return bin, string(out), err
}
