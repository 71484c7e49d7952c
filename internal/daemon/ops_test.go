package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/switchboard-matrix/switchboard/config"
)

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type syncBuffer = syncbuf.Buffer

func get(t *testing.T, url string) (int, string, error) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// TestHealthWhileHomeserverUnreachable (issue 10, item 15): the operator endpoints answer
// from the start of the process, while the core still waits for a homeserver that does not
// answer: /health is live, /health/ready says not ready and why, /metrics is served with
// every module's connected gauge at 0.
func TestHealthWhileHomeserverUnreachable(t *testing.T) {
	dir := t.TempDir()
	opsAddr := freeAddr(t)
	cfgPath := writeFile(t, dir, "config.yaml", fmt.Sprintf(`homeserver:
  address: http://%s
  domain: localhost
appservice:
  listen: %s
database:
  uri: sqlite:%s
logging:
  level: debug
  format: json
metrics:
  listen: %s
`, freeAddr(t), freeAddr(t), filepath.Join(dir, "switchboard.db"), opsAddr))
	regPath := filepath.Join(dir, "registration.yaml")
	if code, _, errOut := runMain(t, nil, "-c", cfgPath, "-r", regPath, "-g"); code != 0 {
		t.Fatalf("-g: exit %d: %s", code, errOut)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var logs syncBuffer
	done := make(chan int, 1)
	go func() { done <- serve(ctx, cfg, nil, regPath, "test", &logs) }()

	base := "http://" + opsAddr
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, err := get(t, base+"/health"); err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health did not answer within 10s; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wait until the core is built and waits for the homeserver.
	var ready struct {
		Ready   bool              `json:"ready"`
		Checks  map[string]string `json:"checks"`
		Modules map[string]string `json:"modules"`
	}
	for {
		code, body, err := get(t, base+"/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("/health/ready: status %d, want 503: %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &ready); err != nil {
			t.Fatalf("/health/ready: %v: %s", err, body)
		}
		if ready.Checks["homeserver"] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health/ready never checked the homeserver: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ready.Ready || ready.Checks["homeserver"] != "unreachable" || !strings.HasPrefix(ready.Checks["core"], "starting") ||
		ready.Checks["database"] != "ok" || !strings.HasPrefix(ready.Modules["management"], "not connected") {
		t.Errorf("/health/ready = %+v, want not ready: homeserver unreachable, core starting, management not connected", ready)
	}
	code, body, err := get(t, base+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, want := range []string{`switchboard_module_connected{module="management"} 0`, "switchboard_outbox_queue_depth 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%.3000s", want, body)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop within 10s of its context ending")
	}
	if _, _, err := get(t, base+"/health"); err == nil {
		t.Error("/health still answers after the daemon returned")
	}
}

// TestPprofOnlyWhenEnabled: metrics.pprof serves Go's profiler on the ops listener; without
// it /debug/pprof/ is not there.
func TestPprofOnlyWhenEnabled(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			ops, err := startOps(context.Background(), "127.0.0.1:0", nil, on)
			if err != nil {
				t.Fatal(err)
			}
			defer ops.shutdown(context.Background())
			resp, err := http.Get("http://" + ops.addr.String() + "/debug/pprof/cmdline")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode == http.StatusOK; got != on {
				t.Errorf("pprof %v: status %d", on, resp.StatusCode)
			}
		})
	}
}
