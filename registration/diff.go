package registration

import (
	"fmt"
	"slices"
	"strings"

	"maunium.net/go/mautrix/appservice"
)

// Diff lists, in a fixed order, how the registration on disk differs from the one the
// current config and modules imply, for a warning such as "registration file is out of date:
// namespaces.users differ; rerun switchboard -g and restart the homeserver". Tokens are
// ignored (they are kept on regeneration and are secret); the order of namespace entries and
// protocols does not matter. An empty result means the file is up to date.
func Diff(onDisk, implied *appservice.Registration) []string {
	switch {
	case onDisk == nil && implied == nil:
		return nil
	case onDisk == nil:
		return []string{"no registration file"}
	case implied == nil:
		return []string{"no registration implied"}
	}
	var out []string
	str := func(key, a, b string) {
		if a != b {
			out = append(out, fmt.Sprintf("%s differs: %q on disk, %q implied", key, a, b))
		}
	}
	flag := func(key string, a, b bool) {
		if a != b {
			out = append(out, fmt.Sprintf("%s differs: %v on disk, %v implied", key, a, b))
		}
	}
	str("id", onDisk.ID, implied.ID)
	str("url", onDisk.URL, implied.URL)
	str("sender_localpart", onDisk.SenderLocalpart, implied.SenderLocalpart)
	flag("rate_limited", rateLimited(onDisk), rateLimited(implied))
	for _, ns := range []struct {
		key  string
		a, b appservice.NamespaceList
	}{
		{"namespaces.users", onDisk.Namespaces.UserIDs, implied.Namespaces.UserIDs},
		{"namespaces.aliases", onDisk.Namespaces.RoomAliases, implied.Namespaces.RoomAliases},
		{"namespaces.rooms", onDisk.Namespaces.RoomIDs, implied.Namespaces.RoomIDs},
	} {
		if !sameNamespaces(ns.a, ns.b) {
			out = append(out, ns.key+" differ")
		}
	}
	if !slices.Equal(sortedUnique(onDisk.Protocols), sortedUnique(implied.Protocols)) {
		out = append(out, "protocols differ")
	}
	flag("receive_ephemeral", onDisk.EphemeralEvents, implied.EphemeralEvents)
	flag("de.sorunome.msc2409.push_ephemeral", onDisk.SoruEphemeralEvents, implied.SoruEphemeralEvents)
	flag("org.matrix.msc3202", onDisk.MSC3202, implied.MSC3202)
	flag("io.element.msc4190", onDisk.MSC4190, implied.MSC4190)
	return out
}

// rateLimited is the effective value: the homeserver rate-limits when the key is absent.
func rateLimited(reg *appservice.Registration) bool {
	return reg.RateLimited == nil || *reg.RateLimited
}

// sameNamespaces compares two namespace lists as sets.
func sameNamespaces(a, b appservice.NamespaceList) bool {
	key := func(l appservice.NamespaceList) []string {
		out := make([]string, len(l))
		for i, ns := range l {
			out[i] = fmt.Sprintf("%t %s", ns.Exclusive, ns.Regex)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(a), key(b))
}

// DiffSummary joins the differences into one line, or returns "" when there are none.
func DiffSummary(diffs []string) string {
	if len(diffs) == 0 {
		return ""
	}
	return "registration file is out of date: " + strings.Join(diffs, "; ") +
		"; rerun switchboard -g and restart the homeserver"
}
