package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Stanza namespaces: client (as relayed) and external component.
const (
	nsClient    = "jabber:client"
	nsComponent = "jabber:component:accept"
)

// item is one inbound stanza waiting for the Handler.
type item struct {
	raw                     []byte
	kind, id, typ, from, to string
}

// inbox is an unbounded FIFO between the stream reader and the Handler, so that a slow
// Handler (or one calling Send, which needs the reader for its pong) never stalls the
// stream.
type inbox struct {
	mu     sync.Mutex
	items  []item        // guarded by mu
	signal chan struct{} // cap 1
}

func (q *inbox) init() { q.signal = make(chan struct{}, 1) }

func (q *inbox) push(it item) {
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// peek reports whether an item is queued.
func (q *inbox) peek() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return item{}, false
	}
	return q.items[0], true
}

// pop returns the oldest item, or false if there is none.
func (q *inbox) pop() (item, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return item{}, false
	}
	it := q.items[0]
	q.items[0] = item{}
	q.items = q.items[1:]
	return it, true
}

// dispatch hands queued stanzas to the Handler until stop is closed (after the stream
// reader has ended), then delivers what was already received, for at most drainTimeout
// once ctx has ended.
func (c *Conn) dispatch(ctx context.Context, stop <-chan struct{}) {
	var drainCtx context.Context
	for {
		for {
			it, ok := c.q.pop()
			if !ok {
				break
			}
			hctx := ctx
			if ctx.Err() != nil {
				if drainCtx == nil {
					var cancel context.CancelFunc
					drainCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
					defer cancel()
				}
				hctx = drainCtx
			}
			c.deliver(hctx, it)
		}
		select {
		case <-stop:
			if _, ok := c.q.peek(); !ok {
				return
			}
		case <-c.q.signal:
		}
	}
}

// deliver calls the Handler for one stanza and reports a failure to the sender.
func (c *Conn) deliver(ctx context.Context, it item) {
	err := c.h(ctx, it.raw)
	if err == nil {
		return
	}
	log := zerolog.Ctx(ctx)
	log.Warn().Err(err).Str("kind", it.kind).Str("id", it.id).Str("from", it.from).Msg("handler failed for an inbound stanza")
	// No error goes back for a group chat message: a MUC takes an error from an occupant
	// as a sign that the occupant is gone, and removes it.
	needsReply := (it.kind == "message" && it.typ != "error" && it.typ != "groupchat") ||
		(it.kind == "iq" && (it.typ == "get" || it.typ == "set"))
	if !needsReply || it.from == "" {
		return
	}
	if err := c.sendNoConfirm(ctx, errorReply(it, err)); err != nil {
		log.Warn().Err(err).Str("kind", it.kind).Str("id", it.id).Msg("could not send a stanza error to the sender")
	}
}

// StanzaError is implemented by Handler errors that choose the stanza error the sender
// gets: its type ("cancel", "modify", "wait", "auth"), its defined condition (RFC 6120
// section 8.3.3, such as "bad-request") and a human-readable text ("" for none). Other
// errors are answered with a "wait" internal-server-error and no text.
type StanzaError interface {
	error
	StanzaError() (typ, condition, text string)
}

// errorReply builds a <kind type='error'> answer for the handler's error.
func errorReply(it item, err error) []xml.Token {
	start := xml.StartElement{Name: xml.Name{Local: it.kind}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "error"},
		{Name: xml.Name{Local: "to"}, Value: it.from},
	}}
	if it.to != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: it.to})
	}
	if it.id != "" {
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: it.id})
	}
	e := stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError}
	var se StanzaError
	if errors.As(err, &se) {
		typ, cond, text := se.StanzaError()
		e = stanza.Error{Type: stanza.ErrorType(typ), Condition: stanza.Condition(cond)}
		if text != "" {
			e.Text = map[string]string{"": text}
		}
	}
	toks, _ := readAll(xmlstream.Wrap(e.TokenReader(), start))
	return toks
}

// inbound runs in the stream reader: it answers pings, drops late pongs and queues the rest.
func (c *Conn) inbound(ctx context.Context, r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	toks, err := readAll(xmlstream.MultiReader(xmlstream.Token(start.Copy()), r))
	if err != nil {
		return fmt.Errorf("component: reading a %s: %w", start.Name.Local, err)
	}
	it := item{kind: start.Name.Local}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			it.id = a.Value
		case "type":
			it.typ = a.Value
		case "from":
			it.from = a.Value
		case "to":
			it.to = a.Value
		}
	}
	if it.kind == "iq" {
		switch {
		case it.typ == "get" && isPing(toks):
			return c.pong(r, it)
		case (it.typ == "result" || it.typ == "error") && strings.HasPrefix(it.id, pingPrefix):
			return nil // answer to a confirming ping that timed out
		}
	}
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	for _, t := range normalize(toks, false) {
		if err := e.EncodeToken(t); err != nil {
			return fmt.Errorf("component: re-encoding a %s: %w", it.kind, err)
		}
	}
	if err := e.Flush(); err != nil {
		return fmt.Errorf("component: re-encoding a %s: %w", it.kind, err)
	}
	it.raw = buf.Bytes()
	c.q.push(it)
	zerolog.Ctx(ctx).Trace().Str("kind", it.kind).Str("id", it.id).Msg("queued inbound stanza")
	return nil
}

