package sipp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// ErrNoAnswer is returned by SendRaw when no final answer came before ctx ended or the
// peer closed the connection.
var ErrNoAnswer = errors.New("sipp: no final answer")

// maxRawResponse bounds a response read by SendRaw.
const maxRawResponse = 64 << 10

// SendRaw sends raw (any bytes, e.g. a malformed request) to addr over transport ("udp"
// or "tcp"; "u1"/"t1" accepted) once, without retransmission, and returns the status line
// of the first final response, e.g. "SIP/2.0 400 Bad Request". Provisional responses are
// skipped. Without an answer until ctx ends (give it a deadline) it returns ErrNoAnswer.
func SendRaw(ctx context.Context, transport, addr string, raw []byte) (string, error) {
	network := ""
	switch transport {
	case "udp", UDP:
		network = "udp"
	case "tcp", TCP:
		network = "tcp"
	default:
		return "", fmt.Errorf("sipp: transport %q is not udp or tcp", transport)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("sipp: failed to connect to %s: %w", addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write(raw); err != nil {
		return "", fmt.Errorf("sipp: failed to send to %s: %w", addr, err)
	}
	next := readTCPStatus(conn)
	if network == "udp" {
		next = readUDPStatus(conn)
	}
	for {
		line, err := next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", fmt.Errorf("%w from %s: %w", ErrNoAnswer, addr, err)
			}
			return "", fmt.Errorf("sipp: failed to read the answer from %s: %w", addr, err)
		}
		code, ok := statusCode(line)
		if !ok {
			return "", fmt.Errorf("sipp: %s answered with %q, not a SIP status line", addr, line)
		}
		if code >= 200 {
			return line, nil
		}
	}
}

// statusCode reads "SIP/2.0 200 OK".
func statusCode(line string) (int, bool) {
	rest, ok := strings.CutPrefix(line, "SIP/2.0 ")
	if !ok || len(rest) < 3 {
		return 0, false
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 699 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, false
	}
	return code, true
}

// readUDPStatus reads datagrams and returns their first lines.
func readUDPStatus(conn net.Conn) func() (string, error) {
	buf := make([]byte, maxRawResponse)
	return func() (string, error) {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
}

// readTCPStatus reads responses from a stream (head, then Content-Length bytes of body)
// and returns their status lines.
func readTCPStatus(conn net.Conn) func() (string, error) {
	r := textproto.NewReader(bufio.NewReader(io.LimitReader(conn, 16*maxRawResponse)))
	return func() (string, error) {
		line, err := r.ReadLine()
		for err == nil && line == "" { // keep-alive CRLFs
			line, err = r.ReadLine()
		}
		if err != nil {
			return "", err
		}
		hdr, err := r.ReadMIMEHeader()
		if err != nil {
			return "", err
		}
		length := hdr.Get("Content-Length")
		if length == "" {
			length = hdr.Get("L")
		}
		if n, _ := strconv.Atoi(length); n > 0 {
			if n > maxRawResponse {
				return "", fmt.Errorf("sipp: response body of %d bytes", n)
			}
			if _, err := io.CopyN(io.Discard, r.R, int64(n)); err != nil {
				return "", err
			}
		}
		return line, nil
	}
}
