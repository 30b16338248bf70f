package resource

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// HostPattern is one entry of an HTTP allow-list: "*" (any host), "host",
// "*.domain" (any subdomain, at any depth, not the domain itself), an IP
// address or a CIDR prefix, each optionally with ":port" ("[v6]:port" for
// IPv6 addresses).
type HostPattern struct {
	any    bool
	name   string       // lower case, no trailing dot; "*.x" for wildcards
	prefix netip.Prefix // valid for addresses and CIDRs
	port   string       // "" for any
}

// ErrHostPattern reports an allow-list entry that cannot be parsed.
var ErrHostPattern = errors.New("invalid host pattern")

// ParseHostPattern parses an allow-list entry.
func ParseHostPattern(s string) (HostPattern, error) {
	bad := func(why string) (HostPattern, error) {
		return HostPattern{}, fmt.Errorf("%w %q: %s", ErrHostPattern, s, why)
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return bad("empty")
	}
	if strings.Contains(t, "://") {
		return bad(`write a host ("example.com" or "example.com:8080"), not a URL`)
	}
	var p HostPattern
	host := t
	if h, port, err := net.SplitHostPort(t); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
			return bad("bad port")
		}
		host, p.port = h, port
	} else if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
		host = t[1 : len(t)-1]
	}
	switch {
	case host == "":
		return bad("empty host")
	case host == "*":
		p.any = true
		return p, nil
	case strings.Contains(host, "%"):
		return bad("zones are not allowed")
	case strings.Contains(host, "/"):
		pr, err := netip.ParsePrefix(host)
		if err != nil {
			return bad("write a host, an IP address or a CIDR prefix")
		}
		if pr.Addr().Is4In6() {
			return bad("write an IPv4 prefix in IPv4 form")
		}
		p.prefix = pr.Masked()
		return p, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		p.prefix = netip.PrefixFrom(a, a.BitLen())
		return p, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	rest, wild := strings.CutPrefix(name, "*.")
	if !validName(rest) {
		return bad("not a host name")
	}
	if wild && !strings.Contains(rest, ".") {
		return bad(`a wildcard needs a domain with a dot ("*.example.com")`)
	}
	p.name = name
	return p, nil
}

// validName reports a DNS name of letters, digits, '-', '_' and dots.
func validName(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// String returns the pattern as it parses.
func (p HostPattern) String() string {
	var h string
	switch {
	case p.any:
		h = "*"
	case p.prefix.IsValid():
		if p.prefix.IsSingleIP() {
			h = p.prefix.Addr().String()
		} else {
			h = p.prefix.String()
		}
		if p.port != "" && p.prefix.Addr().Is6() {
			h = "[" + h + "]"
		}
	default:
		h = p.name
	}
	if p.port != "" {
		return h + ":" + p.port
	}
	return h
}

// Any reports whether the pattern is "*" (any host, any port or not).
func (p HostPattern) Any() bool { return p.any }

// Port returns the pattern's port, or "" for any.
func (p HostPattern) Port() string { return p.port }

// Prefix returns the addresses of an IP or CIDR pattern.
func (p HostPattern) Prefix() (netip.Prefix, bool) { return p.prefix, p.prefix.IsValid() }

// linkLocal are the link-local ranges: cloud metadata services live there.
var linkLocal = []netip.Prefix{netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10")}

// LinkLocal reports whether an IP or CIDR pattern includes link-local
// addresses.
func (p HostPattern) LinkLocal() bool {
	if !p.prefix.IsValid() {
		return false
	}
	for _, l := range linkLocal {
		if l.Overlaps(p.prefix) {
			return true
		}
	}
	return false
}

// MatchName reports whether the pattern allows host name (lower case, no
// trailing dot) at port.
func (p HostPattern) MatchName(name, port string) bool {
	if p.port != "" && p.port != port {
		return false
	}
	if p.any {
		return true
	}
	if p.prefix.IsValid() {
		a, err := netip.ParseAddr(strings.Trim(name, "[]"))
		return err == nil && p.prefix.Contains(a.Unmap())
	}
	if suffix, ok := strings.CutPrefix(p.name, "*"); ok {
		return len(name) > len(suffix) && strings.HasSuffix(name, suffix)
	}
	return p.name == name
}

// MatchAddr reports whether an IP or CIDR pattern allows addr at port.
func (p HostPattern) MatchAddr(addr netip.Addr, port string) bool {
	if p.port != "" && p.port != port {
		return false
	}
	return p.prefix.IsValid() && p.prefix.Contains(addr.Unmap())
}

// Contains reports whether everything q allows, p allows too.
func (p HostPattern) Contains(q HostPattern) bool {
	if p.port != "" && p.port != q.port {
		return false
	}
	switch {
	case p.any:
		return true
	case q.any:
		return false
	case p.prefix.IsValid():
		return q.prefix.IsValid() && q.prefix.Bits() >= p.prefix.Bits() && p.prefix.Contains(q.prefix.Addr())
	case q.prefix.IsValid():
		return false
	case p.name == q.name:
		return true
	}
	if suffix, ok := strings.CutPrefix(p.name, "*"); ok {
		return len(q.name) > len(suffix) && strings.HasSuffix(q.name, suffix)
	}
	return p.name == q.name
}

// matchAny reports whether name matches one of the patterns (path.Match
// syntax).
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
