package sipua

import (
	"context"
	"errors"
	"strings"
)

// Sentinel errors of the package.
var (
	// ErrConfig wraps every Config validation failure.
	ErrConfig = errors.New("sipua: invalid config")
	// ErrNotRunning is returned by Send before Run has bound its listeners
	// or after Run has returned.
	ErrNotRunning = errors.New("sipua: not running")
	// ErrAlreadyRan is returned by a second call of Run.
	ErrAlreadyRan = errors.New("sipua: Run was already called")
	// ErrBadOutgoing wraps a malformed Outgoing.
	ErrBadOutgoing = errors.New("sipua: bad outgoing request")
)

// Addr is a name-addr of a From or To header.
type Addr struct {
	URI     string // "sip:alice@example.org", without header parameters
	Display string // display name, may be empty
	Tag     string // tag parameter, may be empty
}

// Header is one header field.
type Header struct{ Name, Value string }

// Request is an inbound request that passed the checks of the UA.
type Request struct {
	Method      string // "MESSAGE", "SUBSCRIBE", "NOTIFY"
	RequestURI  string
	From, To    Addr
	CallID      string
	CSeq        uint32
	ContentType string
	Body        []byte   // at most Config.MaxBodyBytes
	Contact     string   // URI of the first Contact, may be empty
	RecordRoute []string // Record-Route values in order, may be empty
	Headers     []Header // every header field as received
	Source      string   // host:port the request came from
	Transport   string   // "udp", "tcp" or "tls"
}

// Get returns the value of the first header named name (case-insensitive),
// or "".
func (r *Request) Get(name string) string { return getHeader(r.Headers, name) }

// Response is the answer of a Handler.
type Response struct {
	Code        int    // 200..699; anything else is answered 500
	Reason      string // default: the standard reason phrase
	Headers     []Header
	ContentType string
	Body        []byte
	// ToTag is the To tag of the answer to an out-of-dialog request
	// (added beyond the shared contract). Empty = a tag derived from
	// Call-ID and From tag, so retransmissions get the same one.
	ToTag string
}

// Handler serves inbound requests. The answer is sent only after ServeSIP
// returns, so a 2xx may mean "stored". ctx ends after
// Config.HandlerTimeout or when Run stops, and carries Run's zerolog logger.
type Handler interface {
	ServeSIP(ctx context.Context, req *Request) Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) Response

// ServeSIP calls f.
func (f HandlerFunc) ServeSIP(ctx context.Context, req *Request) Response { return f(ctx, req) }

// Outgoing is a request to send through the proxy.
type Outgoing struct {
	Method      string // "MESSAGE", "NOTIFY", ...
	RequestURI  string
	From, To    Addr   // From.Tag is generated when empty; To.Tag only in dialog
	CallID      string // generated when empty
	CSeq        uint32 // 1 when 0
	ContentType string
	Body        []byte
	Headers     []Header // extra headers; core headers (Via, From, To, Call-ID, CSeq, Max-Forwards, Content-*) are refused
	Route       []string // route set of a dialog ("<sip:p1;lr>"); empty = "<proxy;lr>"
}

// Result is the final answer to an Outgoing.
type Result struct {
	Code    int
	Reason  string
	Headers []Header
	ToTag   string
}

// Get returns the value of the first header named name (case-insensitive),
// or "".
func (r Result) Get(name string) string { return getHeader(r.Headers, name) }

func getHeader(hs []Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) || (len(name) > 1 && strings.EqualFold(h.Name, compactName(name))) {
			return h.Value
		}
	}
	return ""
}

// compactName gives the RFC 3261 compact form of a header name, or "".
func compactName(name string) string {
	switch strings.ToLower(name) {
	case "call-id":
		return "i"
	case "contact":
		return "m"
	case "content-encoding":
		return "e"
	case "content-length":
		return "l"
	case "content-type":
		return "c"
	case "from":
		return "f"
	case "subject":
		return "s"
	case "supported":
		return "k"
	case "to":
		return "t"
	case "via":
		return "v"
	case "event":
		return "o"
	case "allow-events":
		return "u"
	}
	return ""
}

// coreHeader reports headers the UA owns; handlers and Outgoing.Headers
// may not set them.
func coreHeader(name string) bool {
	switch strings.ToLower(name) {
	case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "max-forwards",
		"content-length", "l", "content-type", "c", "route", "record-route":
		return true
	}
	return false
}

// reasonPhrase is the standard reason phrase of the codes the bridge uses.
func reasonPhrase(code int) string {
	switch code {
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 415:
		return "Unsupported Media Type"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 483:
		return "Too Many Hops"
	case 488:
		return "Not Acceptable Here"
	case 489:
		return "Bad Event"
	case 500:
		return "Server Internal Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Server Time-out"
	case 603:
		return "Decline"
	}
	switch {
	case code >= 200 && code < 300:
		return "OK"
	case code >= 300 && code < 400:
		return "Redirect"
	case code >= 400 && code < 500:
		return "Client Error"
	case code >= 500 && code < 600:
		return "Server Error"
	}
	return "Global Failure"
}
