package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// Default values of the keys that do not depend on other keys.
const (
	DefaultAppServiceID    = "switchboard"
	DefaultListen          = "127.0.0.1:29300"
	DefaultBotLocalpart    = "switchboard"
	DefaultBotDisplayname  = "Switchboard"
	DefaultWorkers         = 16
	DefaultMaxBodyBytes    = 32 << 20
	DefaultRetryAttempts   = 8
	DefaultRetryInitial    = Duration(time.Second)
	DefaultRetryMax        = Duration(5 * time.Minute)
	DefaultShutdownTimeout = Duration(30 * time.Second)
	DefaultDatabaseURI     = "sqlite:switchboard.db"
	DefaultMaxOpenConns    = 10
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "pretty"
	DefaultMetricsListen   = "127.0.0.1:29301"

	DefaultDecryptTimeout   = Duration(10 * time.Minute)
	DefaultRotationPeriod   = Duration(7 * 24 * time.Hour)
	DefaultRotationMessages = 100

	DefaultHACheckInterval = Duration(time.Second)
	DefaultHACheckTimeout  = Duration(time.Second)
	DefaultHAFenceDelay    = Duration(3 * time.Second)

	DefaultScanMaxBytes   = 25 << 20
	DefaultScanHold       = Duration(10 * time.Minute)
	DefaultScanTimeout    = Duration(2 * time.Minute)
	DefaultScanVerdictTTL = Duration(24 * time.Hour)
)

const (
	defaultEphemeralEvents  = true
	defaultMetricsEnabled   = true
	defaultEncryptByDefault = true
	// In admin and permission lists, wildcardAdmin admits everyone and
	// wildcardAdminDomainStart + domain every user of domain.
	wildcardAdmin            = "*"
	wildcardAdminDomainStart = "*:"
)

// Config is the whole configuration of a Switchboard process.
type Config struct {
	Homeserver HomeserverConfig `yaml:"homeserver"`
	AppService AppServiceConfig `yaml:"appservice"`
	Database   DatabaseConfig   `yaml:"database"`
	Logging    LoggingConfig    `yaml:"logging"`
	Metrics    MetricsConfig    `yaml:"metrics"`
	Management ManagementConfig `yaml:"management"`
	Encryption EncryptionConfig `yaml:"encryption"`
	// Provisioning is the provisioning HTTP API on the metrics listener.
	Provisioning ProvisioningConfig `yaml:"provisioning"`
	// Scanning is the virus scanning of bridged files (docs/scanning.md).
	Scanning ScanningConfig `yaml:"scanning"`
	// HighAvailability runs several processes on one PostgreSQL database, one leading
	// (docs/high-availability.md).
	HighAvailability HighAvailabilityConfig `yaml:"high_availability"`
	// Modules holds each module's section by module ID; may be nil.
	Modules map[string]ModuleConfig `yaml:"modules,omitempty"`
}

// HomeserverConfig says where the homeserver is.
type HomeserverConfig struct {
	// Address is the http(s) URL of the homeserver's client-server API. Required.
	Address string `yaml:"address"`
	// Domain is the homeserver's server name, the part after the colon in user IDs. Required.
	Domain string `yaml:"domain"`
}

// AppServiceConfig configures the application service side: the registration and the
// transaction API the homeserver pushes to.
type AppServiceConfig struct {
	// ID is the registration's id. Default "switchboard".
	ID string `yaml:"id"`
	// Listen is the host:port the transaction API listens on. Default "127.0.0.1:29300".
	Listen string `yaml:"listen"`
	// PublicURL is the URL the homeserver uses to reach the transaction API.
	// Default "http://" + Listen.
	PublicURL string `yaml:"public_url"`
	// Bot is the management bot, the registration's sender.
	Bot BotConfig `yaml:"bot"`
	// EphemeralEvents asks the homeserver for typing notifications, receipts and presence.
	// Default true: Parse sets it before decoding, Defaults cannot tell false from unset.
	EphemeralEvents bool `yaml:"ephemeral_events"`
	// Workers is the dispatcher's pool size (rooms handled in parallel). Default 16.
	Workers int `yaml:"workers"`
	// MaxBodyBytes limits the size of one transaction's body. Default 32 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Retry is the backoff for failing event handlers and sends.
	Retry RetryConfig `yaml:"retry"`
	// ShutdownTimeout bounds a graceful stop. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
}

// BotConfig is the management bot's profile.
type BotConfig struct {
	// Localpart of the bot's user ID. Default "switchboard".
	Localpart string `yaml:"localpart"`
	// Displayname of the bot. Default "Switchboard".
	Displayname string `yaml:"displayname"`
	// AvatarURL is an mxc:// URI; empty leaves the avatar unset.
	AvatarURL string `yaml:"avatar_url"`
}

