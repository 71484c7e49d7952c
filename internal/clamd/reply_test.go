package clamd

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseScanReply(t *testing.T) {
	tests := []struct {
		name      string
		reply     string
		want      Result
		wantErr   error  // errors.Is, or errReply for a *ReplyError
		wantReply string // the ReplyError's Reply
	}{
		{"clean", "stream: OK", Result{}, nil, ""},
		{"found", "stream: Win.Test.EICAR_HDB-1 FOUND", Result{true, "Win.Test.EICAR_HDB-1"}, nil, ""},
		{"found, unofficial database", "stream: Switchboard.Test.EICAR.UNOFFICIAL FOUND",
			Result{true, "Switchboard.Test.EICAR.UNOFFICIAL"}, nil, ""},
		{"found, extended detection info", "stream: Eicar(44d88612fea8a8f36de82e1278abb02f:68) FOUND",
			Result{true, "Eicar(44d88612fea8a8f36de82e1278abb02f:68)"}, nil, ""},
		{"found, control bytes in the name", "stream: Bad\x1b[2JName\xff FOUND", Result{true, "Bad?[2JName?"}, nil, ""},
		{"found, long name is cut", "stream: " + strings.Repeat("S", 300) + " FOUND",
			Result{true, strings.Repeat("S", maxSignature)}, nil, ""},
		{"size limit", "INSTREAM size limit exceeded. ERROR", Result{}, ErrSizeLimit, ""},
		{"found without a name", "stream: FOUND", Result{}, errReply, "stream: FOUND"},
		{"found with a blank name", "stream:    FOUND", Result{}, errReply, "stream:    FOUND"},
		{"other error", "stream: Can't create temporary file ERROR", Result{}, errReply, "stream: Can't create temporary file ERROR"},
		{"unknown command", "UNKNOWN COMMAND", Result{}, errReply, "UNKNOWN COMMAND"},
		{"OK with a newline", "stream: OK\n", Result{}, errReply, "stream: OK\n"},
		{"OK in lower case", "stream: ok", Result{}, errReply, "stream: ok"},
		{"empty", "", Result{}, errReply, ""},
		{"long reply is cut", strings.Repeat("x", 500), Result{}, errReply, strings.Repeat("x", maxQuoted-3) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseScanReply([]byte(tt.reply))
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			var re *ReplyError
			switch {
			case tt.wantErr == errReply:
				if !errors.As(err, &re) || re.Reply != tt.wantReply || re.Command != "INSTREAM" {
					t.Errorf("error %#v, want a ReplyError for INSTREAM with %q", err, tt.wantReply)
				}
			case !errors.Is(err, tt.wantErr):
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReplyErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *ReplyError
		want string
	}{
		{"error of clamd", &ReplyError{"INSTREAM", "stream: lstat() failed ERROR"}, `clamd: INSTREAM failed: "stream: lstat() failed ERROR"`},
		{"unknown reply", &ReplyError{"PING", "PANG"}, `clamd: unexpected reply to PING: "PANG"`},
		{"control bytes are quoted", &ReplyError{"VERSION", "a\x00\n\x1b"}, `clamd: unexpected reply to VERSION: "a\x00\n\x1b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParsePongAndVersion(t *testing.T) {
	tests := []struct {
		name        string
		reply       string
		pongOK      bool
		wantVersion string // "" when VERSION would fail
	}{
		{"PONG", "PONG", true, ""},
		{"version without database", "ClamAV 1.4.6", false, "ClamAV 1.4.6"},
		{"version with database", "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025", false, "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025"},
		{"PONG with a newline", "PONG\n", false, ""},
		{"not ClamAV", "Clam 1.0", false, ""},
		{"version with control bytes", "ClamAV 1.4.6\x1b[2J", false, ""},
		{"version too long", "ClamAV " + strings.Repeat("1", 200), false, ""},
		{"empty", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := parsePong([]byte(tt.reply)); (err == nil) != tt.pongOK {
				t.Errorf("parsePong: %v, want ok=%v", err, tt.pongOK)
			}
			v, err := parseVersion([]byte(tt.reply))
			if v != tt.wantVersion || (err == nil) != (tt.wantVersion != "") {
				t.Errorf("parseVersion = %q, %v; want %q", v, err, tt.wantVersion)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		wire    string
		want    string
		wantErr error // errors.Is, or errReply for a *ReplyError
	}{
		{"one reply", "stream: OK\x00", "stream: OK", nil},
		{"bytes after the NUL are ignored", "PONG\x00PONG\x00junk", "PONG", nil},
		{"empty reply", "\x00", "", nil},
		{"no NUL before the end", "stream: O", "stream: O", errNoReply},
		{"nothing", "", "", errNoReply},
		{"longest reply", strings.Repeat("a", maxReply-1) + "\x00", strings.Repeat("a", maxReply-1), nil},
		{"reply too long", strings.Repeat("a", maxReply) + "\x00", "", errReply},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":         func(r io.Reader) io.Reader { return r },
		"byte by byte":  iotest.OneByteReader,
		"data with EOF": iotest.DataErrReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, err := readReply(wrap(strings.NewReader(tt.wire)), "INSTREAM")
				var re *ReplyError
				switch {
				case tt.wantErr == errReply:
					if !errors.As(err, &re) || len(re.Reply) != maxQuoted {
						t.Errorf("error %v, want a ReplyError with a cut reply", err)
					}
				case !errors.Is(err, tt.wantErr):
					t.Errorf("error %v, want %v", err, tt.wantErr)
				case string(got) != tt.want:
					t.Errorf("reply %q, want %q", got, tt.want)
				}
			})
		}
	}
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := readReply(iotest.ErrReader(boom), "PING"); !errors.Is(err, boom) {
			t.Errorf("error %v, want %v", err, boom)
		}
	})
}

// errReply marks test cases that expect a *ReplyError.
var errReply = errors.New("a *ReplyError")

// FuzzParseReply reads a reply off arbitrary wire bytes and parses it as the reply to
// each command. Whatever clamd sends, a verdict is either exactly "stream: OK" or an
// infection with a printable signature, and errors stay short.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"stream: OK\x00", "stream: Eicar-Signature FOUND\x00", "INSTREAM size limit exceeded. ERROR\x00",
		"stream: FOUND\x00", "PONG\x00", "ClamAV 1.4.6/27480/Tue Dec  2 09:25:23 2025\x00",
		"stream: x ERROR\x00", "stream: OK", "\x00", "stream: \xff\x01 FOUND\x00PONG\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		reply, err := readReply(bytes.NewReader(wire), "INSTREAM")
		if err != nil {
			if errors.Is(err, errNoReply) {
				if bytes.IndexByte(wire, 0) >= 0 {
					t.Fatalf("errNoReply for wire with a NUL")
				}
			} else if len(err.Error()) > 2*maxQuoted+100 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if len(reply) >= maxReply || bytes.IndexByte(reply, 0) >= 0 {
			t.Fatalf("reply of %d bytes with NUL at %d", len(reply), bytes.IndexByte(reply, 0))
		}
		res, err := parseScanReply(reply)
		switch {
		case err != nil:
			if res != (Result{}) {
				t.Fatalf("result %+v with error %v", res, err)
			}
			// %q may quadruple a byte; the message stays bounded all the same.
			if len(err.Error()) > 4*maxQuoted+100 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
		case res.Infected:
			if res.Signature == "" || len(res.Signature) > maxSignature || strings.IndexFunc(res.Signature, notPrintable) >= 0 {
				t.Fatalf("signature %q", res.Signature)
			}
			if !bytes.HasPrefix(reply, []byte(streamPrefix)) || !bytes.HasSuffix(reply, []byte(foundSuffix)) {
				t.Fatalf("infection from reply %q", reply)
			}
		default:
			if string(reply) != streamOK {
				t.Fatalf("clean verdict from reply %q", reply)
			}
		}
		if err := parsePong(reply); err == nil && string(reply) != "PONG" {
			t.Fatalf("PONG from reply %q", reply)
		}
		if v, err := parseVersion(reply); err == nil && (v != string(reply) || strings.IndexFunc(v, notPrintable) >= 0) {
			t.Fatalf("version %q from reply %q", v, reply)
		}
	})
}
