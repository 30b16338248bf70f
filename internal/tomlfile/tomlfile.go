// Package tomlfile reads strict TOML configuration files: unknown keys and
// bad values are errors that name the file, line and key.
package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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

// DecodeBytes decodes data, read from the file name, into v.
func DecodeBytes(name string, data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", name, line, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key != "" {
			return fmt.Errorf("%s:%d: %s: %s", name, line, key, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return fmt.Errorf("%s:%d: %s", name, line, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Size is a byte size written as "4MiB", "512k" or a plain number.
type Size int64

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := units.ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// MarshalText formats the size.
func (s Size) MarshalText() ([]byte, error) { return []byte(units.FormatSize(int64(s))), nil }

// Duration is a duration written as Go does ("90s", "1h30m").
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
