package case116117

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

// link is one ELS's UCRM client with its bot user, admin room and three loops: the
// receiver (long-poll, store, commit), the processor (stored messages into rooms) and the
// sender (stored answers and handovers to the UCRM).
type link struct {
	b      *Bot
	cfg    *LinkConfig
	client *ucri.Client
	key    *rsa.PrivateKey // nil: messages go out unsigned

	wakeProcess chan struct{}
	wakeSend    chan struct{}

	// caseMu serializes the changes of cases (read, change, write): received messages,
	// dispatchers' commands and failed sends.
	caseMu sync.Mutex

	mu        sync.Mutex
	state     string
	lastErr   string
	down      bool // the UCRM is unreachable; reported once in the admin room
	registry  map[string]ucri.CommParticipant
	regAt     time.Time
	adminRoom id.RoomID
	workRooms []id.RoomID // joined rooms of cfg.Rooms

	// rxNext is the local sequence number of the next received message (rxKey); owned by
	// the receive loop, 0 until read from the store.
	rxNext int64
}

func newLink(b *Bot, cfg *LinkConfig) *link {
	return &link{b: b, cfg: cfg, state: "starting", wakeProcess: make(chan struct{}, 1), wakeSend: make(chan struct{}, 1)}
}

// init reads the signing key and certificates and builds the client.
func (l *link) init() error {
	key := "modules.case116117.links[" + l.cfg.Name + "]"
	if l.cfg.SigningKey != "" {
		pemBytes, err := os.ReadFile(l.cfg.SigningKey)
		if err != nil {
			return fmt.Errorf("%s.signing_key: %w", key, err)
		}
		if l.key, err = ucri.ParsePrivateKeyPEM(pemBytes); err != nil {
			return fmt.Errorf("%s.signing_key: %w", key, err)
		}
	}
	var tlsConf *tls.Config
	if l.cfg.UCRM.ClientCert != "" || l.cfg.UCRM.CAFile != "" {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		if l.cfg.UCRM.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(l.cfg.UCRM.ClientCert, l.cfg.UCRM.ClientKey)
			if err != nil {
				return fmt.Errorf("%s.ucrm.client_cert: %w", key, err)
			}
			tlsConf.Certificates = []tls.Certificate{cert}
		}
		if l.cfg.UCRM.CAFile != "" {
			pemBytes, err := os.ReadFile(l.cfg.UCRM.CAFile)
			if err != nil {
				return fmt.Errorf("%s.ucrm.ca_file: %w", key, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pemBytes) {
				return fmt.Errorf("%s.ucrm.ca_file: no certificate in %s", key, l.cfg.UCRM.CAFile)
			}
			tlsConf.RootCAs = pool
		}
	}
	c, err := ucri.NewClient(ucri.ClientConfig{
		BaseURL: l.cfg.UCRM.URL, Username: l.cfg.UCRM.Username, Password: l.cfg.UCRM.Password,
		TLS: tlsConf, UserAgent: "Switchboard case116117",
	})
	if err != nil {
		return fmt.Errorf("%s.ucrm: %w", key, err)
	}
	l.client = c
	return nil
}

func (l *link) botID() id.UserID {
	return id.NewUserID(l.b.cfg.Prefix+l.cfg.Name, l.b.host.Domain())
}

func (l *link) bot() (*appservice.Intent, error) {
	return l.b.host.Ghost(l.b.cfg.Prefix + l.cfg.Name)
}

func (l *link) status() (state, lastErr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.lastErr
}

func (l *link) log(ctx context.Context) *zerolog.Logger {
	lg := zerolog.Ctx(ctx).With().Str("module", ID).Str("link", l.cfg.Name).Logger()
	return &lg
}

// run sets the link up in Matrix, then runs its loops until ctx ends.
func (l *link) run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := l.setup(ctx)
		if err == nil {
			break
		}
		l.log(ctx).Warn().Err(err).Msg("Setting up the link in Matrix failed; retrying")
		if !sleep(ctx, backoff(attempt)) {
			return
		}
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){l.receiveLoop, l.processLoop, l.sendLoop, l.sweepOrphansLoop, l.backfillBridgeInfo} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Wait()
}