// RetryConfig is an exponential backoff: Initial, doubled per attempt, capped at Max.
type RetryConfig struct {
	// Attempts is the number of tries before giving up. Default 8.
	Attempts int `yaml:"attempts"`
	// Initial is the first delay. Default 1s.
	Initial Duration `yaml:"initial"`
	// Max caps the delay. Default 5m.
	Max Duration `yaml:"max"`
}

// DatabaseConfig selects the store.
type DatabaseConfig struct {
	// URI is "sqlite:<path>" or "postgres://user:password@host/db?…". It may hold a password
	// and never appears in errors or logs. Default "sqlite:switchboard.db".
	URI string `yaml:"uri"`
	// MaxOpenConns limits the connection pool; ignored for SQLite. Default 10.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// LoggingConfig configures the zerolog logger.
type LoggingConfig struct {
	// Level is trace, debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is "pretty" (human-readable console) or "json". Default pretty.
	Format string `yaml:"format"`
}

// MetricsConfig configures the HTTP listener serving /metrics and /health.
type MetricsConfig struct {
	// Enabled turns the listener on. Default true: Parse sets it before decoding.
	Enabled bool `yaml:"enabled"`
	// Listen is the host:port to listen on. Default "127.0.0.1:29301".
	Listen string `yaml:"listen"`
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on the listener, for
	// finding where CPU and memory go. Default false. Profiles name functions and sizes,
	// not data, but profiling costs CPU and reveals the build: keep the listener private.
	Pprof bool `yaml:"pprof"`
}

// ManagementConfig configures the management bot.
type ManagementConfig struct {
	// Admins see raw internal errors in the management bot's status and in failed module
	// commands. Each entry is a user ID ("@alice:example.org"), "*:<domain>" for every user
	// of a server, or "*" for everyone. Default: none; set it to the operators' user IDs.
	Admins []string `yaml:"admins"`
	// Permissions are the users who may use the management bot at all (help, version, a
	// status summary, module commands): user IDs, "*:<domain>" or "*".
	// Default: every user of homeserver.domain.
	Permissions []string `yaml:"permissions"`
}

// ProvisioningConfig configures the provisioning API (docs/provisioning.md): the
// management bot's operations over HTTP, on the metrics listener.
type ProvisioningConfig struct {
	// Enabled turns the API on. Default false. Needs metrics.enabled.
	Enabled bool `yaml:"enabled"`
	// SharedSecret is accepted as "Authorization: Bearer <shared_secret>", with admin rights
	// (or a user's, with ?user_id=). At least 32 characters; "" does not accept one. A
	// secret: best in shared_secret_file or SWITCHBOARD_PROVISIONING_SHARED_SECRET.
	SharedSecret string `yaml:"shared_secret"`
	// OpenID accepts "Authorization: Bearer openid:<token>", a Matrix OpenID token of a user
	// of homeserver.domain; the user gets what the permission lists give them. Default true.
	OpenID bool `yaml:"openid"`
	// OpenIDURL is where the homeserver answers /_matrix/federation/v1/openid/userinfo
	// (Synapse: a listener with the "openid" or "federation" resource). Default
	// homeserver.address.
	OpenIDURL string `yaml:"openid_url"`
}

// MinSharedSecretLength is the shortest provisioning.shared_secret accepted.
const MinSharedSecretLength = 32

// EncryptionConfig configures end-to-end encryption (docs/encryption.md): the core decrypts
// events before the modules see them and encrypts what they send.
type EncryptionConfig struct {
	// Enabled turns encryption on. It needs MSC2409, MSC3202 and MSC4190 on the homeserver.
	// Default false.
	Enabled bool `yaml:"enabled"`
	// Default creates new portal rooms encrypted when Enabled. Default true: Parse sets it
	// before decoding.
	Default bool `yaml:"default"`
	// Require refuses to bridge unencrypted rooms. Needs Enabled. Default false.
	Require bool `yaml:"require"`
	// DecryptTimeout is how long an event whose room key has not arrived waits before its
	// sender gets a failure status and a notice. Default 10m.
	DecryptTimeout Duration `yaml:"decrypt_timeout"`
	// Rotation is the Megolm session rotation policy of new rooms and outbound sessions.
	Rotation RotationConfig `yaml:"rotation"`
	// PickleKey encrypts the crypto keys at rest in the database. It is a secret and never
	// appears in errors or logs. Empty: Switchboard generates one and keeps it in its
	// database.
	PickleKey string `yaml:"pickle_key"`
}

// ScanningConfig configures virus scanning with clamd (docs/scanning.md): every file a
// module carries into Matrix, and every Matrix file it carries out, is checked first.
type ScanningConfig struct {
	// Enabled turns scanning on. Default false.
	Enabled bool `yaml:"enabled"`
	// Clamd is clamd's address: tcp://host:port or unix:///path/to/clamd.ctl. Required
	// when Enabled.
	Clamd string `yaml:"clamd"`
	// OnUnavailable is what happens to a file while clamd cannot be reached or times out:
	// "fail_closed" (default) holds it, retrying, for Hold and then refuses it with a
	// notice; "fail_open" lets it through unscanned (a risk: see docs/scanning.md).
	OnUnavailable string `yaml:"on_unavailable"`
	// MaxBytes is the largest file scanned: clamd's StreamMaxLength. A larger file is
	// refused (fail_closed) or passed unscanned (fail_open). Default 25 MiB, clamd's
	// Debian default.
	MaxBytes int64 `yaml:"max_bytes"`
	// Outbound scans Matrix files going out to other networks too. Default true.
	Outbound bool `yaml:"outbound"`
	// Hold is how long a file waits for an unreachable clamd (fail_closed). Default 10m.
	Hold Duration `yaml:"hold"`
	// Timeout bounds one scan. Default 2m.
	Timeout Duration `yaml:"timeout"`
	// VerdictTTL is how long a clean verdict is trusted for the same file (after that it
	// is scanned again, with newer signatures). Default 24h.
	VerdictTTL Duration `yaml:"verdict_ttl"`
}

// HighAvailabilityConfig configures active/standby on PostgreSQL: every process of the
// group uses the same config and database; the one holding the instance lock leads, the
// others wait as standbys and take over when its session ends.
type HighAvailabilityConfig struct {
	// Enabled makes this process wait as a standby while another leads, instead of
	// refusing to start. Needs a PostgreSQL database. Default false.
	Enabled bool `yaml:"enabled"`
	// CheckInterval is how often the leader checks its lock session; CheckTimeout bounds
	// one check. The leader stops acting when no check succeeded for their sum. Defaults
	// 1s and 1s.
	CheckInterval Duration `yaml:"check_interval"`
	CheckTimeout  Duration `yaml:"check_timeout"`
	// FenceDelay is how long a new leader waits after taking the lock before it acts; it
	// must be longer than CheckInterval + CheckTimeout, so that the old leader has
	// stopped. Default 3s.
	FenceDelay Duration `yaml:"fence_delay"`
	// AnnounceRoom is a room ID where the management bot posts a notice whenever a process
	// takes the lead (the bot must be in it: invite it). Empty: no notice.
	AnnounceRoom string `yaml:"announce_room"`
}

// The values of scanning.on_unavailable.
const (
	FailClosed = "fail_closed"
	FailOpen   = "fail_open"
)

// RotationConfig is when an outbound Megolm session is replaced: after Period or after
// Messages messages, whichever comes first.
type RotationConfig struct {
	// Period is the longest a session is used. Default 168h (a week).
	Period Duration `yaml:"period"`
	// Messages is the most messages encrypted with one session. Default 100.
	Messages int `yaml:"messages"`
}

// Defaults fills every zero value with its default, including the defaults that depend on
// other keys (public_url on appservice.listen, the permissions on homeserver.domain), so it
// is called after decoding. It cannot tell an explicit false from an unset bool: the bools
// whose default is true are set by [Parse] before it decodes.
func (c *Config) Defaults() {
	as := &c.AppService
	setString(&as.ID, DefaultAppServiceID)
	setString(&as.Listen, DefaultListen)
	setString(&as.PublicURL, "http://"+as.Listen)
	setString(&as.Bot.Localpart, DefaultBotLocalpart)
	setString(&as.Bot.Displayname, DefaultBotDisplayname)
	setZero(&as.Workers, DefaultWorkers)
	setZero(&as.MaxBodyBytes, DefaultMaxBodyBytes)
	setZero(&as.Retry.Attempts, DefaultRetryAttempts)
	setZero(&as.Retry.Initial, DefaultRetryInitial)
	setZero(&as.Retry.Max, DefaultRetryMax)
	setZero(&as.ShutdownTimeout, DefaultShutdownTimeout)

	setString(&c.Database.URI, DefaultDatabaseURI)
	setZero(&c.Database.MaxOpenConns, DefaultMaxOpenConns)

	setString(&c.Logging.Level, DefaultLogLevel)
	setString(&c.Logging.Format, DefaultLogFormat)

	setString(&c.Metrics.Listen, DefaultMetricsListen)

	enc := &c.Encryption
	setZero(&enc.DecryptTimeout, DefaultDecryptTimeout)
	setZero(&enc.Rotation.Period, DefaultRotationPeriod)
	setZero(&enc.Rotation.Messages, DefaultRotationMessages)

	ha := &c.HighAvailability
	setZero(&ha.CheckInterval, DefaultHACheckInterval)
	setZero(&ha.CheckTimeout, DefaultHACheckTimeout)
	setZero(&ha.FenceDelay, DefaultHAFenceDelay)

	sc := &c.Scanning
	setString(&sc.OnUnavailable, FailClosed)
	setZero(&sc.MaxBytes, DefaultScanMaxBytes)
	setZero(&sc.Hold, DefaultScanHold)
	setZero(&sc.Timeout, DefaultScanTimeout)
	setZero(&sc.VerdictTTL, DefaultScanVerdictTTL)

	if id.ValidateServerName(c.Homeserver.Domain) { // else Validate reports the domain
		local := []string{wildcardAdminDomainStart + c.Homeserver.Domain}
		if len(c.Management.Permissions) == 0 {
			c.Management.Permissions = local
		}
		for k, m := range c.Modules {
			if len(m.Permissions) == 0 {
				m.Permissions = local
				c.Modules[k] = m
			}
		}
	}
}

// ManagementModuleID is the management bot's module ID, its key in [Config.Permissions].
const ManagementModuleID = "management"

// Permissions maps each module ID (and the management bot's, [ManagementModuleID]) to the
// users who may use it: user IDs, "*:<domain>" or "*".
func (c *Config) Permissions() map[string][]string {
	out := map[string][]string{ManagementModuleID: c.Management.Permissions}
	for k, m := range c.Modules {
		out[k] = m.Permissions
	}
	return out
}

// presetBools sets the bools whose default is true; YAML decoded on top may clear them.
func (c *Config) presetBools() {
	c.AppService.EphemeralEvents = defaultEphemeralEvents
	c.Metrics.Enabled = defaultMetricsEnabled
	c.Encryption.Default = defaultEncryptByDefault
	c.Provisioning.OpenID = true
	c.Scanning.Outbound = true
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setZero[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// BotUserID is the management bot's user ID, @<bot.localpart>:<homeserver.domain>.
func (c *Config) BotUserID() id.UserID {
	return id.NewUserID(c.AppService.Bot.Localpart, c.Homeserver.Domain)
}

// Driver names the store driver of the URI: "sqlite", "postgres", or "" when unsupported.
func (d DatabaseConfig) Driver() string {
	switch scheme, _ := splitScheme(d.URI); scheme {
	case "sqlite":
		return "sqlite"
	case "postgres", "postgresql":
		return "postgres"
	}
	return ""
}

// SQLitePath is the file of an "sqlite:" URI; ok is false for other drivers.
func (d DatabaseConfig) SQLitePath() (path string, ok bool) {
	scheme, rest := splitScheme(d.URI)
	if scheme != "sqlite" {
		return "", false
	}
	return strings.TrimPrefix(rest, "//"), true
}

// Redacted is the URI for messages: an SQLite path as it is; a PostgreSQL URL without its
// password and query (which may hold one).
func (d DatabaseConfig) Redacted() string {
	if path, ok := d.SQLitePath(); ok {
		return path
	}
	scheme, _ := splitScheme(d.URI)
	u, err := url.Parse(d.URI)
	if err != nil || scheme == "" {
		return scheme + "://…"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// ZerologLevel is the parsed level; info when the level is not valid.
func (l LoggingConfig) ZerologLevel() zerolog.Level {
	if lvl, ok := logLevels[l.Level]; ok {
		return lvl
	}
	return zerolog.InfoLevel
}

var logLevels = map[string]zerolog.Level{
	"trace": zerolog.TraceLevel,
	"debug": zerolog.DebugLevel,
	"info":  zerolog.InfoLevel,
	"warn":  zerolog.WarnLevel,
	"error": zerolog.ErrorLevel,
}

// IsAdmin reports whether user is one of the management bot's admins.
func (m ManagementConfig) IsAdmin(user id.UserID) bool {
	_, server, err := user.Parse()
	if err != nil {
		return false
	}
	for _, a := range m.Admins {
		domain, isDomain := strings.CutPrefix(a, wildcardAdminDomainStart)
		switch {
		case a == wildcardAdmin, isDomain && domain == server, id.UserID(a) == user:
			return true
		}
	}
	return false
}
