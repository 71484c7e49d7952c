package clamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/clamd"
)

// randomBytes returns n pseudo-random bytes, the same for the same n.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)}).Read(b)
	return b
}

// errReply marks test cases that expect a *clamd.ReplyError.
var errReply = errors.New("a *clamd.ReplyError")

func TestScanFake(t *testing.T) {
	input := randomBytes(200_000)
	// reply answers the whole stream with msg, after checking that it is the input.
	reply := func(msg string) func(*testing.T, net.Conn) {
		return func(t *testing.T, conn net.Conn) {
			s, err := readStream(conn)
			if err != nil || !s.complete || !bytes.Equal(s.data, input) {
				t.Errorf("clamd received %d bytes (complete %v, error %v), want the %d input bytes", len(s.data), s.complete, err, len(input))
			}
			_, _ = io.WriteString(conn, msg)
		}
	}
	tests := []struct {
		name      string
		client    clamd.Client // Network and Address are set by the test
		input     []byte
		handle    func(t *testing.T, conn net.Conn)
		want      clamd.Result
		wantErr   error  // errors.Is, or errReply
		wantReply string // the ReplyError's Reply
		maxTime   time.Duration
	}{
		{name: "clean", handle: reply("stream: OK\x00")},
		{name: "found", handle: reply("stream: Eicar-Signature FOUND\x00"), want: clamd.Result{Infected: true, Signature: "Eicar-Signature"}},
		{name: "found, odd name", handle: reply("stream: Bad\x1bName FOUND\x00"), want: clamd.Result{Infected: true, Signature: "Bad?Name"}},
		{name: "error of clamd", handle: reply("stream: Can't create temporary file ERROR\x00"),
			wantErr: errReply, wantReply: "stream: Can't create temporary file ERROR"},
		{name: "unknown reply", handle: reply("HELLO\x00"), wantErr: errReply, wantReply: "HELLO"},
		{name: "reply too long", handle: reply(strings.Repeat("A", 5000)),
			wantErr: errReply, wantReply: strings.Repeat("A", 125) + "..."},
		{name: "size limit after the stream", handle: reply("INSTREAM size limit exceeded. ERROR\x00"), wantErr: clamd.ErrSizeLimit},
		{name: "closed before the reply", handle: reply(""), wantErr: clamd.ErrUnavailable},
		{name: "closed within the reply", handle: reply("stream: O"), wantErr: clamd.ErrUnavailable},
		{
			name:  "size limit while streaming",
			input: randomBytes(32 << 20),
			handle: func(t *testing.T, conn net.Conn) {
				var head [10 + 4 + 1000]byte // the command, a chunk's length and some of it
				_, _ = io.ReadFull(conn, head[:])
				_, _ = io.WriteString(conn, "INSTREAM size limit exceeded. ERROR\x00")
			},
			wantErr: clamd.ErrSizeLimit,
		},
		{
			name:  "closed while streaming",
			input: randomBytes(32 << 20),
			handle: func(t *testing.T, conn net.Conn) {
				var head [10 + 4 + 1000]byte
				_, _ = io.ReadFull(conn, head[:])
			},
			wantErr: clamd.ErrUnavailable,
		},
		{
			name:   "no reply",
			client: clamd.Client{Timeout: 200 * time.Millisecond},
			handle: func(t *testing.T, conn net.Conn) {
				_, _ = readStream(conn)
				waitClose(conn)
			},
			wantErr: context.DeadlineExceeded,
			maxTime: 2 * time.Second,
		},
		{
			name:   "stalled while streaming",
			client: clamd.Client{Timeout: 300 * time.Millisecond},
			input:  randomBytes(64 << 20),
			handle: func(t *testing.T, conn net.Conn) {
				time.Sleep(time.Second) // reads nothing; the client's writes block
			},
			wantErr: context.DeadlineExceeded,
			maxTime: 2 * time.Second,
		},
		{
			name:   "longer than MaxStream",
			client: clamd.Client{MaxStream: 100_000},
			handle: func(t *testing.T, conn net.Conn) {
				s, _ := readStream(conn)
				if len(s.data) > 100_000 || s.complete {
					t.Errorf("clamd received %d bytes (complete %v) of a stream over MaxStream", len(s.data), s.complete)
				}
			},
			wantErr: clamd.ErrSizeLimit,
		},
		{name: "exactly MaxStream", client: clamd.Client{MaxStream: 200_000}, handle: reply("stream: OK\x00")},
		{
			name:   "small chunks",
			client: clamd.Client{ChunkSize: 7000},
			handle: func(t *testing.T, conn net.Conn) {
				s, _ := readStream(conn)
				for i, n := range s.chunks {
					if n > 7000 || (n < 7000 && i < len(s.chunks)-1) {
						t.Errorf("chunk %d of %d bytes, want 7000 (the last may be shorter)", i, n)
					}
				}
				if !s.complete || !bytes.Equal(s.data, input) {
					t.Errorf("clamd received %d bytes (complete %v), want the %d input bytes", len(s.data), s.complete, len(input))
				}
				_, _ = io.WriteString(conn, "stream: OK\x00")
			},
		},
		{
			name:  "empty input",
			input: []byte{},
			handle: func(t *testing.T, conn net.Conn) {
				if s, err := readStream(conn); err != nil || !s.complete || len(s.chunks) != 0 {
					t.Errorf("clamd received %d chunks (complete %v, error %v), want only the end", len(s.chunks), s.complete, err)
				}
				_, _ = io.WriteString(conn, "stream: OK\x00")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.client
			c.Network = "tcp"
			c.Address = fakeClamd(t, func(conn net.Conn) { tt.handle(t, conn) })
			in := tt.input
			if in == nil {
				in = input
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			got, err := c.Scan(ctx, bytes.NewReader(in))
			if tt.maxTime > 0 && time.Since(start) > tt.maxTime {
				t.Errorf("Scan took %v, want at most %v", time.Since(start), tt.maxTime)
			}
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			var re *clamd.ReplyError
			switch {
			case tt.wantErr == errReply:
				if !errors.As(err, &re) || re.Reply != tt.wantReply || re.Command != "INSTREAM" {
					t.Errorf("error %v, want a ReplyError for INSTREAM with %q", err, tt.wantReply)
				}
			case !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			case errors.Is(tt.wantErr, context.DeadlineExceeded) && !errors.Is(err, clamd.ErrUnavailable):
				t.Errorf("timeout %v does not wrap ErrUnavailable", err)
			}
		})
	}
}
