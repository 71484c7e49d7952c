package xmppe2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/upload"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// The encrypted tests run on Synapse only: Dendrite lacks MSC4190, so there the core runs
// with encryption off. The Matrix user is an encrypting client (e2eeclient) with its own
// cross-signed device; the core runs with encryption on and encryption.default, so the
// rooms the bridge creates (a DM opened from XMPP, a MUC portal) come out encrypted.

// encryptedMessages is how many messages each test sends each way.
const encryptedMessages = 4

// startEncryptedBridge starts the core with encryption on (and encryption.default) and
// the bridge, and waits for the component's connection.
func startEncryptedBridge(t *testing.T) *running {
	t.Helper()
	return startBridgeEncryption(t, nil, bridgeConfig(), true,
		appservice.Encryption{Enabled: true, Default: true, DecryptTimeout: 2 * time.Minute})
}

// newCryptoUser registers a user on the package's Synapse with the display name
// "<prefix> M" and returns its encrypting client.
func newCryptoUser(t *testing.T, prefix string) *e2eeclient.Client {
	t.Helper()
	return e2eeclient.RegisterForTest(t, syn.Get(t), unique(prefix), prefix+" M")
}

// requireEncrypted fails t unless room has m.room.encryption (Megolm).
func requireEncrypted(t *testing.T, user *e2eeclient.Client, room id.RoomID) {
	t.Helper()
	var enc event.EncryptionEventContent
	if err := user.Mautrix().StateEvent(context.Background(), room, event.StateEncryption, "", &enc); err != nil {
		t.Fatalf("%s has no m.room.encryption: %v", room, err)
	}
	if enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Fatalf("%s is encrypted with %q, want %s", room, enc.Algorithm, id.AlgorithmMegolmV1)
	}
}

// sendMatrixToXMPP has user send n encrypted texts "<prefix>-<i>" into room and checks
// that the XMPP client receives the plaintext of each exactly once, from a stanza that
// from accepts.
func sendMatrixToXMPP(t *testing.T, user *e2eeclient.Client, room id.RoomID, peer *xclient, prefix string, from func(*xmsg.Message) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range encryptedMessages {
		body := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := user.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body}); err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
	}
	for i := range encryptedMessages {
		body := fmt.Sprintf("%s-%d", prefix, i)
		peer.waitMessage(body, func(m *xmsg.Message) bool { return m.Body == body && from(m) })
	}
	time.Sleep(time.Second) // time for a doubled delivery to show up
	for i := range encryptedMessages {
		body := fmt.Sprintf("%s-%d", prefix, i)
		if got := len(peer.messages(func(m *xmsg.Message) bool { return m.Body == body && from(m) })); got != 1 {
			t.Errorf("%q reached XMPP %d times, want 1", body, got)
		}
	}
	for _, m := range peer.messages(func(m *xmsg.Message) bool { return from(m) && strings.Contains(m.Body, "m.room.encrypted") }) {
		t.Errorf("XMPP received an undecrypted event: %q", m.Body)
	}
}

// sendXMPPToMatrix has the XMPP client send n messages "<prefix>-<i>" of type typ to to
// and checks that user receives each in room exactly once, encrypted, decryptable, from
// ghost's device cross-signed by ghost.
func sendXMPPToMatrix(t *testing.T, peer *xclient, to jid.JID, typ string, user *e2eeclient.Client, room id.RoomID, ghost id.UserID, prefix string) {
	t.Helper()
	for i := range encryptedMessages {
		body := fmt.Sprintf("%s-%d", prefix, i)
		peer.send(&xmsg.Message{ID: body, OriginID: body, Type: typ, To: to, Body: body})
	}
	waitDecrypted(t, user, room, ghost, prefix, encryptedMessages)
}

