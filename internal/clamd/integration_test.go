package clamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/clamd"
	clamdpeer "github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
)

// clients returns a client for each of srv's listeners, named by network.
func clients(srv *clamdpeer.Server) map[string]*clamd.Client {
	return map[string]*clamd.Client{
		"unix": clamd.New("unix", srv.SocketPath()),
		"tcp":  clamd.New("tcp", srv.TCPAddr()),
	}
}

func TestRealClamd(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{}) // StreamMaxLength 25 MiB
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limit := srv.StreamMaxLength()
	infected := clamd.Result{Infected: true, Signature: clamdpeer.Signature}
	tests := []struct {
		name      string
		input     []byte
		chunkSize int
		maxStream int64
		want      clamd.Result
		wantErr   error
	}{
		{name: "EICAR is found", input: clamdpeer.EICAR(), want: infected},
		{name: "EICAR in chunks of 5 bytes is found", input: clamdpeer.EICAR(), chunkSize: 5, want: infected},
		{name: "empty is clean", input: []byte{}},
		{name: "1 byte is clean", input: []byte("x")},
		{name: "1 MiB is clean", input: randomBytes(1 << 20)},
		{name: "20 MiB is clean", input: randomBytes(20 << 20)},
		{name: "exactly StreamMaxLength is clean", input: randomBytes(int(limit))},
		{name: "over StreamMaxLength is refused by clamd", input: randomBytes(int(limit) + 1), wantErr: clamd.ErrSizeLimit},
		{name: "far over StreamMaxLength is refused by clamd", input: randomBytes(int(limit) + 8<<20), wantErr: clamd.ErrSizeLimit},
		{name: "over MaxStream is refused early", input: randomBytes(int(limit) + 1), maxStream: limit, wantErr: clamd.ErrSizeLimit},
	}
	for network, c := range clients(srv) {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				c := *c
				c.ChunkSize, c.MaxStream = tt.chunkSize, tt.maxStream
				got, err := c.Scan(ctx, bytes.NewReader(tt.input))
				if got != tt.want || !errors.Is(err, tt.wantErr) {
					t.Errorf("Scan = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
				}
			})
		}
		t.Run(network+"/signature is the test database's", func(t *testing.T) {
			res, err := c.Scan(ctx, bytes.NewReader(clamdpeer.EICAR()))
			if err != nil || !strings.Contains(res.Signature, "UNOFFICIAL") || !strings.HasPrefix(res.Signature, clamdpeer.SignatureName) {
				t.Errorf("Scan = %+v, %v; want the signature %s.UNOFFICIAL", res, err, clamdpeer.SignatureName)
			}
		})
		t.Run(network+"/PING and VERSION", func(t *testing.T) {
			if err := c.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
			// Without ClamAV's official database the version has no "/DB/DATE" part.
			if v, err := c.Version(ctx); err != nil || !strings.HasPrefix(v, "ClamAV 1.") {
				t.Errorf("Version = %q, %v; want ClamAV 1.x", v, err)
			}
		})
	}
}

// TestRealClamdSizeLimitRace sends many over-long streams: clamd replies and closes the
// connection while the client still writes, and the reply must win over the write error.
func TestRealClamdSizeLimitRace(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{StreamMaxLength: 64 << 10})
	input := randomBytes(4 << 20)
	for network, c := range clients(srv) {
		t.Run(network, func(t *testing.T) {
			for i := range 25 {
				if _, err := c.Scan(context.Background(), bytes.NewReader(input)); !errors.Is(err, clamd.ErrSizeLimit) {
					t.Fatalf("scan %d: %v, want ErrSizeLimit", i, err)
				}
			}
		})
	}
}

func TestRealClamdConcurrent(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{})
	c := clamd.New("unix", srv.SocketPath())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			input, want := randomBytes(100_000+i), clamd.Result{}
			if i%2 == 0 {
				input, want = clamdpeer.EICAR(), clamd.Result{Infected: true, Signature: clamdpeer.Signature}
			}
			if got, err := c.Scan(context.Background(), bytes.NewReader(input)); got != want || err != nil {
				t.Errorf("scan %d = %+v, %v; want %+v", i, got, err, want)
			}
		})
	}
	wg.Wait()
}

// TestRealClamdOutage stops clamd and brings it back: meanwhile every call fails with
// ErrUnavailable (a caller holds the files), afterwards the same clients work again.
func TestRealClamdOutage(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := clients(srv)
	if err := srv.Halt(); err != nil {
		t.Fatalf("halt: %v", err)
	}
	for network, c := range cs {
		if err := c.Ping(ctx); !errors.Is(err, clamd.ErrUnavailable) {
			t.Errorf("%s: Ping with clamd stopped: %v, want ErrUnavailable", network, err)
		}
		if res, err := c.Scan(ctx, bytes.NewReader(clamdpeer.EICAR())); !errors.Is(err, clamd.ErrUnavailable) || res != (clamd.Result{}) {
			t.Errorf("%s: Scan with clamd stopped = %+v, %v; want ErrUnavailable", network, res, err)
		}
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	for network, c := range cs {
		if res, err := c.Scan(ctx, bytes.NewReader(clamdpeer.EICAR())); err != nil || !res.Infected {
			t.Errorf("%s: Scan after the restart = %+v, %v; want infected", network, res, err)
		}
	}
}

// slowReader yields a chunk, then blocks until release is closed, then ends.
type slowReader struct {
	sent    bool
	release chan struct{}
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, make([]byte, min(len(p), 1000))), nil
	}
	<-r.release
	return 0, io.EOF
}

// TestRealClamdStoppedMidScan stops clamd while a stream is half sent.
func TestRealClamdStoppedMidScan(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{})
	for network, c := range clients(srv) {
		t.Run(network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := &slowReader{release: make(chan struct{})}
			done := make(chan error, 1)
			c := *c
			c.ChunkSize = 1000
			go func() {
				_, err := c.Scan(ctx, r)
				done <- err
			}()
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			if err := srv.Halt(); err != nil {
				t.Fatalf("halt: %v", err)
			}
			t.Logf("clamd stopped in %v with a scan in progress", time.Since(start))
			close(r.release)
			if err := <-done; !errors.Is(err, clamd.ErrUnavailable) {
				t.Errorf("Scan: %v, want ErrUnavailable", err)
			}
			if err := srv.Restart(ctx); err != nil {
				t.Fatalf("restart: %v", err)
			}
		})
	}
}

// TestRealClamdCancel cancels a scan whose input stalls; the connection is closed at once.
func TestRealClamdCancel(t *testing.T) {
	srv := clamdpeer.StartTest(t, clamdpeer.Options{})
	c := clamd.New("unix", srv.SocketPath())
	ctx, cancel := context.WithCancel(context.Background())
	r := &slowReader{release: make(chan struct{})}
	time.AfterFunc(100*time.Millisecond, func() {
		cancel()
		close(r.release) // the reader is not interrupted by ctx; it ends on its own
	})
	if _, err := c.Scan(ctx, r); !errors.Is(err, context.Canceled) {
		t.Errorf("Scan: %v, want context.Canceled", err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping after a cancelled scan: %v", err)
	}
}
