package pipeline

import (
	"errors"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"yaml syntax", "job:\n  script: x\n   y: 2\n", ".gitlab-ci.yml:3: invalid YAML: mapping values are not allowed in this context"},
		{"empty", "", ".gitlab-ci.yml: the configuration is empty"},
		{"comments only", "# nothing\n", ".gitlab-ci.yml: the configuration is empty"},
		{"not a map", "- a\n- b\n", ".gitlab-ci.yml:1: the configuration must be a map of keywords and jobs"},
		{"job not a map", "job: make\n", `.gitlab-ci.yml:1: job "job": a job must be a map of keywords`},
		{"null job", "job:\n", `.gitlab-ci.yml:1: job "job": a job must be a map of keywords`},
		{"stages type", "stages: build\njob: {script: x}\n", ".gitlab-ci.yml:1: stages must be a list of strings"},
		{"default type", "default: [a]\njob: {script: x}\n", ".gitlab-ci.yml:1: default: must be a map of keywords"},
		{"image type", "job:\n  image: [a]\n  script: x\n", `.gitlab-ci.yml:2: job "job": image must be a string or a map with a name`},
		{"image without name", "job:\n  image: {entrypoint: [x]}\n  script: x\n", `.gitlab-ci.yml:2: job "job": image:name is required`},
		{"image unknown key", "job:\n  image: {name: a, tag: b}\n  script: x\n", `.gitlab-ci.yml:2: job "job": image: unknown keyword "tag"`},
		{"stage type", "job:\n  stage: [a]\n  script: x\n", `.gitlab-ci.yml:2: job "job": stage must be a string`},
		{"inherit type", "job:\n  inherit: false\n  script: x\n", `.gitlab-ci.yml:2: job "job": inherit must be a map`},
		{"inherit key", "job:\n  inherit: {images: false}\n  script: x\n", `.gitlab-ci.yml:2: job "job": inherit: unknown keyword "images"`},
		{"default timeout", "default:\n  timeout: eventually\njob: {script: x}\n", `.gitlab-ci.yml:2: default: timeout: invalid duration: "eventually": expected a number at "eventually"`},
		{"complex key", "? [a]\n: b\njob: {script: x}\n", ".gitlab-ci.yml:1: map keys must be strings"},
		{"error in template", ".t:\n  script: {a: b}\njob:\n  extends: .t\n", `.gitlab-ci.yml:2: job "job": script must be a string or a list of strings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	_, err := Parse([]byte("job:\n  timeout: 5 fortnights\n  script: x\n"))
	if !errors.Is(err, errDuration) {
		t.Errorf("error %v does not wrap errDuration", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Job != "job" {
		t.Errorf("error = %#v", e)
	}
	_, err = Parse([]byte("a: [\n"))
	if !errors.As(err, &e) || e.Err == nil {
		t.Errorf("YAML error does not keep its cause: %#v", e)
	}
}
