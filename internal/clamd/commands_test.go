package clamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/clamd"
)

func TestPingVersionFake(t *testing.T) {
	tests := []struct {
		name        string
		reply       string
		wantPing    error // errors.Is, or errReply
		wantVersion string
		wantVerErr  error
	}{
		{"PONG", "PONG\x00", nil, "", errReply},
		{"version", "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025\x00", errReply, "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025", nil},
		{"unknown command", "UNKNOWN COMMAND\x00", errReply, "", errReply},
		{"no reply", "", clamd.ErrUnavailable, "", clamd.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 2)
			c := clamd.New("tcp", fakeClamd(t, func(conn net.Conn) {
				cmd, _ := readCommand(conn)
				got <- cmd
				_, _ = io.WriteString(conn, tt.reply)
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Ping(ctx); !isErr(err, tt.wantPing) {
				t.Errorf("Ping: %v, want %v", err, tt.wantPing)
			}
			v, err := c.Version(ctx)
			if v != tt.wantVersion || !isErr(err, tt.wantVerErr) {
				t.Errorf("Version = %q, %v; want %q, %v", v, err, tt.wantVersion, tt.wantVerErr)
			}
			if a, b := <-got, <-got; a != "zPING\x00" || b != "zVERSION\x00" {
				t.Errorf("clamd received %q and %q, want zPING and zVERSION", a, b)
			}
		})
	}
}

// isErr reports whether err is want: errors.Is, or a *clamd.ReplyError for errReply.
func isErr(err, want error) bool {
	var re *clamd.ReplyError
	if want == errReply {
		return errors.As(err, &re)
	}
	return errors.Is(err, want)
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()
	tests := []struct {
		name, network, address string
	}{
		{"closed TCP port", "tcp", closedPort},
		{"missing Unix socket", "unix", t.TempDir() + "/clamd.sock"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := clamd.New(tt.network, tt.address)
			if err := c.Ping(ctx); !errors.Is(err, clamd.ErrUnavailable) {
				t.Errorf("Ping: %v, want ErrUnavailable", err)
			}
			if _, err := c.Version(ctx); !errors.Is(err, clamd.ErrUnavailable) {
				t.Errorf("Version: %v, want ErrUnavailable", err)
			}
			if _, err := c.Scan(ctx, bytes.NewReader([]byte("x"))); !errors.Is(err, clamd.ErrUnavailable) {
				t.Errorf("Scan: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestBadNetwork(t *testing.T) {
	err := clamd.New("udp", "127.0.0.1:3310").Ping(context.Background())
	if err == nil || errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("Ping over udp: %v, want a configuration error", err)
	}
}

func TestScanCancel(t *testing.T) {
	release := make(chan struct{})
	c := clamd.New("tcp", fakeClamd(t, func(conn net.Conn) {
		<-release // reads nothing: the client's writes block
	}))
	t.Cleanup(func() { close(release) }) // before fakeClamd's cleanup, which waits for the handler
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Scan(ctx, bytes.NewReader(randomBytes(64<<20)))
	if took := time.Since(start); took > time.Second {
		t.Errorf("Scan returned %v after the cancel", took-100*time.Millisecond)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("error %v, want context.Canceled without ErrUnavailable", err)
	}
}

func TestScanContextDeadline(t *testing.T) {
	c := clamd.New("tcp", fakeClamd(t, func(conn net.Conn) {
		_, _ = readStream(conn)
		waitClose(conn)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Scan(ctx, bytes.NewReader([]byte("x")))
	if took := time.Since(start); took > time.Second {
		t.Errorf("Scan took %v with a deadline of 150 ms", took)
	}
	if !errors.Is(err, clamd.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want ErrUnavailable and context.DeadlineExceeded", err)
	}
}

// failingReader yields n bytes and then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestScanInputError(t *testing.T) {
	received := make(chan stream, 1)
	c := clamd.New("tcp", fakeClamd(t, func(conn net.Conn) {
		s, _ := readStream(conn)
		received <- s
	}))
	boom := errors.New("boom")
	_, err := c.Scan(context.Background(), &failingReader{n: 100_000, err: boom})
	if !errors.Is(err, boom) || errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("error %v, want the reader's error without ErrUnavailable", err)
	}
	if s := <-received; s.complete {
		t.Error("the stream was ended as if complete after the reader failed")
	}
}
