package appservice

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	clamdc "github.com/switchboard-matrix/switchboard/internal/clamd"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
)

// BenchmarkScan (scripts/bench scan) measures files/s and MiB/s through Switchboard's
// scanner beside clamd's own INSTREAM rate, against the real clamd over its Unix socket,
// in one run:
//
//   - Raw: the file written as INSTREAM chunks of 64 KiB straight onto a connection, the
//     reply read; nothing else (clamd's own rate as any client sees it).
//   - Switchboard: the core's scan of a file not seen before, as a module's Host.ScanFile
//     or Intent.DownloadFile makes it: SHA-256, the verdict lookup, the scan through
//     internal/clamd, the verdict recorded (an fsync on SQLite).
//   - Known: the same file scanned again (a resend, a redelivery after a crash): the
//     recorded verdict answers.
//
// Every file of Raw and Switchboard differs from the last (its first bytes are a
// counter), so clamd scans each one; clamd caches nothing by content here either way.
func BenchmarkScan(b *testing.B) {
	srv := clamd.StartTest(b, clamd.Options{})
	for _, size := range []int{64 << 10, 1 << 20, 10 << 20} {
		data := make([]byte, size)
		_, _ = rand.Read(data)
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run(name+"/Raw", func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := range b.N {
				binary.BigEndian.PutUint64(data, uint64(i))
				sig, err := rawInstream(srv.SocketPath(), data)
				if err != nil || sig != "" {
					b.Fatalf("raw INSTREAM = %q, %v", sig, err)
				}
			}
			reportFiles(b)
		})
		b.Run(name+"/Switchboard", func(b *testing.B) {
			s := benchScanner(b, srv.SocketPath())
			b.SetBytes(int64(size))
			for i := range b.N {
				binary.BigEndian.PutUint64(data, uint64(i)|1<<63) // not a file of Raw's
				if err := s.scanFile(b.Context(), "bench", Inbound, "f", data); err != nil {
					b.Fatal(err)
				}
			}
			reportFiles(b)
		})
		b.Run(name+"/Known", func(b *testing.B) {
			s := benchScanner(b, srv.SocketPath())
			if err := s.scanFile(b.Context(), "bench", Inbound, "f", data); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if err := s.scanFile(b.Context(), "bench", Inbound, "f", data); err != nil {
					b.Fatal(err)
				}
			}
			reportFiles(b)
		})
	}
}

func reportFiles(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// benchScanner is the core's scanner on clamd at socket, with a fresh SQLite store.
func benchScanner(b *testing.B, socket string) *scanner {
	c := clamdc.New("unix", socket)
	c.MaxStream = clamd.DefaultStreamMaxLength
	return newScanner(Scanning{Scanner: benchClamd{c}, Outbound: true, MaxBytes: clamd.DefaultStreamMaxLength},
		storetest.Open(b, store.SQLite), newScanMetrics(prometheus.NewRegistry()))
}

// benchClamd is internal/clamdscanner's adapter, which this package cannot import (it
// imports this package).
type benchClamd struct{ c *clamdc.Client }

func (s benchClamd) Scan(ctx context.Context, r io.Reader) (string, error) {
	res, err := s.c.Scan(ctx, r)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrScannerUnavailable, err)
	}
	return res.Signature, nil
}
func (s benchClamd) Ping(ctx context.Context) error              { return s.c.Ping(ctx) }
func (s benchClamd) Version(ctx context.Context) (string, error) { return s.c.Version(ctx) }

// rawInstream scans data with one INSTREAM on a new connection, with no abstraction.
func rawInstream(socket string, data []byte) (string, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := conn.Write([]byte("zINSTREAM\x00")); err != nil {
		return "", err
	}
	var hdr [4]byte
	for off := 0; off < len(data); off += 64 << 10 {
		chunk := data[off:min(off+64<<10, len(data))]
		binary.BigEndian.PutUint32(hdr[:], uint32(len(chunk)))
		if _, err := conn.Write(hdr[:]); err != nil {
			return "", err
		}
		if _, err := conn.Write(chunk); err != nil {
			return "", err
		}
	}
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return "", err
	}
	reply, err := io.ReadAll(io.LimitReader(conn, 4096))
	if err != nil {
		return "", err
	}
	r := strings.TrimSuffix(string(bytes.TrimRight(reply, "\x00")), "\n")
	switch {
	case r == "stream: OK":
		return "", nil
	case strings.HasSuffix(r, " FOUND"):
		return strings.TrimSuffix(strings.TrimPrefix(r, "stream: "), " FOUND"), nil
	}
	return "", errors.New("clamd: " + r)
}
