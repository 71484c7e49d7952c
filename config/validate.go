package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"maunium.net/go/mautrix/id"
)

// Validate checks the config after [Config.Defaults] and returns an [*Errors] with every
// problem, each with its full key path, or nil.
func (c *Config) Validate() error {
	errs := &Errors{}
	c.validateHomeserver(errs)
	c.validateAppService(errs)
	c.validateDatabase(errs)
	c.validateLogging(errs)
	c.validateMetrics(errs)
	c.validateManagement(errs)
	c.validateEncryption(errs)
	c.validateScanning(errs)
	c.validateHighAvailability(errs)
	c.validateProvisioning(errs)
	c.validateModules(errs)
	return errs.Err()
}

func (c *Config) validateHomeserver(errs *Errors) {
	hs := c.Homeserver
	if hs.Address == "" {
		errs.Add("homeserver.address", "required")
	} else if msg := checkHTTPURL(hs.Address); msg != "" {
		errs.Add("homeserver.address", msg)
	}
	if hs.Domain == "" {
		errs.Add("homeserver.domain", "required")
	} else if !id.ValidateServerName(hs.Domain) {
		errs.Add("homeserver.domain", "must be a server name such as \"example.org\" (no scheme, no path)")
	}
}

func (c *Config) validateAppService(errs *Errors) {
	as := c.AppService
	if as.ID == "" {
		errs.Add("appservice.id", "required")
	} else if strings.ContainsFunc(as.ID, isSpaceOrControl) {
		errs.Add("appservice.id", "must not contain spaces or control characters")
	}
	if !hostPort(as.Listen) {
		errs.Add("appservice.listen", "must be host:port, such as \"127.0.0.1:29300\"")
	}
	if msg := checkHTTPURL(as.PublicURL); msg != "" {
		errs.Add("appservice.public_url", msg)
	}
	if as.Bot.Localpart == "" {
		errs.Add("appservice.bot.localpart", "required")
	} else if err := id.ValidateUserLocalpart(as.Bot.Localpart); err != nil {
		errs.Add("appservice.bot.localpart", "must be a user ID localpart of a-z, 0-9 and ._=-/+")
	}
	if as.Bot.AvatarURL != "" {
		if u, err := id.ParseContentURI(as.Bot.AvatarURL); err != nil || !u.IsValid() {
			errs.Add("appservice.bot.avatar_url", "must be an mxc:// URI")
		}
	}
	if as.Workers < 1 {
		errs.Add("appservice.workers", "must be >= 1")
	}
	if as.MaxBodyBytes < 1 {
		errs.Add("appservice.max_body_bytes", "must be >= 1")
	}
	if as.Retry.Attempts < 1 {
		errs.Add("appservice.retry.attempts", "must be >= 1")
	}
	if as.Retry.Initial <= 0 {
		errs.Add("appservice.retry.initial", "must be > 0")
	}
	if as.Retry.Max <= 0 {
		errs.Add("appservice.retry.max", "must be > 0")
	} else if as.Retry.Max < as.Retry.Initial {
		errs.Add("appservice.retry.max", "must be >= appservice.retry.initial")
	}
	if as.ShutdownTimeout <= 0 {
		errs.Add("appservice.shutdown_timeout", "must be > 0")
	}
}

func (c *Config) validateDatabase(errs *Errors) {
	db := c.Database
	scheme, rest := splitScheme(db.URI)
	switch scheme {
	case "":
		errs.Add("database.uri", "must start with \"sqlite:\" or \"postgres://\"")
	case "sqlite":
		if strings.TrimPrefix(rest, "//") == "" {
			errs.Add("database.uri", "sqlite: needs a file path, such as \"sqlite:switchboard.db\"")
		}
	case "postgres", "postgresql":
		// The URI may hold a password: url.Parse's error quotes it, so it is not passed on.
		if u, err := url.Parse(db.URI); err != nil || u.Host == "" && u.Query().Get("host") == "" {
			errs.Add("database.uri", "must be a URL such as \"postgres://user:password@host/db\"")
		}
	default:
		errs.Add("database.uri", fmt.Sprintf("unsupported scheme %q (want sqlite or postgres)", scheme))
	}
	if db.MaxOpenConns < 1 {
		errs.Add("database.max_open_conns", "must be >= 1")
	}
}