// waitDecrypted waits until user has every message "<prefix>-<i>" (i < n) from ghost in
// room decrypted and checks each came encrypted, once, from a device of ghost
// cross-signed by ghost.
func waitDecrypted(t *testing.T, user *e2eeclient.Client, room id.RoomID, ghost id.UserID, prefix string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range n {
		body := fmt.Sprintf("%s-%d", prefix, i)
		m, err := user.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
			return m.DecryptError == nil && m.Event.Sender == ghost && m.Event.Content.AsMessage().Body == body
		})
		if err != nil {
			undecrypted(t, user, room)
			t.Fatalf("waiting for %s: %v", body, err)
		}
		if !m.Encrypted {
			t.Errorf("%s arrived unencrypted", body)
		}
		if m.SenderDevice == nil || m.SenderDevice.UserID != ghost {
			t.Errorf("%s: sender device %+v, want a device of %s", body, m.SenderDevice, ghost)
		}
		if m.Trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("%s: sender device trust %s, want cross-signed (>= %s)", body, m.Trust, id.TrustStateCrossSignedTOFU)
		}
		if i == 0 && m.SenderDevice != nil {
			t.Logf("%s from %s device %s: trust %s", body, ghost, m.SenderDevice.DeviceID, m.Trust)
		}
	}
	time.Sleep(time.Second) // time for a doubled delivery to show up
	seen := map[string]map[id.EventID]bool{}
	for _, m := range user.Received(room) {
		if m.DecryptError != nil || m.Event.Sender != ghost {
			continue
		}
		body := m.Event.Content.AsMessage().Body
		if seen[body] == nil {
			seen[body] = map[id.EventID]bool{}
		}
		seen[body][m.Event.ID] = true
	}
	for i := range n {
		body := fmt.Sprintf("%s-%d", prefix, i)
		if got := len(seen[body]); got != 1 {
			t.Errorf("%q reached Matrix as %d events, want 1", body, got)
		}
	}
	undecrypted(t, user, room)
}

// undecrypted fails t for every event of room that user could not decrypt and that was
// not decrypted later.
func undecrypted(t *testing.T, user *e2eeclient.Client, room id.RoomID) {
	t.Helper()
	failed := map[id.EventID]error{}
	for _, m := range user.Received(room) {
		if m.DecryptError != nil {
			failed[m.Event.ID] = m.DecryptError
		} else {
			delete(failed, m.Event.ID)
		}
	}
	for evtID, err := range failed {
		t.Errorf("event %s could not be decrypted: %v", evtID, err)
	}
}

// TestEncryptedDirectChatSynapse: 1:1 chats in encrypted rooms, both ways. A DM the Matrix
// user opens as an encrypted room, and a DM an XMPP user opens, which the bridge creates
// encrypted (encryption.default): the XMPP user gets the plaintext of every Matrix message
// once, the Matrix user decrypts every bridged message, once, from the ghost's
// cross-signed device. An encrypted attachment reaches XMPP as an upload link to the
// plaintext; one whose ciphertext does not match its hash gets a failure notice instead. An
// XMPP user's file reaches Matrix as an encrypted attachment.
func TestEncryptedDirectChatSynapse(t *testing.T) { onSynapse(t, testEncryptedDirectChat) }

