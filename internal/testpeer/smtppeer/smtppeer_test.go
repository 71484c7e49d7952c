package smtppeer_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dovecot"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
)

const alice = "alice@example.test"

func message(subject string) string {
	return "From: Bridge <bridge@example.test>\r\n" +
		"To: " + alice + "\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.test>\r\n" +
		"\r\n" +
		"hello\r\n" +
		".a line with a leading dot\r\n"
}

// dial connects to srv's submission port and, unless plain, upgrades with STARTTLS.
func dial(t *testing.T, srv *smtppeer.Server, plain bool) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if !plain {
		if err := c.StartTLS(srv.TLSConfig()); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
	}
	return c
}

// send runs one mail transaction on c.
func send(c *smtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	return w.Close()
}

// wantCode fails t unless err is an SMTP reply with a code of class code/100 (or code).
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var tpErr *textproto.Error
	if !errors.As(err, &tpErr) || (tpErr.Code != code && tpErr.Code/100 != code) {
		t.Errorf("%s: %v, want an SMTP %d reply", what, err, code)
	}
}

func received(t *testing.T, srv *smtppeer.Server) []smtppeer.Mail {
	t.Helper()
	mails, err := srv.Received()
	if err != nil {
		t.Fatal(err)
	}
	return mails
}

func TestSubmissionReachesDovecot(t *testing.T) {
	imap := dovecot.StartTest(t, dovecot.Options{})
	srv := smtppeer.StartTest(t, smtppeer.Options{LMTPAddr: imap.LMTPAddr})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := imap.AddUser(ctx, alice, "pw"); err != nil {
		t.Fatal(err)
	}

	c := dial(t, srv, false)
	if err := c.Auth(smtp.PlainAuth("", srv.User, srv.Password, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH PLAIN: %v", err)
	}
	msg := message("first mail")
	if err := send(c, "bridge@example.test", []string{alice}, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	_ = c.Quit()

	mails := received(t, srv)
	if len(mails) != 1 {
		t.Fatalf("Received() = %d mails, want 1", len(mails))
	}
	m := mails[0]
	if m.From != "bridge@example.test" || len(m.To) != 1 || m.To[0] != alice ||
		m.MessageID != "<first-mail@example.test>" || m.Subject != "first mail" ||
		m.User != srv.User || !m.TLS || m.LMTPError != "" {
		t.Errorf("received %+v", m)
	}
	if string(m.Raw) != msg {
		t.Errorf("received raw message %q, want %q", m.Raw, msg)
	}
	inbox, err := imap.Inbox(alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(inbox) != 1 || !bytes.HasSuffix(inbox[0], []byte(msg)) {
		t.Errorf("Dovecot INBOX of %s holds %d messages, want the one sent", alice, len(inbox))
	}

	t.Run("a recipient Dovecot refuses is accepted and reported", func(t *testing.T) {
		c := dial(t, srv, false)
		if err := c.Auth(smtp.PlainAuth("", srv.User, srv.Password, "127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		if err := send(c, "bridge@example.test", []string{"nobody@example.test"}, message("lost")); err != nil {
			t.Fatalf("send: %v", err)
		}
		mails := received(t, srv)
		if last := mails[len(mails)-1]; !strings.Contains(last.LMTPError, "nobody@example.test: 550") {
			t.Errorf("LMTPError = %q, want a 550 for nobody@example.test", last.LMTPError)
		}
	})
}

func TestSubmission(t *testing.T) {
	srv := smtppeer.StartTest(t, smtppeer.Options{User: "bridge@example.test", Password: "s3cret"})
	auth := smtp.PlainAuth("", srv.User, srv.Password, "127.0.0.1")

	t.Run("mail without AUTH is refused", func(t *testing.T) {
		c := dial(t, srv, false)
		wantCode(t, "MAIL without AUTH", c.Mail("bridge@example.test"), 530)
	})

	t.Run("wrong password is refused", func(t *testing.T) {
		c := dial(t, srv, false)
		wantCode(t, "AUTH with a wrong password", c.Auth(smtp.PlainAuth("", srv.User, "wrong", "127.0.0.1")), 535)
	})

	t.Run("implicit TLS", func(t *testing.T) {
		conn, err := tls.Dial("tcp", srv.TLSAddr, srv.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		c, err := smtp.NewClient(conn, "127.0.0.1") // the host PlainAuth was given
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Auth(auth); err != nil {
			t.Fatalf("AUTH: %v", err)
		}
		if err := send(c, "bridge@example.test", []string{alice}, message("implicit tls")); err != nil {
			t.Fatal(err)
		}
		mails := received(t, srv)
		if last := mails[len(mails)-1]; last.Subject != "implicit tls" || !last.TLS {
			t.Errorf("last mail: subject %q, TLS %v", last.Subject, last.TLS)
		}
	})

	t.Run("plain session with AUTH LOGIN is accepted", func(t *testing.T) {
		c := dial(t, srv, true)
		if err := c.Auth(loginAuth{srv.User, srv.Password}); err != nil {
			t.Fatalf("AUTH LOGIN: %v", err)
		}
		if err := send(c, "bridge@example.test", []string{alice}, message("plain")); err != nil {
			t.Fatal(err)
		}
		mails := received(t, srv)
		if last := mails[len(mails)-1]; last.Subject != "plain" || last.TLS {
			t.Errorf("last mail: subject %q, TLS %v", last.Subject, last.TLS)
		}
	})

	t.Run("FailNext gives a temporary failure, then the retry succeeds", func(t *testing.T) {
		if err := srv.FailNext(1); err != nil {
			t.Fatal(err)
		}
		before := len(received(t, srv))
		c := dial(t, srv, false)
		if err := c.Auth(auth); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "first attempt", send(c, "bridge@example.test", []string{alice}, message("retried")), 451)
		if err := send(c, "bridge@example.test", []string{alice}, message("retried")); err != nil {
			t.Fatalf("retry: %v", err)
		}
		if n := len(received(t, srv)); n != before+1 {
			t.Errorf("Received() grew by %d, want 1", n-before)
		}
	})

	t.Run("RejectRecipients gives a permanent failure", func(t *testing.T) {
		if err := srv.RejectRecipients("*@Blocked.test"); err != nil {
			t.Fatal(err)
		}
		c := dial(t, srv, false)
		if err := c.Auth(auth); err != nil {
			t.Fatal(err)
		}
		if err := c.Mail("bridge@example.test"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "RCPT of a blocked address", c.Rcpt("bob@blocked.test"), 550)
		if err := c.Rcpt(alice); err != nil {
			t.Errorf("RCPT of another address: %v", err)
		}
		if err := srv.RejectRecipients(""); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("bob@blocked.test"); err != nil {
			t.Errorf("RCPT after clearing the pattern: %v", err)
		}
	})

	t.Run("HoldQuit leaves QUIT unanswered after the mail is accepted", func(t *testing.T) {
		if err := srv.HoldQuit(true); err != nil {
			t.Fatal(err)
		}
		c := dial(t, srv, false)
		if err := c.Auth(auth); err != nil {
			t.Fatal(err)
		}
		if err := send(c, "bridge@example.test", []string{alice}, message("held quit")); err != nil {
			t.Fatal(err)
		}
		if last := received(t, srv); last[len(last)-1].Subject != "held quit" {
			t.Errorf("the mail is not listed while QUIT is held")
		}
		quit := make(chan error, 1)
		go func() { quit <- c.Quit() }()
		select {
		case err := <-quit:
			t.Fatalf("QUIT answered while held: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := srv.HoldQuit(false); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-quit:
			if err != nil {
				t.Errorf("QUIT after the release: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("QUIT still unanswered after the release")
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := len(received(t, srv))
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	c := dial(t, srv, false) // the same port and certificate
	if err := c.Auth(auth); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "bridge@example.test", []string{alice}, message("after restart")); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	if n := len(received(t, srv)); n != before+1 {
		t.Errorf("after restart, Received() holds %d mails, want %d", n, before+1)
	}
}

func TestStopIsIdempotent(t *testing.T) {
	peerproc.RequireOrSkip(t, "smtppeer", smtppeer.Available())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := smtppeer.Start(ctx, smtppeer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if srv.User == "" || srv.Password == "" || len(srv.CertPEM) == 0 {
		t.Errorf("defaults: user %q, password set %v, certificate set %v", srv.User, srv.Password != "", len(srv.CertPEM) != 0)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	for _, addr := range []string{srv.Addr, srv.TLSAddr} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still open after Stop", addr)
		}
	}
	if err := srv.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

// loginAuth is AUTH LOGIN, which net/smtp lacks.
type loginAuth struct{ user, password string }

func (a loginAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return "LOGIN", nil, nil }

func (a loginAuth) Next(challenge []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimRight(string(challenge), "\x00: ")) {
	case "username", "user name":
		return []byte(a.user), nil
	case "password":
		return []byte(a.password), nil
	}
	return nil, errors.New("unexpected AUTH LOGIN challenge " + string(challenge))
}
