package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Editing a file in place: a program that changes its own configuration
// (a rotated token, a runner removed) changes only the bytes of what it
// changes; comments, order and formatting stay.

// KeyValue is a key of a table and its new value: a string, an int, an
// int64, a bool or a time.Time (written as a TOML date-time in UTC).
type KeyValue struct {
	Key   string
	Value any
}

// Literal returns v written as a TOML value.
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return quote(v), nil
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case bool:
		return strconv.FormatBool(v), nil
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("tomlfile: cannot write a %T", v)
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError, r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// doc is what an edit needs to know of a document.
type doc struct {
	data      []byte
	lineStart []int // offsets of the lines' first bytes (line n at lineStart[n-1])
	headers   []header
	kvs       []keyValue
}

// header is a [table] or [[table]] line.
type header struct {
	path  []string
	array bool
	line  int
}

// keyValue is a key = value expression.
type keyValue struct {
	table            []string // the table it is in
	key              []string
	line, endLine    int // its first and last lines
	valStart, valEnd int // the value's bytes (valEnd 0: unknown, as arrays)
}

func parse(data []byte) (*doc, error) {
	d := &doc{data: data, lineStart: []int{0}}
	for i, c := range data {
		if c == '\n' {
			d.lineStart = append(d.lineStart, i+1)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var path []string
			line := 0
			for it := e.Key(); it.Next(); {
				k := it.Node()
				if line == 0 {
					line = p.Shape(k.Raw).Start.Line
				}
				path = append(path, string(k.Data))
			}
			table = path
			d.headers = append(d.headers, header{path: path, array: e.Kind == unstable.ArrayTable, line: line})
		case unstable.KeyValue:
			var key []string
			for it := e.Key(); it.Next(); {
				key = append(key, string(it.Node().Data))
			}
			sh := p.Shape(e.Raw)
			kv := keyValue{table: table, key: key, line: sh.Start.Line, endLine: sh.End.Line}
			if v := e.Value(); v.Raw.Length > 0 {
				kv.valStart, kv.valEnd = int(v.Raw.Offset), int(v.Raw.Offset+v.Raw.Length)
			}
			d.kvs = append(d.kvs, kv)
		}
	}
	if err := p.Error(); err != nil {
		return nil, fmt.Errorf("tomlfile: %w", err)
	}
	return d, nil
}

func (d *doc) lines() int { return len(d.lineStart) }

// line returns line n's text without its line break.
func (d *doc) line(n int) []byte {
	end := len(d.data)
	if n < len(d.lineStart) {
		end = d.lineStart[n] - 1
	}
	return bytes.TrimSuffix(d.data[d.lineStart[n-1]:end], []byte("\r"))
}

// entry finds the index-th [[table]] entry: the index of its header in
// d.headers and of the header after it (len(d.headers) when none).
func (d *doc) entry(table string, index int) (first, next int, err error) {
	n := -1
	first = -1
	for i, h := range d.headers {
		if first >= 0 && !(h.path[0] == table && len(h.path) > 1) {
			return first, i, nil
		}
		if h.array && len(h.path) == 1 && h.path[0] == table {
			n++
			if n == index {
				first = i
			}
		}
	}
	if first < 0 {
		return 0, 0, fmt.Errorf("tomlfile: no [[%s]] entry %d (the file has %d)", table, index, n+1)
	}
	return first, len(d.headers), nil
}

