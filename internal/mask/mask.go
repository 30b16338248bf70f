// Package mask hides secrets in a byte stream, such as a job log, before the
// stream leaves the runner.
//
// A [Writer] is given the secret values (masked CI/CD variables, the job
// token, ...) and token prefixes (GitLab's "glpat-", "glrt-", ...). It covers
//
//   - every occurrence of a secret, and
//   - after every occurrence of a token prefix, the token characters
//     [A-Za-z0-9_.-] that follow it (the prefix itself stays visible, so a
//     reader of the log can still tell what kind of token was there).
//
// Each maximal run of covered bytes is replaced by the eight bytes
// [Masked]. Occurrences that overlap, such as "abc" and "abcdef" or "ab" and
// "bcd" in "abcd", therefore become a single [Masked] and no byte of any
// occurrence is revealed; occurrences that touch merge too, so "abcabc" with
// the secret "abc" becomes one [Masked].
//
// Matches are found across Write boundaries: a Writer holds back the
// shortest tail of the stream that could still be the start of a secret and
// releases it as soon as it cannot. After [Writer.Flush], what was written
// to the underlying writer is exactly what masking the whole stream at once
// would give.
package mask

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Masked replaces each masked run of bytes.
const Masked = "[MASKED]"

// minLine is the length from which a line of a multi-line secret is masked
// on its own.
const minLine = 8

// chunk bounds how much of one Write is processed at a time, so that the
// Writer's buffers stay small whatever the caller writes.
const chunk = 32 << 10

// isToken reports the bytes that may follow a token prefix: [A-Za-z0-9_.-].
var isToken = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
	}
	return t
}()

// Writer masks secrets in a byte stream and writes the result to the
// underlying writer.
//
// A Writer is not safe for concurrent use; the caller serialises calls to
// Write and Flush. After the underlying writer fails, every later call
// returns that error.
type Writer struct {
	w   io.Writer
	pat *patterns

	// buf holds the window of the stream that is scanned next: ctx bytes
	// before the hold (already written out; kept so that a token prefix
	// spanning Writes is recognised), then hold bytes that may still be
	// covered by an unfinished secret. The first done bytes of the hold
	// are already written out too (they were covered, or Flush forced
	// them out).
	buf        []byte
	ctx, hold  int
	done       int
	runAtStart bool // a token run is open at the start of the hold
	inMask     bool // the last byte written out was covered
	out        []byte
	spans      []span // covered byte ranges of the window
	runs       []span // token runs of the window
	err        error
}

// span is the byte range [from, to) of the window.
type span struct{ from, to int }

// patterns is the immutable matching state of a Writer. A job has one,
// and thousands of jobs may wait at once, so it is compact: tables are
// kept only for the bytes some pattern starts with (a job has a few).
type patterns struct {
	// slot[b0] is 1 + the index in the tables below of the patterns
	// starting with byte b0, or 0 when none does.
	slot [256]uint16
	// second[i] has bit b1 set when a pattern of slot i continues with
	// b1 (every bit when it is the single byte b0).
	second [][4]uint64
	// secretsBy and prefixesBy index the patterns of each slot; the
	// secrets are longest first.
	secretsBy  [][]int32
	prefixesBy [][]int32
	secrets    [][]byte
	prefixes   [][]byte
	maxSecret  int
	maxPrefix  int
}

// slotOf returns the tables' index for patterns starting with b0,
// adding one if there is none yet.
func (p *patterns) slotOf(b0 byte) int {
	if p.slot[b0] == 0 {
		p.second = append(p.second, [4]uint64{})
		p.secretsBy = append(p.secretsBy, nil)
		p.prefixesBy = append(p.prefixesBy, nil)
		p.slot[b0] = uint16(len(p.second))
	}
	return int(p.slot[b0]) - 1
}

// candidate reports whether a pattern may start at w[i:]: one starts
// with w[i] and continues with w[i+1] (or is that single byte).
func (p *patterns) candidate(b0, b1 byte) bool {
	s := p.slot[b0]
	return s != 0 && p.second[s-1][b1>>6]&(1<<(b1&63)) != 0
}

