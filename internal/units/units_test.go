package units

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "4MiB": 4 << 20, "4mib": 4 << 20, "4M": 4 << 20, "4 MB": 4e6,
		"512k": 512 << 10, "1.5GiB": 3 << 29, "2TiB": 2 << 40, "10B": 10, " 7kb ": 7000,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.2.3", "4 parsecs", "1e3", "99999999999999TiB", "NaN"} {
		if _, err := ParseSize(bad); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSize(%q) err = %v", bad, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1000: "1000B", 4096: "4KiB", 4 << 20: "4MiB", 3 << 30: "3GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(FormatSize(n)); err != nil || back != n {
			t.Errorf("round trip of %d: %d, %v", n, back, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4MiB", "1.5g", "0", "12 kb", "..", "9e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if err != nil && !errors.Is(err, ErrSize) {
			t.Fatalf("error %v does not wrap ErrSize", err)
		}
	})
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1024: "1KiB", 171322: "167.3KiB", 128 << 20: "128MiB", 3<<30 + 1: "3.0GiB", 4096: "4KiB"} {
		if got := HumanSize(n); got != want {
			t.Errorf("HumanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseSizeUnit(t *testing.T) {
	good := map[string]int64{"0": 0, "0B": 0, "64MiB": 64 << 20, "10B": 10, " 7kb ": 7000, "1.5GiB": 3 << 29}
	for in, want := range good {
		got, err := ParseSizeUnit(in)
		if err != nil || got != want {
			t.Errorf("ParseSizeUnit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"64":       `64 has no unit: write "64MiB" (or "64B" for bytes)`,
		" 4096 ":   `4096 has no unit: write "4KiB" (or "4096B" for bytes)`,
		"67108864": `67108864 has no unit: write "64MiB" (or "67108864B" for bytes)`,
		"1.5":      `1.5 has no unit: write "1.5MiB" (or "1.5B" for bytes)`,
	} {
		_, err := ParseSizeUnit(in)
		if !errors.Is(err, ErrNoUnit) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseSizeUnit(%q) err = %v, want %q", in, err, msg)
		}
	}
	if _, err := ParseSizeUnit("lots"); !errors.Is(err, ErrSize) {
		t.Errorf("ParseSizeUnit(lots) err = %v", err)
	}
}