// SetInArrayTable sets keys of the index-th [[table]] entry (0 is the
// first) of data, in place: a key there gets its new value (the rest of
// its line, a comment, stays); a missing one is added after the entry's
// last key, indented as it is.
func SetInArrayTable(data []byte, table string, index int, set []KeyValue) ([]byte, error) {
	d, err := parse(data)
	if err != nil {
		return nil, err
	}
	first, _, err := d.entry(table, index)
	if err != nil {
		return nil, err
	}
	hdr := d.headers[first]
	type splice struct {
		start, end int
		text       string
	}
	var edits []splice
	// Where keys are added: after the entry's last key, or its header.
	insertAt, indent := d.lineEnd(hdr.line), ""
	var mine []keyValue
	for _, kv := range d.kvs {
		if slices.Equal(kv.table, hdr.path) && kv.line > hdr.line && d.inEntry(kv.line, hdr.line) {
			mine = append(mine, kv)
		}
	}
	if len(mine) > 0 {
		last := mine[len(mine)-1]
		insertAt = d.lineEnd(last.endLine)
		l := d.line(last.line)
		indent = string(l[:len(l)-len(bytes.TrimLeft(l, " \t"))])
	}
	var added strings.Builder
	for _, s := range set {
		lit, err := Literal(s.Value)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(mine, func(kv keyValue) bool { return len(kv.key) == 1 && kv.key[0] == s.Key })
		if i < 0 {
			fmt.Fprintf(&added, "\n%s%s = %s", indent, bareKey(s.Key), lit)
			continue
		}
		if mine[i].valEnd == 0 || mine[i].line != mine[i].endLine {
			return nil, fmt.Errorf("tomlfile: %s.%s spans lines: it cannot be edited in place", table, s.Key)
		}
		edits = append(edits, splice{mine[i].valStart, mine[i].valEnd, lit})
	}
	if added.Len() > 0 {
		edits = append(edits, splice{insertAt, insertAt, added.String()})
	}
	slices.SortFunc(edits, func(a, b splice) int { return b.start - a.start })
	out := slices.Clone(data)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	return out, nil
}

// inEntry reports whether line is in the entry whose header is at hdrLine
// (before the next header).
func (d *doc) inEntry(line, hdrLine int) bool {
	for _, h := range d.headers {
		if h.line > hdrLine && h.line <= line {
			return false
		}
	}
	return line > hdrLine
}

// lineEnd is the offset of line n's line break (or the end of data).
func (d *doc) lineEnd(n int) int {
	if n < len(d.lineStart) {
		end := d.lineStart[n] - 1
		if end > 0 && d.data[end-1] == '\r' {
			end--
		}
		return end
	}
	return len(d.data)
}

// RemoveArrayTable removes the index-th [[table]] entry (0 is the first)
// of data with its sub-tables ([table.sub]) and the comment lines right
// above its header; the comment lines right above the next header stay
// (they are the next one's).
func RemoveArrayTable(data []byte, table string, index int) ([]byte, error) {
	d, err := parse(data)
	if err != nil {
		return nil, err
	}
	first, next, err := d.entry(table, index)
	if err != nil {
		return nil, err
	}
	inValue := map[int]bool{}
	for _, kv := range d.kvs {
		for l := kv.line; l <= kv.endLine; l++ {
			inValue[l] = true
		}
	}
	comment := func(l int) bool {
		return !inValue[l] && bytes.HasPrefix(bytes.TrimLeft(d.line(l), " \t"), []byte("#"))
	}
	start := d.headers[first].line
	for start > 1 && comment(start-1) {
		start--
	}
	end := d.lines() // the last line removed
	if next < len(d.headers) {
		end = d.headers[next].line - 1
		for end >= d.headers[first].line && comment(end) {
			end--
		}
	}
	from := d.lineStart[start-1]
	to := len(data)
	if end < d.lines() {
		to = d.lineStart[end]
	}
	return slices.Concat(data[:from], data[to:]), nil
}

// bareKey writes a key bare when TOML allows it, else quoted.
func bareKey(k string) string {
	if k == "" {
		return `""`
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return quote(k)
		}
	}
	return k
}

// WriteFileAtomic replaces the file at path with data: written to a new
// file beside it (with the old one's mode, else 0600), synced, and
// renamed over it, so a reader sees the old or the new file, never a part.
func WriteFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(mode), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tomlfile: writing %s: %w", path, err)
	}
	return nil
}
