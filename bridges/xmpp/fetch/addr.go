package fetch

import (
	"net/netip"
)

// forbiddenPrefixes are the networks a fetch must not reach unless AllowPrivate is set:
// this host, private networks, link-local, shared (CGNAT), multicast, reserved and
// special-purpose ranges. IPv4-mapped IPv6 addresses are unmapped first; NAT64 and 6to4
// addresses are checked by the IPv4 address they embed.
var forbiddenPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", includes the unspecified address
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // RFC 6598 shared address space (CGNAT)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata services
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, includes broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"::/96",           // IPv4-compatible (deprecated)
		"100::/64",        // discard-only
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
		"2001:db8::/32",   // documentation
		"64:ff9b:1::/48",  // local-use NAT64
		"2001::/32",       // Teredo: the embedded address is obfuscated, so refuse it
		"::ffff:0:0:0/96", // SIIT IPv4-translated
		"2002::/16",       // 6to4, checked again by embedded address below
		"64:ff9b::/96",    // NAT64, checked again by embedded address below
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// forbidden reports whether a is an address a fetch must not connect to when private
// addresses are not allowed. An invalid address is forbidden.
func forbidden(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap().WithZone("")
	switch {
	case a.Is6() && nat64.Contains(a):
		b := a.As16()
		return forbidden(netip.AddrFrom4([4]byte(b[12:16])))
	case a.Is6() && sixToFour.Contains(a):
		b := a.As16()
		return forbidden(netip.AddrFrom4([4]byte(b[2:6])))
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
