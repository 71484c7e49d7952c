package registration

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"

	"maunium.net/go/mautrix/appservice"
)

// BotModule is the name the management bot goes by in overlap errors. No module may use it.
const BotModule = "bot"

// Namespace kinds, as named in the registration file.
const (
	KindUsers   = "users"
	KindAliases = "aliases"
)

// BuildConfig is what the registration needs from the config.
type BuildConfig struct {
	// ID is the registration's id (appservice.id). Required.
	ID string
	// URL is where the homeserver reaches the transaction API (appservice.public_url).
	// Required.
	URL string
	// BotLocalpart is the management bot's localpart, the registration's sender. Required.
	BotLocalpart string
	// Domain is the homeserver's server name. Required.
	Domain string
	// Ephemeral asks for typing notifications, receipts and presence (receive_ephemeral and
	// its MSC2409 predecessor de.sorunome.msc2409.push_ephemeral).
	Ephemeral bool
	// Protocols are the third-party protocol IDs the modules serve; may be nil.
	Protocols []string
	// MSC3202 asks for device list changes and one-time key counts in transactions
	// (org.matrix.msc3202; Synapse also needs experimental_features.msc3202_transaction_extensions).
	MSC3202 bool
	// MSC4190 lets the appservice create and delete its users' devices without
	// user-interactive auth (io.element.msc4190).
	MSC4190 bool
}

