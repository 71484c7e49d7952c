// Package sipp drives SIPp (Debian package sip-tester, 3.6) for Switchboard's end-to-end
// tests of the SIP bridge, plus a raw-bytes sender for malformed requests. It is imported
// by tests only.
//
// The scenarios are embedded XML files (scenarios/); what varies per run (Request-URI,
// From, To, body, answer code) is passed with SIPp's -set. Results are read from SIPp's
// message log (-trace_msg -message_file): every MESSAGE sent and every answer received, by
// Call-ID. That is independent of how the scenario branches, so an answer the scenario
// does not list still counts (the call then fails in SIPp, which does not matter here).
// SIPp's exit code (0 all calls succeeded, 1 some failed) is reported too; other exit
// codes are errors, with SIPp's error log (-trace_err) in the error text.
//
//	st, err := sipp.SendMessages(ctx, sipp.Options{Target: addr, Transport: sipp.TCP,
//		From: "sip:bob@sip.test", To: "sip:alice@sip.test", Count: 10, Body: "hi"})
//	// st.OK == 10, st.Calls[i].Codes == []int{200}
package sipp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

//go:embed scenarios/*.xml
var scenarios embed.FS

// Transports, as SIPp's -t names them: one UDP socket, one TCP connection.
const (
	UDP = "u1"
	TCP = "t1"
)

// Files inside a run's directory.
const (
	messageLog = "messages.log"
	errorLog   = "errors.log"
	outputLog  = "sipp.log"
)

const (
	loopback    = "127.0.0.1"
	stopTimeout = 5 * time.Second
)

// Options configures SendMessages. Target, From and To are required.
type Options struct {
	// Target is where the requests go, host:port (e.g. the bridge's or a proxy's listener).
	Target string
	// Transport is UDP ("u1", default) or TCP ("t1").
	Transport string
	// RequestURI of each MESSAGE; default To.
	RequestURI string
	// From and To are the URIs of the From and To headers, e.g. "sip:bob@sip.test".
	From, To string
	// Count of MESSAGEs (calls), each with its own Call-ID; default 1.
	Count int
	// Rate of new calls per second; default 50.
	Rate int
	// CallIDPrefix starts every Call-ID (then "<n>-<pid>@<ip>"); default "sipp-".
	CallIDPrefix string
	// Body of each MESSAGE; ContentType default "text/plain".
	Body, ContentType string
	// Retransmit sends each MESSAGE a second time after its first final answer: same
	// Call-ID, From tag and CSeq, a new Via branch (a new transaction).
	Retransmit bool
	// Timeout without an answer before a call is given up; default 10 s. Over UDP SIPp
	// retransmits the request meanwhile (T1 500 ms, doubling).
	Timeout time.Duration
	// Dir keeps SIPp's files (logs); default a temporary directory removed afterwards.
	Dir string
	// Logger receives SIPp's stdout and stderr; default Dir/sipp.log.
	Logger io.Writer
}

// Call is one call's outcome: the final answers its MESSAGE got, in order (two with
// Retransmit). No final answer: Codes is empty.
type Call struct {
	CallID string
	Codes  []int
}

// Stats is what a SendMessages run did, from SIPp's message log.
type Stats struct {
	// Sent counts MESSAGE requests sent, retransmissions over UDP included.
	Sent int
	// Calls in the order of their first MESSAGE.
	Calls []Call
	// OK counts calls whose final answers were all 2xx (and at least one);
	// Failed those with a final answer >= 300; TimedOut those with none.
	OK, Failed, TimedOut int
	// Codes counts the final answers by status code.
	Codes map[int]int
	// ExitCode is SIPp's: 0 all calls succeeded in the scenario, 1 some failed.
	ExitCode int
}

// program is SIPp's executable.
var program = peerproc.Program{Peer: "sipp", Name: "sipp", Dir: "/usr/bin", Debian: "sip-tester"}

// Available reports why SIPp cannot run here, or nil if it can.
func Available() error { return program.Available() }

// Skip skips t when SIPp cannot run here, unless SWITCHBOARD_REQUIRE_PEERS=1 (then t
// fails).
func Skip(t testing.TB) {
	t.Helper()
	peerproc.RequireOrSkip(t, "sipp", Available())
}

