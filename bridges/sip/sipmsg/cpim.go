package sipmsg

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CPIM header namespaces: the core headers (RFC 3862) and the IMDN headers (RFC 5438).
const (
	NSCPIMCore = "urn:ietf:params:cpim-headers:"
	NSCPIMIMDN = "urn:ietf:params:imdn"
)

// Dispositions for the notify argument of CPIM (RFC 5438 section 6.2).
const (
	NotifyPositiveDelivery = "positive-delivery"
	NotifyNegativeDelivery = "negative-delivery"
	NotifyDisplay          = "display"
	NotifyProcessing       = "processing"
)

// maxMessageIDLen bounds imdn.Message-ID, which callers use as a key.
const maxMessageIDLen = 256

// anonymous is the CPIM address of an undisclosed party (RFC 3862 section 3.3.1).
const anonymous = "<im:anonymous@anonymous.invalid>"

// parseCPIM reads a message/cpim body: the CPIM headers, an empty line, then the
// encapsulated MIME entity, whose content is parsed as a bare body (a nested message/cpim
// is refused).
//
// Leniencies, each for senders seen in the wild: LF line ends as well as CRLF; header
// names matched without regard to case; the prefix "imdn" means the IMDN namespace even
// without an NS header; a Content-Type header in the CPIM block starts the MIME headers
// (the form of the RFC 5438 examples, which lack the empty line); a missing inner
// Content-Type means text/plain; an inner Content-Length that covers the content up to
// trailing white space trims that white space, and is otherwise not relied upon.
func parseCPIM(body []byte, max int) (*Content, error) {
	rest := body
	var raw [][2]string // name, value of each CPIM header
	lineNo := 0
	for {
		line, next, ok := nextLine(rest)
		lineNo++
		if !ok {
			return nil, fmt.Errorf("%w: message/cpim: the CPIM headers are not followed by an empty line", ErrMalformed)
		}
		if len(line) == 0 {
			rest = next
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, fmt.Errorf("%w: message/cpim: header line %d is folded, which CPIM does not allow", ErrMalformed, lineNo)
		}
		name, value, err := splitCPIMHeader(line)
		if err != nil {
			return nil, fmt.Errorf("%w: message/cpim: header line %d: %s", ErrMalformed, lineNo, err)
		}
		if strings.EqualFold(name, "Content-Type") {
			break // RFC 5438 example form: the MIME headers start here; rest still holds this line
		}
		raw = append(raw, [2]string{name, value})
		rest = next
	}

	// Namespaces first: an NS header applies to the whole block.
	prefixes := map[string]string{}
	defaultNS := NSCPIMCore
	for _, h := range raw {
		if !strings.EqualFold(h[0], "NS") {
			continue
		}
		prefix, uri, err := parseNS(h[1])
		if err != nil {
			return nil, fmt.Errorf("%w: message/cpim: NS header %q: %s", ErrMalformed, h[1], err)
		}
		if prefix == "" {
			defaultNS = uri
		} else {
			prefixes[strings.ToLower(prefix)] = uri
		}
	}
	resolve := func(name string) (ns, local string, ok bool) {
		prefix, local, dotted := strings.Cut(name, ".")
		if !dotted {
			return defaultNS, name, true
		}
		if uri, found := prefixes[strings.ToLower(prefix)]; found {
			return uri, local, true
		}
		if strings.EqualFold(prefix, "imdn") {
			return NSCPIMIMDN, local, true
		}
		return "", local, false
	}

	c := &Content{}
	seen := map[string]bool{}
	for _, h := range raw {
		ns, local, ok := resolve(h[0])
		if !ok {
			continue // an undeclared prefix: an extension we cannot know
		}
		key := ns + "\x00" + strings.ToLower(local)
		once := func() error {
			if seen[key] {
				return fmt.Errorf("%w: message/cpim: more than one %s header", ErrMalformed, h[0])
			}
			seen[key] = true
			return nil
		}
		switch {
		case ns == NSCPIMCore && strings.EqualFold(local, "From"):
			if err := once(); err != nil {
				return nil, err
			}
			uri, err := cpimAddress(h[1])
			if err != nil {
				return nil, fmt.Errorf("%w: message/cpim: From: %s", ErrMalformed, err)
			}
			c.CPIMFrom = uri
		case ns == NSCPIMCore && strings.EqualFold(local, "To"):
			uri, err := cpimAddress(h[1])
			if err != nil {
				return nil, fmt.Errorf("%w: message/cpim: To: %s", ErrMalformed, err)
			}
			if c.CPIMTo == "" {
				c.CPIMTo = uri
			}
		case ns == NSCPIMCore && strings.EqualFold(local, "DateTime"):
			if err := once(); err != nil {
				return nil, err
			}
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(h[1]))
			if err != nil {
				return nil, fmt.Errorf("%w: message/cpim: DateTime %q is not an RFC 3339 date-time", ErrMalformed, h[1])
			}
			c.DateTime = t
		case ns == NSCPIMCore && strings.EqualFold(local, "Require"):
			for _, req := range strings.Split(h[1], ",") {
				req = strings.TrimSpace(req)
				if req == "" {
					continue
				}
				rns, rlocal, ok := resolve(req)
				if !ok || !understood(rns, rlocal) {
					return nil, fmt.Errorf("%w: message/cpim: Require names the header %s, which is not understood", ErrUnsupportedType, req)
				}
			}
		case ns == NSCPIMIMDN && strings.EqualFold(local, "Message-ID"):
			if err := once(); err != nil {
				return nil, err
			}
			id := strings.TrimSpace(h[1])
			if id == "" || len(id) > maxMessageIDLen {
				return nil, fmt.Errorf("%w: message/cpim: %s must have 1 to %d characters", ErrMalformed, h[0], maxMessageIDLen)
			}
			c.MessageID = id
		case ns == NSCPIMIMDN && strings.EqualFold(local, "Disposition-Notification"):
			if err := once(); err != nil {
				return nil, err
			}
			for _, d := range strings.Split(h[1], ",") {
				switch strings.ToLower(strings.TrimSpace(d)) {
				case NotifyPositiveDelivery:
					c.WantDelivery = true
				case NotifyDisplay:
					c.WantDisplay = true
				}
			}
		}
	}

	innerType, inner, err := parseEntity(rest)
	if err != nil {
		return nil, err
	}
	got, err := parse(innerType, inner, max, true)
	if err != nil {
		return nil, err
	}
	got.MessageID, got.WantDelivery, got.WantDisplay = c.MessageID, c.WantDelivery, c.WantDisplay
	got.CPIMFrom, got.CPIMTo, got.DateTime = c.CPIMFrom, c.CPIMTo, c.DateTime
	return got, nil
}