func testEncryptedDirectChat(t *testing.T) {
	startEncryptedBridge(t)
	bob := newXClient(t, "bob")
	bobGhost := ghostOf(t, bob.bare().String())
	alice := newCryptoUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID())
	fromAlice := func(m *xmsg.Message) bool { return m.Type == "chat" && m.From.Bare().Equal(aliceJID) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	room, err := alice.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bobGhost}})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, time.Minute, "bob's ghost to join the encrypted DM", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice.Mautrix(), room, bobGhost)
	})

	t.Run("opened from matrix", func(t *testing.T) {
		sendMatrixToXMPP(t, alice, room, bob, "from-alice", fromAlice)
		sendXMPPToMatrix(t, bob, aliceJID, "chat", alice, room, bobGhost, "to-alice")
	})

	t.Run("encrypted file matrix to xmpp", func(t *testing.T) {
		plain := []byte("an encrypted attachment\nsecond line\n")
		ef := attachment.NewEncryptedFile()
		cipher := bytes.Clone(plain)
		ef.EncryptInPlace(cipher)
		up, err := alice.Mautrix().UploadBytesWithName(ctx, cipher, "application/octet-stream", "")
		if err != nil {
			t.Fatal(err)
		}
		const name = "secret-notes.txt"
		content := &event.MessageEventContent{MsgType: event.MsgFile, Body: name,
			Info: &event.FileInfo{MimeType: "text/plain", Size: len(plain)},
			File: &event.EncryptedFileInfo{EncryptedFile: *ef, URL: up.ContentURI.CUString()}}
		if _, err := alice.Send(ctx, room, event.EventMessage, content); err != nil {
			t.Fatal(err)
		}
		m := bob.waitMessage("the link to "+name, func(m *xmsg.Message) bool {
			return len(m.OOB) > 0 && strings.HasSuffix(m.OOB[0].URL, "/"+name)
		})
		if !fromAlice(m) || !strings.HasPrefix(m.Body, xs.UploadURL+"/") || m.Body != m.OOB[0].URL {
			t.Errorf("from %s body %q oob %q: want alice's puppet, a link to %s/… in body and OOB", m.From, m.Body, m.OOB[0].URL, xs.UploadURL)
		}
		if strings.Contains(m.Body, "mxc://") || strings.Contains(m.Body, up.ContentURI.FileID) {
			t.Errorf("body %q leaks the homeserver's media URL", m.Body)
		}
		if got := httpGet(t, m.OOB[0].URL); !bytes.Equal(got, plain) {
			t.Errorf("the link gives %q, want the plaintext %q", got, plain)
		}
	})

	t.Run("file xmpp to matrix is an encrypted attachment", func(t *testing.T) {
		const name = "from-bob.txt"
		plain := []byte("bob's file, which the homeserver must not read\n")
		res := bob.mustAsk("get", jid.MustParse(xs.UploadDomain), upload.Request(name, int64(len(plain)), "text/plain"))
		slot, err := upload.ParseSlot(res.Inner)
		if err != nil {
			t.Fatal(err)
		}
		if err := upload.Put(ctx, http.DefaultClient, slot, plain, "text/plain"); err != nil {
			t.Fatal(err)
		}
		bob.send(&xmsg.Message{ID: "bob-file", Type: "chat", To: aliceJID, Body: slot.GetURL, OOB: []xmsg.OOB{{URL: slot.GetURL}}})
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		m, err := alice.WaitMessage(wctx, room, func(m e2eeclient.Message) bool {
			return m.DecryptError == nil && m.Event.Sender == bobGhost && m.Event.Content.AsMessage().Body == name
		})
		if err != nil {
			t.Fatal(err)
		}
		if !m.Encrypted || m.Trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("the file's event: encrypted %v, trust %s", m.Encrypted, m.Trust)
		}
		c := m.Event.Content.AsMessage()
		if c.File == nil || c.URL != "" {
			t.Fatalf("file %+v url %q: want an encrypted attachment and no plaintext url", c.File, c.URL)
		}
		uri, err := c.File.URL.Parse()
		if err != nil {
			t.Fatal(err)
		}
		data, err := alice.Mautrix().DownloadBytes(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, plain[:10]) {
			t.Error("the media repository holds the plaintext")
		}
		if err := c.File.PrepareForDecryption(); err != nil {
			t.Fatal(err)
		}
		if err := c.File.DecryptInPlace(data); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, plain) || c.Info == nil || c.Info.MimeType != "text/plain" || c.Info.Size != len(plain) {
			t.Errorf("decrypted %q info %+v, want %q, text/plain of %d bytes", data, c.Info, plain, len(plain))
		}
	})

	t.Run("tampered encrypted file gets a failure notice", func(t *testing.T) {
		ef := attachment.NewEncryptedFile()
		cipher := []byte("a file whose ciphertext is changed on the way")
		ef.EncryptInPlace(cipher)
		cipher[0] ^= 0xff // the attachment's hash no longer matches
		up, err := alice.Mautrix().UploadBytesWithName(ctx, cipher, "application/octet-stream", "")
		if err != nil {
			t.Fatal(err)
		}
		const name = "tampered.txt"
		sent, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgFile, Body: name,
			File: &event.EncryptedFileInfo{EncryptedFile: *ef, URL: up.ContentURI.CUString()}})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		notice, err := alice.WaitMessage(wctx, room, func(m e2eeclient.Message) bool {
			c := m.Event.Content.AsMessage()
			return m.DecryptError == nil && c.MsgType == event.MsgNotice && c.RelatesTo != nil &&
				c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == sent
		})
		if err != nil {
			t.Fatalf("waiting for a failure notice: %v", err)
		}
		if body := notice.Event.Content.AsMessage().Body; !strings.Contains(body, "could not be decrypted") {
			t.Errorf("notice %q, want it to say the file could not be decrypted", body)
		}
		if !notice.Encrypted {
			t.Error("the failure notice arrived unencrypted")
		}
		if got := bob.messages(func(m *xmsg.Message) bool { return len(m.OOB) > 0 && strings.HasSuffix(m.OOB[0].URL, "/"+name) }); len(got) != 0 {
			t.Errorf("XMPP received a link to the tampered file: %q", got[0].Body)
		}
	})

	t.Run("opened from xmpp", func(t *testing.T) {
		carol := newCryptoUser(t, "carol")
		carolJID := puppetOf(t, carol.UserID())
		bob.send(&xmsg.Message{ID: "open-0", OriginID: "open-0", Type: "chat", To: carolJID, Body: "to-carol-0"})
		room, err := carol.AcceptInvite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		requireEncrypted(t, carol, room)
		for i := 1; i < encryptedMessages; i++ {
			body := fmt.Sprintf("to-carol-%d", i)
			bob.send(&xmsg.Message{ID: body, OriginID: body, Type: "chat", To: carolJID, Body: body})
		}
		waitDecrypted(t, carol, room, bobGhost, "to-carol", encryptedMessages)
		sendMatrixToXMPP(t, carol, room, bob, "from-carol", func(m *xmsg.Message) bool {
			return m.Type == "chat" && m.From.Bare().Equal(carolJID)
		})
	})
}

