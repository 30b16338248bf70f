package pipeline

import (
	"errors"
	"testing"
	"time"
)

func TestParseHumanDuration(t *testing.T) {
	good := map[string]time.Duration{
		"3600":                     time.Hour,
		"90":                       90 * time.Second,
		"1h 30m":                   90 * time.Minute,
		"1h30m":                    90 * time.Minute,
		"90 minutes":               90 * time.Minute,
		"1 hour":                   time.Hour,
		"1 Hour and 30 Minutes":    90 * time.Minute,
		"2 hours, 5 mins, 10 secs": 2*time.Hour + 5*time.Minute + 10*time.Second,
		"2.5h":                     150 * time.Minute,
		"30s":                      30 * time.Second,
		"3 days":                   72 * time.Hour,
		"2 weeks":                  14 * 24 * time.Hour,
		"1 month":                  30 * 24 * time.Hour,
		"1 yr":                     365 * 24 * time.Hour,
		"01:30:00":                 90 * time.Minute,
		"30:00":                    30 * time.Minute,
		"  45m  ":                  45 * time.Minute,
		"1 hr 1 min 1 sec":         time.Hour + time.Minute + time.Second,
		"0":                        0,
	}
	for in, want := range good {
		got, err := parseHumanDuration(in)
		if err != nil || got != want {
			t.Errorf("parseHumanDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := []string{"", "h", "1h 30", "-1h", "1.2.3h", "10 parsecs", "and 1h", "1:2:3:4", "1:x", "1e3s",
		"99999999999999999999", "1000000 years", ","}
	for _, in := range bad {
		if d, err := parseHumanDuration(in); !errors.Is(err, errDuration) {
			t.Errorf("parseHumanDuration(%q) = %v, %v; want an error", in, d, err)
		}
	}
}
