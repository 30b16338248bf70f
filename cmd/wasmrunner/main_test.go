package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"wasmrunner", "--log-level", "debug", "demo"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	for _, want := range []string{
		"state success",
		"Downloaded and extracted artifacts for prepare",
		"dependency says: hello from the prepare job",
		"building demo with password [MASKED]",
		"Job succeeded",
		"build-output.zip: out/result.txt",
		"(injected: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), "s3cr3t-value") {
		t.Errorf("the masked variable leaked:\n%s", &out)
	}
	// The injected 502 shows in the operator log as a retry.
	if !strings.Contains(errOut.String(), "retrying") {
		t.Errorf("operator log lacks the retry:\n%s", &errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"wasmrunner", "no-such-command"},
		{"wasmrunner", "--log-level", "loud", "demo"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code == exitOK {
			t.Errorf("%q: exit 0", args)
		}
	}
}