// validate checks o and applies defaults.
func (o *Options) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.Target); err != nil {
		errs = append(errs, fmt.Errorf("sipp: Target %q is not host:port: %w", o.Target, err))
	}
	switch o.Transport {
	case "":
		o.Transport = UDP
	case UDP, TCP:
	default:
		errs = append(errs, fmt.Errorf("sipp: Transport %q is not %q or %q", o.Transport, UDP, TCP))
	}
	if o.From == "" || o.To == "" {
		errs = append(errs, errors.New("sipp: From and To are required"))
	}
	if o.RequestURI == "" {
		o.RequestURI = o.To
	}
	if o.Count <= 0 {
		o.Count = 1
	}
	if o.Rate <= 0 {
		o.Rate = 50
	}
	if o.CallIDPrefix == "" {
		o.CallIDPrefix = "sipp-"
	}
	if strings.ContainsAny(o.CallIDPrefix, "% \t\r\n") {
		errs = append(errs, fmt.Errorf("sipp: CallIDPrefix %q must not contain %% or white space", o.CallIDPrefix))
	}
	if o.ContentType == "" {
		o.ContentType = "text/plain"
	}
	if strings.Contains(o.Body, "]]>") {
		errs = append(errs, errors.New("sipp: Body must not contain ]]>"))
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return errors.Join(errs...)
}

// SendMessages runs SIPp as a UAC sending opts.Count MESSAGEs to opts.Target and returns
// what answers came back. Calls that failed or timed out are in the Stats, not an error;
// an error means SIPp could not run (bad options, a port taken, ctx ended).
func SendMessages(ctx context.Context, opts Options) (Stats, error) {
	if err := Available(); err != nil {
		return Stats{}, err
	}
	if err := opts.validate(); err != nil {
		return Stats{}, err
	}
	scenario := "uac_message.xml"
	if opts.Retransmit {
		scenario = "uac_retransmit.xml"
	}
	var st Stats
	err := peerproc.StartOnFreePorts(false, func() error {
		port, err := peerproc.FreePort()
		if err != nil {
			return err
		}
		args := []string{opts.Target, "-t", opts.Transport, "-i", loopback, "-p", strconv.Itoa(port),
			"-m", strconv.Itoa(opts.Count), "-r", strconv.Itoa(opts.Rate),
			"-cid_str", opts.CallIDPrefix + "%u-%p@%s",
			"-recv_timeout", strconv.Itoa(int(opts.Timeout.Milliseconds())),
			"-set", "ruri", opts.RequestURI, "-set", "from", opts.From, "-set", "to", opts.To,
			"-set", "ctype", opts.ContentType, "-set", "body", opts.Body}
		r, err := run(opts.Dir, opts.Logger, scenario, nil, args)
		if err != nil {
			return err
		}
		defer r.close()
		code, err := r.wait(ctx)
		if err != nil {
			return err
		}
		entries, err := r.messages()
		if err != nil {
			return err
		}
		st = uacStats(entries)
		st.ExitCode = code
		return nil
	})
	return st, err
}

// uacStats summarises a UAC's message log.
func uacStats(entries []logEntry) Stats {
	st := Stats{Codes: map[int]int{}}
	index := map[string]int{}
	for _, e := range entries {
		if e.Method != "MESSAGE" {
			continue
		}
		i, ok := index[e.CallID]
		if !ok {
			if !e.Sent || !e.Request {
				continue // an answer to nothing we sent
			}
			i = len(st.Calls)
			index[e.CallID] = i
			st.Calls = append(st.Calls, Call{CallID: e.CallID})
		}
		switch {
		case e.Sent && e.Request:
			st.Sent++
		case !e.Sent && !e.Request && e.Code >= 200:
			st.Calls[i].Codes = append(st.Calls[i].Codes, e.Code)
			st.Codes[e.Code]++
		}
	}
	for _, c := range st.Calls {
		ok := len(c.Codes) > 0
		failed := false
		for _, code := range c.Codes {
			ok = ok && code < 300
			failed = failed || code >= 300
		}
		switch {
		case len(c.Codes) == 0:
			st.TimedOut++
		case failed:
			st.Failed++
		case ok:
			st.OK++
		}
	}
	return st
}
