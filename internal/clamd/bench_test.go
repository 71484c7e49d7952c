package clamd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/clamd"
	clamdpeer "github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
)

// BenchmarkScan compares Client.Scan with a baseline that writes the same INSTREAM, one
// chunk of 64 KiB per write, straight on a net.Conn, both against the real clamd over
// its Unix socket. MB/s is the input scanned per second; files/s the scans per second.
// It is skipped when clamd is not installed (unless SWITCHBOARD_REQUIRE_PEERS=1).
func BenchmarkScan(b *testing.B) {
	srv := clamdpeer.StartTest(b, clamdpeer.Options{})
	for _, size := range []struct {
		name string
		n    int
	}{{"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"10MiB", 10 << 20}} {
		input := randomBytes(size.n)
		b.Run(size.name+"/client", func(b *testing.B) {
			c := clamd.New("unix", srv.SocketPath())
			benchScans(b, len(input), func() error {
				res, err := c.Scan(context.Background(), bytes.NewReader(input))
				if err == nil && res.Infected {
					b.Fatalf("random input found as %s", res.Signature)
				}
				return err
			})
		})
		b.Run(size.name+"/raw", func(b *testing.B) {
			benchScans(b, len(input), func() error { return rawScan(srv.SocketPath(), input) })
		})
	}
}

// benchScans runs scan b.N times and reports bytes and files per second.
func benchScans(b *testing.B, size int, scan func() error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := scan(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "files/s")
}

// rawScan is the baseline: INSTREAM written by hand, one write per 64 KiB chunk, the
// reply read to its end.
func rawScan(socket string, input []byte) error {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		return err
	}
	chunk := make([]byte, 4+64<<10)
	for off := 0; off < len(input); {
		n := copy(chunk[4:], input[off:])
		binary.BigEndian.PutUint32(chunk, uint32(n))
		if _, err := conn.Write(chunk[:4+n]); err != nil {
			return err
		}
		off += n
	}
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return err
	}
	reply, err := io.ReadAll(conn)
	if err != nil {
		return err
	}
	if string(reply) != "stream: OK\x00" {
		return &clamd.ReplyError{Command: "INSTREAM", Reply: string(reply)}
	}
	return nil
}
