package tomlfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

const editDoc = `# wasmrunner's config
concurrency = 4 # all runners

# team A's runner
[[runners]]
  name = "team-a" # the first
  url = "https://gitlab.example.com"
  token = "glrt-old"
  modules = "/srv/a"
  [runners.policy]
  memory = "64MiB"

# team B's runner,
# in two lines
[[runners]]
name = "team-b"
url = "https://gitlab.example.com"
token_file = "/etc/wasmrunner/b.token"
modules = "/srv/b"

[policy]
memory = "128MiB"
`

func TestSetInArrayTable(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		index int
		set   []KeyValue
		want  string // the edited document
		err   string
	}{
		{"replace a value, keep the comment", 0, []KeyValue{{"name", "team-x"}},
			strings.Replace(editDoc, `name = "team-a" # the first`, `name = "team-x" # the first`, 1), ""},
		{"replace and add, indented as the entry's keys", 0, []KeyValue{{"token", "glrt-new"}, {"token_expires_at", at}, {"token_obtained_at", at.Add(-time.Hour)}},
			strings.Replace(editDoc, `  token = "glrt-old"
  modules = "/srv/a"
`, `  token = "glrt-new"
  modules = "/srv/a"
  token_expires_at = 2026-03-04T05:06:07Z
  token_obtained_at = 2026-03-04T04:06:07Z
`, 1), ""},
		{"add to the second entry", 1, []KeyValue{{"token_expires_at", at}},
			strings.Replace(editDoc, `modules = "/srv/b"
`, `modules = "/srv/b"
token_expires_at = 2026-03-04T05:06:07Z
`, 1), ""},
		{"quoting", 1, []KeyValue{{"name", "a \"b\" \\ c\n"}},
			strings.Replace(editDoc, `name = "team-b"`, `name = "a \"b\" \\ c\n"`, 1), ""},
		{"no such entry", 2, []KeyValue{{"name", "x"}}, "", "no [[runners]] entry 2 (the file has 2)"},
		{"a type it cannot write", 0, []KeyValue{{"name", 1.5}}, "", "cannot write a float64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetInArrayTable([]byte(editDoc), "runners", tc.index, tc.set)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestRemoveArrayTable(t *testing.T) {
	first := RemoveOK(t, editDoc, 0)
	if want := `# wasmrunner's config
concurrency = 4 # all runners

# team B's runner,
# in two lines
[[runners]]
name = "team-b"
url = "https://gitlab.example.com"
token_file = "/etc/wasmrunner/b.token"
modules = "/srv/b"

[policy]
memory = "128MiB"
`; first != want {
		t.Errorf("removing the first:\n%s", first)
	}
	second := RemoveOK(t, editDoc, 1)
	if want := `# wasmrunner's config
concurrency = 4 # all runners

# team A's runner
[[runners]]
  name = "team-a" # the first
  url = "https://gitlab.example.com"
  token = "glrt-old"
  modules = "/srv/a"
  [runners.policy]
  memory = "64MiB"

[policy]
memory = "128MiB"
`; second != want {
		t.Errorf("removing the second:\n%s", second)
	}
	// The last entry of a file that ends with it.
	last := RemoveOK(t, "a = 1\n[[runners]]\nname = \"x\"\n", 0)
	if last != "a = 1\n" {
		t.Errorf("removing the last: %q", last)
	}
	if _, err := RemoveArrayTable([]byte(editDoc), "runners", 5); err == nil {
		t.Error("removing a missing entry")
	}
}

func RemoveOK(t *testing.T, data string, i int) string {
	t.Helper()
	out, err := RemoveArrayTable([]byte(data), "runners", i)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("new")); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if string(data) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("%q %v", data, fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}

type runnersDoc struct {
	Runners []map[string]any `toml:"runners"`
}

// FuzzEdit: on any document with [[runners]] entries, setting keys gives
// a document where they read back (and the other entries are as they
// were), and removing an entry leaves the others.
func FuzzEdit(f *testing.F) {
	f.Add([]byte(editDoc), "glrt-x", 0)
	f.Add([]byte("[[runners]]\n[[runners]]\nname='b'\n"), "t", 1)
	f.Add([]byte("[[runners]]\r\nname = \"a\"\r\n[runners.x]\r\n[[runners]]\r\n"), "\x00\"", 1)
	f.Add([]byte("[[runners]]\nlist = [\n1]\n#c\n[[runners]]\n"), "v", 0)
	f.Fuzz(func(t *testing.T, data []byte, value string, index int) {
		var before runnersDoc
		if toml.Unmarshal(data, &before) != nil || len(before.Runners) == 0 || !utf8Valid(value) {
			return
		}
		index = (index%len(before.Runners) + len(before.Runners)) % len(before.Runners)
		out, err := SetInArrayTable(data, "runners", index, []KeyValue{{"token", value}, {"zz_new", value}})
		if err == nil {
			var after runnersDoc
			if err := toml.Unmarshal(out, &after); err != nil {
				t.Fatalf("the edited document does not parse: %v\n%q", err, out)
			}
			if len(after.Runners) != len(before.Runners) || after.Runners[index]["token"] != value || after.Runners[index]["zz_new"] != value {
				t.Fatalf("edit not read back:\n%q\n%v", out, after.Runners)
			}
		}
		out, err = RemoveArrayTable(data, "runners", index)
		if err != nil {
			t.Fatal(err)
		}
		var after runnersDoc
		if err := toml.Unmarshal(out, &after); err != nil {
			t.Fatalf("the document without entry %d does not parse: %v\n%q", index, err, out)
		}
		if len(after.Runners) != len(before.Runners)-1 {
			t.Fatalf("%d entries left of %d:\n%q", len(after.Runners), len(before.Runners), out)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
