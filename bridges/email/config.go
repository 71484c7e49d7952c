package email

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"regexp"
	"time"

	"github.com/switchboard-matrix/switchboard/config"
)

// Config is the module's section under modules.email in the Switchboard config.
type Config struct {
	// Prefix of the ghosts' localparts; default "_email_".
	Prefix string `yaml:"prefix"`
	// Mailboxes are the linked mailboxes, each with its own room.
	Mailboxes []MailboxConfig `yaml:"mailboxes"`
	// MaxAttachmentBytes bounds a file bridged either way; larger ones become a notice.
	// Default 25 MiB.
	MaxAttachmentBytes int64 `yaml:"max_attachment_bytes"`
	// MaxMailBytes bounds a mail that is read and parsed (its RFC822.SIZE, checked before
	// it is fetched); a larger one becomes a notice with its header, and the raw mail as a
	// file when it is within MaxAttachmentBytes. Default 25 MiB.
	MaxMailBytes int64 `yaml:"max_mail_bytes"`
}

// MailboxConfig is one mailbox linked to a Matrix room.
type MailboxConfig struct {
	// Name identifies the mailbox in the store and in logs; letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// Address is the mailbox's email address, the From of the mails the room sends.
	Address string `yaml:"address"`
	// DisplayName is the From's name and the room's name; default the address.
	DisplayName string `yaml:"display_name"`
	// Invite lists the Matrix users invited to the mailbox's room.
	Invite []string `yaml:"invite"`
	// IMAP is where mail is read; SMTP where it is sent.
	IMAP ServerConfig `yaml:"imap"`
	SMTP ServerConfig `yaml:"smtp"`
	// Folder is the IMAP folder that is bridged; default INBOX.
	Folder string `yaml:"folder"`
	// PollInterval is how often the folder is checked when the server does not announce
	// new mail (IDLE); default 60s.
	PollInterval config.Duration `yaml:"poll_interval"`
	// StripQuoted removes quoted history from bridged mails; default false.
	StripQuoted bool `yaml:"strip_quoted"`
	// ImportHistory is how many of the folder's existing mails are bridged when the mailbox
	// is first linked (the rest of its history stays out of the room); default 20, 0 for
	// none, -1 for all.
	ImportHistory *int `yaml:"import_history"`
	// DateAsEventTime sends a mail's Date header as its event's time (origin_server_ts),
	// so the room shows when the mail was written; false shows when it was bridged.
	// Default true.
	DateAsEventTime *bool `yaml:"date_as_event_time"`
}

// ServerConfig is an IMAP or SMTP server and its account.
type ServerConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// TLS is "implicit" (IMAPS 993, SMTPS 465), "starttls" (the default) or "none", which
	// sends the password in the clear and must be chosen explicitly.
	TLS string `yaml:"tls"`
	// Username and Password log in. Required.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// InsecureSkipVerify accepts any certificate (test servers only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CAFile is a PEM file of the CA certificates that the server's certificate is
	// checked against instead of the system's (a private CA). Default: the system's.
	CAFile string `yaml:"ca_file"`
}

// Defaults of Config.
const (
	DefaultPrefix             = "_email_"
	DefaultMaxAttachmentBytes = 25 << 20
	DefaultMaxMailBytes       = 25 << 20
	DefaultPollInterval       = 60 * time.Second
	DefaultImportHistory      = 20
)

var mailboxName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ParseConfig decodes and validates a modules.email section.
func ParseConfig(section config.ModuleConfig) (Config, error) {
	var c Config
	if err := section.Decode(&c); err != nil {
		return c, err
	}
	c.defaults()
	return c, c.Validate()
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.MaxAttachmentBytes <= 0 {
		c.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	if c.MaxMailBytes <= 0 {
		c.MaxMailBytes = DefaultMaxMailBytes
	}
	for i := range c.Mailboxes {
		m := &c.Mailboxes[i]
		if m.Folder == "" {
			m.Folder = "INBOX"
		}
		if m.PollInterval <= 0 {
			m.PollInterval = config.Duration(DefaultPollInterval)
		}
		if m.ImportHistory == nil {
			n := DefaultImportHistory
			m.ImportHistory = &n
		}
		if m.DateAsEventTime == nil {
			yes := true
			m.DateAsEventTime = &yes
		}
		if m.DisplayName == "" {
			m.DisplayName = m.Address
		}
		for _, s := range []*ServerConfig{&m.IMAP, &m.SMTP} {
			if s.TLS == "" {
				s.TLS = "starttls"
			}
		}
	}
}

// Validate lists every problem, each with its key path under modules.email.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("modules.email.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if len(c.Mailboxes) == 0 {
		bad("mailboxes", "at least one mailbox is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Mailboxes {
		key := fmt.Sprintf("mailboxes[%d]", i)
		if !mailboxName.MatchString(m.Name) {
			bad(key+".name", "%q must be 1-64 letters, digits, '-' or '_'", m.Name)
		} else if seen[m.Name] {
			bad(key+".name", "%q is used twice", m.Name)
		}
		seen[m.Name] = true
		if a, err := mail.ParseAddress(m.Address); err != nil || a.Address != m.Address {
			bad(key+".address", "%q is not an email address", m.Address)
		}
		for name, s := range map[string]ServerConfig{"imap": m.IMAP, "smtp": m.SMTP} {
			if _, _, err := net.SplitHostPort(s.Address); err != nil {
				bad(key+"."+name+".address", "%q is not host:port", s.Address)
			}
			if s.TLS != "implicit" && s.TLS != "starttls" && s.TLS != "none" {
				bad(key+"."+name+".tls", "%q must be implicit, starttls or none", s.TLS)
			}
			if s.Username == "" || s.Password == "" {
				bad(key+"."+name, "username and password are required")
			}
			if s.CAFile != "" {
				if _, err := loadCAFile(s.CAFile); err != nil {
					bad(key+"."+name+".ca_file", "%v", err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