// New returns a Writer that writes to w the stream written to it with the
// secrets and the tokens following the tokenPrefixes masked. Empty values
// are ignored and duplicates do not matter. A secret that contains a newline
// is masked as a whole, and each of its lines (without a trailing "\r") that
// is at least 8 bytes long is masked on its own as well, since log output
// often breaks a multi-line value apart.
func New(w io.Writer, secrets []string, tokenPrefixes []string) *Writer {
	return &Writer{w: w, pat: compile(secrets, tokenPrefixes)}
}

func compile(secrets, prefixes []string) *patterns {
	p := new(patterns)
	seen := make(map[string]bool)
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			p.secrets = append(p.secrets, []byte(s))
		}
	}
	for _, s := range secrets {
		add(s)
		if strings.Contains(s, "\n") {
			for line := range strings.SplitSeq(s, "\n") {
				if line = strings.TrimSuffix(line, "\r"); len(line) >= minLine {
					add(line)
				}
			}
		}
	}
	// Longest first, so that the first secret matching at a position is
	// the one covering the most.
	slices.SortStableFunc(p.secrets, func(a, b []byte) int { return len(b) - len(a) })
	clear(seen)
	for _, s := range prefixes {
		if s != "" && !seen[s] {
			seen[s] = true
			p.prefixes = append(p.prefixes, []byte(s))
		}
	}
	mark := func(s []byte) int {
		k := p.slotOf(s[0])
		if len(s) == 1 {
			p.second[k] = [4]uint64{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
		} else {
			p.second[k][s[1]>>6] |= 1 << (s[1] & 63)
		}
		return k
	}
	for i, s := range p.secrets {
		k := mark(s)
		p.secretsBy[k] = append(p.secretsBy[k], int32(i))
		p.maxSecret = max(p.maxSecret, len(s))
	}
	for i, s := range p.prefixes {
		k := mark(s)
		p.prefixesBy[k] = append(p.prefixesBy[k], int32(i))
		p.maxPrefix = max(p.maxPrefix, len(s))
	}
	return p
}

