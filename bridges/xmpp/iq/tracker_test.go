package iq

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func mustParse(t *testing.T, raw string) *IQ {
	t.Helper()
	q, err := Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	return q
}

func TestTracker(t *testing.T) {
	to := jid.MustParse("alice@example.com/phone")
	tests := []struct {
		name        string
		answer      string
		delivered   bool
		wantErr     error
		wantCond    string
		wantPayload string
	}{
		{name: "result", answer: `<iq type="result" id="ID" from="alice@example.com/phone"><vCard xmlns="vcard-temp"/></iq>`,
			delivered: true, wantPayload: "vCard"},
		{name: "error", answer: `<iq type="error" id="ID" from="alice@example.com/phone"><error type="cancel"><service-unavailable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></iq>`,
			delivered: true, wantErr: ErrRemote, wantCond: "service-unavailable"},
		{name: "from bare JID is someone else", answer: `<iq type="result" id="ID" from="alice@example.com"/>`},
		{name: "from other resource", answer: `<iq type="result" id="ID" from="alice@example.com/laptop"/>`},
		{name: "without from", answer: `<iq type="result" id="ID"/>`},
		{name: "other id", answer: `<iq type="result" id="other" from="alice@example.com/phone"/>`},
		{name: "a get is not an answer", answer: `<iq type="get" id="ID" from="alice@example.com/phone"><ping xmlns="urn:xmpp:ping"/></iq>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker()
			p := tr.Expect("ID", to)
			if got := tr.Deliver(mustParse(t, tt.answer)); got != tt.delivered {
				t.Fatalf("Deliver = %v, want %v", got, tt.delivered)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			q, err := p.Wait(ctx)
			if !tt.delivered {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Wait error = %v, want deadline exceeded", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Wait error = %v, want %v", err, tt.wantErr)
			}
			if q == nil {
				t.Fatal("Wait returned no IQ")
			}
			if tt.wantCond != "" {
				var e *Error
				if !errors.As(err, &e) || e.Condition != tt.wantCond {
					t.Fatalf("Wait error = %v, want condition %q", err, tt.wantCond)
				}
			}
			if q.Payload.Local != tt.wantPayload {
				t.Errorf("payload %q, want %q", q.Payload.Local, tt.wantPayload)
			}
		})
	}
}

func TestTrackerLifecycle(t *testing.T) {
	to := jid.MustParse("example.com")
	answer := func(id string) *IQ {
		return &IQ{ID: id, Type: TypeResult, From: to}
	}
	t.Run("answer is delivered once", func(t *testing.T) {
		tr := NewTracker()
		p := tr.Expect("a", to)
		if !tr.Deliver(answer("a")) {
			t.Fatal("first answer not delivered")
		}
		if tr.Deliver(answer("a")) {
			t.Fatal("second answer delivered")
		}
		for range 2 {
			if _, err := p.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("cancel", func(t *testing.T) {
		tr := NewTracker()
		p := tr.Expect("a", to)
		p.Cancel()
		p.Cancel()
		if _, err := p.Wait(context.Background()); !errors.Is(err, ErrCanceled) {
			t.Fatalf("Wait error = %v, want ErrCanceled", err)
		}
		if tr.Deliver(answer("a")) {
			t.Fatal("answer delivered after Cancel")
		}
	})
	t.Run("ctx end forgets the request", func(t *testing.T) {
		tr := NewTracker()
		p := tr.Expect("a", to)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait error = %v, want context.Canceled", err)
		}
		if tr.Deliver(answer("a")) {
			t.Fatal("late answer delivered")
		}
	})
	t.Run("same id replaces", func(t *testing.T) {
		tr := NewTracker()
		old := tr.Expect("a", to)
		p := tr.Expect("a", to)
		if _, err := old.Wait(context.Background()); !errors.Is(err, ErrCanceled) {
			t.Fatalf("old Wait error = %v, want ErrCanceled", err)
		}
		old.Cancel() // must not remove the newer one
		if !tr.Deliver(answer("a")) {
			t.Fatal("answer not delivered to the newer request")
		}
		if _, err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ids are unique", func(t *testing.T) {
		tr := NewTracker()
		seen := map[string]bool{}
		for range 1000 {
			id := tr.NewID()
			if seen[id] || id == "" {
				t.Fatalf("duplicate or empty id %q", id)
			}
			seen[id] = true
		}
	})
}

func TestTrackerConcurrent(t *testing.T) {
	tr := NewTracker()
	to := jid.MustParse("example.com")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			id := tr.NewID()
			p := tr.Expect(id, to)
			go tr.Deliver(&IQ{ID: id, Type: TypeResult, From: to})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := p.Wait(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