// understood reports whether a header named in a CPIM Require header is one parseCPIM
// acts on.
func understood(ns, local string) bool {
	switch ns {
	case NSCPIMCore:
		for _, h := range []string{"From", "To", "cc", "DateTime", "Subject", "NS", "Require"} {
			if strings.EqualFold(local, h) {
				return true
			}
		}
	case NSCPIMIMDN:
		return strings.EqualFold(local, "Message-ID") || strings.EqualFold(local, "Disposition-Notification")
	}
	return false
}

// parseEntity reads the encapsulated MIME entity of a CPIM message: its headers, an empty
// line, the content. It returns the content type and the content.
func parseEntity(b []byte) (string, []byte, error) {
	var headers [][2]string
	lineNo := 0
	for {
		line, next, ok := nextLine(b)
		lineNo++
		if !ok {
			return "", nil, fmt.Errorf("%w: message/cpim: the MIME headers of the content are not followed by an empty line", ErrMalformed)
		}
		b = next
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(headers) == 0 {
				return "", nil, fmt.Errorf("%w: message/cpim: MIME header line %d starts with white space", ErrMalformed, lineNo)
			}
			headers[len(headers)-1][1] += " " + strings.TrimSpace(string(line))
			continue
		}
		name, value, found := strings.Cut(string(line), ":")
		if !found || strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t") {
			return "", nil, fmt.Errorf("%w: message/cpim: MIME header line %d is not \"Name: value\"", ErrMalformed, lineNo)
		}
		headers = append(headers, [2]string{name, strings.TrimSpace(value)})
	}
	contentType := TypePlain
	for _, h := range headers {
		switch strings.ToLower(h[0]) {
		case "content-type":
			contentType = h[1]
		case "content-transfer-encoding":
			switch strings.ToLower(h[1]) {
			case "7bit", "8bit", "binary":
			default:
				return "", nil, fmt.Errorf("%w: message/cpim: Content-Transfer-Encoding %q", ErrUnsupportedType, h[1])
			}
		case "content-length":
			n, err := strconv.Atoi(h[1])
			if err != nil || n < 0 {
				return "", nil, fmt.Errorf("%w: message/cpim: Content-Length %q is not a length", ErrMalformed, h[1])
			}
			if n > 0 && n < len(b) && b[n-1] == '\r' && b[n] == '\n' {
				n++ // a length that splits a CRLF, as in the RFC 5438 examples
			}
			if n <= len(b) && len(bytes.TrimSpace(b[n:])) == 0 {
				b = b[:n]
			}
		}
	}
	return contentType, b, nil
}

// nextLine splits off the first line of b, without its CRLF or LF; ok is false when b has
// no line end.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:], true
}

