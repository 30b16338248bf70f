// Package tomlfile reads strict TOML configuration files: unknown keys and
// bad values are errors that name the file, line and key.
package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Decode reads the TOML file at path into v, rejecting keys v has no field
// for.
func Decode(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return DecodeBytes(path, data, v)
}

// DecodeBytes decodes data, read from the file name, into v. Its errors
// are an *[Error], or several joined (errors.Join) for unknown keys and
// values of the wrong type.
//
// Values are checked against the types they go to first, so that an error
// says in TOML terms what a key takes, and sizes ([Size]) and durations
// ([Duration]) need a unit: a plain number other than 0 is an error that
// says what to write.
func DecodeBytes(name string, data []byte, v any) error {
	if errs := checkTypes(name, data, reflect.TypeOf(v)); len(errs) > 0 {
		return errors.Join(errs...)
	}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, _ := e.Position()
			errs = append(errs, &Error{File: name, Line: line, Key: strings.Join(e.Key(), "."), UnknownKey: true})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		// Type errors the check above missed: say what the key takes, not
		// the Go types.
		if got, ok := strings.CutPrefix(msg, "cannot decode TOML "); ok {
			got, _, _ = strings.Cut(got, " into ")
			if f, found := lookup(reflect.TypeOf(v), de.Key()); found {
				return &Error{File: name, Line: line, Key: key, sentence: true, public: true,
					Msg: fmt.Sprintf("%s must be %s, not %s; e.g. %s", key, describe(f.Type), article(got), example(f))}
			}
		}
		return &Error{File: name, Line: line, Key: key, Msg: msg}
	}
	return &Error{File: name, Msg: err.Error()}
}

// Error is an error decoding a file. Msg may quote the file's text (a
// character, a value); File, Line and Key say where without quoting more
// than a key's name.
type Error struct {
	File       string
	Line       int    // 0: unknown
	Key        string // dotted; "" when unknown
	UnknownKey bool   // Key has no field to go to
	Msg        string
	// sentence: Msg is a sentence naming Key itself.
	sentence bool
	// public: Msg quotes nothing of the file but a key's name and a size
	// or duration written without a unit.
	public bool
}

// Public returns the error as far as it may be shown to others than the
// file's owner (it might not be the file it should be, or hold secrets):
// the whole error when it quotes nothing but key names (full), else
// [Error.Where] and "not valid".
func (e *Error) Public() (msg string, full bool) {
	if e.public || e.UnknownKey {
		return e.Error(), true
	}
	return e.Where() + ": not valid", false
}

func (e *Error) Error() string {
	switch {
	case e.UnknownKey:
		return fmt.Sprintf("%s:%d: unknown key %q", e.File, e.Line, e.Key)
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.sentence:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Key != "":
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// article puts "a" or "an" before a TOML kind of the decoder's.
func article(kind string) string {
	if kind != "" && strings.ContainsRune("aeiou", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// Where is the error without Msg: "file:line: key" (or less when the line
// or key is unknown), with "unknown key" before the key when it has no
// field. It quotes nothing from the file but a key's name.
func (e *Error) Where() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	switch {
	case e.UnknownKey:
		s += fmt.Sprintf(": unknown key %q", e.Key)
	case e.Key != "":
		s += ": " + e.Key
	}
	return s
}

// Size is a byte size written with a unit: "4MiB", "512k", "10B"; 0 may
// go without one. A plain number (64, "64") is an error: in a file it is
// more likely 64MiB written short than 64 bytes.
type Size int64

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := units.ParseSizeUnit(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalText formats the size.
func (s Size) MarshalText() ([]byte, error) { return []byte(units.FormatSize(int64(s))), nil }

// Duration is a duration written as Go does ("90s", "1h30m"); 0 may go
// without a unit.
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		s := strings.TrimSpace(string(b))
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return fmt.Errorf("%s has no unit: write %q (or %q, %q)", s, s+"s", s+"m", s+"h")
		}
		return fmt.Errorf(`%q is not a duration: write a number with a unit, e.g. "90s", "30m", "1h30m"`, s)
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
