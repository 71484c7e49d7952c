package email

import (
	"cmp"
	"context"
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

// Bounds of one look into the folder: the sizes of up to fetchBatch mails are asked at
// once, and whole mails are fetched in groups of at most fetchBytes (a larger mail alone),
// so that a folder of large mails is never held in memory at once.
const (
	fetchBatch = 50
	fetchBytes = 16 << 20
)

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
		m.b.setStatus(m.cfg.Name, stateReconnecting+err.Error())
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
	tlsCfg, err := tlsConfig(s)
	if err != nil {
		return nil, err
	}
	opts.TLSConfig = tlsCfg
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
	m.b.setStatus(m.cfg.Name, stateConnected)
	idle := c.Caps().Has(imap.CapIdle)
	for {
		if err := m.sync(ctx, c, sel.UIDValidity); err != nil {
			return err
		}
		m.b.checked(m.cfg.Name, time.Now())
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
	m.b.setPending(m.cfg.Name, len(uids))
	for len(uids) > 0 {
		n := min(len(uids), fetchBatch)
		batch := uids[:n]
		uids = uids[n:]
		if err := m.fetchBatch(ctx, c, validity, batch); err != nil {
			return err
		}
	}
	return nil
}

// fetchBatch bridges the mails of batch (in UID order): first their sizes, then the
// mails in groups bounded by size; a mail over max_mail_bytes is not parsed.
func (m *mailbox) fetchBatch(ctx context.Context, c *imapclient.Client, validity uint32, batch []imap.UID) error {
	infos, err := c.Fetch(imap.UIDSetNum(batch...), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		return fmt.Errorf("email: fetch sizes: %w", err)
	}
	slices.SortFunc(infos, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
	for len(infos) > 0 {
		// A group: the next mails up to fetchBytes, at least one; an oversize mail alone.
		n, total := 0, int64(0)
		for n < len(infos) && infos[n].RFC822Size <= m.b.cfg.MaxMailBytes && (n == 0 || total+infos[n].RFC822Size <= fetchBytes) {
			total += infos[n].RFC822Size
			n++
		}
		if n == 0 {
			if err := m.postOversize(ctx, c, validity, infos[0]); err != nil {
				return err
			}
			if err := m.advance(ctx, validity, infos[0]); err != nil {
				return err
			}
			infos = infos[1:]
			continue
		}
		group := infos[:n]
		infos = infos[n:]
		set := make([]imap.UID, len(group))
		for i, info := range group {
			set[i] = info.UID
		}
		msgs, err := c.Fetch(imap.UIDSetNum(set...), &imap.FetchOptions{
			UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			return fmt.Errorf("email: fetch: %w", err)
		}
		slices.SortFunc(msgs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
		byUID := map[imap.UID][]byte{}
		for _, msg := range msgs {
			if len(msg.BodySection) > 0 {
				byUID[msg.UID] = msg.BodySection[0].Bytes
			}
		}
		msgs = nil
		for _, info := range group {
			raw, ok := byUID[info.UID]
			delete(byUID, info.UID)
			if ok && int64(len(raw)) > m.b.cfg.MaxMailBytes {
				// The server's size was wrong: the mail is not parsed all the same.
				if err := m.postOversize(ctx, c, validity, info); err != nil {
					return err
				}
			} else if ok {
				if err := m.post(ctx, validity, info.UID, raw); err != nil {
					return err
				}
			}
			// A mail expunged meanwhile (no body) is passed over.
			if err := m.advance(ctx, validity, info); err != nil {
				return err
			}
		}
	}
	return nil
}

// advance moves the cursor past a mail that is bridged (durably queued).
func (m *mailbox) advance(ctx context.Context, validity uint32, info *imapclient.FetchMessageBuffer) error {
	m.b.addPending(m.cfg.Name, -1)
	if err := m.b.host.Store().PutKV(ctx, m.cursorKey(), fmt.Sprintf("%d/%d", validity, info.UID)); err != nil {
		return err
	}
	if !info.InternalDate.IsZero() {
		return m.b.host.Store().PutKV(ctx, m.cursorKey()+":date", info.InternalDate.UTC().Format(time.RFC3339))
	}
	return nil
}
