package pipeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// errDuration reports a duration that cannot be parsed.
var errDuration = errors.New("invalid duration")

const (
	day   = 24 * time.Hour
	month = 30 * day
	year  = 365 * day
)

var durationUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": day, "day": day, "days": day,
	"w": 7 * day, "wk": 7 * day, "wks": 7 * day, "week": 7 * day, "weeks": 7 * day,
	"mo": month, "mos": month, "month": month, "months": month,
	"y": year, "yr": year, "yrs": year, "year": year, "years": year,
}

// maxDuration bounds parsed durations well below time.Duration's range.
const maxDuration = 100 * year

// parseHumanDuration parses a duration the way GitLab writes them:
// "3600" (seconds), "90 minutes", "1h 30m", "1h30m", "1 hour and 30
// minutes", "2.5 hours", "1 week", "01:30:00" (h:m:s) and "30:00" (m:s).
// Units are case-insensitive; a month is 30 days and a year 365 days.
func parseHumanDuration(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("%w: empty", errDuration)
	}
	if strings.Contains(t, ":") {
		return parseClock(t)
	}
	if isDigits(t) {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n > int64(maxDuration/time.Second) {
			return 0, fmt.Errorf("%w: %q is too large", errDuration, s)
		}
		return time.Duration(n) * time.Second, nil
	}
	var total float64
	i := 0
	terms := 0
	for i < len(t) {
		c := t[i]
		switch {
		case c == ' ' || c == ',' || c == '\t':
			i++
			continue
		case strings.HasPrefix(t[i:], "and ") && terms > 0:
			i += len("and ")
			continue
		}
		start := i
		for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
			i++
		}
		if start == i {
			return 0, fmt.Errorf("%w: %q: expected a number at %q", errDuration, s, t[start:])
		}
		num, err := strconv.ParseFloat(t[start:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q: bad number %q", errDuration, s, t[start:i])
		}
		for i < len(t) && t[i] == ' ' {
			i++
		}
		ustart := i
		for i < len(t) && t[i] >= 'a' && t[i] <= 'z' {
			i++
		}
		unit, ok := durationUnits[t[ustart:i]]
		if !ok {
			if ustart == i {
				return 0, fmt.Errorf("%w: %q: missing unit after %s", errDuration, s, t[start:ustart])
			}
			return 0, fmt.Errorf("%w: %q: unknown unit %q", errDuration, s, t[ustart:i])
		}
		total += num * float64(unit)
		if total > float64(maxDuration) {
			return 0, fmt.Errorf("%w: %q is too large", errDuration, s)
		}
		terms++
	}
	if terms == 0 {
		return 0, fmt.Errorf("%w: %q", errDuration, s)
	}
	return time.Duration(math.Round(total)), nil
}

// parseClock parses "h:m:s" or "m:s".
func parseClock(t string) (time.Duration, error) {
	parts := strings.Split(t, ":")
	if len(parts) > 3 {
		return 0, fmt.Errorf("%w: %q", errDuration, t)
	}
	var total int64
	for _, p := range parts {
		if !isDigits(p) || len(p) > 9 {
			return 0, fmt.Errorf("%w: %q", errDuration, t)
		}
		n, _ := strconv.ParseInt(p, 10, 64)
		total = total*60 + n
	}
	if total > int64(maxDuration/time.Second) {
		return 0, fmt.Errorf("%w: %q is too large", errDuration, t)
	}
	return time.Duration(total) * time.Second, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
