// Package jitsi gives Matrix rooms Jitsi meetings: a Matrix room is the place, a Jitsi
// conference is the meeting of that room, and only the room's members get in.
//
//   - "!meet" in a room (or "jitsi meet <room>" to the management bot) adds a Jitsi widget
//     the way Element Web adds one itself, pinned to the top; "!meet end" removes it. The
//     module's bot (@_jitsi by default) must be in the room with the power to add widgets.
//   - Membership-checked access: the module serves the HTTP contract of matrix-org's
//     matrix-user-verification-service, so Jitsi's Prosody module
//     (prosody-mod-auth-matrix-user-verification) works unchanged against it, without a
//     homeserver admin token: OpenID tokens are checked through the homeserver's
//     federation userinfo endpoint and membership with the room's state as the bot sees
//     it. For Jitsi's plain JWT authentication it mints tokens for members instead.
//   - Who is in the call: an XMPP account watches the conference MUC; the room gets a
//     state event with the current participants and a notice when the meeting starts and
//     ends.
//
// The protocol code is in sub-packages that know nothing of the appservice: access (the
// HTTP endpoints), muc (the XMPP watcher), widget (Element's widget events) and meeting
// (start and end of a meeting from the occupants).
package jitsi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/access"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/joinpage"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/meeting"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/muc"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/widget"
	"github.com/switchboard-matrix/switchboard/internal/loops"
	"github.com/switchboard-matrix/switchboard/registration"
)

// ID is the module's ID and config key.
const ID = "jitsi"

// Bridge is the Jitsi module.
type Bridge struct {
	cfg     Config // immutable
	watcher *muc.Watcher
	tracker *meeting.Tracker

	host     appservice.Host
	bot      *appservice.Intent
	loops    loops.Group
	server   *http.Server
	httpAddr string // the bound address of the HTTP listener
	secret   []byte // conference name secret (auth none and jwt), from the store

	mu       sync.Mutex                  // guards verified
	verified map[string][]verifiedMember // conference → members verified lately
	// emitMu keeps the Matrix side of the tracker's events in order.
	emitMu sync.Mutex
	writer participantsWriter
}

// verifiedMember is a Matrix user whose OpenID token was checked for a conference: a
// participant with that display name is taken to be them.
type verifiedMember struct {
	user id.UserID
	name string
	at   time.Time
}

var (
	_ appservice.Module             = (*Bridge)(nil)
	_ appservice.RoomCommandHandler = (*Bridge)(nil)
	_ appservice.CommandHandler     = (*Bridge)(nil)
	_ appservice.StatusReporter     = (*Bridge)(nil)
)

// New validates cfg and returns the module; it does no I/O.
func New(cfg Config) (*Bridge, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, verified: map[string][]verifiedMember{}}
	b.writer = participantsWriter{pending: map[id.RoomID]pendingState{}, kick: make(chan struct{}, 1)}
	if cfg.XMPP.Address != "" {
		w, err := muc.New(muc.Config{
			Address: cfg.XMPP.Address, JID: cfg.XMPP.JID, Password: cfg.XMPP.Password, Nick: cfg.XMPP.Nick,
			TLS: cfg.XMPP.TLS, CAFile: cfg.XMPP.CAFile, ServerName: cfg.XMPP.TLSServerName, Ignore: cfg.XMPP.Ignore,
		}, cfg.MUCDomain, (*occupantHandler)(b))
		if err != nil {
			return nil, fmt.Errorf("modules.jitsi.xmpp: %w", err)
		}
		b.watcher = w
	}
	b.tracker = meeting.NewTracker(cfg.EndGrace.Std(), nil, b.onMeetingEvent)
	return b, nil
}

// ID implements appservice.Module.
func (b *Bridge) ID() string { return ID }

// Namespaces implements appservice.Module: the module's bot.
func (b *Bridge) Namespaces() registration.Namespaces {
	return registration.Namespaces{
		Users: []registration.Pattern{{Localpart: regexp.QuoteMeta(b.cfg.Bot.Localpart), Exclusive: true}},
	}
}

// RoomCommands implements appservice.RoomCommandHandler.
func (b *Bridge) RoomCommands() []string { return []string{"!meet"} }

// Start implements appservice.Module: the bot's profile, the HTTP listener, the watcher.
func (b *Bridge) Start(ctx context.Context, host appservice.Host) error {
	b.host = host
	bot, err := host.Ghost(b.cfg.Bot.Localpart)
	if err != nil {
		return fmt.Errorf("jitsi: %w", err)
	}
	b.bot = bot
	if err := bot.SetDisplayName(ctx, b.cfg.Bot.DisplayName); err != nil {
		return fmt.Errorf("jitsi: failed to set up the bot %s: %w", bot.UserID(), err)
	}
	if b.secret, err = b.conferenceSecret(ctx); err != nil {
		return err
	}
	b.loops.Start(ctx)
	if b.cfg.Auth != AuthNone {
		if err := b.startHTTP(ctx); err != nil {
			return err
		}
	}
	b.loops.Go(b.runParticipantsWriter)
	if b.watcher != nil {
		if err := b.restoreMeetings(ctx); err != nil {
			return err
		}
		b.loops.Go(func(ctx context.Context) {
			if err := b.watcher.Run(ctx); err != nil && ctx.Err() == nil {
				zerolog.Ctx(ctx).Error().Err(err).Msg("The Jitsi conference watcher stopped")
			}
		})
	}
	return nil
}

// Stop implements appservice.Module.
func (b *Bridge) Stop(ctx context.Context) error {
	b.tracker.Close() // a meeting going on stays recorded: the next start picks it up
	var errs []error
	if b.server != nil {
		if err := b.server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.loops.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jitsi: stop: %w", err)
	}
	return nil
}

