package hostfuncs

import (
	"net/netip"
)

type addrRange struct {
	prefix netip.Prefix
	why    string
}

func ranges(kv ...string) []addrRange {
	out := make([]addrRange, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, addrRange{netip.MustParsePrefix(kv[i]), kv[i+1]})
	}
	return out
}

// special4 are the IPv4 ranges that are not on the public internet (IANA's
// special-purpose registry, and multicast), most specific first.
var special4 = ranges(
	"0.0.0.0/32", "unspecified",
	"0.0.0.0/8", "this network",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "CGNAT",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignment",
	"192.0.2.0/24", "documentation",
	"192.88.99.0/24", "6to4 relay anycast",
	"192.168.0.0/16", "private",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "broadcast",
	"240.0.0.0/4", "reserved",
)

// special6 are IPv6 ranges inside or beside the global unicast space
// 2000::/3 that are not on the public internet; netip classifies the rest
// (loopback, link-local, unique local, multicast).
var special6 = ranges(
	"::/96", "IPv4-compatible",
	"::ffff:0:0:0/96", "IPv4-translated",
	"64:ff9b:1::/48", "local-use NAT64",
	"100::/64", "discard-only",
	"2001:db8::/32", "documentation",
	"2001::/23", "IETF protocol assignment",
	"3fff::/20", "documentation",
	"fec0::/10", "site-local",
)

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	global6   = netip.MustParsePrefix("2000::/3")
)

// addrClass says why a is not an address of the public internet
// ("loopback", "private", "link-local", ...), or returns "" if it is. An
// IPv4-mapped IPv6 address is judged as its IPv4 address; a NAT64
// (64:ff9b::/96) or 6to4 (2002::/16) address as the IPv4 address it
// embeds. The zone of an IPv6 address plays no part.
func addrClass(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		for _, r := range special4 {
			if r.prefix.Contains(a) {
				return r.why
			}
		}
		return ""
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate():
		return "private"
	case nat64.Contains(a):
		b := a.As16()
		return embedded("NAT64", netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		b := a.As16()
		return embedded("6to4", netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, r := range special6 {
		if r.prefix.Contains(a) {
			return r.why
		}
	}
	if !global6.Contains(a) {
		return "not global unicast"
	}
	return ""
}

// embedded classifies an IPv6 address by the IPv4 address v4 it embeds.
func embedded(kind string, v4 netip.Addr) string {
	if why := addrClass(v4); why != "" {
		return kind + " of " + v4.String() + ", " + why
	}
	return ""
}