// TestEncryptedGroupChatSynapse: a MUC portal, which the bridge creates encrypted
// (encryption.default): the XMPP occupant gets the plaintext of every Matrix message once,
// the Matrix user decrypts every message of the occupant's ghost (the MUC's history
// included), once, from its cross-signed device.
func TestEncryptedGroupChatSynapse(t *testing.T) { onSynapse(t, testEncryptedGroupChat) }

func testEncryptedGroupChat(t *testing.T) {
	startEncryptedBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bob := newXClient(t, "bob")
	muc := jid.MustParse(unique("secret") + "@" + xs.MUCDomain)
	bob.joinMUC(muc, "Bob")
	bobGhost := ghostOf(t, bob.bare().String())
	// Sent before the portal exists: it comes to Matrix as the MUC's history.
	bob.send(&xmsg.Message{Type: "groupchat", To: muc, Body: "muc-history-0", ID: "muc-history-0"})
	bob.waitMessage("its reflection", func(m *xmsg.Message) bool { return m.ID == "muc-history-0" && m.Type == "groupchat" })

	alice := newCryptoUser(t, "alice")
	alias, err := mapper().RoomAlias(muc)
	if err != nil {
		t.Fatal(err)
	}
	join, err := alice.Mautrix().JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatalf("join %s: %v", alias, err)
	}
	portal := join.RoomID
	requireEncrypted(t, alice, portal)
	aliceOcc, _ := muc.WithResource("alice M")
	bob.waitPresence("alice's puppet joining as 'alice M'", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })

	waitDecrypted(t, alice, portal, bobGhost, "muc-history", 1)
	sendXMPPToMatrix(t, bob, muc, "groupchat", alice, portal, bobGhost, "muc-from-bob")
	sendMatrixToXMPP(t, alice, portal, bob, "muc-from-alice", func(m *xmsg.Message) bool {
		return m.Type == "groupchat" && m.From.Equal(aliceOcc)
	})
	// The MUC's reflection of alice's messages is not bridged back.
	for _, m := range alice.Received(portal) {
		if m.Event.Sender != alice.UserID() && strings.HasPrefix(m.Event.Content.AsMessage().Body, "muc-from-alice") {
			t.Errorf("alice's %q came back from %s", m.Event.Content.AsMessage().Body, m.Event.Sender)
		}
	}
}