// HTTPAddr is the bound address of the verification endpoints ("" without them).
func (b *Bridge) HTTPAddr() string { return b.httpAddr }

// BotUserID is the module's bot.
func (b *Bridge) BotUserID() id.UserID { return b.bot.UserID() }

// Status implements appservice.StatusReporter.
func (b *Bridge) Status(context.Context) appservice.ModuleStatus {
	st := appservice.ModuleStatus{Connected: true, State: "Jitsi at " + b.cfg.URL + ", access: " + b.cfg.Auth}
	if b.watcher != nil {
		ok, err := b.watcher.Connected()
		if ok {
			st.State += ", watching the conferences as " + b.cfg.XMPP.JID
		} else {
			st.Connected = false
			st.State += ", not connected to Jitsi's XMPP server"
		}
		if err != nil {
			st.LastError = err.Error()
		}
	}
	return st
}

// startHTTP listens for the verification endpoints.
func (b *Bridge) startHTTP(ctx context.Context) error {
	acfg := access.Config{
		ServerName:    b.host.Domain(),
		HomeserverURL: b.cfg.OpenIDURL,
		AuthToken:     b.cfg.UVS.AuthToken,
		Conference:    b.conferenceFor,
		MeetURL:       b.cfg.URL,
		PerIP:         access.Rate{PerSecond: b.cfg.RateLimit.PerIP.PerSecond, Burst: b.cfg.RateLimit.PerIP.Burst},
		PerUser:       access.Rate{PerSecond: b.cfg.RateLimit.PerUser.PerSecond, Burst: b.cfg.RateLimit.PerUser.Burst},
		OnVerified:    b.rememberVerified,
	}
	if b.cfg.Auth == AuthJWT {
		jc, err := b.jwtConfig()
		if err != nil {
			return err
		}
		acfg.JWT = jc
	}
	h, err := access.New(acfg, roomState{b})
	if err != nil {
		return fmt.Errorf("jitsi: %w", err)
	}
	ln, err := net.Listen("tcp", b.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("jitsi: failed to listen on %s: %w", b.cfg.HTTP.Listen, err)
	}
	b.httpAddr = ln.Addr().String()
	log := zerolog.Ctx(ctx).With().Str("module", ID).Logger()
	lctx := log.WithContext(context.WithoutCancel(ctx))
	b.server = &http.Server{
		Handler:           joinpage.Handler(h),
		BaseContext:       func(net.Listener) context.Context { return lctx },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
	}
	b.loops.Go(func(ctx context.Context) {
		if err := b.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			zerolog.Ctx(ctx).Error().Err(err).Msg("The Jitsi verification endpoints stopped")
		}
	})
	return nil
}

// conferenceSecret is the secret that makes conference names unguessable, made once and
// kept in the store.
func (b *Bridge) conferenceSecret(ctx context.Context) ([]byte, error) {
	const key = "secret"
	st := b.host.Store()
	v, err := st.GetKV(ctx, key)
	if err == nil && len(v) == 64 {
		return []byte(v), nil
	} else if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return nil, fmt.Errorf("jitsi: failed to read the conference secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	v = fmt.Sprintf("%x", raw)
	if err := st.PutKV(ctx, key, v); err != nil {
		return nil, fmt.Errorf("jitsi: failed to store the conference secret: %w", err)
	}
	return []byte(v), nil
}

// conferenceFor is the conference name of a room: stable per room. With auth uvs it is
// what the Prosody module expects (it decodes the room ID from it; every join is checked
// for membership), otherwise an HMAC of the room ID that nobody can derive from the ID.
func (b *Bridge) conferenceFor(roomID id.RoomID) string {
	if b.cfg.Auth == AuthUVS {
		return widget.ConferenceForUVS(roomID)
	}
	return widget.ConferenceHMAC(b.secret, roomID)
}

// rememberVerified notes a member whose token was checked for a room (access.OnVerified).
func (b *Bridge) rememberVerified(_ context.Context, roomID id.RoomID, user id.UserID, name string) {
	conf := mucName(b.conferenceFor(roomID))
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.verified[conf][:0:0]
	for _, v := range b.verified[conf] {
		if now.Sub(v.at) < 15*time.Minute && v.user != user {
			list = append(list, v)
		}
	}
	b.verified[conf] = append(list, verifiedMember{user: user, name: name, at: now})
}

// verifiedUser returns the Matrix user verified lately for conf under display name name.
func (b *Bridge) verifiedUser(conf, name string) id.UserID {
	b.mu.Lock()
	defer b.mu.Unlock()
	var found id.UserID
	for _, v := range b.verified[conf] {
		if v.name == name && name != "" {
			if found != "" && found != v.user {
				return "" // two members with that name: unknown
			}
			found = v.user
		}
	}
	return found
}

// jwtConfig is the token minting setup of auth jwt: the secret, or the RSA key read from
// its file.
func (b *Bridge) jwtConfig() (*access.JWTConfig, error) {
	j := b.cfg.JWT
	out := &access.JWTConfig{Issuer: j.AppID, Audience: j.Audience, Subject: j.Subject, KeyID: j.KeyID, TTL: j.TTL.Std()}
	if j.Secret != "" {
		out.Secret = []byte(j.Secret)
		return out, nil
	}
	data, err := os.ReadFile(j.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("modules.jitsi.jwt.private_key_file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("modules.jitsi.jwt.private_key_file: no PEM block in %s", j.PrivateKeyFile)
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		out.PrivateKey = key
		return out, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("modules.jitsi.jwt.private_key_file: not an RSA private key: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("modules.jitsi.jwt.private_key_file: a %T, want an RSA key", key)
	}
	out.PrivateKey = rsaKey
	return out, nil
}
