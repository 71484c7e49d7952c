package clamd_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClamd serves each connection with handle on a loopback TCP port until t ends, and
// returns the address. The connection is closed when handle returns; a handle that waits
// for the client is released by the client's close (or after 10 s).
func fakeClamd(t *testing.T, handle func(conn net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				handle(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// stream is what a client sent with INSTREAM.
type stream struct {
	data     []byte
	chunks   []int // the chunks' lengths, without the final 0
	complete bool  // the zero-length chunk arrived
}

// readStream reads the INSTREAM command and the chunks from conn. It stops at the
// zero-length chunk, or when conn ends (complete false).
func readStream(conn net.Conn) (stream, error) {
	var s stream
	cmd := make([]byte, len("zINSTREAM\x00"))
	if _, err := io.ReadFull(conn, cmd); err != nil {
		return s, err
	}
	if string(cmd) != "zINSTREAM\x00" {
		return s, fmt.Errorf("command %q", cmd)
	}
	var size [4]byte
	for {
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return s, nil
		}
		n := binary.BigEndian.Uint32(size[:])
		if n == 0 {
			s.complete = true
			return s, nil
		}
		s.chunks = append(s.chunks, int(n))
		before := len(s.data)
		s.data = append(s.data, make([]byte, n)...)
		if _, err := io.ReadFull(conn, s.data[before:]); err != nil {
			s.data = s.data[:before]
			return s, nil
		}
	}
}

// readCommand reads a NUL-terminated command, e.g. "zPING\x00", from conn.
func readCommand(conn net.Conn) (string, error) {
	var buf bytes.Buffer
	b := make([]byte, 1)
	for buf.Len() < 64 {
		if _, err := conn.Read(b); err != nil {
			return buf.String(), err
		}
		buf.WriteByte(b[0])
		if b[0] == 0 {
			break
		}
	}
	return buf.String(), nil
}

// waitClose reads from conn until the client closes it (or the deadline).
func waitClose(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }
