package tomlfile

import (
	"slices"
	"testing"
)

type suggestSample struct {
	Concurrency int `toml:"concurrency"`
	BuildsDir   string
	Policy      struct {
		Memory Size `toml:"memory"`
	} `toml:"policy"`
	Runners []struct {
		Name      string   `toml:"name"`
		TokenFile string   `toml:"token_file"`
		Timeout   Duration `toml:"timeout"`
		Skipped   string   `toml:"-"`
	} `toml:"runners"`
}

func TestKeys(t *testing.T) {
	got := Keys(&suggestSample{})
	want := []string{"concurrency", "BuildsDir", "policy", "policy.memory", "runners", "runners.name", "runners.token_file", "runners.timeout"}
	if !slices.Equal(got, want) {
		t.Errorf("Keys = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	known := Keys(suggestSample{})
	for _, tt := range []struct{ key, want string }{
		{"concurency", "concurrency"},
		{"Concurrency", "concurrency"},
		{"runners.tokn_file", "runners.token_file"},
		{"runners.token-file", "runners.token_file"},
		{"runners.naem", "runners.name"},
		{"policy.memroy", "policy.memory"},
		{"memory", ""},              // another table's key
		{"runners.concurrency", ""}, // likewise
		{"runners.limit", ""},
		{"x", ""},
		{"runners.nm", ""}, // two edits of a four-letter name
	} {
		if got := Suggest(tt.key, known); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
