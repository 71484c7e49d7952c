package ingestbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

// TestStandInAnswersStartUp runs the start-up calls of Switchboard's core (register the
// bot, set its display name, the appservice ping, whoami) with mautrix-go's client against
// the stand-in, and checks that nothing of it counts as unexpected.
func TestStandInAnswersStartUp(t *testing.T) {
	var logged bytes.Buffer
	hs := httptest.NewServer(&StandIn{Log: log.New(&logged, "", 0)})
	defer hs.Close()
	as := appservice.Create()
	as.Registration = &appservice.Registration{ID: "bench", AppToken: "as", ServerToken: "hs", SenderLocalpart: "bot"}
	as.HomeserverDomain = Domain
	if err := as.SetHomeserverURL(hs.URL); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bot := as.BotIntent()
	if err := bot.EnsureRegistered(ctx); err != nil {
		t.Errorf("register: %v", err)
	}
	if err := bot.SetDisplayName(ctx, "Switchboard"); err != nil {
		t.Errorf("display name: %v", err)
	}
	if resp, err := as.BotClient().AppservicePing(ctx, "bench", "startup"); err != nil || resp.DurationMS != 1 {
		t.Errorf("ping: %+v, %v", resp, err)
	}
	if _, err := as.BotClient().Versions(ctx); err != nil {
		t.Errorf("versions: %v", err)
	}
	if resp, err := as.BotClient().Whoami(ctx); err != nil || resp.UserID != id.UserID("@bot:"+Domain) {
		t.Errorf("whoami: %+v, %v", resp, err)
	}
	if logged.Len() > 0 {
		t.Errorf("start-up calls logged as unexpected:\n%s", logged.String())
	}
}

func TestStandInOtherCalls(t *testing.T) {
	var logged bytes.Buffer
	hs := httptest.NewServer(&StandIn{Log: log.New(&logged, "", 0)})
	defer hs.Close()
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"PUT answers 200", http.MethodPut, "/_matrix/client/v3/rooms/!a:x/send/m.room.message/1", http.StatusOK},
		{"POST answers 200", http.MethodPost, "/_matrix/client/v3/join/!a:x", http.StatusOK},
		{"GET answers 404", http.MethodGet, "/_matrix/client/v3/rooms/!a:x/state", http.StatusNotFound},
		{"GET again is logged once", http.MethodGet, "/_matrix/client/v3/rooms/!a:x/state", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader("{}"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if n := strings.Count(logged.String(), "\n"); n != 3 {
		t.Errorf("%d unexpected paths logged, want 3:\n%s", n, logged.String())
	}
}

// TestDriveDeliversEveryEventOnce drives an httptest appservice endpoint with 1 and 8
// transactions in flight and checks that each event arrives exactly once, with the token.
func TestDriveDeliversEveryEventOnce(t *testing.T) {
	for _, c := range []int{1, 8} {
		t.Run(fmt.Sprintf("C=%d", c), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			inFlight, maxInFlight := 0, 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer tok" || !strings.HasPrefix(r.URL.Path, "/_matrix/app/v1/transactions/") {
					http.Error(w, "no", http.StatusForbidden)
					return
				}
				mu.Lock()
				inFlight++
				maxInFlight = max(maxInFlight, inFlight)
				mu.Unlock()
				var txn struct {
					Events []struct {
						EventID string `json:"event_id"`
						RoomID  string `json:"room_id"`
					} `json:"events"`
				}
				err := json.NewDecoder(r.Body).Decode(&txn)
				time.Sleep(time.Millisecond)
				mu.Lock()
				inFlight--
				for _, e := range txn.Events {
					seen[e.EventID]++
				}
				mu.Unlock()
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				_, _ = io.WriteString(w, "{}")
			}))
			defer srv.Close()
			rooms := []string{"!a:x", "!b:x"}
			txns, err := BuildTxns("t", Domain, rooms, 40)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Drive(context.Background(), NewClient(c), srv.URL, "tok", txns, c)
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != Sent(txns) {
				t.Errorf("%d distinct events arrived, want %d", len(seen), Sent(txns))
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("event %s arrived %d times", id, n)
				}
			}
			if len(res.Latencies) != len(txns) || res.Quantile(0.5) <= 0 || res.Quantile(0.99) < res.Quantile(0.5) {
				t.Errorf("latencies: %d, p50 %v, p99 %v", len(res.Latencies), res.Quantile(0.5), res.Quantile(0.99))
			}
			if maxInFlight > c {
				t.Errorf("%d transactions in flight, want at most %d", maxInFlight, c)
			}
		})
	}
}

func TestDriveStopsAtARefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"errcode":"M_FORBIDDEN"}`, http.StatusForbidden)
	}))
	defer srv.Close()
	txns, _ := BuildTxns("t", Domain, []string{"!a:x"}, 5)
	if _, err := Drive(context.Background(), NewClient(2), srv.URL, "tok", txns, 2); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("err = %v, want the 403", err)
	}
}

func TestBuildTxnsEventSize(t *testing.T) {
	txns, err := BuildTxns("run1-17", Domain, []string{"!a:x"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	per := len(txns[0].Body) / EventsPerTxn
	if per < 350 || per > 450 {
		t.Errorf("%d bytes per event, want about 400", per)
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       int64
		wantErr    bool
	}{
		{"plain", "1234 (switchboard) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 30 0 0 20 0 12 0 100 0 0", 280, false},
		{"spaces and parens in the name", "99 (node (x) y) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 0 0", 10, false},
		{"truncated", "1 (a) S 1 2 3", 0, true},
		{"no name", "garbage", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.stat))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tswitchboard\nVmPeak:\t  900000 kB\nVmHWM:\t   35840 kB\nVmRSS:\t   30000 kB\n"
	if got, err := parseStatusKB([]byte(status), "VmHWM"); err != nil || got != 35840*1024 {
		t.Errorf("VmHWM = %d, %v", got, err)
	}
	if _, err := parseStatusKB([]byte("Name:\tx\n"), "VmHWM"); err == nil {
		t.Error("no VmHWM line: no error")
	}
}

func TestOwnProcess(t *testing.T) {
	// The test process itself: /proc as the benchmark reads it for the servers.
	pid := os.Getpid()
	if _, err := ProcCPU(pid); err != nil {
		t.Error(err)
	}
	if rss, err := ProcPeakRSS(pid); err != nil || rss <= 0 {
		t.Errorf("peak RSS %d, %v", rss, err)
	}
	if ClockTicks() <= 0 {
		t.Error("clock ticks <= 0")
	}
}

func TestParseHandled(t *testing.T) {
	metrics := `# HELP switchboard_events_handled_total Event deliveries to modules by result.
# TYPE switchboard_events_handled_total counter
switchboard_events_handled_total{module="",result="ignored"} 7
switchboard_events_handled_total{module="noop",result="failed"} 0
switchboard_events_handled_total{module="noop",result="ok"} 33000
switchboard_events_handled_total{module="noop",result="retry"} 2
switchboard_events_handled_total{module="testmod",result="ok"} 5
`
	for _, tc := range []struct {
		module  string
		want    int64
		wantErr bool
	}{{"noop", 33000, false}, {"testmod", 5, false}, {"xmpp", 0, true}} {
		t.Run(tc.module, func(t *testing.T) {
			got, err := parseHandled(bufio.NewScanner(strings.NewReader(metrics)), tc.module)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %d, %v; want %d (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReportRatios(t *testing.T) {
	opts := Options{Reps: 1, Txns: 10, Warmup: 1, Concurrency: []int{1}}
	samples := []Sample{
		{Server: ServerMautrix, C: 1, EventsPerSec: 20000, CPUPerEvent: 20, P99: 8 * time.Millisecond, OK: true},
		{Server: ServerNode, C: 1, EventsPerSec: 80000, CPUPerEvent: 10, P99: 4 * time.Millisecond, OK: true},
		{Server: ServerSQLite, C: 1, EventsPerSec: 40000, CPUPerEvent: 9, P99: 4 * time.Millisecond, OK: false, Check: "inbox 99 rows"},
	}
	var out bytes.Buffer
	Report(&out, opts, []string{ServerMautrix, ServerNode, ServerSQLite}, samples)
	for _, want := range []string{"mautrix C=1:          2.00x", "Node C=1:             0.50x", "= 0.50x", "2 of 3 completed runs", "inbox 99 rows"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
