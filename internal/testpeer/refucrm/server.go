package refucrm

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// Timeouts of the server's life cycle.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
)

// BasePath is the reference's Client API path.
const BasePath = "/ucrm/client/v0"

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = fmt.Errorf("refucrm: %w", peerproc.ErrAddrInUse)

// Server is a running reference UCRM. Its methods are safe for concurrent use.
type Server struct {
	// URL is the Client API's base, http://127.0.0.1:PORT/ucrm/client/v0. Immutable.
	URL string
	// OwnOID is the UCRM's OID and Key its signing key (for its delivery reports).
	// Immutable.
	OwnOID string
	Key    *rsa.PrivateKey
	// Dir holds the reference's tree, its config and the default log. Immutable.
	Dir string

	opts      Options        // immutable
	port      int            // immutable after the first successful start
	jwtSecret string         // immutable
	peer      *peerproc.Peer // directory, log and process
}

// StartTest starts a reference UCRM for t and stops it when t ends; Dir defaults to
// t.TempDir(). It skips t when the reference cannot run here, unless
// SWITCHBOARD_REQUIRE_PEERS=1 (set by scripts/test), in which case t fails instead. When t
// fails, the tail of the reference's log is logged.
func StartTest(t testing.TB, opts Options) *Server {
	t.Helper()
	srv := peerproc.StartForTest(t, "the reference UCRM", Available(), installTimeout+readyTimeout, func(ctx context.Context) (*Server, error) {
		opts.Dir = peerproc.TestDir(t, opts.Dir)
		return Start(ctx, opts)
	})
	srv.peer.StopAtEnd(t, stopTimeout)
	return srv
}

// Start installs the reference's dependencies if needed (see Install), assembles its tree
// and config in opts.Dir and starts it, returning once its Client API answers (token and
// info with status 0). ctx bounds the start only; the server runs until Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := findMaterial()
	if err != nil {
		return nil, err
	}
	nodeModules, err := install(ctx, m)
	if err != nil {
		return nil, err
	}
	s := &Server{OwnOID: opts.OwnOID, Key: opts.Key, opts: opts}
	if s.jwtSecret, err = newSecret(); err != nil {
		return nil, err
	}
	if s.peer, err = peerproc.Open("refucrm", opts.Dir, "refucrm.log", opts.Logger); err != nil {
		return nil, err
	}
	s.Dir = s.peer.Dir()
	if err := m.writeTree(s.Dir, nodeModules); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	s.peer.Note("reference UCRM from " + m.name)
	err = peerproc.StartOnFreePorts(opts.Port != 0, func() error {
		s.port = opts.Port
		if s.port == 0 {
			if s.port, err = peerproc.FreePort(); err != nil {
				return err
			}
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%d%s", s.port, BasePath)
		if err := writeConfig(s.Dir, s.port, s.jwtSecret, opts); err != nil {
			return err
		}
		return s.start(ctx)
	})
	if err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// start launches node main.js and waits until the Client API answers.
func (s *Server) start(ctx context.Context) error {
	cmd := exec.Command("node", "main.js", filepath.Join(s.Dir, configFile))
	cmd.Dir = filepath.Join(s.Dir, expressDir)
	return s.peer.LaunchReady(cmd, fmt.Sprintf("starting the reference UCRM on port %d", s.port), stopTimeout, func(p *peerproc.Process, mark int64) error {
		return s.waitReady(ctx, p, mark)
	})
}

// waitReady waits until a participant gets a token and /info reports status 0 (discovery
// finished). mark is the tail position at the start of this run.
func (s *Server) waitReady(ctx context.Context, p *peerproc.Process, mark int64) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for {
		if strings.Contains(string(s.peer.Tail().Since(mark)), "EADDRINUSE") {
			return fmt.Errorf("%w: port %d\n%s", errAddrInUse, s.port, s.LogTail(20))
		}
		if lastErr = s.probe(ctx, hc); lastErr == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("refucrm: exited during start (%v); log tail:\n%s", p.Err(), s.LogTail(40))
		case <-ctx.Done():
			return fmt.Errorf("refucrm: not ready: %w (last: %v); log tail:\n%s", ctx.Err(), lastErr, s.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probe asks for a token with the first participant's account, then for /info.
func (s *Server) probe(ctx context.Context, hc *http.Client) error {
	p := s.opts.Participants[0]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/token", nil)
	req.SetBasicAuth(p.Username, p.Password)
	var tok struct {
		Token string `json:"token"`
	}
	if err := getJSON(hc, req, &tok); err != nil {
		return err
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/info", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	var info struct {
		Status *int `json:"status"`
	}
	if err := getJSON(hc, req, &info); err != nil {
		return err
	}
	if info.Status == nil || *info.Status != 0 {
		return errors.New("info: not yet in normal operation")
	}
	return nil
}

func getJSON(hc *http.Client, req *http.Request, v any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", req.URL.Path, resp.StatusCode)
	}
	return json.Unmarshal(body, v)
}

// Stop stops the reference (SIGTERM, then SIGKILL after 10 s) and removes Dir if Start
// created it. It reports an error if the reference had died on its own. Stop is final and
// idempotent.
func (s *Server) Stop() error { return s.peer.Stop(stopTimeout) }

// Restart stops the reference and starts it again on the same port with the same config
// (and JWT secret, so issued tokens stay valid). Its queues are empty afterwards and
// sequenceId numbering starts from 1 again.
func (s *Server) Restart(ctx context.Context) error {
	return errors.Join(s.peer.Halt(stopTimeout), s.start(ctx))
}

// Halt stops the reference without starting it again (an outage); Restart ends it.
func (s *Server) Halt() error { return s.peer.Halt(stopTimeout) }

// LogTail returns the last n lines the reference wrote (at most 64 KiB).
func (s *Server) LogTail(n int) string { return s.peer.LogTail(n) }