// setup registers the link's bot and makes its admin room.
func (l *link) setup(ctx context.Context) error {
	bot, err := l.bot()
	if err != nil {
		return err
	}
	if err := bot.EnsureRegistered(ctx); err != nil {
		return err
	}
	if err := bot.SetDisplayName(ctx, l.cfg.DisplayName); err != nil {
		return err
	}
	invite := toUserIDs(l.cfg.Admins)
	if len(invite) == 0 {
		invite = toUserIDs(l.cfg.Dispatchers)
	}
	room, err := l.ensureRoom(ctx, portalKey{link: l.cfg.Name}, l.b.cfg.Prefix+l.cfg.Name, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: l.cfg.DisplayName + " (Leitstelle " + l.cfg.OID + ")",
		Topic:  "UCRI2-Verbindung " + l.cfg.Name + ": neue Fälle, Übergaben und Störungen. !help zeigt die Befehle.",
		Invite: invite,
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.adminRoom = room
	l.mu.Unlock()
	l.joinWorkRooms(ctx)
	return nil
}

func (l *link) admin() id.RoomID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.adminRoom
}

func (l *link) setStatus(ctx context.Context, state string, err error) {
	l.mu.Lock()
	l.state = state
	if err != nil {
		l.lastErr = err.Error()
	} else {
		l.lastErr = "" // as the email bridge's: the error of the state the link is in
	}
	wasDown := l.down
	l.down = err != nil
	l.mu.Unlock()
	// An outage is reported once when it starts and once when it ends, each keyed by the
	// time it started so a restart does not repeat an old report.
	switch {
	case err != nil && !wasDown:
		l.notify(ctx, l.admin(), fmt.Sprintf("outage:%d", time.Now().UnixNano()),
			"⚠️ Die UCRM ist nicht erreichbar: "+userText(err)+". Empfangen und Senden werden wiederholt; nichts geht verloren.", "")
	case err == nil && wasDown:
		l.notify(ctx, l.admin(), fmt.Sprintf("outage-end:%d", time.Now().UnixNano()),
			"✅ Die UCRM ist wieder erreichbar.", "")
		l.wake(l.wakeSend) // what waits to be sent goes now, not after the sender's backoff
	}
}

