package meeting

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const grace = 60 * time.Second

// recorder collects events as compact strings, times in seconds after t0:
// "started c s=0 [alice@0]", "ended c s=0 e=10".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) emit(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, describe(ev))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func secs(t time.Time) int { return int(t.Sub(t0) / time.Second) }

func describe(ev Event) string {
	s := fmt.Sprintf("%s %s s=%d", ev.Kind, ev.Conference, secs(ev.StartedAt))
	if ev.Kind == Ended {
		return s + fmt.Sprintf(" e=%d", secs(ev.EndedAt))
	}
	ps := make([]string, len(ev.Participants))
	for i, p := range ev.Participants {
		ps[i] = fmt.Sprintf("%s@%d", p.Nick, secs(p.Since))
		if p.Name != strings.ToUpper(p.Nick[:1])+p.Nick[1:] {
			ps[i] += "(" + p.Name + ")"
		}
	}
	return s + " [" + strings.Join(ps, " ") + "]"
}

// people makes participants from nicks; "bob=Robert" gives bob the name Robert, otherwise
// the name is the capitalised nick. Since is set to garbage: the tracker must ignore it.
func people(nicks ...string) []Participant {
	ps := make([]Participant, 0, len(nicks))
	for _, n := range nicks {
		nick, name, ok := strings.Cut(n, "=")
		if !ok {
			name = strings.ToUpper(nick[:1]) + nick[1:]
		}
		ps = append(ps, Participant{Nick: nick, Name: name, UserID: "@" + nick + ":example.org", Since: time.Unix(1, 0)})
	}
	return ps
}

// step is one thing that happens in a scenario, after the clock moved on by wait.
type step struct {
	wait    time.Duration
	op      string // "update", "restore" (since is s seconds after t0), "forget", "" (only wait)
	conf    string
	nicks   []string
	restore int
	want    []string // events emitted by this step
}

