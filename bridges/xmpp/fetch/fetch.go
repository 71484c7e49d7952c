// Package fetch downloads the media that XMPP messages link to (XEP-0066 out-of-band
// URLs, XEP-0363 GET URLs) without letting a remote sender reach the bridge's own
// network: only http and https, no userinfo, a size cap enforced before and while
// reading, a whole-request timeout, and a check of every address the connection goes to,
// made at dial time on the resolved IP (so DNS rebinding does not get around it) and
// again for every redirect. It knows nothing of Matrix.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults of Fetcher.
const (
	DefaultMaxBytes = 100 << 20
	DefaultTimeout  = 60 * time.Second
	maxRedirects    = 5
	maxFileName     = 255 // bytes
)

// Errors of Get; each is wrapped with the detail.
var (
	// ErrScheme marks a URL that is not an absolute http or https URL with a host, or
	// that carries userinfo, including as the target of a redirect.
	ErrScheme = errors.New("fetch: URL not allowed")
	// ErrForbiddenAddress marks a connection to an address Fetcher does not allow.
	ErrForbiddenAddress = errors.New("fetch: forbidden address")
	// ErrTooLarge marks a body over MaxBytes.
	ErrTooLarge = errors.New("fetch: too large")
	// ErrRedirects marks more than 5 redirects.
	ErrRedirects = errors.New("fetch: too many redirects")
	// ErrStatus marks an answer other than 2xx; the *StatusError in the chain has the code.
	ErrStatus = errors.New("fetch: HTTP error status")
)

// StatusError is an answer with a status other than 2xx. It unwraps to ErrStatus.
type StatusError struct {
	StatusCode int
	Host       string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fetch: GET from %s: HTTP status %d %s", e.Host, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns ErrStatus.
func (e *StatusError) Unwrap() error { return ErrStatus }

// Fetcher downloads remote media. Its zero value is ready to use with the defaults. Set
// the fields before the first Get; they are read once then, and the Fetcher must not be
// copied after that. Its methods are safe for concurrent use.
type Fetcher struct {
	// MaxBytes is the hard size cap; default DefaultMaxBytes (100 MiB) when 0.
	MaxBytes int64
	// AllowPrivate allows loopback, private (RFC 1918, fc00::/7), link-local, CGNAT,
	// unspecified, multicast and reserved addresses. Default false; only for tests and
	// deliberately internal deployments.
	AllowPrivate bool
	// Timeout bounds the whole request including reading the body; default
	// DefaultTimeout (60s) when 0.
	Timeout time.Duration
	// Client is an optional base client (may be nil). Its Transport, when an
	// *http.Transport, is cloned with the dialer replaced, TLS dialing and proxies
	// removed; any other RoundTripper is replaced by such a clone of
	// http.DefaultTransport. Its CheckRedirect and Timeout are replaced too; its Jar is kept.
	Client *http.Client

	once   sync.Once
	client *http.Client // built by once
	// denied, when set, replaces the address check (tests only).
	denied func(netip.Addr) bool
}

// File is a downloaded file.
type File struct {
	Data        []byte
	ContentType string // from the answer, sniffed when absent or invalid
	FileName    string // from Content-Disposition or the URL path; safe as a file name, never empty
}

// Get downloads rawURL.
func (f *Fetcher) Get(ctx context.Context, rawURL string) (*File, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	f.once.Do(f.init)
	limit := f.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrScheme, err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: GET from %s: %w", u.Host, redact(err))
	}
	defer resp.Body.Close()
	host := resp.Request.URL.Host
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{StatusCode: resp.StatusCode, Host: host}
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %s announces %d bytes, the limit is %d", ErrTooLarge, host, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: reading from %s: %w", host, redact(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s sent more than %d bytes", ErrTooLarge, host, limit)
	}
	file := &File{Data: data, ContentType: contentType(resp.Header.Get("Content-Type"), data)}
	file.FileName = fileName(resp.Header.Get("Content-Disposition"), resp.Request.URL)
	return file, nil
}

// init builds the client once.
func (f *Fetcher) init() {
	denied := f.denied
	if denied == nil {
		denied = forbidden
		if f.AllowPrivate {
			denied = func(netip.Addr) bool { return false }
		}
	}
	var c http.Client
	if f.Client != nil {
		c = *f.Client
	}
	base, ok := c.Transport.(*http.Transport)
	if !ok || base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	t.Proxy = nil // a proxy would make the dial check see the proxy, not the target
	t.DialTLSContext = nil
	//lint:ignore SA1019 cleared so that a base client's dialer cannot bypass the check
	t.DialTLS = nil
	//lint:ignore SA1019 likewise
	t.Dial = nil
	d := &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		// Control runs for every address the dialer connects to, after DNS resolution.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
			}
			if denied(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		},
	}
	t.DialContext = d.DialContext
	c.Transport = t
	c.Timeout = 0 // Get's context carries the timeout
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("%w: more than %d", ErrRedirects, maxRedirects)
		}
		if _, err := checkURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirect to %s: %w", req.URL.Host, err)
		}
		return nil
	}
	f.client = &c
}

// checkURL parses raw and checks that it is an absolute http or https URL with a host
// and without userinfo. Errors never hold the URL, which may carry a token.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not a URL", ErrScheme)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: scheme %q, want http or https", ErrScheme, u.Scheme)
	case u.User != nil:
		return nil, fmt.Errorf("%w: userinfo in the URL", ErrScheme)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%w: no host", ErrScheme)
	}
	return u, nil
}

// redact drops the URL from a *url.Error, keeping the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// contentType returns header when it is a valid media type, else what data looks like.
func contentType(header string, data []byte) string {
	if mt, params, err := mime.ParseMediaType(header); err == nil && strings.Contains(mt, "/") {
		return mime.FormatMediaType(mt, params)
	}
	return http.DetectContentType(data)
}

// fileName returns the file name from the Content-Disposition header or else the last
// segment of the URL's path, sanitized; "file" when neither gives one.
func fileName(disposition string, u *url.URL) string {
	if _, params, err := mime.ParseMediaType(disposition); err == nil {
		if name := sanitize(params["filename"]); name != "" {
			return name
		}
	}
	if u != nil {
		if name := sanitize(path.Base(u.Path)); name != "" {
			return name
		}
	}
	return "file"
}

// sanitize makes name safe as a file name: the part after the last slash or backslash,
// without control and format characters (such as right-to-left overrides), trimmed of
// spaces and dots, at most 255 bytes. It returns "" when nothing is left.
func sanitize(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.Trim(name, " .")
	for len(name) > maxFileName {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}
