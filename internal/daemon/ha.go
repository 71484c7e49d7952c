package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
)

// exitLeadLost is the exit status of a leader that lost its lock session: it stops at
// once, before a standby can act (its service manager starts it again, as a standby).
const exitLeadLost = 75

// lead makes this process the leader of its high-availability group: it waits as a
// standby (readiness "standby", the transaction endpoint answering 503 with Retry-After)
// until it holds the instance lock, then waits the fence delay, and returns the
// leadership. A leadership lost later ends the process (selfFence).
func lead(ctx context.Context, cfg *config.Config, st *store.Store, ops *opsServer, reg *prometheus.Registry) (*store.Leadership, error) {
	log := zerolog.Ctx(ctx)
	leader := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_leader", Help: "1 while this process leads its high-availability group, 0 while it waits as a standby.",
	})
	reg.MustRegister(leader)
	ops.setState("standby: another Switchboard instance leads; waiting to take over")
	stopAS, err := serveStandby(ctx, cfg.AppService.Listen)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	ha := cfg.HighAvailability
	opts := store.LeaderOptions{Holder: fmt.Sprintf("%s:%d", host, os.Getpid()),
		CheckInterval: ha.CheckInterval.Std(), CheckTimeout: ha.CheckTimeout.Std()}
	log.Info().Msg("Waiting as a standby until this instance can lead")
	l, err := st.AcquireLeadership(ctx, opts)
	stopAS()
	if err != nil {
		return nil, err
	}
	log.Info().Int64("epoch", l.Epoch).Dur("fence_delay", ha.FenceDelay.Std()).
		Msg("Took the lead; waiting for the fence delay before acting")
	ops.setPhase("taking over: waiting for the fence delay")
	select {
	case <-ctx.Done():
		l.Release()
		return nil, ctx.Err()
	case <-time.After(ha.FenceDelay.Std()):
	}
	leader.Set(1)
	go selfFence(ctx, l)
	return l, nil
}

// selfFence ends the process when the leadership is lost while it runs (not at its own
// stop): a graceful stop would keep working for seconds after a standby may have taken
// over.
func selfFence(ctx context.Context, l *store.Leadership) {
	<-l.Lost()
	if ctx.Err() != nil {
		return
	}
	zerolog.Ctx(ctx).Error().Int64("epoch", l.Epoch).Msg("Lost the lead (the database session that holds the instance lock failed); exiting at once")
	os.Exit(exitLeadLost)
}

// serveStandby answers every request on the transaction endpoint's address with 503 and
// Retry-After until stop is called: the homeserver (or the front before it) tries again,
// and reaches the leader.
func serveStandby(ctx context.Context, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"errcode": "M_UNKNOWN", "error": "this Switchboard instance is a standby; the leader answers"})
		})}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			zerolog.Ctx(ctx).Error().Err(err).Msg("The standby's transaction endpoint stopped")
		}
	}()
	return func() { _ = srv.Close() }, nil
}

// announceTakeover posts the management bot's notice of a new leader into
// high_availability.announce_room, once per epoch.
func announceTakeover(ctx context.Context, core *appservice.Core, ha config.HighAvailabilityConfig, l *store.Leadership) {
	if ha.AnnounceRoom == "" {
		return
	}
	host, _ := os.Hostname()
	text := fmt.Sprintf("🔁 Switchboard on %s (pid %d) leads now (epoch %d) and has resumed the work where it stood.", host, os.Getpid(), l.Epoch)
	if err := core.Announce(ctx, id.RoomID(ha.AnnounceRoom), "takeover:"+strconv.FormatInt(l.Epoch, 10), text); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Failed to queue the takeover notice")
	}
}