// Write masks p and writes out all of the result that no later input can
// change. It returns len(p) and a nil error unless the underlying writer
// fails.
func (m *Writer) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n := len(p)
	for len(p) > 0 {
		c := p[:min(len(p), chunk)]
		p = p[len(c):]
		if err := m.process(c, false); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Flush writes out the bytes held back because they might still have become
// part of a secret, as if the stream ended here. Write may be called again
// afterwards: a secret or token that the later input completes is still
// masked from the Flush on, but what Flush wrote out stays written.
func (m *Writer) Flush() error {
	if m.err != nil {
		return m.err
	}
	return m.process(nil, true)
}

// process appends p to the window, writes out everything that is decided
// (all of it if final) and keeps what is still needed.
func (m *Writer) process(p []byte, final bool) error {
	m.buf = append(m.buf[:m.ctx+m.hold], p...)
	w := m.buf
	n := len(w)
	start := m.ctx + m.done // the first byte not yet written out
	m.out = m.out[:0]
	m.spans = m.spans[:0]
	m.runs = m.runs[:0]

	sc := scanner{m: m, w: w, start: start, runFrom: -1, runTo: -1, sorted: true}
	if m.runAtStart {
		sc.run(m.ctx)
	}
	sc.scan()
	spans := sc.spans()

	// Bytes before pending that no span covers are plain text for good;
	// from pending on, an unfinished secret may still cover them.
	pending := m.pending(w)
	limit := pending
	if final {
		limit = n
	}
	pos := start
	for _, s := range spans {
		if s.from > pos {
			if s.from > limit {
				break
			}
			m.out = append(m.out, w[pos:s.from]...)
			m.inMask = false
		}
		if !m.inMask {
			m.out = append(m.out, Masked...)
			m.inMask = true
		}
		pos = s.to
	}
	if pos < limit {
		m.out = append(m.out, w[pos:limit]...)
		m.inMask = false
		pos = limit
	}
	// pos is now the first byte not written out. Keep the window from the
	// first byte that is not written out or may still start a secret,
	// whichever comes first, and enough bytes before it for a prefix.
	keep := min(pos, pending)
	m.runAtStart = false
	for _, r := range m.runs {
		if r.from <= keep && keep <= r.to {
			m.runAtStart = true
			break
		}
	}
	from := max(0, keep-max(0, m.pat.maxPrefix-1))
	copy(m.buf, w[from:])
	m.buf = m.buf[:n-from]
	m.ctx, m.hold, m.done = keep-from, n-keep, pos-keep

	if len(m.out) == 0 {
		return nil
	}
	written, err := m.w.Write(m.out)
	if err == nil && written < len(m.out) {
		err = io.ErrShortWrite
	}
	if err != nil {
		m.err = fmt.Errorf("mask: %w", err)
		return m.err
	}
	return nil
}

// pending returns the first position of the hold at which an unfinished
// secret starts (the rest of w is a proper prefix of the secret), or len(w).
func (m *Writer) pending(w []byte) int {
	n := len(w)
	for s := max(m.ctx, n-m.pat.maxSecret+1); s < n; s++ {
		slot := m.pat.slot[w[s]]
		if slot == 0 {
			continue
		}
		for _, k := range m.pat.secretsBy[slot-1] {
			sec := m.pat.secrets[k]
			if len(sec) <= n-s {
				break // longest first: the rest are shorter still
			}
			if bytes.Equal(sec[:n-s], w[s:]) {
				return s
			}
		}
	}
	return n
}

// scanner finds the covered spans of one window.
type scanner struct {
	m     *Writer
	w     []byte
	start int // spans are clipped to start
	// runFrom, runTo is the last token run computed: every byte of
	// w[runFrom:runTo] is a token byte and w[runTo] is not (or runTo is
	// len(w)).
	runFrom, runTo int
	sorted         bool
}

// scan records the spans of all secrets and token runs in the window.
func (sc *scanner) scan() {
	w, pat := sc.w, sc.m.pat
	if len(w) == 0 || len(pat.secrets)+len(pat.prefixes) == 0 {
		return
	}
	i := 0
	for ; i+1 < len(w); i++ {
		if pat.candidate(w[i], w[i+1]) {
			sc.match(i)
		}
	}
	sc.match(i)
}

// match records the patterns that occur at w[i:].
func (sc *scanner) match(i int) {
	w, pat := sc.w, sc.m.pat
	slot := pat.slot[w[i]]
	if slot == 0 {
		return
	}
	rest := w[i:]
	for _, k := range pat.secretsBy[slot-1] {
		if s := pat.secrets[k]; len(s) <= len(rest) && bytes.Equal(s, rest[:len(s)]) {
			sc.cover(i, i+len(s))
			break // the longest
		}
	}
	for _, k := range pat.prefixesBy[slot-1] {
		if s := pat.prefixes[k]; len(s) <= len(rest) && bytes.Equal(s, rest[:len(s)]) {
			sc.run(i + len(s))
		}
	}
}

// run records the token run starting at j.
func (sc *scanner) run(j int) {
	w := sc.w
	var to int
	if j >= sc.runFrom && j <= sc.runTo {
		to = sc.runTo
	} else {
		lim := len(w)
		if j < sc.runFrom {
			lim = sc.runFrom
		}
		to = j
		for to < lim && isToken[w[to]] {
			to++
		}
		if to == sc.runFrom {
			to = sc.runTo // joined the run computed before
		}
	}
	sc.runFrom, sc.runTo = j, to
	sc.m.runs = append(sc.m.runs, span{j, to})
	sc.cover(j, to)
}

// cover records that w[from:to] is covered.
func (sc *scanner) cover(from, to int) {
	from = max(from, sc.start)
	if to <= from {
		return
	}
	spans := sc.m.spans
	if k := len(spans) - 1; k >= 0 {
		last := &spans[k]
		if from >= last.from && from <= last.to {
			last.to = max(last.to, to)
			return
		}
		if from < last.from {
			sc.sorted = false
		}
	}
	sc.m.spans = append(spans, span{from, to})
}

// spans returns the covered spans in order, overlapping or touching spans
// merged.
func (sc *scanner) spans() []span {
	spans := sc.m.spans
	if sc.sorted || len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from - b.from })
	out := spans[:1]
	for _, s := range spans[1:] {
		if last := &out[len(out)-1]; s.from <= last.to {
			last.to = max(last.to, s.to)
		} else {
			out = append(out, s)
		}
	}
	sc.m.spans = out
	return out
}
