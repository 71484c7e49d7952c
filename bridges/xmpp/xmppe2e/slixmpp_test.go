package xmppe2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// systemPython is Debian's interpreter, which has python3-slixmpp (a python3 earlier in
// PATH, such as pyenv's, may not).
const systemPython = "/usr/bin/python3"

// TestSlixmppClient drives one exchange with an independent XMPP client, slixmpp: it
// writes to a Matrix user, gets the bridge's receipt, and gets the Matrix user's answer.
func TestSlixmppClient(t *testing.T) {
	if err := exec.Command(systemPython, "-c", "import slixmpp").Run(); err != nil {
		peerproc.RequireOrSkip(t, "slixmpp", err)
	}
	startBridge(t, nil)
	user := unique("slix")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := xs.Register(ctx, user, "pw-"+user); err != nil {
		t.Fatal(err)
	}
	dora := newMatrixUser(t, "dora")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, systemPython, "testdata/slixmpp_client.py",
		"--jid", user+"@"+xs.Domain, "--password", "pw-"+user,
		"--host", "127.0.0.1", "--port", portOf(t, xs.C2SAddr),
		"--to", puppetOf(t, dora.UserID).String(), "--body", "hello from slixmpp", "--expect", "hello slixmpp")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	room := acceptInvite(t, dora)
	waitMatrix(t, dora, room, "slixmpp's message", bodyIs(ghostOf(t, user+"@"+xs.Domain), "hello from slixmpp"))
	if _, err := dora.SendText(ctx, room, "hello slixmpp"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("slixmpp client failed: %v\n%s", err, out.String())
		}
	case <-ctx.Done():
		t.Fatalf("slixmpp client did not finish:\n%s", out.String())
	}
	t.Logf("slixmpp client:\n%s", out.String())
}
