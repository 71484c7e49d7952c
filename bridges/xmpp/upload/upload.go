// Package upload implements the client side of XEP-0363 HTTP File Upload: it writes the
// slot request, reads and checks the slot the server hands out, finds the service's
// size limit in its disco#info answer, and uploads data to a slot. It knows nothing of
// Matrix.
package upload

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
)

// NS is the namespace of XEP-0363 (version 0.9 and later).
const NS = "urn:xmpp:http:upload:0"

// Errors of this package; each is wrapped with the detail.
var (
	// ErrMalformed marks a slot that is not well-formed or whose URLs are not usable.
	ErrMalformed = errors.New("upload: malformed slot")
	// ErrPut marks a failed upload; a refusal by the HTTP server is a *StatusError.
	ErrPut = errors.New("upload: PUT failed")
)

// StatusError is an upload the HTTP server answered with a status other than 2xx. It
// unwraps to ErrPut.
type StatusError struct {
	StatusCode int
	Host       string // the upload server; the URL itself may hold a token
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("upload: PUT to %s: HTTP status %d %s", e.Host, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns ErrPut.
func (e *StatusError) Unwrap() error { return ErrPut }

// Request writes the payload of the iq get asking the service for a slot. contentType
// is left out when empty.
func Request(filename string, size int64, contentType string) []byte {
	var b bytes.Buffer
	b.WriteString("<request xmlns='" + NS + "'")
	attr(&b, "filename", filename)
	attr(&b, "size", strconv.FormatInt(size, 10))
	if contentType != "" {
		attr(&b, "content-type", contentType)
	}
	b.WriteString("/>")
	return b.Bytes()
}

// Slot is where to upload a file and where it can be fetched from then.
type Slot struct {
	PutURL, GetURL string
	// Headers go with the PUT: only Authorization, Cookie and Expires are kept (XEP-0363
	// section 5), in canonical form, values without line breaks. May be nil. The values
	// may be secrets: never log them.
	Headers map[string]string
}

// allowedHeaders are the headers XEP-0363 lets a slot set.
var allowedHeaders = map[string]bool{"Authorization": true, "Cookie": true, "Expires": true}

// ParseSlot reads inner, a slot element (IQ.Inner of the answer to a Request). Both URLs
// must be absolute http or https URLs without userinfo (https is what XEP-0363 requires;
// http is accepted for test servers). Headers other than those Slot keeps are dropped.
func ParseSlot(inner []byte) (*Slot, error) {
	var w struct {
		XMLName xml.Name `xml:"urn:xmpp:http:upload:0 slot"`
		Put     struct {
			URL     string `xml:"url,attr"`
			Headers []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:",chardata"`
			} `xml:"urn:xmpp:http:upload:0 header"`
		} `xml:"urn:xmpp:http:upload:0 put"`
		Get struct {
			URL string `xml:"url,attr"`
		} `xml:"urn:xmpp:http:upload:0 get"`
	}
	if err := xml.Unmarshal(inner, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s := &Slot{PutURL: strings.TrimSpace(w.Put.URL), GetURL: strings.TrimSpace(w.Get.URL)}
	for _, u := range []struct{ name, url string }{{"put", s.PutURL}, {"get", s.GetURL}} {
		if err := checkURL(u.url); err != nil {
			return nil, fmt.Errorf("%w: %s URL: %v", ErrMalformed, u.name, err)
		}
	}
	for _, h := range w.Put.Headers {
		name := http.CanonicalHeaderKey(strings.TrimSpace(h.Name))
		if !allowedHeaders[name] {
			continue
		}
		if s.Headers == nil {
			s.Headers = make(map[string]string)
		}
		s.Headers[name] = strings.TrimSpace(strings.NewReplacer("\r", "", "\n", "").Replace(h.Value))
	}
	return s, nil
}

// checkURL checks that raw is an absolute http or https URL with a host and no userinfo.
// The error never holds the URL, which may carry a token.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme %q, want https or http", u.Scheme)
	case u.User != nil:
		return errors.New("has userinfo")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("no host")
	}
	return nil
}

// Put uploads data to the slot with c (http.DefaultClient when nil), with contentType as
// Content-Type unless empty (it should be what the Request said). It fails when the server
// answers with a status other than 2xx; no error holds the URL's path or query or a
// header value, which may be secrets.
func Put(ctx context.Context, c *http.Client, s *Slot, data []byte, contentType string) error {
	if c == nil {
		c = http.DefaultClient
	}
	if err := checkURL(s.PutURL); err != nil {
		return fmt.Errorf("%w: put URL: %v", ErrPut, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.PutURL, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: building the request: %v", ErrPut, redact(err))
	}
	host := req.URL.Host
	for name, value := range s.Headers {
		if allowedHeaders[name] {
			req.Header.Set(name, strings.NewReplacer("\r", "", "\n", "").Replace(value))
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: PUT to %s: %w", ErrPut, host, redact(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{StatusCode: resp.StatusCode, Host: host}
	}
	return nil
}

// redact drops the URL from a *url.Error, keeping the cause.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// MaxFileSize reads info, a disco#info query element (IQ.Inner of the upload service's
// disco#info result), and returns the max-file-size of its urn:xmpp:http:upload:0 form.
// ok is false when the info has no such form or field or the value is not a positive
// integer (the service then states no limit).
func MaxFileSize(info []byte) (int64, bool) {
	i, err := disco.ParseInfo(info)
	if err != nil {
		return 0, false
	}
	for _, f := range i.Forms {
		if f.FormType() != NS {
			continue
		}
		v, ok := f.Value("max-file-size")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n <= 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// attr writes ` name='value'` with value escaped.
func attr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString("='")
	_ = xml.EscapeText(b, []byte(value))
	b.WriteByte('\'')
}
