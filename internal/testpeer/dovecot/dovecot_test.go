package dovecot_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dovecot"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

const testMessage = "From: Bob <bob@example.test>\n" +
	"To: alice@example.test\n" +
	"Subject: hello from LMTP\n" +
	"Message-ID: <m1@example.test>\n" +
	"\n" +
	"first line\n" +
	".a line that starts with a dot\n" +
	"last line\n"

func TestDovecot(t *testing.T) {
	srv := dovecot.StartTest(t, dovecot.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const alice, alicePW = "alice@example.test", `pa:ss "word"`
	if err := srv.AddUser(ctx, alice, alicePW); err != nil {
		t.Fatal(err)
	}
	if err := srv.Deliver(ctx, alice, []byte(testMessage)); err != nil {
		t.Fatalf("deliver: %v", err)
	}

	c := dialIMAP(ctx, t, srv.IMAPAddr)
	caps, err := c.do("CAPABILITY")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IDLE", "AUTH=PLAIN", "AUTH=LOGIN"} {
		if !strings.Contains(strings.Join(caps.lines, " "), " "+want) {
			t.Errorf("capabilities %q lack %s", caps.lines, want)
		}
	}
	c.login(t, alice, alicePW)
	msgs := c.fetchAll(t)
	if len(msgs) != 1 {
		t.Fatalf("INBOX holds %d messages, want 1", len(msgs))
	}
	want := strings.ReplaceAll(testMessage, "\n", "\r\n")
	if !bytes.HasSuffix(msgs[0], []byte(want)) {
		t.Errorf("fetched message:\n%s\nwant it to end with the delivered one:\n%s", msgs[0], want)
	}

	if inbox, err := srv.Inbox(alice); err != nil || len(inbox) != 1 || !bytes.HasSuffix(inbox[0], []byte(want)) {
		t.Errorf("Inbox(%s) = %d messages, %v; want the delivered one", alice, len(inbox), err)
	}

	t.Run("wrong password is refused", func(t *testing.T) {
		c := dialIMAP(ctx, t, srv.IMAPAddr)
		if _, err := c.do("LOGIN %s %s", alice, "wrong"); err == nil {
			t.Error("login with a wrong password succeeded")
		}
	})

	t.Run("unknown recipient is refused", func(t *testing.T) {
		err := srv.Deliver(ctx, "nobody@example.test", []byte(testMessage))
		var tpErr *textproto.Error
		if !errors.As(err, &tpErr) || tpErr.Code/100 != 5 {
			t.Errorf("deliver to an unknown user: %v, want a 5xx reply", err)
		}
	})

	start := time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("restart took %v", time.Since(start))
	if _, err := c.do("NOOP"); err == nil {
		t.Error("IMAP connection still open after restart")
	}

	// Same ports, users and mail after the restart; a user added now can log in at once.
	const bob = "bob@example.test"
	if err := srv.AddUser(ctx, bob, "bob-pw"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Deliver(ctx, bob, []byte(testMessage)); err != nil {
		t.Fatalf("deliver after restart: %v", err)
	}
	for _, u := range []struct{ name, pw string }{{alice, alicePW}, {bob, "bob-pw"}} {
		c := dialIMAP(ctx, t, srv.IMAPAddr)
		c.login(t, u.name, u.pw)
		if n := len(c.fetchAll(t)); n != 1 {
			t.Errorf("%s: INBOX holds %d messages after restart, want 1", u.name, n)
		}
	}
}

func TestAddUserRejectsBadAddresses(t *testing.T) {
	srv := dovecot.StartTest(t, dovecot.Options{})
	for _, addr := range []string{"", "alice", "@example.test", "a:b@example.test", "../x@example.test", "a b@example.test"} {
		if err := srv.AddUser(context.Background(), addr, "pw"); !errors.Is(err, dovecot.ErrInvalidAddress) {
			t.Errorf("AddUser(%q) = %v, want ErrInvalidAddress", addr, err)
		}
	}
}

func TestStopIsIdempotent(t *testing.T) {
	peerproc.RequireOrSkip(t, "dovecot", dovecot.Available())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := dovecot.Start(ctx, dovecot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	for _, addr := range []string{srv.IMAPAddr, srv.LMTPAddr} {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still open after Stop", addr)
		}
	}
	if err := srv.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}
