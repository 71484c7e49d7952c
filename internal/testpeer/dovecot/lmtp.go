package dovecot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Deliver delivers raw, a whole RFC 5322 message, into the INBOX of the user to over
// LMTP, as a mail server in front of Dovecot would. The envelope sender is the first
// address of the From header, or the null sender. Line endings may be LF or CRLF; lines
// starting with a dot are escaped. A refusal by Dovecot (an unknown user: 550) is
// returned wrapping a *textproto.Error with the reply code.
func (s *Server) Deliver(ctx context.Context, to string, raw []byte) error {
	if strings.ContainsAny(to, "\r\n<>") {
		return fmt.Errorf("%w: %q", ErrInvalidAddress, to)
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.LMTPAddr)
	if err != nil {
		return fmt.Errorf("dovecot: failed to connect to LMTP: %w", err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	err = lmtpTransaction(textproto.NewConn(conn), envelopeSender(raw), to, raw)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	if err != nil {
		return fmt.Errorf("dovecot: failed to deliver to %s over LMTP: %w", to, err)
	}
	return nil
}

// lmtpTransaction runs one LMTP session delivering raw from sender to the one recipient.
func lmtpTransaction(c *textproto.Conn, sender, to string, raw []byte) error {
	// step sends line (unless empty) and reads the reply, which must have code expect.
	step := func(name string, expect int, line string) error {
		if line != "" {
			if err := c.PrintfLine("%s", line); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		if _, _, err := c.ReadResponse(expect); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if err := step("greeting", 220, ""); err != nil {
		return err
	}
	if err := step("LHLO", 250, "LHLO localhost"); err != nil {
		return err
	}
	if err := step("MAIL FROM", 250, "MAIL FROM:<"+sender+">"); err != nil {
		return err
	}
	if err := step("RCPT TO", 250, "RCPT TO:<"+to+">"); err != nil {
		return err
	}
	if err := step("DATA", 354, "DATA"); err != nil {
		return err
	}
	w := c.DotWriter() // escapes leading dots, writes CRLF and the final "."
	_, err := w.Write(raw)
	if err = errors.Join(err, w.Close()); err != nil {
		return err
	}
	// LMTP answers DATA once per accepted recipient: here, once.
	if err := step("end of DATA", 250, ""); err != nil {
		return err
	}
	_ = c.PrintfLine("QUIT")
	return nil
}

// envelopeSender is the first From address of raw, or "" (the null sender).
func envelopeSender(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) == 0 {
		return ""
	}
	return from[0].Address
}
