package case116117

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// twoLinkBot is a bot with links b (validLink) and c on an in-memory store, not started.
func twoLinkBot(t *testing.T) (*Bot, *memStore) {
	t.Helper()
	second := validLink()
	second.Name, second.OID = "c", "1.2.4"
	b, err := New(Config{Links: []LinkConfig{validLink(), second}})
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{kv: map[string]string{}}
	b.host = &memHost{st: st}
	return b, st
}

// putCase stores case c of link as the bot records it.
func putCase(st *memStore, link string, c caseRecord) {
	raw, _ := json.Marshal(c)
	st.kv[caseKey(link, c.ID)] = string(raw)
}

// failLink makes l reconnecting with a last error that names an internal address.
func failLink(l *link) {
	l.setStatus(context.Background(), "reconnecting", nil)
	l.mu.Lock()
	l.lastErr = "Post \"https://ucrm.example\": dial tcp 10.0.0.9:443: connection refused"
	l.mu.Unlock()
}

// TestManageCommands: cases lists the open cases (state, age, peer; searchable by case
// ID; no patient data), links each link's state and queues, errors to admins only.
func TestManageCommands(t *testing.T) {
	b, st := twoLinkBot(t)
	created := time.Now().Add(-3 * time.Hour)
	put := func(link string, c caseRecord) { putCase(st, link, c) }
	put("b", caseRecord{ID: "INC-2024-0001", Role: roleIncoming, Peer: "1.2.9", State: stateReceived, Title: "A1 Atemnot, Mustermann", Created: created})
	put("b", caseRecord{ID: "INC-2024-0002", Role: roleOutgoing, Peer: "1.2.9", State: stateCompleted, Created: created})
	put("c", caseRecord{ID: "XYZ-77", Role: roleOutgoing, Peer: "1.2.8", State: stateAccepted, Created: created.Add(time.Hour)})
	st.kv[pendKey("b", 1, "m1")] = "m1"
	st.kv[rxKey("c", 1)] = "{}"
	failLink(b.links[1])

	tests := []struct {
		name     string
		admin    bool
		args     []string
		want     []string
		dontWant []string
	}{
		{"help", false, []string{"help"}, []string{"`case116117 cases [search]`", "`case116117 links`"}, nil},
		{"cases", false, []string{"cases"}, []string{"**2 open cases**", "* `INC-2024-0001` (b): received, waiting for acceptance · 3h00m old · from 1.2.9\n* `XYZ-77` (c): accepted · 2h00m old · to 1.2.8"},
			[]string{"INC-2024-0002", "Mustermann", "Atemnot"}},
		{"search", false, []string{"cases", "xyz"}, []string{"**1 open cases** matching \"xyz\"", "XYZ-77"}, []string{"INC-2024-0001"}},
		{"search finds none", false, []string{"cases", "0002"}, []string{"No open case matches \"0002\""}, nil},
		{"links for a user", false, []string{"links"}, []string{"**b** (1.2.3): starting · 1 open cases · 1 to send · 0 received", "**c** (1.2.4): reconnecting · 1 open cases · 0 to send · 1 received", "has errors", "admins only"},
			[]string{"10.0.0.9"}},
		{"links for an admin", true, []string{"links"}, []string{"last error: Post", "10.0.0.9"}, nil},
		{"unknown", false, []string{"frobnicate"}, []string{"case116117 help"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := b.HandleCommand(context.Background(), appservice.Command{Sender: "@d:example.org", Args: tt.args, Admin: tt.admin})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("reply lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("reply shows %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"seconds", 30 * time.Second, "<1m"},
		{"minutes", 59 * time.Minute, "59m"},
		{"hours", 25*time.Hour + 5*time.Minute, "25h05m"},
		{"days", 80 * time.Hour, "3d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := age(tt.d); got != tt.want {
				t.Errorf("age(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

// TestLinkErrorClearedOnRecovery: a link that is connected again has no last error (the
// status page and has_error show the state it is in, as the email bridge's do).
func TestLinkErrorClearedOnRecovery(t *testing.T) {
	b, _ := twoLinkBot(t)
	l := b.links[0]
	failLink(l)
	if _, lastErr := l.status(); lastErr == "" {
		t.Fatal("a failing link has no last error")
	}
	l.setStatus(context.Background(), "connected", nil)
	if state, lastErr := l.status(); state != "connected" || lastErr != "" {
		t.Errorf("after recovery: state %q, last error %q; want connected and none", state, lastErr)
	}
	if st := b.Status(context.Background()); st.LastError != "" {
		t.Errorf("module status keeps the old error: %q", st.LastError)
	}
}
