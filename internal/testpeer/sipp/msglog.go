package sipp

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// logSeparator starts each entry of SIPp's message log (-trace_msg), followed by a time.
const logSeparator = "-----------------------------------------------"

// logEntry is one SIP message in SIPp's message log.
type logEntry struct {
	Sent      bool   // sent by SIPp (else received)
	Request   bool   // a request (else a response)
	Method    string // request method, or the CSeq method of a response
	Code      int    // response status code
	StartLine string // the first line, e.g. "SIP/2.0 200 OK"
	CallID    string
	CSeq      string // e.g. "1 MESSAGE"
}

// parseMessageLog reads SIPp's message log: entries of a separator line, a line saying
// "UDP message sent (N bytes):" or "TCP message received [N] bytes :", an empty line and
// the message. Entries it cannot read (no start line or no Call-ID, as in an entry still
// being written) are skipped.
func parseMessageLog(data []byte) []logEntry {
	var out []logEntry
	chunks := bytes.Split(data, []byte("\n"+logSeparator))
	if len(chunks) > 0 && bytes.HasPrefix(chunks[0], []byte(logSeparator)) {
		chunks[0] = chunks[0][len(logSeparator):]
	} else if len(chunks) > 0 {
		chunks = chunks[1:] // text before the first entry
	}
	for _, c := range chunks {
		if e, ok := parseLogEntry(c); ok {
			out = append(out, e)
		}
	}
	return out
}

// parseLogEntry reads one entry after its separator.
func parseLogEntry(c []byte) (logEntry, bool) {
	var e logEntry
	sc := bufio.NewScanner(bytes.NewReader(c))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	sc.Scan() // the rest of the separator line: the time
	if !sc.Scan() {
		return e, false
	}
	head := sc.Text()
	switch {
	case strings.Contains(head, "message sent"):
		e.Sent = true
	case strings.Contains(head, "message received"):
	default:
		return e, false
	}
	for sc.Scan() && strings.TrimSpace(sc.Text()) == "" {
	}
	e.StartLine = strings.TrimRight(sc.Text(), "\r")
	if e.StartLine == "" {
		return e, false
	}
	if rest, ok := strings.CutPrefix(e.StartLine, "SIP/2.0 "); ok {
		code, _, _ := strings.Cut(rest, " ")
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 699 {
			return e, false
		}
		e.Code = n
	} else {
		method, _, ok := strings.Cut(e.StartLine, " ")
		if !ok || !strings.HasSuffix(e.StartLine, " SIP/2.0") {
			return e, false
		}
		e.Request, e.Method = true, method
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			e.CallID = value
		case "cseq":
			e.CSeq = value
			if !e.Request {
				if _, m, ok := strings.Cut(value, " "); ok {
					e.Method = strings.TrimSpace(m)
				}
			}
		}
	}
	if e.CallID == "" {
		return e, false
	}
	return e, true
}
