// Package units parses the sizes operators write in flags and config
// files ("4MiB", "512k", "1.5GB", "1048576").
package units

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrSize reports a size that cannot be parsed.
var ErrSize = errors.New("invalid size")

var multipliers = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1e12, "tib": 1 << 40,
}

// ParseSize parses a non-negative byte size: a number (decimals allowed)
// followed by an optional unit, case-insensitive: B; K, KiB (1024); KB
// (1000); likewise M, G, T. Bare K/M/G/T are binary.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("%w %q: no number", ErrSize, s)
	}
	m, ok := multipliers[unit]
	if !ok {
		return 0, fmt.Errorf("%w %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", ErrSize, s, t[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q", ErrSize, s)
	}
	v := f * m
	if v > math.MaxInt64/2 || math.IsNaN(v) {
		return 0, fmt.Errorf("%w %q: too large", ErrSize, s)
	}
	return int64(math.Round(v)), nil
}

// ErrNoUnit reports a size written without a unit where one is required
// ([ParseSizeUnit]).
var ErrNoUnit = errors.New("size without a unit")

// ParseSizeUnit parses a size as ParseSize does, but a size other than 0
// must have a unit: in a file, "64" is more likely 64MiB written short than
// 64 bytes. Its error then says what to write instead.
func ParseSizeUnit(s string) (int64, error) {
	n, err := ParseSize(s)
	if err != nil {
		return 0, err
	}
	t := strings.TrimSpace(s)
	if n != 0 && t != "" && (t[len(t)-1] >= '0' && t[len(t)-1] <= '9' || t[len(t)-1] == '.') {
		return 0, &noUnitError{t}
	}
	return n, nil
}

// noUnitError is a size without a unit; it is ErrNoUnit.
type noUnitError struct{ num string }

func (e *noUnitError) Error() string        { return e.num + " has no unit: " + UnitHint(e.num) }
func (e *noUnitError) Is(target error) bool { return target == ErrNoUnit }

// UnitHint says how to write a size given as a plain number (num): with
// a unit, as the number of MiB it most likely means, or as the same bytes
// in the largest unit that writes them exactly.
func UnitHint(num string) string {
	num = strings.TrimSpace(num)
	n, err := strconv.ParseInt(num, 10, 64)
	if err == nil && n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("write %q (or %q for bytes)", FormatSize(n), num+"B")
	}
	return fmt.Sprintf("write %q (or %q for bytes)", num+"MiB", num+"B")
}

// FormatSize formats n bytes with a binary unit, as ParseSize reads it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<40 && n%(1<<40) == 0:
		return strconv.FormatInt(n>>40, 10) + "TiB"
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// HumanSize formats n bytes for people: exact as FormatSize when that is
// short, otherwise rounded to one decimal of the largest binary unit
// ("167.3KiB").
func HumanSize(n int64) string {
	if s := FormatSize(n); len(s) <= 6 {
		return s
	}
	f, unit := float64(n), "B"
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + unit
}