// receiveLoop long-polls the UCRM, stores every message and only then commits it. After a
// failure it tries again within receiveBackoffMax, and its first try does not wait for
// messages (maxDelay 0), so that the UCRM's return is noticed, announced and its queue
// picked up at once.
func (l *link) receiveLoop(ctx context.Context) {
	longPoll, probe := int(time.Duration(l.cfg.MaxDelay).Seconds()), 0
	for attempt := 0; ctx.Err() == nil; {
		delay := &longPoll
		if attempt > 0 {
			delay = &probe
		}
		resp, bad, err := l.client.Receive(ctx, ucri.ReceiveRequest{Destinations: []string{l.cfg.OID}, MaxMessages: 20, MaxDelay: delay})
		if err == nil {
			err = l.store(ctx, resp, bad)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log(ctx).Warn().Err(err).Msg("Receiving from the UCRM failed")
			l.setStatus(ctx, "reconnecting", err)
			if !sleep(ctx, receiveBackoff(attempt)) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		l.setStatus(ctx, "connected", nil)
	}
}

// stored is a received message as the store keeps it until it is processed.
type stored struct {
	Message json.RawMessage `json:"message,omitempty"`
	At      time.Time       `json:"at"`
	// Broken is why a message of the batch could not be read; it is reported, not applied.
	Broken    string `json:"broken,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Seq is the UCRM's sequenceId at receive time, for diagnostics only.
	Seq int64 `json:"seq,omitempty"`
}

// store writes every message of a receive answer, then commits the highest sequence ID.
//
// The rows are keyed by a local sequence (rxKey), never by the UCRM's sequenceId: a UCRM
// that restarts numbers from 1 again, and a stored message not yet processed must not be
// overwritten or deleted by a newer one with the same number. The local sequence is
// reserved in the store before the rows are written, so it never goes back, also after a
// crash. A message the UCRM delivers again (no commit reached it) gets a second row; the
// processor skips it by its messageId.
func (l *link) store(ctx context.Context, resp *ucri.ReceiveResponse, bad []ucri.MessageError) error {
	if resp == nil {
		resp = &ucri.ReceiveResponse{}
	}
	n := len(resp.Messages) + len(bad)
	if n == 0 {
		return nil
	}
	var last int64 = -1
	rows := make([]string, 0, n)
	for _, b := range bad {
		if b.Destination != l.cfg.OID {
			return fmt.Errorf("case116117: the UCRM delivered an unreadable message for %q to %q", b.Destination, l.cfg.OID)
		}
		row, _ := json.Marshal(stored{Broken: b.Error(), MessageID: b.MessageID, Seq: b.SequenceID, At: time.Now().UTC()})
		rows = append(rows, string(row))
		last = max(last, b.SequenceID)
	}
	for i := range resp.Messages {
		m := &resp.Messages[i]
		if m.Destination != l.cfg.OID {
			return fmt.Errorf("case116117: the UCRM delivered a message for %q to %q", m.Destination, l.cfg.OID)
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		row, _ := json.Marshal(stored{Message: raw, Seq: m.SequenceID, At: time.Now().UTC()})
		rows = append(rows, string(row))
		last = max(last, m.SequenceID)
	}
	first, err := l.reserveRx(ctx, int64(len(rows)))
	if err != nil {
		return err
	}
	st := l.b.host.Store()
	for i, row := range rows {
		if err := st.PutKV(ctx, rxKey(l.cfg.Name, first+int64(i)), row); err != nil {
			return err
		}
	}
	l.wake(l.wakeProcess)
	if err := l.client.Commit(ctx, ucri.MessageRef{Destination: l.cfg.OID, SequenceID: last}); err != nil {
		return fmt.Errorf("case116117: commit: %w", err)
	}
	return nil
}

// reserveRx reserves n local sequence numbers for received messages and returns the
// first. The reservation is stored before it is used; numbers lost to a crash leave a gap.
func (l *link) reserveRx(ctx context.Context, n int64) (int64, error) {
	st := l.b.host.Store()
	if l.rxNext == 0 {
		next := int64(1)
		v, err := st.GetKV(ctx, rxSeqKey(l.cfg.Name))
		switch {
		case err == nil:
			if next, err = strconv.ParseInt(v, 10, 64); err != nil || next < 1 {
				return 0, fmt.Errorf("case116117: stored %s is %q, not a positive number", rxSeqKey(l.cfg.Name), v)
			}
		case !errors.Is(err, appservice.ErrNotFound):
			return 0, err
		}
		l.rxNext = next
	}
	first := l.rxNext
	if err := st.PutKV(ctx, rxSeqKey(l.cfg.Name), strconv.FormatInt(first+n, 10)); err != nil {
		return 0, err
	}
	l.rxNext = first + n
	return first, nil
}

func (l *link) wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// processLoop turns stored messages into Matrix events, in the order received.
func (l *link) processLoop(ctx context.Context) {
	st := l.b.host.Store()
	for attempt := 0; ctx.Err() == nil; {
		rows, err := l.pendingRx(ctx, 50)
		for _, row := range rows {
			if err = l.processStored(ctx, row.Value); err != nil {
				break
			}
			if err = st.DeleteKV(ctx, row.Key); err != nil {
				break
			}
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			l.log(ctx).Warn().Err(err).Msg("Processing a received message failed; retrying")
			if !sleep(ctx, backoff(attempt)) {
				return
			}
			attempt++
		case len(rows) == 50:
			attempt = 0
		default:
			attempt = 0
			select {
			case <-ctx.Done():
				return
			case <-l.wakeProcess:
			case <-time.After(time.Minute):
			}
		}
	}
}

// pendingRx returns up to limit stored received messages, oldest first: rows of the
// legacy keys (by the UCRM's sequenceId, written before the local sequence existed) come
// first, since nothing is written under them any more. Fewer than limit rows means all.
func (l *link) pendingRx(ctx context.Context, limit int) ([]appservice.KV, error) {
	st := l.b.host.Store()
	rows, err := st.ListKV(ctx, legacyInPrefix(l.cfg.Name), limit)
	if err != nil || len(rows) == limit {
		return rows, err
	}
	more, err := st.ListKV(ctx, rxPrefix(l.cfg.Name), limit-len(rows))
	return append(rows, more...), err
}

// registryEntry returns the registry entry of a participant (ok false: not registered),
// asking the UCRM when the cached registry is older than maxAge.
func (l *link) registryEntry(ctx context.Context, oid string, maxAge time.Duration) (ucri.CommParticipant, bool, error) {
	l.mu.Lock()
	p, ok := l.registry[oid]
	fresh := l.registry != nil && time.Since(l.regAt) < maxAge
	l.mu.Unlock()
	if fresh {
		return p, ok, nil
	}
	list, err := l.client.Registry(ctx)
	if err != nil && len(list) == 0 {
		return ucri.CommParticipant{}, false, err
	} else if err != nil {
		// One bad entry must not hide the others: use the valid ones, say what was wrong.
		l.log(ctx).Warn().Err(err).Msg("The UCRM's registry has invalid entries; they are left out")
	}
	reg := make(map[string]ucri.CommParticipant, len(list))
	for _, p := range list {
		reg[p.ID] = p
	}
	l.mu.Lock()
	l.registry, l.regAt = reg, time.Now()
	l.mu.Unlock()
	p, ok = reg[oid]
	return p, ok, nil
}

// peerName is how another centre is shown: its short name and OID.
func (l *link) peerName(ctx context.Context, oid string) string {
	if p, ok, err := l.registryEntry(ctx, oid, time.Hour); err == nil && ok {
		name := p.OperatorName
		if name == "" {
			name = p.SystemName
		}
		return name + " (" + oid + ")"
	}
	return oid
}

// notify posts a notice from the link's bot through the outbox, once per remoteID.
func (l *link) notify(ctx context.Context, room id.RoomID, remoteID, text, html string) {
	if room == "" {
		return
	}
	if err := l.post(ctx, room, remoteID, text, html); err != nil {
		l.log(ctx).Error().Err(err).Str("remote_id", remoteID).Msg("Could not queue a notice")
	}
}

// reply posts a notice in reply to evt, once per kind and event.
func (l *link) reply(ctx context.Context, evt *event.Event, kind, text string) error {
	return l.b.host.Enqueue(ctx, appservice.Message{
		RoomID: evt.RoomID, Sender: l.botID(), RemoteID: l.cfg.Name + ":" + kind + ":" + string(evt.ID),
		Content: &event.MessageEventContent{
			MsgType: event.MsgNotice, Body: text,
			RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: evt.ID}},
		},
	})
}

func (l *link) post(ctx context.Context, room id.RoomID, remoteID, text, html string) error {
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text}
	if html != "" {
		content.Format, content.FormattedBody = event.FormatHTML, html
	}
	return l.b.host.Enqueue(ctx, appservice.Message{
		RoomID: room, Sender: l.botID(), RemoteID: l.cfg.Name + ":" + remoteID, Content: content,
	})
}

// receiveBackoffMax caps the wait between receive attempts while the UCRM is unreachable:
// a try costs one failed connection, and cases must be picked up soon after it returns.
const receiveBackoffMax = 5 * time.Second

// receiveBackoff is the wait before receive attempt attempt+1: from 0.25–0.5 s, doubling,
// at most receiveBackoffMax.
func receiveBackoff(attempt int) time.Duration {
	d := min(500*time.Millisecond<<min(attempt, 7), receiveBackoffMax)
	return d/2 + rand.N(d/2+1)
}

func backoff(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt, 7)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

// sleepOrWake is sleep that also ends early when wake is signalled.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var errInvalid = errors.New("case116117: invalid message")
