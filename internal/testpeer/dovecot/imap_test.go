package dovecot_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"
)

// imapClient is a minimal IMAP4rev1 client for the tests: tagged commands, untagged
// lines and literals ({n}) in responses.
type imapClient struct {
	conn net.Conn
	tp   *textproto.Conn
	tag  int
}

// imapResult is what one command returned before its tagged completion.
type imapResult struct {
	lines    []string // untagged and continuation lines, literals cut out
	literals [][]byte // literals in order
	status   string   // the tagged line after the tag: "OK …", "NO …", "BAD …"
}

func dialIMAP(ctx context.Context, t *testing.T, addr string) *imapClient {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial IMAP: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &imapClient{conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { conn.Close() })
	greeting, err := c.tp.ReadLine()
	if err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("IMAP greeting %q: %v", greeting, err)
	}
	return c
}

// do sends one command and reads until its tagged completion.
func (c *imapClient) do(format string, args ...any) (imapResult, error) {
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	var res imapResult
	if err := c.tp.PrintfLine("%s %s", tag, fmt.Sprintf(format, args...)); err != nil {
		return res, err
	}
	for {
		line, err := c.tp.ReadLine()
		if err != nil {
			return res, err
		}
		// A line ending in {n} is followed by n bytes of literal, then the line goes on.
		for strings.HasSuffix(line, "}") {
			open := strings.LastIndexByte(line, '{')
			n, err := strconv.Atoi(strings.TrimSuffix(line[open+1:len(line)-1], "+"))
			if open < 0 || err != nil {
				break
			}
			lit := make([]byte, n)
			if _, err := io.ReadFull(c.tp.R, lit); err != nil {
				return res, err
			}
			res.literals = append(res.literals, lit)
			rest, err := c.tp.ReadLine()
			if err != nil {
				return res, err
			}
			line = line[:open] + rest
		}
		if status, ok := strings.CutPrefix(line, tag+" "); ok {
			res.status = status
			if !strings.HasPrefix(status, "OK") {
				return res, fmt.Errorf("IMAP %s: %s", strings.Fields(format)[0], status)
			}
			return res, nil
		}
		res.lines = append(res.lines, line)
	}
}

// login logs in, failing t when the server refuses.
func (c *imapClient) login(t *testing.T, user, password string) {
	t.Helper()
	if _, err := c.do("LOGIN %s %s", imapQuote(user), imapQuote(password)); err != nil {
		t.Fatalf("login as %s: %v", user, err)
	}
}

// fetchAll returns the full text of every message in INBOX, by UID order.
func (c *imapClient) fetchAll(t *testing.T) [][]byte {
	t.Helper()
	if _, err := c.do("SELECT INBOX"); err != nil {
		t.Fatal(err)
	}
	res, err := c.do("UID FETCH 1:* (BODY.PEEK[])")
	if err != nil {
		t.Fatal(err)
	}
	return res.literals
}

// imapQuote makes s an IMAP quoted string.
func imapQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
