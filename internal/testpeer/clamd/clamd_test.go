package clamd_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// instream sends data to clamd as one INSTREAM chunk and returns the raw reply.
func instream(t *testing.T, network, addr string, data []byte) string {
	t.Helper()
	conn, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	msg := []byte("zINSTREAM\x00")
	if len(data) > 0 {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(data)))
		msg = append(msg, data...)
	}
	msg = binary.BigEndian.AppendUint32(msg, 0)
	// clamd closes the connection early when the stream is too long; the reply is read anyway.
	_, _ = conn.Write(msg)
	reply, err := io.ReadAll(conn)
	if err != nil && len(reply) == 0 {
		t.Fatalf("read the reply from %s %s: %v", network, addr, err)
	}
	return string(reply)
}

func TestEICAR(t *testing.T) {
	e := clamd.EICAR()
	sum := md5.Sum(e)
	// The MD5 of the EICAR test file is public; ClamAV's daily database lists it too.
	if len(e) != 68 || hex.EncodeToString(sum[:]) != "44d88612fea8a8f36de82e1278abb02f" {
		t.Errorf("EICAR() is %d bytes with MD5 %x, want the 68-byte test file", len(e), sum)
	}
	e[0] = 'x'
	if clamd.EICAR()[0] != 'X' {
		t.Error("EICAR() returns a shared slice")
	}
}

func TestServer(t *testing.T) {
	begin := time.Now()
	srv := clamd.StartTest(t, clamd.Options{StreamMaxLength: 1 << 20})
	t.Logf("clamd ready after %v", time.Since(begin))

	listeners := []struct{ network, addr string }{{"unix", srv.SocketPath()}, {"tcp", srv.TCPAddr()}}
	if !strings.HasPrefix(srv.TCPAddr(), "127.0.0.1:") {
		t.Errorf("TCPAddr() = %q, want a loopback address", srv.TCPAddr())
	}
	if srv.StreamMaxLength() != 1<<20 {
		t.Errorf("StreamMaxLength() = %d, want %d", srv.StreamMaxLength(), 1<<20)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"EICAR is found", clamd.EICAR(), "stream: " + clamd.Signature + " FOUND\x00"},
		{"clean data is OK", []byte("hello"), "stream: OK\x00"},
		{"empty stream is OK", nil, "stream: OK\x00"},
		{"stream of exactly StreamMaxLength is OK", make([]byte, 1<<20), "stream: OK\x00"},
		{"longer stream is refused", make([]byte, 1<<20+1), "INSTREAM size limit exceeded. ERROR\x00"},
	}
	for _, l := range listeners {
		for _, tt := range tests {
			t.Run(l.network+"/"+tt.name, func(t *testing.T) {
				if got := instream(t, l.network, l.addr, tt.data); got != tt.want {
					t.Errorf("reply %q, want %q", got, tt.want)
				}
			})
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Halt(); err != nil {
		t.Fatalf("halt: %v", err)
	}
	for _, l := range listeners {
		if conn, err := net.DialTimeout(l.network, l.addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s %s accepts connections after Halt", l.network, l.addr)
		}
	}
	begin = time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("clamd restarted in %v", time.Since(begin))
	for _, l := range listeners {
		if got, want := instream(t, l.network, l.addr, clamd.EICAR()), "stream: "+clamd.Signature+" FOUND\x00"; got != want {
			t.Errorf("after restart, %s reply %q, want %q", l.network, got, want)
		}
	}
	if err := srv.Restart(ctx); err != nil { // a restart of a running clamd, right after scans
		t.Fatalf("second restart: %v", err)
	}
	if got := instream(t, "tcp", srv.TCPAddr(), []byte("x")); got != "stream: OK\x00" {
		t.Errorf("after the second restart, reply %q", got)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestLongDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	srv := clamd.StartTest(t, clamd.Options{Dir: dir})
	if len(srv.SocketPath()) > 107 || strings.HasPrefix(srv.SocketPath(), dir) {
		t.Errorf("SocketPath() = %q, want a short path outside the long Dir", srv.SocketPath())
	}
	if got := instream(t, "unix", srv.SocketPath(), bytes.Repeat([]byte("a"), 100)); got != "stream: OK\x00" {
		t.Errorf("reply %q", got)
	}
}

func TestPortTaken(t *testing.T) {
	peerproc.RequireOrSkip(t, "clamd", clamd.Available())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := clamd.Start(ctx, clamd.Options{Dir: t.TempDir(), TCPPort: port})
	if err == nil {
		srv.Stop()
		t.Fatal("Start succeeded on a taken port")
	}
	if !errors.Is(err, peerproc.ErrAddrInUse) {
		t.Errorf("error %v does not wrap peerproc.ErrAddrInUse", err)
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts clamd.Options
		want string
	}{
		{"negative StreamMaxLength", clamd.Options{StreamMaxLength: -1}, "StreamMaxLength"},
		{"StreamMaxLength of 4 GiB", clamd.Options{StreamMaxLength: 4 << 30}, "StreamMaxLength"},
		{"dir with a space", clamd.Options{Dir: filepath.Join(t.TempDir(), "a b")}, "cannot hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peerproc.RequireOrSkip(t, "clamd", clamd.Available())
			srv, err := clamd.Start(context.Background(), tt.opts)
			if err == nil {
				srv.Stop()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}
