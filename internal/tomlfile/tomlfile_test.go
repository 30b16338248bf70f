package tomlfile

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type sample struct {
	Limits struct {
		Memory  Size     `toml:"memory"`
		Timeout Duration `toml:"timeout"`
	} `toml:"limits"`
	Allow []string `toml:"allow"`
}

func TestDecodeBytes(t *testing.T) {
	var s sample
	err := DecodeBytes("h.toml", []byte("allow = [\"a\"]\n[limits]\nmemory = \"64MiB\"\ntimeout = \"90s\"\n"), &s)
	if err != nil || s.Limits.Memory != 64<<20 || time.Duration(s.Limits.Timeout) != 90*time.Second || s.Allow[0] != "a" {
		t.Fatalf("%+v, %v", s, err)
	}
	tests := []struct{ doc, want string }{
		{"[limits]\nmemroy = \"1MiB\"\n", `h.toml:2: unknown key "limits.memroy"`},
		{"[limits]\nmemory = \"lots\"\n", "h.toml:2: limits.memory: "},
		{"[limits]\ntimeout = \"-5s\"\n", "h.toml:2: limits.timeout: "},
		{"allow = [\n", "h.toml:"},
		{"allow = 3\n", "h.toml:1: "},
	}
	for _, tt := range tests {
		var s sample
		err := DecodeBytes("h.toml", []byte(tt.doc), &s)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.doc, err, tt.want)
		}
	}
}

func FuzzDecodeBytes(f *testing.F) {
	f.Add([]byte("[limits]\nmemory = \"1MiB\"\n"))
	f.Add([]byte("allow = [1, 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		err := DecodeBytes("f.toml", data, &s)
		if err != nil && !strings.HasPrefix(err.Error(), "f.toml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

type typed struct {
	Limits struct {
		Memory  Size     `toml:"memory"`
		Timeout Duration `toml:"timeout"`
		Files   int64    `toml:"files"`
		CPU     string   `toml:"cpu"`
	} `toml:"limits"`
	HTTP struct {
		Allow []string `toml:"allow" example:"[\"example.com\"]"`
	} `toml:"http"`
	Env struct {
		Set map[string]string `toml:"set"`
	} `toml:"env"`
	Policy  *[]string `toml:"policy"`
	Flag    bool      `toml:"flag"`
	Runners []struct {
		Name   string `toml:"name"`
		Output Size   `toml:"output_limit"`
	} `toml:"runners"`
}

// TestTypeErrors: a value of the wrong type is said in TOML terms, with
// its line and key, and sizes and durations need a unit.
func TestTypeErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"[http]\nallow = \"x\"\n", `m.toml:2: http.allow must be a list of strings, not a string; e.g. allow = ["example.com"]`},
		{"[http]\nallow = [1, 2]\n", `m.toml:2: http.allow must be a list of strings, not a list holding an integer; e.g. allow = ["example.com"]`},
		{"[limits]\nmemory = 64\n", `m.toml:2: limits.memory = 64 has no unit: write "64MiB" (or "64B" for bytes)`},
		{"[limits]\nmemory = 67108864\n", `m.toml:2: limits.memory = 67108864 has no unit: write "64MiB" (or "67108864B" for bytes)`},
		{"[limits]\nmemory = \"64\"\n", `m.toml:2: limits.memory = "64": 64 has no unit: write "64MiB" (or "64B" for bytes)`},
		{"[limits]\nmemory = true\n", `m.toml:2: limits.memory must be a size with a unit ("64MiB"), not a boolean; e.g. memory = "64MiB"`},
		{"[limits]\ntimeout = 30\n", `m.toml:2: limits.timeout = 30 has no unit: write "30s" (or "30m", "30h")`},
		{"[limits]\ntimeout = \"30\"\n", `m.toml:2: limits.timeout = "30": 30 has no unit: write "30s" (or "30m", "30h")`},
		{"[limits]\ntimeout = \"soon\"\n", `m.toml:2: limits.timeout: "soon" is not a duration`},
		{"[limits]\nfiles = \"many\"\n", `m.toml:2: limits.files must be an integer, not a string; e.g. files = 4`},
		{"[limits]\ncpu = 1\n", `m.toml:2: limits.cpu must be a string, not an integer; e.g. cpu = "text"`},
		{"limits = 3\n", `m.toml:1: limits must be a table, not an integer; e.g. limits = { ... }`},
		{"[env]\nset = [\"A=b\"]\n", `m.toml:2: env.set must be a table of strings, not a list; e.g. set = { NAME = "text" }`},
		{"[env]\nset = { A = 1 }\n", `m.toml:2: env.set.A must be a string, not an integer`},
		{"policy = \"*\"\n", `m.toml:1: policy must be a list of strings, not a string`},
		{"flag = \"yes\"\n", `m.toml:1: flag must be true or false, not a string; e.g. flag = true`},
		{"[[runners]]\nname = \"a\"\noutput_limit = 4096\n", `m.toml:3: runners.output_limit = 4096 has no unit: write "4KiB" (or "4096B" for bytes)`},
		{"[limits.memory]\nx = 1\n", `m.toml:1: limits.memory must be a size with a unit ("64MiB"), not a table`},
		{"limits = { memory = 5 }\n", `m.toml:1: limits.memory = 5 has no unit`},
	}
	for _, tt := range tests {
		var v typed
		err := DecodeBytes("m.toml", []byte(tt.doc), &v)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q:\n got  %v\n want %s", tt.doc, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "[]string") || strings.Contains(err.Error(), "int64") || strings.Contains(err.Error(), "tomlfile.")) {
			t.Errorf("%q: the error names Go types: %v", tt.doc, err)
		}
	}
	// Zero needs no unit; several errors are all said.
	var v typed
	if err := DecodeBytes("m.toml", []byte("[limits]\nmemory = 0\ntimeout = 0\n"), &v); err != nil {
		t.Errorf("zero: %v", err)
	}
	err := DecodeBytes("m.toml", []byte("[limits]\nmemory = 1\nfiles = \"x\"\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "m.toml:2: limits.memory") || !strings.Contains(err.Error(), "m.toml:3: limits.files") {
		t.Errorf("two errors: %v", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Where() != "m.toml:2: limits.memory" {
		t.Errorf("Where: %v", err)
	}
}

// TestTypeErrorsWithUnknownKeys: with a type error, the unknown keys are
// said too, in the order of the file.
func TestTypeErrorsWithUnknownKeys(t *testing.T) {
	var v typed
	err := DecodeBytes("m.toml", []byte("[limits]\nmemroy = 3\nfiles = 1.5\n[limitz]\nx = 1\n"), &v)
	want := "m.toml:2: unknown key \"limits.memroy\"\nm.toml:3: limits.files must be an integer, not a float; e.g. files = 4\nm.toml:4: unknown key \"limitz\""
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}
