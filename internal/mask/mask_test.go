package mask

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gitlabPrefixes are GitLab's token prefixes, as the engine passes them.
var gitlabPrefixes = []string{
	"glpat-", "glrt-", "gldt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-",
	"glsoat-", "gloas-", "gltok-", "GR1348941",
}

// reference masks in as a whole, the obvious way: mark every byte covered by
// a secret occurrence or a token run, then replace each run of marked bytes.
func reference(in string, secrets, prefixes []string) string {
	var pats []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		pats = append(pats, s)
		if strings.Contains(s, "\n") {
			for _, l := range strings.Split(s, "\n") {
				if l = strings.TrimSuffix(l, "\r"); len(l) >= 8 {
					pats = append(pats, l)
				}
			}
		}
	}
	covered := make([]bool, len(in))
	for _, p := range pats {
		for i := 0; i+len(p) <= len(in); i++ {
			if in[i:i+len(p)] == p {
				for k := i; k < i+len(p); k++ {
					covered[k] = true
				}
			}
		}
	}
	token := func(c byte) bool {
		return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_.-", c) >= 0
	}
	for _, p := range prefixes {
		if p == "" {
			continue
		}
		for i := 0; i+len(p) <= len(in); i++ {
			if in[i:i+len(p)] == p {
				for k := i + len(p); k < len(in) && token(in[k]); k++ {
					covered[k] = true
				}
			}
		}
	}
	var b strings.Builder
	for i := range len(in) {
		switch {
		case !covered[i]:
			b.WriteByte(in[i])
		case i == 0 || !covered[i-1]:
			b.WriteString("[MASKED]")
		}
	}
	return b.String()
}

// writeSplit writes in to a new Writer in pieces of the given sizes (cycled;
// the rest at once when sizes is empty), flushes, and returns the output.
func writeSplit(t testing.TB, in []byte, secrets, prefixes []string, sizes []int) string {
	t.Helper()
	var out bytes.Buffer
	m := New(&out, secrets, prefixes)
	for k := 0; len(in) > 0; k++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(n, sizes[k%len(sizes)])
		}
		if w, err := m.Write(in[:n]); w != n || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", w, err, n)
		}
		in = in[n:]
	}
	if err := m.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return out.String()
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name              string
		in                string
		secrets, prefixes []string
		want              string
	}{
		{"no patterns", "hello world", nil, nil, "hello world"},
		{"empty input", "", []string{"secret"}, gitlabPrefixes, ""},
		{"one secret", "a secret b", []string{"secret"}, nil, "a [MASKED] b"},
		{"repeated", "secret x secret", []string{"secret"}, nil, "[MASKED] x [MASKED]"},
		{"adjacent occurrences merge", "secretsecret!", []string{"secret"}, nil, "[MASKED]!"},
		{"empty and duplicate secrets", "a secret", []string{"", "secret", "secret"}, nil, "a [MASKED]"},
		{"longest wins", "x abcdef y abc z", []string{"abc", "abcdef"}, nil, "x [MASKED] y [MASKED] z"},
		{"longest wins, other order", "x abcdef y", []string{"abcdef", "abc"}, nil, "x [MASKED] y"},
		{"overlap reveals nothing", "abcd", []string{"ab", "bcd"}, nil, "[MASKED]"},
		{"self overlap", "xaaay", []string{"aa"}, nil, "x[MASKED]y"},
		{"prefix of secret at end", "the secre", []string{"secret"}, nil, "the secre"},
		{"single byte secret", "banana", []string{"a"}, nil, "b[MASKED]n[MASKED]n[MASKED]"},
		{"multi-line secret whole", "k=line one!\nline two!\n", []string{"line one!\nline two!"}, nil, "k=[MASKED]\n"},
		{"multi-line secret lines", "A line one!\nB line two!\r\nC short\n", []string{"line one!\nshort\nline two!\r\n"}, nil, "A [MASKED]\nB [MASKED]\r\nC short\n"},
		{"token", "x glpat-abc_DEF.1 y", nil, gitlabPrefixes, "x glpat-[MASKED] y"},
		{"token at end", "token glrt-0123456789", nil, gitlabPrefixes, "token glrt-[MASKED]"},
		{"prefix alone", "glpat- x glpat-", nil, gitlabPrefixes, "glpat- x glpat-"},
		{"prefix then non-token", "glpat-/x", nil, gitlabPrefixes, "glpat-/x"},
		{"runner registration token", "GR1348941abcDEF", nil, gitlabPrefixes, "GR1348941[MASKED]"},
		{"token with dashes", "glcbt-64_a-b-c.d,e", nil, gitlabPrefixes, "glcbt-[MASKED],e"},
		{"nested prefixes", "glpat-glrt-x", nil, gitlabPrefixes, "glpat-[MASKED]"},
		{"secret covers prefix", "t=glpat-abcdef\n", []string{"glpat-abcdef"}, gitlabPrefixes, "t=[MASKED]\n"},
		{"secret inside token", "glpat-xxSECRETyy z", []string{"SECRET"}, gitlabPrefixes, "glpat-[MASKED] z"},
		{"secret before token touches", "SECRETglpat-abc", []string{"SECRET"}, gitlabPrefixes, "[MASKED]glpat-[MASKED]"},
		{"short prefix wins by covering more", "glpat-abc", nil, []string{"gl", "glpat-"}, "gl[MASKED]"},
		{"secret with regexp chars", "a.*b (a.*b)", []string{"a.*b"}, nil, "[MASKED] ([MASKED])"},
		{"binary", "\x00\xffsec\x00ret\xfe", []string{"sec\x00ret"}, nil, "\x00\xff[MASKED]\xfe"},
	}
	splits := map[string][]int{"whole": nil, "bytewise": {1}, "threes": {3}, "uneven": {2, 0, 5, 1, 7}}
	for _, tc := range tests {
		for sname, sizes := range splits {
			t.Run(tc.name+"/"+sname, func(t *testing.T) {
				got := writeSplit(t, []byte(tc.in), tc.secrets, tc.prefixes, sizes)
				if got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
				if ref := reference(tc.in, tc.secrets, tc.prefixes); ref != tc.want {
					t.Errorf("reference gives %q, want %q", ref, tc.want)
				}
			})
		}
	}
}

