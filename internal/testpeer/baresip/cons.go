package baresip

import (
	"bytes"
	"regexp"
)

// Message is a MESSAGE baresip received and answered with 200. baresip 1.0.0 accepts only
// text/plain (other types get 415 with "Accept: text/plain"), so ContentType is always
// "text/plain".
type Message struct {
	From        string // the From URI, e.g. "sip:bob@sip.test"
	Body        string
	ContentType string
}

// maxConsBuffer bounds what the cons parser holds while waiting for the end of a message.
const maxConsBuffer = 64 << 10

// messageStart finds the start of the menu module's line for a received MESSAGE:
// "\r<from-uri>: \"<body>\"\n" (ui_output, at most 511 bytes in all).
var messageStart = regexp.MustCompile(`\r(sips?:[^\s"]+): "`)

// consParser extracts received MESSAGEs from the cons module's output, which also carries
// baresip's log lines.
type consParser struct {
	buf []byte
}

// feed adds output and returns the messages completed by it. A body is taken to end at the
// first `"` followed by a newline; a body containing that sequence is cut there.
func (p *consParser) feed(b []byte) []Message {
	p.buf = append(p.buf, b...)
	var out []Message
	for {
		loc := messageStart.FindSubmatchIndex(p.buf)
		if loc == nil {
			// Keep only a possible beginning of a message line.
			if i := bytes.LastIndexByte(p.buf, '\r'); i >= 0 {
				p.buf = p.buf[i:]
			} else {
				p.buf = p.buf[:0]
			}
			break
		}
		rest := p.buf[loc[1]:]
		end := bytes.Index(rest, []byte("\"\n"))
		if end < 0 {
			p.buf = p.buf[loc[0]:]
			if len(p.buf) > maxConsBuffer {
				p.buf = p.buf[1:] // not a message line after all
				continue
			}
			break
		}
		out = append(out, Message{
			From:        string(p.buf[loc[2]:loc[3]]),
			Body:        string(rest[:end]),
			ContentType: "text/plain",
		})
		p.buf = rest[end+2:]
	}
	p.buf = append([]byte(nil), p.buf...)
	return out
}