func TestTracker(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		grace time.Duration
		steps []step
	}{
		{name: "start", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
		}},
		{name: "nobody while inactive is nothing", steps: []step{
			{op: "update", conf: "c"},
			{wait: 2 * grace},
		}},
		{name: "change", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
			{wait: 5 * s, op: "update", conf: "c", nicks: []string{"bob", "alice"}, want: []string{"changed c s=0 [alice@0 bob@5]"}},
			{wait: 5 * s, op: "update", conf: "c", nicks: []string{"alice", "bob"}}, // same people, other order
			{wait: 5 * s, op: "update", conf: "c", nicks: []string{"alice", "bob=Robert"}, want: []string{"changed c s=0 [alice@0 bob@5(Robert)]"}},
			{wait: 5 * s, op: "update", conf: "c", nicks: []string{"bob=Robert"}, want: []string{"changed c s=0 [bob@5(Robert)]"}},
			{op: "update", conf: "c", nicks: []string{"bob=Robert", "bob=Bobby"}, want: []string{"changed c s=0 [bob@5(Bobby)]"}},
		}},
		{name: "quick rejoin within grace", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
			{wait: 10 * s, op: "update", conf: "c", want: []string{"changed c s=0 []"}},
			{wait: 30 * s, op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"changed c s=0 [alice@40]"}},
			{wait: 2 * grace},
			{op: "update", conf: "c", want: []string{"changed c s=0 []"}},
			{wait: grace, want: []string{"ended c s=0 e=160"}},
		}},
		{name: "end after grace at the last leave", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice", "bob"}, want: []string{"started c s=0 [alice@0 bob@0]", "changed c s=0 [alice@0 bob@0]"}},
			{wait: 5 * s, op: "update", conf: "c", nicks: []string{"bob"}, want: []string{"changed c s=0 [bob@0]"}},
			{wait: 5 * s, op: "update", conf: "c", want: []string{"changed c s=0 []"}},
			{wait: 5 * s, op: "update", conf: "c"}, // still nobody: no second end scheduled
			{wait: grace - 5*s - time.Nanosecond},
			{wait: time.Nanosecond, want: []string{"ended c s=0 e=10"}},
			{wait: 2 * grace},
			{op: "update", conf: "c", nicks: []string{"carol"}, want: []string{"started c s=190 [carol@190]", "changed c s=190 [carol@190]"}},
		}},
		{name: "restore then people", steps: []step{
			{op: "restore", conf: "c", restore: -3600},
			{wait: 10 * s, op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"changed c s=-3600 [alice@10]"}},
			{op: "restore", conf: "c", restore: 5}, // already tracked: ignored
			{op: "update", conf: "c", want: []string{"changed c s=-3600 []"}},
			{wait: grace, want: []string{"ended c s=-3600 e=10"}},
		}},
		{name: "restore then nobody", steps: []step{
			{op: "restore", conf: "c", restore: -3600},
			{wait: 10 * s, op: "update", conf: "c", want: []string{"changed c s=-3600 []"}},
			{wait: grace - time.Nanosecond},
			{wait: time.Nanosecond, want: []string{"ended c s=-3600 e=10"}},
		}},
		{name: "forget while active", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
			{wait: 20 * s, op: "forget", conf: "c", want: []string{"ended c s=0 e=20"}},
			{wait: 2 * grace},
			{op: "forget", conf: "c"},
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=140 [alice@140]", "changed c s=140 [alice@140]"}},
		}},
		{name: "forget during grace ends at the last leave", steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
			{wait: 10 * s, op: "update", conf: "c", want: []string{"changed c s=0 []"}},
			{wait: 10 * s, op: "forget", conf: "c", want: []string{"ended c s=0 e=10"}},
			{wait: 2 * grace}, // the cancelled timer does nothing
		}},
		{name: "forget a restored meeting", steps: []step{
			{op: "restore", conf: "c", restore: -60},
			{op: "forget", conf: "c", want: []string{"ended c s=-60 e=0"}},
		}},
		{name: "two conferences are independent", steps: []step{
			{op: "update", conf: "c1", nicks: []string{"alice"}, want: []string{"started c1 s=0 [alice@0]", "changed c1 s=0 [alice@0]"}},
			{wait: 10 * s, op: "update", conf: "c2", nicks: []string{"alice"}, want: []string{"started c2 s=10 [alice@10]", "changed c2 s=10 [alice@10]"}},
			{wait: 10 * s, op: "update", conf: "c1", want: []string{"changed c1 s=0 []"}},
			{wait: 10 * s, op: "update", conf: "c2", want: []string{"changed c2 s=10 []"}},
			{wait: 50 * s, op: "update", conf: "c2", nicks: []string{"bob"}, want: []string{"ended c1 s=0 e=20", "changed c2 s=10 [bob@80]"}},
			{wait: 2 * grace},
			{op: "forget", conf: "c2", want: []string{"ended c2 s=10 e=200"}},
		}},
		{name: "no grace ends at once", grace: -1, steps: []step{
			{op: "update", conf: "c", nicks: []string{"alice"}, want: []string{"started c s=0 [alice@0]", "changed c s=0 [alice@0]"}},
			{wait: 5 * s, op: "update", conf: "c", want: []string{"changed c s=0 []", "ended c s=0 e=5"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grace
			if tt.grace != 0 {
				g = tt.grace
			}
			clock := newFakeClock()
			rec := &recorder{}
			tr := NewTracker(g, clock, rec.emit)
			for i, st := range tt.steps {
				clock.Advance(st.wait) // a wait fires due timers before the step's own call
				switch st.op {
				case "update":
					tr.Update(st.conf, people(st.nicks...))
				case "restore":
					tr.Restore(st.conf, t0.Add(time.Duration(st.restore)*time.Second))
				case "forget":
					tr.Forget(st.conf)
				}
				if got := rec.take(); !slices.Equal(got, st.want) {
					t.Fatalf("step %d (%s %s %v at %ds):\n got  %q\n want %q", i, st.op, st.conf, st.nicks, secs(clock.Now()), got, st.want)
				}
			}
		})
	}
}