func (c *Config) validateLogging(errs *Errors) {
	if _, ok := logLevels[c.Logging.Level]; !ok {
		errs.Add("logging.level", "must be one of trace, debug, info, warn, error")
	}
	if c.Logging.Format != "pretty" && c.Logging.Format != "json" {
		errs.Add("logging.format", "must be \"pretty\" or \"json\"")
	}
}

func (c *Config) validateMetrics(errs *Errors) {
	if !c.Metrics.Enabled {
		return
	}
	if !hostPort(c.Metrics.Listen) {
		errs.Add("metrics.listen", "must be host:port, such as \"127.0.0.1:29301\"")
	} else if c.Metrics.Listen == c.AppService.Listen && !strings.HasSuffix(c.Metrics.Listen, ":0") {
		errs.Add("metrics.listen", "must differ from appservice.listen")
	}
}

func (c *Config) validateManagement(errs *Errors) {
	validateUserPatterns(errs, "management.admins", c.Management.Admins)
	validateUserPatterns(errs, "management.permissions", c.Management.Permissions)
}

func (c *Config) validateEncryption(errs *Errors) {
	enc := c.Encryption
	if enc.Require && !enc.Enabled {
		errs.Add("encryption.require", "needs encryption.enabled: true")
	}
	if enc.Enabled && !c.AppService.EphemeralEvents {
		// To-device events (room keys) come as ephemeral events in transactions (MSC2409).
		errs.Add("encryption.enabled", "needs appservice.ephemeral_events: true (room keys arrive as to-device events with them)")
	}
	if enc.DecryptTimeout <= 0 {
		errs.Add("encryption.decrypt_timeout", "must be > 0")
	}
	if enc.Rotation.Period <= 0 {
		errs.Add("encryption.rotation.period", "must be > 0")
	}
	if enc.Rotation.Messages < 1 {
		errs.Add("encryption.rotation.messages", "must be >= 1")
	}
}

func (c *Config) validateProvisioning(errs *Errors) {
	p := c.Provisioning
	if !p.Enabled {
		return
	}
	if !c.Metrics.Enabled {
		errs.Add("provisioning.enabled", "needs metrics.enabled: true (the API is served on the metrics listener)")
	}
	if p.SharedSecret == "" && !p.OpenID {
		errs.Add("provisioning.enabled", "needs provisioning.shared_secret or provisioning.openid: true")
	}
	if p.SharedSecret != "" && len(p.SharedSecret) < MinSharedSecretLength {
		errs.Add("provisioning.shared_secret", fmt.Sprintf("must be at least %d characters (such as the output of \"openssl rand -hex 32\")", MinSharedSecretLength))
	}
	if p.OpenIDURL != "" {
		if u, err := url.Parse(p.OpenIDURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.Add("provisioning.openid_url", "must be an http:// or https:// URL (default homeserver.address)")
		}
	}
}

// validateUserPatterns checks a list of user IDs, "*:<domain>" and "*" under key.
func validateUserPatterns(errs *Errors, key string, list []string) {
	base := key
	for i, a := range list {
		key := base + "[" + strconv.Itoa(i) + "]"
		switch {
		case a == wildcardAdmin:
		case strings.HasPrefix(a, wildcardAdminDomainStart):
			if !id.ValidateServerName(a[len(wildcardAdminDomainStart):]) {
				errs.Add(key, "\"*:\" must be followed by a server name")
			}
		case strings.HasPrefix(a, "@"):
			if local, _, err := id.UserID(a).ParseAndValidateRelaxed(); err != nil || local == "" {
				errs.Add(key, "not a valid user ID")
			}
		default:
			errs.Add(key, "must be a user ID (\"@alice:example.org\"), \"*:<domain>\" or \"*\"")
		}
	}
}