// TestHoldBack checks that a Writer holds back exactly the tail that could
// still become a secret: nothing more, and never a byte of a secret.
func TestHoldBack(t *testing.T) {
	secrets := []string{"secret", "sesame"}
	steps := []struct{ write, out string }{
		{"hello s", "hello "},
		{"e", "hello "},
		{"c", "hello "},
		{"x", "hello secx"},
		{" se", "hello secx "},
		{"sa", "hello secx "},
		{"me", "hello secx [MASKED]"},
		{" secre", "hello secx [MASKED] "},
		{"t", "hello secx [MASKED] [MASKED]"},
		{"!", "hello secx [MASKED] [MASKED]!"},
		{"glpat-", "hello secx [MASKED] [MASKED]!glpat-"},
		{"a", "hello secx [MASKED] [MASKED]!glpat-[MASKED]"},
		{"bc", "hello secx [MASKED] [MASKED]!glpat-[MASKED]"},
		{" ", "hello secx [MASKED] [MASKED]!glpat-[MASKED] "},
	}
	var out bytes.Buffer
	m := New(&out, secrets, gitlabPrefixes)
	for _, s := range steps {
		if _, err := m.Write([]byte(s.write)); err != nil {
			t.Fatal(err)
		}
		if out.String() != s.out {
			t.Fatalf("after writing %q: output %q, want %q", s.write, out.String(), s.out)
		}
	}
}

// TestFlush checks Flush at the end and in the middle of the stream.
func TestFlush(t *testing.T) {
	tests := []struct {
		name  string
		parts []string // Flush after each part
		want  []string // output after each Flush
	}{
		{"partial secret at end is written", []string{"the sec"}, []string{"the sec"}},
		{"secret completed after flush", []string{"a sec", "ret b"}, []string{"a sec", "a sec[MASKED] b"}},
		{"not completed after flush", []string{"a sec", "rex"}, []string{"a sec", "a secrex"}},
		{"token continues over flush", []string{"glpat-ab", "cd y"}, []string{"glpat-[MASKED]", "glpat-[MASKED] y"}},
		{"prefix completed after flush", []string{"x glp", "at-abc"}, []string{"x glp", "x glpat-[MASKED]"}},
		{"flush twice", []string{"sec", "", ""}, []string{"sec", "sec", "sec"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			m := New(&out, []string{"secret"}, gitlabPrefixes)
			for i, p := range tc.parts {
				if _, err := m.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
				if err := m.Flush(); err != nil {
					t.Fatal(err)
				}
				if out.String() != tc.want[i] {
					t.Fatalf("after flush %d: %q, want %q", i, out.String(), tc.want[i])
				}
			}
		})
	}
}

