package tomlfile

import (
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
