package hostfuncs

import (
	"net/netip"
	"testing"
)

func TestAddrClass(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		// IPv4.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.0.0.170", "IETF protocol assignment"},
		{"192.0.2.1", "documentation"},
		{"192.88.99.1", "6to4 relay anycast"},
		{"192.168.1.1", "private"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.254", "reserved"},
		{"255.255.255.255", "broadcast"},
		// IPv4 on the internet, some next to the ranges above.
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"223.255.255.255", ""},
		{"93.184.215.14", ""},
		// IPv4-mapped IPv6: as the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:100.64.0.1", "CGNAT"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:255.255.255.255", "broadcast"},
		{"::ffff:8.8.8.8", ""},
		// NAT64 (64:ff9b::/96) and 6to4 (2002::/16): as the IPv4 address they
		// carry.
		{"64:ff9b::7f00:1", "NAT64 of 127.0.0.1, loopback"},
		{"64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254, link-local"},
		{"64:ff9b::a00:1", "NAT64 of 10.0.0.1, private"},
		{"64:ff9b::808:808", ""},
		{"64:ff9b:1::1", "local-use NAT64"},
		{"2002:7f00:1::1", "6to4 of 127.0.0.1, loopback"},
		{"2002:c0a8:101::1", "6to4 of 192.168.1.1, private"},
		{"2002:808:808::1", ""},
		// IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::2", "IPv4-compatible"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"::ffff:0:7f00:1", "IPv4-translated"},
		{"100::1", "discard-only"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"fec0::1", "site-local"},
		{"fc00::1", "private"},
		{"fd00:ec2::254", "private"},
		{"ff02::1", "multicast"},
		{"ff05::1:3", "multicast"},
		{"2001::1", "IETF protocol assignment"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"1::1", "not global unicast"},
		{"4000::1", "not global unicast"},
		{"5f00::1", "not global unicast"},
		{"e000::1", "not global unicast"},
		// IPv6 on the internet.
		{"2001:4860:4860::8888", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"2001:200::1", ""},
		{"3ffe::1", ""},
	} {
		if got := addrClass(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("addrClass(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := addrClass(netip.Addr{}); got != "invalid" {
		t.Errorf("addrClass(zero Addr) = %q", got)
	}
}

// TestAddrClassAgreesWithNetip: what netip says is special, addrClass
// refuses.
func TestAddrClassAgreesWithNetip(t *testing.T) {
	for _, s := range []string{
		"0.0.0.0", "127.0.0.1", "10.1.1.1", "172.20.0.1", "192.168.0.1", "169.254.1.1", "224.1.1.1", "239.0.0.1",
		"::", "::1", "fe80::1", "fc00::1", "fdff::1", "ff00::1", "ff01::1", "ff02::1",
	} {
		a := netip.MustParseAddr(s)
		special := a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
			a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || !a.IsGlobalUnicast()
		if !special {
			t.Fatalf("%s: not special for netip", s)
		}
		if addrClass(a) == "" {
			t.Errorf("addrClass(%s) = \"\"", s)
		}
	}
}