func TestStaleTimerIgnored(t *testing.T) {
	clock := newFakeClock()
	clock.lateStop = true // every stop comes too late: the old timers still fire
	rec := &recorder{}
	tr := NewTracker(grace, clock, rec.emit)
	tr.Update("c", people("alice"))
	tr.Update("c", nil)             // end scheduled for 60
	clock.Advance(30 * time.Second) // nothing yet
	tr.Update("c", people("alice")) // back: cancels (too late)
	tr.Update("c", nil)             // end scheduled for 90
	clock.Advance(30 * time.Second) // the first timer fires: ignored
	tr.Update("c", people("alice")) // back again
	clock.Advance(2 * grace)        // the second timer fires: ignored
	want := []string{
		"started c s=0 [alice@0]", "changed c s=0 [alice@0]", "changed c s=0 []",
		"changed c s=0 [alice@30]", "changed c s=0 []", "changed c s=0 [alice@60]",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestClose(t *testing.T) {
	clock := newFakeClock()
	rec := &recorder{}
	tr := NewTracker(grace, clock, rec.emit)
	tr.Update("c", people("alice"))
	tr.Update("c", nil)
	rec.take()
	tr.Close()
	if n := clock.pending(); n != 0 {
		t.Errorf("%d timers still pending after Close", n)
	}
	clock.Advance(2 * grace)
	tr.Update("d", people("bob"))
	tr.Restore("e", t0)
	tr.Forget("e")
	if got := rec.take(); len(got) != 0 {
		t.Errorf("events after Close: %q", got)
	}
}

// TestEmitMayCallBack: emit runs without the tracker's lock (a call back would deadlock
// otherwise), and events caused from inside emit come after the ones already queued.
func TestEmitMayCallBack(t *testing.T) {
	clock := newFakeClock()
	rec := &recorder{}
	var tr *Tracker
	tr = NewTracker(grace, clock, func(ev Event) {
		rec.emit(ev)
		if ev.Kind == Started && ev.Conference == "c1" {
			tr.Update("c2", people("bob"))
			tr.Forget("c2")
		}
	})
	tr.Update("c1", people("alice"))
	want := []string{
		"started c1 s=0 [alice@0]", "changed c1 s=0 [alice@0]",
		"started c2 s=0 [bob@0]", "changed c2 s=0 [bob@0]", "ended c2 s=0 e=0",
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// TestEmitPanicDoesNotWedge: a panicking emit does not stop later events.
func TestEmitPanicDoesNotWedge(t *testing.T) {
	rec := &recorder{}
	first := true
	tr := NewTracker(grace, newFakeClock(), func(ev Event) {
		if first {
			first = false
			panic("boom")
		}
		rec.emit(ev)
	})
	func() {
		defer func() { _ = recover() }()
		tr.Update("c", people("alice"))
	}()
	tr.Update("c", people("alice", "bob"))
	want := []string{"changed c s=0 [alice@0]", "changed c s=0 [alice@0 bob@0]"}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestParticipantsOwnedByReceiver(t *testing.T) {
	var got []Event
	tr := NewTracker(grace, newFakeClock(), func(ev Event) { got = append(got, ev) })
	in := people("alice")
	tr.Update("c", in)
	in[0].Name = "changed by caller"
	got[1].Participants[0].Name = "changed by receiver"
	tr.Update("c", people("alice", "bob"))
	if n := got[2].Participants[0].Name; n != "Alice" {
		t.Errorf("name %q leaked into the tracker", n)
	}
}

// TestConcurrentUpdates runs updates of own and shared conferences from many goroutines
// while the clock fires ends, and checks that emit is never called concurrently and that
// every conference's events make sense in the order received.
func TestConcurrentUpdates(t *testing.T) {
	clock := newFakeClock()
	var inEmit atomic.Int32
	var mu sync.Mutex
	byConf := map[string][]Event{}
	tr := NewTracker(grace, clock, func(ev Event) {
		if inEmit.Add(1) != 1 {
			t.Error("emit called concurrently")
		}
		mu.Lock()
		byConf[ev.Conference] = append(byConf[ev.Conference], ev)
		mu.Unlock()
		inEmit.Add(-1)
	})
	const workers, rounds = 8, 200
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ticker := make(chan struct{})
	go func() {
		defer close(ticker)
		for {
			select {
			case <-stop:
				return
			default:
				clock.Advance(grace / 3)
				runtime.Gosched()
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("c%d", w)
			for i := range rounds {
				tr.Update(own, people(fmt.Sprintf("u%d", i%3)))
				tr.Update("shared", people(fmt.Sprintf("w%d", w)))
				tr.Update(own, nil)
				tr.Update("shared", nil)
				if i%50 == 0 {
					tr.Forget(own)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-ticker
	clock.Advance(2 * grace) // end what is left
	mu.Lock()
	defer mu.Unlock()
	if len(byConf) != workers+1 {
		t.Fatalf("events for %d conferences, want %d", len(byConf), workers+1)
	}
	for conf, evs := range byConf {
		active, afterStart := false, false
		for i, ev := range evs {
			switch {
			case afterStart && ev.Kind != Changed:
				t.Fatalf("%s event %d: %s right after Started", conf, i, ev.Kind)
			case ev.Kind == Started && active, ev.Kind != Started && !active:
				t.Fatalf("%s event %d: %s while active=%v", conf, i, ev.Kind, active)
			}
			afterStart = ev.Kind == Started
			active = ev.Kind != Ended
		}
		if active {
			t.Errorf("%s: still active after every end was due", conf)
		}
	}
}
