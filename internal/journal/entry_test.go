package journal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func sampleEntry() Entry {
	return Entry{
		JobID: 1042, Token: "glcbt-64_secret", Offset: 1234, Runner: "team-a", SystemID: "s_0123456789ab",
		Name: "build: [linux, amd64]", Started: time.Date(2026, 12, 5, 12, 0, 0, 123456789, time.UTC),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Entry)
	}{
		{"running", func(*Entry) {}},
		{"reporting failure", func(e *Entry) { e.Result, e.FailureReason = "failed", "script_failure" }},
		{"reporting success", func(e *Entry) { e.Result = "success" }},
		{"minimal", func(e *Entry) { *e = Entry{JobID: 1, Token: "t", Started: time.Unix(0, 0).UTC()} }},
		{"unicode name", func(e *Entry) { e.Name = "テスト ✓" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sampleEntry()
			tc.edit(&e)
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, data)
			}
			if !got.Started.Equal(e.Started) {
				t.Errorf("started %v, want %v", got.Started, e.Started)
			}
			got.Started = e.Started
			if got != e {
				t.Errorf("got %+v\nwant %+v", got, e)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Entry)
		want string
	}{
		{"no job id", func(e *Entry) { e.JobID = 0 }, "not positive"},
		{"no token", func(e *Entry) { e.Token = "" }, "no job token"},
		{"negative offset", func(e *Entry) { e.Offset = -1 }, "negative"},
		{"newline in token", func(e *Entry) { e.Token = "a\nb" }, "control characters"},
		{"escape in name", func(e *Entry) { e.Name = "\x1b[31m" }, "control characters"},
		{"long name", func(e *Entry) { e.Name = strings.Repeat("x", maxText+1) }, "more than"},
		{"bad result", func(e *Entry) { e.Result = "canceled" }, "neither success nor failed"},
		{"bad utf-8", func(e *Entry) { e.Runner = "\xff" }, "not UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sampleEntry()
			tc.edit(&e)
			if _, err := Encode(e); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Encode: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestDecodeCorrupt: damaged, truncated and hostile entries are errors
// that say what is wrong, and match ErrCorrupt.
func TestDecodeCorrupt(t *testing.T) {
	good, err := Encode(sampleEntry())
	if err != nil {
		t.Fatal(err)
	}
	header, body, _ := bytes.Cut(good, []byte{'\n'})
	// withBody is a well-formed entry (right checksum) around body.
	withBody := func(body string) []byte {
		b := []byte(body + "\n")
		return append(fmt.Appendf(nil, "%s%08x\n", magic, crc32IEEE(b)), b...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no header line"},
		{"header only", header, "no header line"},
		{"truncated body", good[:len(good)-10], "checksum mismatch"},
		{"flipped byte", flip(good, len(good)-5), "checksum mismatch"},
		{"other file", []byte("hello\nworld\n"), "unknown header"},
		{"bad checksum digits", append([]byte(magic+"zzzzzzzz\n"), body...), "malformed checksum"},
		{"short checksum", append([]byte(magic+"abc\n"), body...), "malformed checksum"},
		{"huge", make([]byte, MaxEntrySize+1), "more than"},
		{"not json", withBody("{"), "body"},
		{"unknown field", withBody(`{"v":1,"job_id":1,"token":"t","offset":0,"started":"2026-01-01T00:00:00Z","cmd":"rm -rf /"}`), "unknown field"},
		{"two values", withBody(`{"v":1,"job_id":1,"token":"t","offset":0,"started":"2026-01-01T00:00:00Z"} {}`), "data after"},
		{"version 2", withBody(`{"v":2,"job_id":1,"token":"t","offset":0,"started":"2026-01-01T00:00:00Z"}`), "version 2"},
		{"no started", withBody(`{"v":1,"job_id":1,"token":"t","offset":0}`), "started"},
		{"negative id", withBody(`{"v":1,"job_id":-5,"token":"t","offset":0,"started":"2026-01-01T00:00:00Z"}`), "not positive"},
		{"id overflow", withBody(`{"v":1,"job_id":99999999999999999999,"token":"t","offset":0,"started":"2026-01-01T00:00:00Z"}`), "body"},
		{"negative offset", withBody(`{"v":1,"job_id":1,"token":"t","offset":-1,"started":"2026-01-01T00:00:00Z"}`), "negative"},
		{"header injection in token", withBody(`{"v":1,"job_id":1,"token":"t\r\nX-Evil: 1","offset":0,"started":"2026-01-01T00:00:00Z"}`), "control characters"},
		{"wrong type", withBody(`{"v":1,"job_id":"1","token":"t","offset":0,"started":"2026-01-01T00:00:00Z"}`), "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want ErrCorrupt saying %q", err, tc.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x20
	return c
}

// FuzzDecode: whatever the bytes, Decode returns an entry or an error,
// never panics, and what it accepts encodes back to an entry it accepts
// again, equal.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(sampleEntry())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(magic + "00000000\n"))
	f.Add([]byte{})
	e := sampleEntry()
	e.Result, e.FailureReason = "failed", "runner_system_failure"
	reporting, _ := Encode(e)
	f.Add(reporting)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("Decode accepted an entry Encode refuses: %v", err)
		}
		e2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !e2.Started.Equal(e.Started) {
			t.Fatalf("started %v became %v", e.Started, e2.Started)
		}
		e2.Started = e.Started
		if e2 != e {
			t.Fatalf("round trip changed the entry: %+v -> %+v", e, e2)
		}
	})
}

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// FuzzDecodeSlot: a slot file's content, whatever it is, is a free slot,
// an entry or an ErrCorrupt error; never a panic.
func FuzzDecodeSlot(f *testing.F) {
	good, _ := Encode(sampleEntry())
	f.Add(append(good, make([]byte, 100)...))
	f.Add(append(append([]byte{}, good[:20]...), 0, 'x'))
	f.Add(make([]byte, 64))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok, err := decodeSlot(data)
		switch {
		case err != nil && !errors.Is(err, ErrCorrupt):
			t.Fatalf("error %v does not match ErrCorrupt", err)
		case err != nil && ok:
			t.Fatal("an error and an entry")
		case ok && e.JobID <= 0:
			t.Fatalf("an entry without a job: %+v", e)
		case !ok && err == nil && len(data) > 0 && data[0] != 0:
			t.Fatalf("a slot starting with %#x read as free", data[0])
		}
	})
}
