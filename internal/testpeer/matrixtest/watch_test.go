package matrixtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

const watchRoom = id.RoomID("!room:localhost")

// fakeHS answers /sync from a script keyed by the since token and /messages from one keyed
// by the from token; a /sync it has no answer for waits until the request ends.
type fakeHS struct {
	syncs    map[string]string // since → response body
	messages map[string]string // from → response body
	failOnce map[string]bool   // from tokens whose first /messages fails

	mu     sync.Mutex
	sinces []string // guarded by mu; the since of every /sync, in order
}

func (f *fakeHS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasSuffix(r.URL.Path, "/sync"):
		since := r.URL.Query().Get("since")
		f.mu.Lock()
		f.sinces = append(f.sinces, since)
		f.mu.Unlock()
		if body, ok := f.syncs[since]; ok {
			_, _ = w.Write([]byte(body))
			return
		}
		<-r.Context().Done()
	case strings.HasSuffix(r.URL.Path, "/messages"):
		from := r.URL.Query().Get("from")
		f.mu.Lock()
		fail := f.failOnce[from]
		delete(f.failOnce, from)
		f.mu.Unlock()
		if fail {
			http.Error(w, `{"errcode":"M_UNKNOWN","error":"test"}`, http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(f.messages[from]))
	default:
		http.NotFound(w, r)
	}
}

// ev is the JSON of a message event with the body n.
func ev(n int) string {
	return fmt.Sprintf(`{"event_id":"$e%d","type":"m.room.message","sender":"@bob:localhost","room_id":%q,"origin_server_ts":%d,"content":{"msgtype":"m.text","body":"%d"}}`, n, watchRoom, n, n)
}

func evs(ns ...int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = ev(n)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func syncResp(next string, limited bool, prev string, ns ...int) string {
	tl, _ := json.Marshal(map[string]any{"events": json.RawMessage(evs(ns...)), "limited": limited, "prev_batch": prev})
	return fmt.Sprintf(`{"next_batch":%q,"rooms":{"join":{%q:{"timeline":%s}}}}`, next, watchRoom, tl)
}

func messagesResp(end string, ns ...int) string {
	return fmt.Sprintf(`{"start":"x","end":%q,"chunk":%s}`, end, evs(ns...))
}

// TestWatchRoom: every event of the room reaches add once a sync's timeline is limited,
// oldest first and parsed, whether the gap reaches back to an event seen before or to the
// room's start, and when the first read of the gap fails.
func TestWatchRoom(t *testing.T) {
	tests := []struct {
		name       string
		hs         *fakeHS
		want       []string // bodies, in the order add gets them
		wantSinces []string // the first /sync requests
	}{
		{
			name: "gap back to the last event seen",
			hs: &fakeHS{
				syncs:    map[string]string{"": syncResp("s1", false, "", 1), "s1": syncResp("s2", true, "p", 4)},
				messages: map[string]string{"p": messagesResp("p2", 3, 2, 1, 0)},
			},
			want:       []string{"1", "2", "3", "4"},
			wantSinces: []string{"", "s1", "s2"},
		},
		{
			name: "gap back to the room's start",
			hs: &fakeHS{
				syncs:    map[string]string{"": syncResp("s1", true, "p", 3)},
				messages: map[string]string{"p": messagesResp("p2", 2), "p2": messagesResp("p3", 1), "p3": messagesResp("")},
			},
			want:       []string{"1", "2", "3"},
			wantSinces: []string{"", "s1"},
		},
		{
			name: "failed gap read: the same sync again",
			hs: &fakeHS{
				syncs:    map[string]string{"": syncResp("s1", false, "", 1), "s1": syncResp("s2", true, "p", 3)},
				messages: map[string]string{"p": messagesResp("p2", 2, 1)},
				failOnce: map[string]bool{"p": true},
			},
			want:       []string{"1", "2", "3"},
			wantSinces: []string{"", "s1", "s1", "s2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.hs)
			defer srv.Close()
			cli, err := mautrix.NewClient(srv.URL, "@alice:localhost", "token")
			if err != nil {
				t.Fatal(err)
			}
			// The timeout only ends a hung test; the test ends when add has seen want.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var got []string
			done := make(chan struct{})
			go func() {
				defer close(done)
				WatchRoom(ctx, cli, watchRoom, func(evts []*event.Event) {
					for _, e := range evts {
						got = append(got, e.Content.AsMessage().Body)
					}
					if len(got) >= len(tt.want) {
						cancel()
					}
				})
			}()
			<-done
			if !slices.Equal(got, tt.want) {
				t.Errorf("add got %q, want %q", got, tt.want)
			}
			// The last sync (the one that waits) may not have been sent when ctx ended.
			tt.hs.mu.Lock()
			defer tt.hs.mu.Unlock()
			if sinces := tt.hs.sinces; len(sinces) < len(tt.wantSinces)-1 ||
				!slices.Equal(sinces, tt.wantSinces[:len(sinces)]) {
				t.Errorf("/sync since tokens %q, want %q", sinces, tt.wantSinces)
			}
		})
	}
}