// moduleIDRE is the syntax of module IDs: they key config sections, store rows and metrics.
var moduleIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func (c *Config) validateModules(errs *Errors) {
	ids := make([]string, 0, len(c.Modules))
	for k := range c.Modules {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	for _, k := range ids {
		if !moduleIDRE.MatchString(k) {
			errs.Add("modules."+k, "module ID must be lower-case letters, digits and _.- (at most 64)")
		}
		validateUserPatterns(errs, "modules."+k+"."+permissionsKey, c.Modules[k].Permissions)
	}
}

// checkHTTPURL returns what is wrong with an http(s) URL, or "". The URL itself is not
// quoted: it may hold credentials.
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		if u.Scheme == "" {
			return "must be an http:// or https:// URL"
		}
		return fmt.Sprintf("unsupported scheme %q (want http or https)", truncate(u.Scheme, 16))
	case u.Host == "":
		return "must have a host"
	case u.User != nil:
		return "must not contain credentials"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	return ""
}

// schemeRE is the syntax of a URI scheme (RFC 3986).
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,31}$`)

// splitScheme splits "scheme:rest", lower-casing scheme; scheme is "" when there is none.
func splitScheme(uri string) (scheme, rest string) {
	s, r, ok := strings.Cut(uri, ":")
	if !ok || !schemeRE.MatchString(s) {
		return "", uri
	}
	return strings.ToLower(s), r
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && port != "" && port[0] != '+' && port[0] != '-'
}

// hostPort reports whether s is host:port with a numeric port.
func hostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && validPort(port)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (c *Config) validateScanning(errs *Errors) {
	sc := c.Scanning
	if sc.Enabled {
		if _, _, err := ClamdAddress(sc.Clamd); err != nil {
			errs.Add("scanning.clamd", err.Error())
		}
	}
	if sc.OnUnavailable != FailClosed && sc.OnUnavailable != FailOpen {
		errs.Add("scanning.on_unavailable", fmt.Sprintf("must be %q or %q, not %q", FailClosed, FailOpen, sc.OnUnavailable))
	}
	if sc.MaxBytes <= 0 {
		errs.Add("scanning.max_bytes", "must be > 0")
	}
	for _, d := range []struct {
		key string
		d   Duration
	}{{"hold", sc.Hold}, {"timeout", sc.Timeout}, {"verdict_ttl", sc.VerdictTTL}} {
		if d.d <= 0 {
			errs.Add("scanning."+d.key, "must be > 0")
		}
	}
}

// ClamdAddress splits scanning.clamd into a network ("tcp" or "unix") and an address.
func ClamdAddress(s string) (network, address string, err error) {
	switch {
	case s == "":
		return "", "", errors.New("required when scanning is enabled (tcp://host:port or unix:///path)")
	case strings.HasPrefix(s, "tcp://"):
		hostPort := strings.TrimPrefix(s, "tcp://")
		if _, port, err := net.SplitHostPort(hostPort); err != nil || port == "" {
			return "", "", fmt.Errorf("%q: want tcp://host:port", s)
		}
		return "tcp", hostPort, nil
	case strings.HasPrefix(s, "unix://"):
		path := strings.TrimPrefix(s, "unix://")
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("%q: want unix:///absolute/path", s)
		}
		return "unix", path, nil
	}
	return "", "", fmt.Errorf("%q: want tcp://host:port or unix:///path", s)
}

func (c *Config) validateHighAvailability(errs *Errors) {
	ha := c.HighAvailability
	if ha.CheckInterval <= 0 {
		errs.Add("high_availability.check_interval", "must be > 0")
	}
	if ha.CheckTimeout <= 0 {
		errs.Add("high_availability.check_timeout", "must be > 0")
	}
	if lease := ha.CheckInterval + ha.CheckTimeout; ha.FenceDelay <= lease {
		errs.Add("high_availability.fence_delay", fmt.Sprintf("must be longer than check_interval + check_timeout (%s), or two leaders could act at once", lease.Std()))
	}
	if ha.AnnounceRoom != "" && !strings.HasPrefix(ha.AnnounceRoom, "!") {
		errs.Add("high_availability.announce_room", "must be a room ID (!…:server), not "+strconv.Quote(ha.AnnounceRoom))
	}
	if ha.Enabled && !strings.HasPrefix(c.Database.URI, "postgres://") && !strings.HasPrefix(c.Database.URI, "postgresql://") {
		errs.Add("high_availability.enabled", "needs a PostgreSQL database (database.uri: postgres://…)")
	}
}
