package resource

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParseHostPatternTable(t *testing.T) {
	for _, tc := range []struct {
		entry string
		want  string // "" for an entry that is refused
	}{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"example.com:8080", "example.com:8080"},
		{"*.example.com", "*.example.com"},
		{"*.example.com:443", "*.example.com:443"},
		{"127.0.0.1", "127.0.0.1"},
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"[::1]:8080", "[::1]:8080"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"10.1.0.0/16", "10.1.0.0/16"},
		{"10.1.2.3/16", "10.1.0.0/16"},
		{"10.1.0.0/16:443", "10.1.0.0/16:443"},
		{"fd00::/8", "fd00::/8"},
		{"[fd00::/8]:443", "[fd00::/8]:443"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"*", "*"},
		{"*:443", "*:443"},
		{"", ""},
		{"*.", ""},
		{"*.*.example.com", ""},
		{"a*.example.com", ""},
		{"example.com:", ""},
		{"example.com:0", ""},
		{"example.com:080", ""},
		{"example.com:65536", ""},
		{"example.com:http", ""},
		{"10.1.0.0/33", ""},
		{"10.1.0.0/", ""},
		{"::ffff:10.0.0.0/104", ""},
		{"fe80::1%eth0", ""},
		{"[fe80::1%eth0]:80", ""},
		{"example.com/path", ""},
		{"http://example.com", ""},
		{"user@example.com", ""},
		{"exa mple.com", ""},
		{"[]", ""},
	} {
		p, err := ParseHostPattern(tc.entry)
		got := ""
		if err == nil {
			got = p.String()
		}
		if got != tc.want {
			t.Errorf("ParseHostPattern(%q) = %q (%v), want %q", tc.entry, got, err, tc.want)
		}
	}
}

// FuzzAllowEntry: the parser and matchers never panic, a name pattern never
// allows an address, and an address or CIDR pattern never allows an
// address outside it (as net.ParseCIDR, an independent parser, sees it).
func FuzzAllowEntry(f *testing.F) {
	for _, s := range []string{
		"example.com", "*.example.com:443", "127.0.0.1", "[::1]:8080", "10.1.0.0/16", "10.1.0.0/16:443",
		"[fd00::/8]:443", "fd00::/8", "0.0.0.0/0", "::/0", "::ffff:10.0.0.0/104", "64:ff9b::/96",
		"1.2.3.4/0", "[1.2.3.4/8]:80", "*",
	} {
		f.Add(s, []byte{10, 1, 2, 3}, "80")
		f.Add(s, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}, "443")
		f.Add(s, []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "8080")
	}
	f.Fuzz(func(t *testing.T, entry string, ip []byte, port string) {
		p, err := ParseHostPattern(entry)
		if err != nil {
			return
		}
		p.MatchName(strings.ToLower(entry), port)
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		if !p.MatchAddr(a, port) {
			return
		}
		pr, isAddr := p.Prefix()
		if !isAddr {
			t.Fatalf("name pattern %q allows the address %s", entry, a)
		}
		if p.Port() != "" && p.Port() != port {
			t.Fatalf("pattern %q allows port %q", entry, port)
		}
		h := strings.TrimSpace(entry)
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		} else {
			h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		}
		if !strings.Contains(h, "/") {
			want, err := netip.ParseAddr(h)
			if err != nil || want.Unmap() != a.Unmap() {
				t.Fatalf("address pattern %q (%s) allows %s", entry, pr, a)
			}
			return
		}
		_, n, err := net.ParseCIDR(h)
		if err != nil {
			t.Fatalf("CIDR pattern %q accepted, but net.ParseCIDR says %v", entry, err)
		}
		if !n.Contains(net.IP(a.Unmap().AsSlice())) {
			t.Fatalf("CIDR pattern %q (%s) allows %s", entry, n, a)
		}
	})
}