// TestLargeWrite checks writes much larger than the internal chunk size,
// with secrets straddling the chunk boundaries.
func TestLargeWrite(t *testing.T) {
	secret := "s3cr3t-value-with-some-length"
	var in strings.Builder
	for in.Len() < 5*chunk {
		fmt.Fprintf(&in, "line %d: %s glpat-tok%d\n", in.Len(), secret, in.Len())
	}
	for _, sizes := range [][]int{nil, {chunk + 13}, {chunk - 1, 1}} {
		got := writeSplit(t, []byte(in.String()), []string{secret}, gitlabPrefixes, sizes)
		want := reference(in.String(), []string{secret}, gitlabPrefixes)
		if got != want {
			t.Fatalf("sizes %v: output differs from reference", sizes)
		}
		if strings.Contains(got, secret) || strings.Contains(got, "tok") {
			t.Fatalf("sizes %v: a secret reached the output", sizes)
		}
	}
}

// TestFile masks into a real file, as the engine does with a job log.
func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "job.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	m := New(f, []string{"hunter2-password"}, gitlabPrefixes)
	for _, line := range []string{"$ login -p hunter2-", "password\n", "token: glrt-", "t0k3n\n"} {
		if _, err := m.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "$ login -p [MASKED]\ntoken: glrt-[MASKED]\n"; string(got) != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

type failWriter struct {
	n   int // bytes accepted before failing
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

var errDisk = errors.New("disk full")

func TestWriterError(t *testing.T) {
	tests := []struct {
		name string
		w    io.Writer
		want error
	}{
		{"fails", &failWriter{n: 3, err: errDisk}, errDisk},
		{"short write", &failWriter{n: 3}, io.ErrShortWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.w, []string{"secret"}, nil)
			if n, err := m.Write([]byte("ab")); n != 2 || err != nil {
				t.Fatalf("first Write = %d, %v", n, err)
			}
			n, err := m.Write([]byte("cdef"))
			if n != 0 || !errors.Is(err, tc.want) {
				t.Fatalf("Write = %d, %v; want 0, %v", n, err, tc.want)
			}
			if _, err := m.Write([]byte("x")); !errors.Is(err, tc.want) {
				t.Fatalf("Write after error: %v, want %v", err, tc.want)
			}
			if err := m.Flush(); !errors.Is(err, tc.want) {
				t.Fatalf("Flush after error: %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzWriter checks the defining property: whatever the patterns and however
// the input is split into writes, the output after Flush is what masking the
// whole input at once gives. With Flush calls mid-stream, it checks that no
// secret reaches the output.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("x glpat-abc_DEF.1 y secret"), "secret\x00glpat-", []byte{1})
	f.Add([]byte("abcdef abc ab"), "abc\x00\x00abcdef\x00b", []byte{2, 3})
	f.Add([]byte("aaaaaaaaaa"), "aa\x00a\x00aaa", []byte{0, 1, 0x81})
	f.Add([]byte("l1 line-one!\nline-two!\r\nx"), "line-one!\nline-two!\r\n\x00li", []byte{5, 0x83})
	f.Add([]byte("GR1348941abc glrt- glcbt-x"), "\x00GR1348941\x00\x00glrt-\x00\x00glcbt-", []byte{4})
	f.Fuzz(func(t *testing.T, in []byte, spec string, cuts []byte) {
		if len(in) > 1<<12 || len(spec) > 256 {
			return
		}
		// Even fields of spec are secrets, odd ones prefixes.
		var secrets, prefixes []string
		for i, s := range strings.Split(spec, "\x00") {
			if i%2 == 0 {
				secrets = append(secrets, s)
			} else {
				prefixes = append(prefixes, s)
			}
		}
		var sizes []int
		for _, c := range cuts {
			sizes = append(sizes, int(c&0x7f)%19)
		}
		if len(sizes) > 0 && !anyPositive(sizes) {
			sizes = append(sizes, 1)
		}
		want := reference(string(in), secrets, prefixes)
		if got := writeSplit(t, in, secrets, prefixes, sizes); got != want {
			t.Fatalf("sizes %v: got %q, want %q", sizes, got, want)
		}

		// Mid-stream flushes (after pieces whose cut byte has the high
		// bit set) may reveal the start of a secret but never all of
		// one, unless the secret shares bytes with "[MASKED]".
		var out bytes.Buffer
		m := New(&out, secrets, prefixes)
		rest := in
		for k := 0; len(rest) > 0; k++ {
			n := len(rest)
			if len(sizes) > 0 {
				n = min(n, sizes[k%len(sizes)])
			}
			if _, err := m.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
			if len(cuts) > 0 && cuts[k%len(cuts)]&0x80 != 0 {
				if err := m.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s != "" && !strings.ContainsAny(s, "[MASKED]") && strings.Contains(out.String(), s) {
				t.Fatalf("secret %q in output %q", s, out.String())
			}
		}
		if len(cuts) == 0 || !hasFlushes(cuts) {
			if out.String() != want {
				t.Fatalf("without mid-stream flushes: got %q, want %q", out.String(), want)
			}
		}
	})
}

func anyPositive(sizes []int) bool {
	for _, s := range sizes {
		if s > 0 {
			return true
		}
	}
	return false
}

func hasFlushes(cuts []byte) bool {
	for _, c := range cuts {
		if c&0x80 != 0 {
			return true
		}
	}
	return false
}

// TestRandom is a deterministic stand-in for the fuzz test in ordinary
// runs: random inputs over a small alphabet, so that patterns overlap often.
func TestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab-c\nx"[r.IntN(6)]
		}
		return string(b)
	}
	for range 3000 {
		var secrets, prefixes []string
		for range r.IntN(4) {
			secrets = append(secrets, word(r.IntN(12)))
		}
		for range r.IntN(3) {
			prefixes = append(prefixes, word(1+r.IntN(3)))
		}
		in := word(r.IntN(200))
		var sizes []int
		for range r.IntN(5) {
			sizes = append(sizes, 1+r.IntN(9))
		}
		want := reference(in, secrets, prefixes)
		if got := writeSplit(t, []byte(in), secrets, prefixes, sizes); got != want {
			t.Fatalf("in %q secrets %q prefixes %q sizes %v:\n got %q\nwant %q", in, secrets, prefixes, sizes, got, want)
		}
	}
}

// logText returns n bytes of log-like text with the secrets and tokens
// appearing now and then.
func logText(n int, secrets []string) []byte {
	r := rand.New(rand.NewPCG(3, 4))
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		switch {
		case i%40 == 7:
			fmt.Fprintf(&b, "export API_KEY=%s\n", secrets[r.IntN(len(secrets))])
		case i%55 == 11:
			fmt.Fprintf(&b, "Authorization: Bearer glpat-%016x\n", r.Uint64())
		case i%3 == 0:
			fmt.Fprintf(&b, "2025-06-01T12:%02d:%02d.%03dZ INFO  [build] compiling internal/pkg%d/file_%d.go (%d/412)\n",
				r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(40), r.IntN(300), i%412)
		case i%3 == 1:
			fmt.Fprintf(&b, "Downloading https://proxy.golang.org/github.com/example/module%d/@v/v1.%d.%d.zip (%d kB)\n",
				r.IntN(90), r.IntN(20), r.IntN(10), r.IntN(5000))
		default:
			fmt.Fprintf(&b, "--- PASS: TestSomething/case_%d (0.%02ds)\n    helper_test.go:%d: got %d items, want %d\n",
				r.IntN(1000), r.IntN(100), r.IntN(400), r.IntN(50), r.IntN(50))
		}
	}
	return b.Bytes()[:n]
}

func BenchmarkWriter(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secrets := make([]string, 10)
	for i := range secrets {
		s := make([]byte, 18+r.IntN(5))
		for k := range s {
			s[k] = alnum[r.IntN(len(alnum))]
		}
		secrets[i] = string(s)
	}
	text := logText(1<<20, secrets)
	const write = 4 << 10
	m := New(io.Discard, secrets, gitlabPrefixes)
	b.SetBytes(write)
	b.ReportAllocs()
	off := 0
	for b.Loop() {
		if off+write > len(text) {
			off = 0
		}
		if _, err := m.Write(text[off : off+write]); err != nil {
			b.Fatal(err)
		}
		off += write
	}
	if err := m.Flush(); err != nil {
		b.Fatal(err)
	}
}

// Patterns may start with every byte value: the per-first-byte tables
// grow to all 256, and each still masks, single bytes included.
func TestAllFirstBytes(t *testing.T) {
	var secrets []string
	var in, want strings.Builder
	for c := range 256 {
		s := string([]byte{byte(c), 'x', byte(255 - c)})
		secrets = append(secrets, s)
		in.WriteString(s + " ")
		want.WriteString(Masked + " ")
	}
	secrets = append(secrets, "\x00")
	in.WriteString("\x00.")
	want.WriteString(Masked + ".")
	if got := writeSplit(t, []byte(in.String()), secrets, gitlabPrefixes, []int{7}); got != want.String() {
		t.Errorf("got %q\nwant %q", got, want.String())
	}
	if got, want := len(compile(secrets, nil).second), 256; got != want {
		t.Errorf("%d tables, want %d", got, want)
	}
}

// BenchmarkNew reports what a job's Writer costs to make and hold: a
// job's masked variables, its token and GitLab's token prefixes.
func BenchmarkNew(b *testing.B) {
	secrets := []string{"glrt-t1_abcdefghijklmnopqrstu", "s3cr3t-value", "another-masked-value", "db-password-123", "multi\nline secret value"}
	b.ReportAllocs()
	for b.Loop() {
		_ = New(io.Discard, secrets, gitlabPrefixes)
	}
}
