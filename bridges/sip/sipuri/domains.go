package sipuri

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// DomainList is an allow list of SIP domains. Entries are
//
//   - "example.org": exactly that host (host names are compared in lower case; an IP
//     address such as "192.0.2.1" or "[2001:db8::1]" is allowed too);
//   - "*.example.org": every subdomain of example.org ("a.example.org", "a.b.example.org"),
//     but not example.org itself (list both if both are meant);
//   - "*": every host.
//
// The zero DomainList and a list parsed from no entries admit nobody: allowing everybody
// takes an explicit "*". A DomainList is immutable and safe for concurrent use.
type DomainList struct {
	all      bool
	exact    map[string]struct{} // canonical hosts
	suffixes []string            // ".example.org" for "*.example.org"
	entries  []string            // canonical entries, for String
}

// ParseDomainList reads an allow list; the error names every bad entry.
func ParseDomainList(entries []string) (DomainList, error) {
	d := DomainList{exact: make(map[string]struct{})}
	var errs []error
	for i, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "*":
			d.all = true
		case strings.HasPrefix(e, "*."):
			h, err := canonHost(e[2:])
			if err != nil || strings.HasPrefix(h, "[") || isIPv4(h) {
				errs = append(errs, fmt.Errorf("sipuri: domain list entry %d %q: want *.<host name>", i, e))
				continue
			}
			d.suffixes = append(d.suffixes, "."+h)
			e = "*." + h
		default:
			h, err := canonDomain(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("sipuri: domain list entry %d %q: %w", i, e, err))
				continue
			}
			d.exact[h] = struct{}{}
			e = h
		}
		d.entries = append(d.entries, e)
	}
	if err := errors.Join(errs...); err != nil {
		return DomainList{}, err
	}
	return d, nil
}

// Allows reports whether host (a host name or IP address, without port; an AOR's Host)
// is on the list. Hosts that are not valid are never allowed.
func (d DomainList) Allows(host string) bool {
	h, err := canonDomain(host)
	if err != nil {
		return false
	}
	if d.all {
		return true
	}
	if _, ok := d.exact[h]; ok {
		return true
	}
	for _, s := range d.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// String lists the entries in canonical form, separated by ", ".
func (d DomainList) String() string {
	return strings.Join(d.entries, ", ")
}

// canonDomain is canonHost that also takes an IPv6 address without brackets.
func canonDomain(h string) (string, error) {
	if strings.IndexByte(h, ':') >= 0 && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return canonHost(h)
}

func isIPv4(h string) bool {
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Is4()
}
