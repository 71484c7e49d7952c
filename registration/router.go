package registration

import (
	"regexp"

	"maunium.net/go/mautrix/id"
)

// Router finds the module whose namespaces hold a user ID or a room alias. It matches the
// same anchored expressions as the registration file, so it agrees with the homeserver. The
// management bot is not a module here. A Router is immutable and safe for concurrent use.
type Router struct {
	users   []route // in the order of module IDs; immutable
	aliases []route // immutable
}

type route struct {
	module string
	re     *regexp.Regexp
}

// NewRouter compiles the namespaces of the modules, keyed by module ID, for the homeserver
// domain. Exclusive and non-exclusive patterns both route. An invalid pattern gives a
// [*PatternError].
func NewRouter(domain string, modules map[string]Namespaces) (*Router, error) {
	r := &Router{}
	for _, mod := range sortedIDs(modules) {
		ns := modules[mod]
		for _, p := range ns.Users {
			re, err := compilePattern(mod, KindUsers, '@', p, domain)
			if err != nil {
				return nil, err
			}
			r.users = append(r.users, route{mod, re})
		}
		for _, p := range ns.Aliases {
			re, err := compilePattern(mod, KindAliases, '#', p, domain)
			if err != nil {
				return nil, err
			}
			r.aliases = append(r.aliases, route{mod, re})
		}
	}
	return r, nil
}

// ModuleForUser returns the first module, in the order of module IDs, whose user namespaces
// match userID.
func (r *Router) ModuleForUser(userID id.UserID) (module string, ok bool) {
	return match(r.users, string(userID))
}

// ModuleForAlias returns the first module, in the order of module IDs, whose alias
// namespaces match alias.
func (r *Router) ModuleForAlias(alias id.RoomAlias) (module string, ok bool) {
	return match(r.aliases, string(alias))
}

func match(routes []route, s string) (string, bool) {
	for _, rt := range routes {
		if rt.re.MatchString(s) {
			return rt.module, true
		}
	}
	return "", false
}
