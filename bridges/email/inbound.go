package email

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// mailbox reads one mailbox's folder and posts new mail to its room.
type mailbox struct {
	b    *Bridge
	cfg  MailboxConfig
	room id.RoomID
}

// fetchBatch is how many mails are fetched at once.
const fetchBatch = 50

// run keeps a session with the IMAP server until ctx ends, reconnecting with backoff.
func (m *mailbox) run(ctx context.Context) {
	log := zerolog.Ctx(ctx).With().Str("mailbox", m.cfg.Name).Logger()
	ctx = log.WithContext(ctx)
	wait := time.Second
	for ctx.Err() == nil {
		room, err := m.b.ensureRoom(ctx, &m.cfg)
		if err == nil {
			m.room = room
			err = m.session(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		m.b.setStatus(m.cfg.Name, "reconnecting: "+err.Error())
		log.Warn().Err(err).Dur("retry_in", wait).Msg("Mailbox session ended")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Minute)
	}
}

// dialIMAP connects as the server's TLS setting says.
func dialIMAP(s ServerConfig, opts *imapclient.Options) (*imapclient.Client, error) {
	host, _, _ := strings.Cut(s.Address, ":")
	opts.TLSConfig = &tls.Config{ServerName: host, InsecureSkipVerify: s.InsecureSkipVerify} // #nosec G402 -- opt-in for test servers
	switch s.TLS {
	case "implicit":
		return imapclient.DialTLS(s.Address, opts)
	case "none":
		return imapclient.DialInsecure(s.Address, opts)
	default:
		return imapclient.DialStartTLS(s.Address, opts)
	}
}

// session logs in, selects the folder and bridges new mail, waiting with IDLE (or the poll
// interval) in between, until an error or ctx ends.
func (m *mailbox) session(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		},
	}}
	c, err := dialIMAP(m.cfg.IMAP, opts)
	if err != nil {
		return fmt.Errorf("email: connect to %s: %w", m.cfg.IMAP.Address, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.Login(m.cfg.IMAP.Username, m.cfg.IMAP.Password).Wait(); err != nil {
		return fmt.Errorf("email: log in to %s as %s: %w", m.cfg.IMAP.Address, m.cfg.IMAP.Username, err)
	}
	sel, err := c.Select(m.cfg.Folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("email: select %s: %w", m.cfg.Folder, err)
	}
	m.b.setStatus(m.cfg.Name, "connected")
	idle := c.Caps().Has(imap.CapIdle)
	for {
		if err := m.sync(ctx, c, sel.UIDValidity); err != nil {
			return err
		}
		var cmd *imapclient.IdleCommand
		if idle {
			if cmd, err = c.Idle(); err != nil {
				return fmt.Errorf("email: idle: %w", err)
			}
		}
		select {
		case <-wake:
		case <-time.After(m.cfg.PollInterval.Std()):
		case <-ctx.Done():
		}
		if cmd != nil {
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("email: end idle: %w", err)
			}
			if err := cmd.Wait(); err != nil {
				return fmt.Errorf("email: idle: %w", err)
			}
		} else if err := c.Noop().Wait(); err != nil {
			return fmt.Errorf("email: noop: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// cursorKey keeps "UIDVALIDITY/last UID" of the mailbox: the last mail durably queued.
func (m *mailbox) cursorKey() string { return "cursor:" + m.cfg.Name }

func (m *mailbox) cursor(ctx context.Context) (validity uint32, last imap.UID, err error) {
	raw, err := m.b.host.Store().GetKV(ctx, m.cursorKey())
	if err != nil || raw == "" {
		return 0, 0, nil
	}
	v, u, _ := strings.Cut(raw, "/")
	v64, err1 := strconv.ParseUint(v, 10, 32)
	u64, err2 := strconv.ParseUint(u, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("email: corrupt cursor %q", raw)
	}
	return uint32(v64), imap.UID(u64), nil
}

// sync bridges every mail after the cursor, in UID order, moving the cursor after each.
// A changed UIDVALIDITY starts over from the first mail; what was bridged already is
// recognised by its Message-ID.
func (m *mailbox) sync(ctx context.Context, c *imapclient.Client, validity uint32) error {
	log := zerolog.Ctx(ctx)
	have, last, err := m.cursor(ctx)
	if err != nil {
		return err
	}
	criteria := &imap.SearchCriteria{}
	first := have == 0
	if have != validity {
		if !first {
			// The old UIDs mean nothing now: read again what arrived since the last bridged
			// mail (a day of margin for clock and time zone skew), recognised by Message-ID.
			since, _ := m.b.host.Store().GetKV(ctx, m.cursorKey()+":date")
			t, err := time.Parse(time.RFC3339, since)
			if err != nil {
				t = time.Now().AddDate(0, 0, -7)
			}
			criteria.Since = t.AddDate(0, 0, -1)
			log.Warn().Uint32("old", have).Uint32("new", validity).Time("since", criteria.Since).Msg("UIDVALIDITY changed; resynchronising by Message-ID")
		}
		last = 0
	}
	var set imap.UIDSet
	set.AddRange(last+1, 0)
	criteria.UID = []imap.UIDSet{set}
	data, err := c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		return fmt.Errorf("email: search: %w", err)
	}
	var uids []imap.UID
	for _, u := range data.AllUIDs() {
		if u > last {
			uids = append(uids, u)
		}
	}
	slices.Sort(uids)
	if first {
		// A new link: the folder's history is not poured into the room, only its last
		// mails. The cursor is written at once, so that the link is not "new" again
		// (skipping more history) until its first mail is bridged.
		var skippedTo imap.UID
		if keep := *m.cfg.ImportHistory; keep >= 0 && len(uids) > keep {
			log.Info().Int("skipped", len(uids)-keep).Msg("Linking a mailbox: bridging only its latest mails")
			skippedTo = uids[len(uids)-keep-1]
			uids = uids[len(uids)-keep:]
		}
		if err := m.b.host.Store().PutKV(ctx, m.cursorKey(), fmt.Sprintf("%d/%d", validity, skippedTo)); err != nil {
			return err
		}
	}
	for len(uids) > 0 {
		n := min(len(uids), fetchBatch)
		batch := uids[:n]
		uids = uids[n:]
		msgs, err := c.Fetch(imap.UIDSetNum(batch...), &imap.FetchOptions{
			UID: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			return fmt.Errorf("email: fetch: %w", err)
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return int(a.UID) - int(b.UID) })
		for _, msg := range msgs {
			var raw []byte
			if len(msg.BodySection) > 0 {
				raw = msg.BodySection[0].Bytes
			}
			if err := m.post(ctx, validity, msg.UID, raw); err != nil {
				return err
			}
			if err := m.b.host.Store().PutKV(ctx, m.cursorKey(), fmt.Sprintf("%d/%d", validity, msg.UID)); err != nil {
				return err
			}
			if !msg.InternalDate.IsZero() {
				if err := m.b.host.Store().PutKV(ctx, m.cursorKey()+":date", msg.InternalDate.UTC().Format(time.RFC3339)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
