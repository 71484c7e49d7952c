package ingestbench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// EventsPerTxn is the number of m.room.message events in each transaction.
const EventsPerTxn = 100

// Txn is one transaction, marshalled before the clock starts.
type Txn struct {
	ID   string // the transaction ID of the URL path
	Body []byte // {"events": [...]}
}

// body pads each message to an event of about 400 bytes of JSON.
var body = "Load test message of the ingest benchmark. " + strings.Repeat("abcdefghij", 16)

// BuildTxns returns n transactions of EventsPerTxn message events each, spread over rooms
// in turn. Transaction IDs start with tag, which must be unique within a whole
// benchmark, and are unique across the n transactions; event IDs are derived from it.
func BuildTxns(tag, domain string, rooms []string, n int) ([]Txn, error) {
	type content struct {
		MsgType string `json:"msgtype"`
		Body    string `json:"body"`
	}
	type evt struct {
		Type     string         `json:"type"`
		RoomID   string         `json:"room_id"`
		Sender   string         `json:"sender"`
		EventID  string         `json:"event_id"`
		TS       int64          `json:"origin_server_ts"`
		Content  content        `json:"content"`
		Unsigned map[string]int `json:"unsigned"`
	}
	txns := make([]Txn, n)
	ts := time.Now().UnixMilli()
	k := 0
	for t := range txns {
		evts := make([]evt, EventsPerTxn)
		for i := range evts {
			evts[i] = evt{
				Type: "m.room.message", RoomID: rooms[k%len(rooms)],
				Sender:  fmt.Sprintf("@user%d:%s", k%50, domain),
				EventID: eventID(tag, t, i),
				TS:      ts + int64(k), Content: content{MsgType: "m.text", Body: body},
				Unsigned: map[string]int{"age": 10},
			}
			k++
		}
		b, err := json.Marshal(map[string]any{"events": evts})
		if err != nil {
			return nil, fmt.Errorf("ingestbench: failed to marshal a transaction: %w", err)
		}
		txns[t] = Txn{ID: fmt.Sprintf("%s-%d", tag, t), Body: b}
	}
	return txns, nil
}

// eventID returns an event ID of the form homeservers give (room versions 4 and up: "$"
// and the unpadded URL-safe base64 of a SHA-256 reference hash), derived from tag, t and i:
// random-looking, as real IDs are, so that an index of them sees what it would in use.
func eventID(tag string, t, i int) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", tag, t, i))
	return "$" + base64.RawURLEncoding.EncodeToString(h[:])
}

// Sent is the number of events in txns.
func Sent(txns []Txn) int { return len(txns) * EventsPerTxn }

// LoadResult is what one pass of the load generator saw.
type LoadResult struct {
	Wall      time.Duration   // from the first request sent to the last answer
	Latencies []time.Duration // per transaction, sorted
	LastAck   time.Time       // when the last answer came
}

// Quantile returns the q-quantile (0..1) of the sorted latencies, 0 when there are none.
func (r LoadResult) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[max(0, min(i, len(r.Latencies)-1))]
}

// NewClient returns an HTTP client keeping up to concurrency connections open to one host.
func NewClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency + 2
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

// Drive PUTs txns to baseURL's transaction endpoint with concurrency transactions in
// flight, in order of their index, and fails at the first answer other than 200.
func Drive(ctx context.Context, client *http.Client, baseURL, hsToken string, txns []Txn, concurrency int) (LoadResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	lat := make([]time.Duration, len(txns))
	var (
		mu      sync.Mutex // guards lastAck
		lastAck time.Time
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range max(1, concurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				if err := put(ctx, client, baseURL, hsToken, txns[i]); err != nil {
					cancel(err)
					return
				}
				t1 := time.Now()
				lat[i] = t1.Sub(t0)
				mu.Lock()
				if t1.After(lastAck) {
					lastAck = t1
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range txns {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return LoadResult{}, err
	}
	slices.Sort(lat)
	return LoadResult{Wall: lastAck.Sub(start), Latencies: lat, LastAck: lastAck}, nil
}

func put(ctx context.Context, client *http.Client, baseURL, hsToken string, t Txn) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, baseURL+"/_matrix/app/v1/transactions/"+t.ID, bytes.NewReader(t.Body))
	if err != nil {
		return fmt.Errorf("ingestbench: transaction %s: %w", t.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+hsToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ingestbench: transaction %s: %w", t.ID, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ingestbench: transaction %s answered %s: %s", t.ID, resp.Status, b)
	}
	return nil
}
