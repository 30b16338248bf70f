// envgo: a handler built with the Go SDK that shows, at each step, what
// os.Getenv (the process environment, not the SDK's Var) says of
// CI_JOB_STATUS, GREETING and MINE, then sets MINE (the next step must not
// see it: each step gets the host's environment). A script line "fail"
// fails the step.
package main

import (
	"os"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
)

type handler struct{}

func (handler) Step(script []string, phase wasmrunner.Phase) int {
	status, ok := os.LookupEnv("CI_JOB_STATUS")
	if !ok {
		status = "(unset)"
	}
	mine, ok := os.LookupEnv("MINE")
	if !ok {
		mine = "(unset)"
	}
	os.Setenv("MINE", "set by the handler")
	wasmrunner.Printf("go %s: CI_JOB_STATUS=%s GREETING=%s MINE=%s\n", phase, status, os.Getenv("GREETING"), mine)
	for _, line := range script {
		if line == "fail" {
			return 1
		}
	}
	return 0
}

func (handler) Cleanup() {}

func init() { wasmrunner.Handle(handler{}) }

func main() {}