// isPing reports whether the first child of the iq in toks is an XEP-0199 ping.
func isPing(toks []xml.Token) bool {
	for _, t := range toks[1:] {
		switch t := t.(type) {
		case xml.StartElement:
			return t.Name.Space == nsPing && t.Name.Local == "ping"
		case xml.EndElement:
			return false
		}
	}
	return false
}

// pong answers a ping on the stream reader's writer.
func (c *Conn) pong(w xmlstream.TokenWriter, it item) error {
	res := stanza.IQ{ID: it.id, Type: stanza.ResultIQ}
	if it.from != "" {
		to, err := jid.Parse(it.from)
		if err != nil {
			return nil // nowhere to answer
		}
		res.To = to
	}
	if it.to != "" {
		if from, err := jid.Parse(it.to); err == nil {
			res.From = from
		}
	}
	if _, err := xmlstream.Copy(w, res.Wrap(nil)); err != nil {
		return fmt.Errorf("component: answering ping %q: %w", it.id, err)
	}
	return nil
}

// readAll copies every token of r.
func readAll(r xml.TokenReader) ([]xml.Token, error) {
	var toks []xml.Token
	for {
		t, err := r.Token()
		if t != nil {
			toks = append(toks, xml.CopyToken(t))
		}
		if errors.Is(err, io.EOF) {
			return toks, nil
		}
		if err != nil {
			return toks, err
		}
	}
}

// parseStanza checks that raw is exactly one message, presence or iq element and returns
// its tokens ready to write on the component stream.
func parseStanza(raw []byte) (toks []xml.Token, kind, id string, err error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	depth := 0
	for {
		t, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", "", fmt.Errorf("%w: %v", ErrStanza, err)
		}
		switch tt := t.(type) {
		case xml.StartElement:
			if depth == 0 {
				if len(toks) > 0 {
					return nil, "", "", fmt.Errorf("%w: more than one element", ErrStanza)
				}
				switch tt.Name.Local {
				case "message", "presence", "iq":
				default:
					return nil, "", "", fmt.Errorf("%w: <%s>", ErrStanza, tt.Name.Local)
				}
				if tt.Name.Space != "" && tt.Name.Space != nsClient && tt.Name.Space != nsComponent {
					return nil, "", "", fmt.Errorf("%w: namespace %q", ErrStanza, tt.Name.Space)
				}
				kind = tt.Name.Local
				for _, a := range tt.Attr {
					if a.Name.Space == "" && a.Name.Local == "id" {
						id = a.Value
					}
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				if len(bytes.TrimSpace(tt)) > 0 {
					return nil, "", "", fmt.Errorf("%w: text outside the element", ErrStanza)
				}
				continue
			}
		case xml.ProcInst, xml.Directive:
			return nil, "", "", fmt.Errorf("%w: processing instruction or directive", ErrStanza)
		case xml.Comment:
			continue
		}
		toks = append(toks, xml.CopyToken(t))
	}
	if kind == "" {
		return nil, "", "", fmt.Errorf("%w: empty", ErrStanza)
	}
	return normalize(toks, true), kind, id, nil
}

// normalize prepares decoded tokens for encoding/xml's Encoder, which writes an xmlns on
// every element with a namespace: it leaves out namespaces inherited from the parent
// (and, with stripRoot, a stanza namespace on the root, which the stream default
// supplies), drops namespace declarations (the Encoder declares what it needs) and
// comments, and makes end elements match.
func normalize(toks []xml.Token, stripRoot bool) []xml.Token {
	var orig, written []xml.Name
	out := make([]xml.Token, 0, len(toks))
	for _, t := range toks {
		switch t := t.(type) {
		case xml.StartElement:
			name := t.Name
			switch {
			case len(orig) > 0 && name.Space == orig[len(orig)-1].Space:
				name.Space = ""
			case len(orig) == 0 && stripRoot && (name.Space == nsClient || name.Space == nsComponent):
				name.Space = ""
			}
			orig = append(orig, t.Name)
			written = append(written, name)
			attrs := make([]xml.Attr, 0, len(t.Attr))
			for _, a := range t.Attr {
				if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
					continue
				}
				attrs = append(attrs, a)
			}
			out = append(out, xml.StartElement{Name: name, Attr: attrs})
		case xml.EndElement:
			if len(written) == 0 {
				continue
			}
			out = append(out, xml.EndElement{Name: written[len(written)-1]})
			orig, written = orig[:len(orig)-1], written[:len(written)-1]
		case xml.Comment, xml.ProcInst, xml.Directive:
		default:
			out = append(out, t)
		}
	}
	return out
}

// StanzaTokens checks that raw is exactly one message, presence or iq element and returns
// its tokens ready to write on an XMPP stream with mellium (Session.Send), with namespace
// declarations normalised. It is for clients in tests and tools that hold raw stanzas.
func StanzaTokens(raw []byte) (xml.TokenReader, error) {
	toks, _, _, err := parseStanza(raw)
	if err != nil {
		return nil, err
	}
	return &sliceReader{toks: toks}, nil
}