// splitCPIMHeader splits `Name:;param=x value` into the name and the value; parameters are
// dropped.
func splitCPIMHeader(line []byte) (name, value string, err error) {
	n, v, found := strings.Cut(string(line), ":")
	if !found {
		return "", "", fmt.Errorf("no colon")
	}
	if n == "" || strings.ContainsAny(n, " \t;<>\"") {
		return "", "", fmt.Errorf("bad header name %q", n)
	}
	for strings.HasPrefix(v, ";") {
		end := strings.IndexAny(v, " \t")
		if end < 0 {
			v = ""
			break
		}
		v = v[end:]
	}
	return n, strings.TrimSpace(v), nil
}

// parseNS reads an NS header value: `[prefix] <uri>`.
func parseNS(v string) (prefix, uri string, err error) {
	lt := strings.IndexByte(v, '<')
	gt := strings.LastIndexByte(v, '>')
	if lt < 0 || gt < lt || strings.TrimSpace(v[gt+1:]) != "" {
		return "", "", fmt.Errorf("want [prefix] <uri>")
	}
	prefix = strings.TrimSpace(v[:lt])
	uri = strings.TrimSpace(v[lt+1 : gt])
	if uri == "" || strings.ContainsAny(prefix, " \t.") {
		return "", "", fmt.Errorf("want [prefix] <uri>")
	}
	return prefix, uri, nil
}

// cpimAddress is the URI of a CPIM From or To value: `[display name] <uri>` or a bare URI.
func cpimAddress(v string) (string, error) {
	v = strings.TrimSpace(v)
	lt := strings.IndexByte(v, '<')
	if lt < 0 {
		if v == "" || strings.ContainsAny(v, " \t>") {
			return "", fmt.Errorf("want [name] <uri>")
		}
		return v, nil
	}
	gt := strings.IndexByte(v[lt:], '>')
	if gt < 0 {
		return "", fmt.Errorf("unterminated <")
	}
	uri := strings.TrimSpace(v[lt+1 : lt+gt])
	if uri == "" {
		return "", fmt.Errorf("empty <>")
	}
	return uri, nil
}

// CPIM wraps inner, of type innerType, in a message/cpim envelope (RFC 3862) in the form of
// the RFC 5438 examples: From, To, NS imdn, imdn.Message-ID, DateTime,
// imdn.Disposition-Notification, an empty line, then Content-Type and Content-Length of
// the inner content. from and to are URIs ("sip:alice@example.org") or name-addrs
// (`Alice <sip:alice@example.org>`); "" is the anonymous address. msgID "" leaves out the
// IMDN headers; notify lists the dispositions asked for (NotifyPositiveDelivery,
// NotifyDisplay, ...). The zero now leaves out DateTime, which RFC 5438 needs when
// notifications are asked for. An inner TypeIMDN gets Content-Disposition: notification.
// CR and LF in the arguments are dropped; they cannot end a header early.
func CPIM(from, to, msgID string, notify []string, innerType string, inner []byte, now time.Time) (contentType string, body []byte) {
	var b bytes.Buffer
	b.WriteString("From: " + cpimAddr(from) + "\r\n")
	b.WriteString("To: " + cpimAddr(to) + "\r\n")
	if msgID = oneLine(msgID); msgID != "" {
		b.WriteString("NS: imdn <" + NSCPIMIMDN + ">\r\n")
		b.WriteString("imdn.Message-ID: " + msgID + "\r\n")
	}
	if !now.IsZero() {
		b.WriteString("DateTime: " + now.Format(time.RFC3339Nano) + "\r\n")
	}
	if msgID != "" {
		var ds []string
		for _, d := range notify {
			if d = strings.TrimSpace(oneLine(d)); d != "" && !strings.ContainsAny(d, ", ") {
				ds = append(ds, d)
			}
		}
		if len(ds) > 0 {
			b.WriteString("imdn.Disposition-Notification: " + strings.Join(ds, ", ") + "\r\n")
		}
	}
	b.WriteString("\r\n")
	innerType = oneLine(innerType)
	b.WriteString("Content-Type: " + innerType + "\r\n")
	if mt, _, err := parseMediaType(innerType); err == nil && mt == TypeIMDN {
		b.WriteString("Content-Disposition: notification\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(inner)) + "\r\n\r\n")
	b.Write(inner)
	return TypeCPIM, b.Bytes()
}

// cpimAddr is from or to as a CPIM address.
func cpimAddr(s string) string {
	s = strings.TrimSpace(oneLine(s))
	switch {
	case s == "":
		return anonymous
	case strings.Contains(s, "<"):
		return s
	}
	return "<" + s + ">"
}

// oneLine drops CR and LF from s.
func oneLine(s string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(s)
}
