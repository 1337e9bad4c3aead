package fetchguard

import "net/netip"

// Address classes that are not public, as Classify names them.
const (
	ClassLoopback    = "loopback"
	ClassLinkLocal   = "link-local"
	ClassPrivate     = "private"
	ClassShared      = "shared (CGNAT)"
	ClassUnspecified = "unspecified"
	ClassMulticast   = "multicast"
	ClassBroadcast   = "broadcast"
	ClassReserved    = "reserved"
)

// blocked lists the ranges that are not public, most specific first.
var blocked = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("255.255.255.255/32"), ClassBroadcast},
	{netip.MustParsePrefix("0.0.0.0/8"), ClassUnspecified}, // "this network"
	{netip.MustParsePrefix("10.0.0.0/8"), ClassPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ClassShared},
	{netip.MustParsePrefix("127.0.0.0/8"), ClassLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), ClassLinkLocal}, // cloud metadata: 169.254.169.254
	{netip.MustParsePrefix("172.16.0.0/12"), ClassPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), ClassReserved}, // IETF protocol assignments
	{netip.MustParsePrefix("192.168.0.0/16"), ClassPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), ClassReserved}, // benchmarking
	{netip.MustParsePrefix("224.0.0.0/4"), ClassMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), ClassReserved},
	{netip.MustParsePrefix("::/128"), ClassUnspecified},
	{netip.MustParsePrefix("::1/128"), ClassLoopback},
	{netip.MustParsePrefix("::/96"), ClassReserved},         // IPv4-compatible (deprecated)
	{netip.MustParsePrefix("64:ff9b:1::/48"), ClassPrivate}, // local-use NAT64
	{netip.MustParsePrefix("100::/64"), ClassReserved},      // discard-only
	{netip.MustParsePrefix("fc00::/7"), ClassPrivate},       // unique local (AWS metadata: fd00:ec2::254)
	{netip.MustParsePrefix("fe80::/10"), ClassLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), ClassPrivate}, // site-local (deprecated)
	{netip.MustParsePrefix("ff00::/8"), ClassMulticast},
}

// Prefixes of IPv6 addresses that carry an IPv4 address, which is checked
// in their place.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // the IPv4 address in the last 4 bytes
	sixToFour = netip.MustParsePrefix("2002::/16")    // the IPv4 address in bytes 2..5
)

// Classify names the class of a non-public address (ClassLoopback,
// ClassPrivate, ...), or returns "" for a public one. IPv6 forms of an
// IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4
// 2002:aabb:ccdd::) are classified as that IPv4 address.
func Classify(ip netip.Addr) string {
	if !ip.IsValid() {
		return ClassUnspecified
	}
	ip = embeddedIPv4(ip.WithZone(""))
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return b.class
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address an IPv6 address stands for, or ip.
func embeddedIPv4(ip netip.Addr) netip.Addr {
	if ip.Is4In6() {
		return ip.Unmap()
	}
	b := ip.As16()
	switch {
	case !ip.Is6():
		return ip
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return ip
}