// Build returns the registration implied by cfg and the namespaces of the modules, keyed by
// module ID. The tokens of existing (may be nil) are kept, so that a regenerated file works
// with a homeserver that already knows the old one; missing tokens are generated.
//
// Each localpart pattern p becomes ^@(?:p):<domain>$ for users and ^#(?:p):<domain>$ for
// aliases, and the bot's own user ID is claimed exclusively. Build fails with a
// [*PatternError] for a pattern that is not a valid regular expression, and with
// [*OverlapError]s (joined) when exclusive namespaces of different modules, the bot included,
// can match the same ID. The output is deterministic: modules in the order of their IDs.
func Build(cfg BuildConfig, modules map[string]Namespaces, existing *appservice.Registration) (*appservice.Registration, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ids := sortedIDs(modules)
	if slices.Contains(ids, BotModule) {
		return nil, fmt.Errorf("%w: module ID %q is reserved for the management bot", ErrInvalidConfig, BotModule)
	}

	bot := claim{module: BotModule, pattern: regexp.QuoteMeta(cfg.BotLocalpart), exclusive: true}
	bot.regex = fullRegex('@', bot.pattern, cfg.Domain)
	users := []claim{bot}
	var aliases []claim
	for _, mod := range ids {
		ns := modules[mod]
		u, err := claims(mod, KindUsers, '@', ns.Users, cfg.Domain)
		if err != nil {
			return nil, err
		}
		a, err := claims(mod, KindAliases, '#', ns.Aliases, cfg.Domain)
		if err != nil {
			return nil, err
		}
		users = append(users, u...)
		aliases = append(aliases, a...)
	}
	var overlaps []error
	for _, set := range []struct {
		kind   string
		claims []claim
	}{{KindUsers, users}, {KindAliases, aliases}} {
		errs, err := checkOverlaps(set.kind, set.claims)
		if err != nil {
			return nil, err
		}
		overlaps = append(overlaps, errs...)
	}
	if len(overlaps) > 0 {
		return nil, errors.Join(overlaps...)
	}

	reg := &appservice.Registration{
		ID:                  cfg.ID,
		URL:                 cfg.URL,
		SenderLocalpart:     cfg.BotLocalpart,
		RateLimited:         new(bool),
		Protocols:           sortedUnique(cfg.Protocols),
		EphemeralEvents:     cfg.Ephemeral,
		SoruEphemeralEvents: cfg.Ephemeral,
		MSC3202:             cfg.MSC3202,
		MSC4190:             cfg.MSC4190,
	}
	for _, c := range users {
		reg.Namespaces.UserIDs = append(reg.Namespaces.UserIDs, appservice.Namespace{Regex: c.regex, Exclusive: c.exclusive})
	}
	for _, c := range aliases {
		reg.Namespaces.RoomAliases = append(reg.Namespaces.RoomAliases, appservice.Namespace{Regex: c.regex, Exclusive: c.exclusive})
	}
	if existing != nil {
		reg.AppToken, reg.ServerToken = existing.AppToken, existing.ServerToken
	}
	var err error
	if reg.AppToken == "" {
		if reg.AppToken, err = newToken(); err != nil {
			return nil, err
		}
	}
	if reg.ServerToken == "" {
		if reg.ServerToken, err = newToken(); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func (cfg BuildConfig) check() error {
	for _, f := range []struct{ name, value string }{
		{"ID", cfg.ID}, {"URL", cfg.URL}, {"BotLocalpart", cfg.BotLocalpart}, {"Domain", cfg.Domain},
	} {
		if f.value == "" {
			return fmt.Errorf("%w: %s is required", ErrInvalidConfig, f.name)
		}
	}
	return nil
}

// claim is one namespace entry of a module, with its anchored regular expression.
type claim struct {
	module    string
	pattern   string // the localpart pattern
	regex     string // the anchored expression over the whole ID
	exclusive bool
}

// fullRegex anchors a localpart pattern and adds the sigil and the domain.
func fullRegex(sigil byte, localpart, domain string) string {
	return "^" + string(sigil) + "(?:" + localpart + "):" + regexp.QuoteMeta(domain) + "$"
}

// compilePattern checks a module's localpart pattern and returns its anchored expression.
func compilePattern(module, kind string, sigil byte, p Pattern, domain string) (*regexp.Regexp, error) {
	if p.Localpart == "" {
		return nil, &PatternError{Module: module, Kind: kind}
	}
	// The pattern is parsed alone first: wrapped in (?:…) an unbalanced pattern such as
	// "a)|(b" would compile and mean something else.
	if _, err := syntax.Parse(p.Localpart, syntax.Perl); err != nil {
		return nil, &PatternError{Module: module, Kind: kind, Pattern: p.Localpart, Err: err}
	}
	re, err := regexp.Compile(fullRegex(sigil, p.Localpart, domain))
	if err != nil {
		return nil, &PatternError{Module: module, Kind: kind, Pattern: p.Localpart, Err: err}
	}
	return re, nil
}

func claims(module, kind string, sigil byte, patterns []Pattern, domain string) ([]claim, error) {
	out := make([]claim, 0, len(patterns))
	for _, p := range patterns {
		re, err := compilePattern(module, kind, sigil, p, domain)
		if err != nil {
			return nil, err
		}
		out = append(out, claim{module: module, pattern: p.Localpart, regex: re.String(), exclusive: p.Exclusive})
	}
	return out, nil
}

// checkOverlaps compares every two exclusive claims of different modules.
func checkOverlaps(kind string, cs []claim) ([]error, error) {
	var errs []error
	for i, a := range cs {
		if !a.exclusive {
			continue
		}
		for _, b := range cs[i+1:] {
			if !b.exclusive || a.module == b.module {
				continue
			}
			example, ok, err := overlapWitness(a.regex, b.regex)
			if err != nil {
				return nil, fmt.Errorf("registration: comparing %s patterns %q of module %q and %q of module %q: %w",
					kind, a.pattern, a.module, b.pattern, b.module, err)
			}
			if !ok {
				continue
			}
			// The search assumes \b and multi-line anchors hold; show the example only if real.
			if !regexp.MustCompile(a.regex).MatchString(example) || !regexp.MustCompile(b.regex).MatchString(example) {
				example = ""
			}
			errs = append(errs, &OverlapError{
				Kind: kind, ModuleA: a.module, PatternA: a.pattern,
				ModuleB: b.module, PatternB: b.pattern, Example: example,
			})
		}
	}
	return errs, nil
}

func sortedIDs(modules map[string]Namespaces) []string {
	ids := make([]string, 0, len(modules))
	for id := range modules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// tokenAlphabet is base62: tokens stay safe in URLs, headers and YAML without quoting.
const tokenAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// tokenLength is the length of generated tokens: 64 base62 characters, about 381 bits.
const tokenLength = 64

// newToken returns a random base62 token from crypto/rand.
func newToken() (string, error) {
	out := make([]byte, 0, tokenLength)
	buf := make([]byte, tokenLength)
	for len(out) < tokenLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("registration: failed to generate a token: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character equally likely.
			if b < 248 && len(out) < tokenLength {
				out = append(out, tokenAlphabet[b%62])
			}
		}
	}
	return string(out), nil
}
