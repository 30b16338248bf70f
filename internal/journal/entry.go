package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
	"unicode/utf8"
)

// MaxEntrySize is the largest entry file [Decode] takes.
const MaxEntrySize = 16 << 10

// Bounds of an entry's text fields.
const (
	maxToken = 1024
	maxText  = 512
)

// Entry is one job in flight.
type Entry struct {
	// JobID and Token are the job's id and job token: all that is needed
	// to append to its log and send its final update.
	JobID int64
	Token string
	// Offset is how much of the job's log GitLab had acknowledged when
	// the entry was last written; the recovery appends there (GitLab's
	// 416 corrects it when GitLab has more).
	Offset int64
	// Runner names the runner (its entry name) and SystemID the machine
	// the job ran on, for the operator's logs.
	Runner   string
	SystemID string
	// Name is the job's name, for the logs.
	Name string
	// Started is when the job started.
	Started time.Time
	// Result, once the job's final report began, is how it ended
	// ("success" or "failed") and FailureReason why it failed; empty
	// while it runs.
	Result        string
	FailureReason string
}

// wire is an entry as stored.
type wire struct {
	V             int    `json:"v"`
	JobID         int64  `json:"job_id"`
	Token         string `json:"token"`
	Offset        int64  `json:"offset"`
	Runner        string `json:"runner,omitempty"`
	SystemID      string `json:"system_id,omitempty"`
	Name          string `json:"name,omitempty"`
	Started       string `json:"started"`
	Result        string `json:"result,omitempty"`
	FailureReason string `json:"failure_reason,omitempty"`
}

// magic starts every entry; the CRC-32 of the body follows it.
const magic = "wasmrunner-journal v1 crc32="

// ErrCorrupt is matched by every error of [Decode].
var ErrCorrupt = errors.New("corrupt journal entry")

// Encode returns e as stored: a header line with the body's checksum,
// then the body (JSON).
func Encode(e Entry) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(wire{
		V: 1, JobID: e.JobID, Token: e.Token, Offset: e.Offset, Runner: e.Runner, SystemID: e.SystemID,
		Name: e.Name, Started: e.Started.UTC().Format(time.RFC3339Nano), Result: e.Result, FailureReason: e.FailureReason,
	})
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	out := fmt.Appendf(nil, "%s%08x\n", magic, crc32.ChecksumIEEE(body))
	out = append(out, body...)
	if len(out) > MaxEntrySize {
		return nil, fmt.Errorf("journal: entry of job %d is %d bytes, more than %d", e.JobID, len(out), MaxEntrySize)
	}
	return out, nil
}

// Decode reads an entry written by [Encode]. Its errors match
// [ErrCorrupt] and say what is wrong.
func Decode(data []byte) (Entry, error) {
	bad := func(format string, args ...any) (Entry, error) {
		return Entry{}, fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxEntrySize {
		return bad("%d bytes, more than %d", len(data), MaxEntrySize)
	}
	header, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return bad("truncated: no header line")
	}
	sum, ok := bytes.CutPrefix(header, []byte(magic))
	if !ok {
		return bad("not a journal entry (unknown header)")
	}
	want, err := strconv.ParseUint(string(sum), 16, 32)
	if err != nil || len(sum) != 8 {
		return bad("malformed checksum %q", sum)
	}
	if got := crc32.ChecksumIEEE(body); uint32(want) != got {
		return bad("checksum mismatch (truncated or damaged: %d body bytes)", len(body))
	}
	var w wire
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return bad("body: %v", err)
	}
	if dec.More() {
		return bad("body: data after the entry")
	}
	if w.V != 1 {
		return bad("version %d, want 1", w.V)
	}
	started, err := time.Parse(time.RFC3339Nano, w.Started)
	if err != nil {
		return bad("started: %v", err)
	}
	e := Entry{
		JobID: w.JobID, Token: w.Token, Offset: w.Offset, Runner: w.Runner, SystemID: w.SystemID,
		Name: w.Name, Started: started, Result: w.Result, FailureReason: w.FailureReason,
	}
	if err := e.validate(); err != nil {
		return bad("%v", err)
	}
	return e, nil
}

// validate checks the fields of an entry.
func (e Entry) validate() error {
	switch {
	case e.JobID <= 0:
		return fmt.Errorf("job id %d is not positive", e.JobID)
	case e.Token == "":
		return errors.New("no job token")
	case e.Offset < 0:
		return fmt.Errorf("trace offset %d is negative", e.Offset)
	case e.Result != "" && e.Result != "success" && e.Result != "failed":
		return fmt.Errorf("result %q is neither success nor failed", e.Result)
	}
	if err := checkText("job token", e.Token, maxToken); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"runner", e.Runner}, {"system id", e.SystemID}, {"job name", e.Name}, {"failure reason", e.FailureReason},
	} {
		if err := checkText(f.name, f.v, maxText); err != nil {
			return err
		}
	}
	return nil
}

// checkText refuses long values and control characters: entries end up
// in logs and HTTP headers.
func checkText(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s of %d bytes, more than %d", name, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not UTF-8", name)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s holds control characters", name)
		}
	}
	return nil
}
