package fetch

import (
	"net/netip"
	"testing"
)

func TestForbidden(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{"IPv4 loopback", "127.0.0.1", true},
		{"IPv4 loopback range", "127.8.9.10", true},
		{"IPv6 loopback", "::1", true},
		{"IPv4 unspecified", "0.0.0.0", true},
		{"this network", "0.1.2.3", true},
		{"IPv6 unspecified", "::", true},
		{"RFC 1918 10/8", "10.1.2.3", true},
		{"RFC 1918 172.16/12", "172.16.0.1", true},
		{"RFC 1918 172.31", "172.31.255.255", true},
		{"just outside 172.16/12", "172.32.0.1", false},
		{"RFC 1918 192.168/16", "192.168.1.1", true},
		{"CGNAT", "100.64.0.1", true},
		{"CGNAT top", "100.127.255.255", true},
		{"just outside CGNAT", "100.128.0.1", false},
		{"link-local metadata", "169.254.169.254", true},
		{"IPv6 link-local", "fe80::1", true},
		{"IPv6 link-local with zone", "fe80::1%eth0", true},
		{"unique local", "fd12:3456::1", true},
		{"unique local fc", "fc00::1", true},
		{"IPv4 multicast", "224.0.0.1", true},
		{"IPv6 multicast", "ff02::1", true},
		{"broadcast", "255.255.255.255", true},
		{"reserved", "240.0.0.1", true},
		{"benchmarking", "198.18.0.1", true},
		{"IPv4-mapped loopback", "::ffff:127.0.0.1", true},
		{"IPv4-mapped private", "::ffff:10.0.0.1", true},
		{"IPv4-mapped public", "::ffff:93.184.216.34", false},
		{"IPv4-compatible loopback", "::127.0.0.1", true},
		{"NAT64 of private", "64:ff9b::10.0.0.1", true},
		{"NAT64 of public", "64:ff9b::93.184.216.34", false},
		{"6to4 of loopback", "2002:7f00:1::", true},
		{"6to4 of public", "2002:5db8:d822::1", false},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
		{"documentation IPv6", "2001:db8::1", true},
		{"public IPv4", "93.184.216.34", false},
		{"public IPv4 8.8.8.8", "8.8.8.8", false},
		{"public IPv6", "2606:4700:4700::1111", false},
		{"invalid", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			if got := forbidden(a); got != tt.want {
				t.Errorf("forbidden(%s) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
