package baresip

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadNetstring(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{"two", "5:hello,0:,", []string{"hello", ""}, io.EOF},
		{"json", `14:{"event":true},`, []string{`{"event":true}`}, io.EOF},
		{"no comma", "2:abc", nil, errNetstring},
		{"letter in length", "x:", nil, errNetstring},
		{"leading zero", "01:a,", nil, errNetstring},
		{"no length", ":a,", nil, errNetstring},
		{"cut", "5:hel", nil, errNetstring},
		{"too long", "99999999:", nil, errNetstring},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in))
			var got []string
			var err error
			for {
				var b []byte
				if b, err = readNetstring(r); err != nil {
					break
				}
				got = append(got, string(b))
			}
			if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.wantErr) {
				t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzNetstring(f *testing.F) {
	f.Add([]byte("5:hello,"))
	f.Add([]byte("3:a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			b, err := readNetstring(r)
			if err != nil {
				return
			}
			// What was read frames back to a prefix of what remains consumed.
			again, err := readNetstring(bufio.NewReader(bytes.NewReader(appendNetstring(nil, b))))
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("round trip of %q: %q, %v", b, again, err)
			}
		}
	})
}

func TestConsParser(t *testing.T) {
	msg := func(from, body string) Message { return Message{From: from, Body: body, ContentType: "text/plain"} }
	tests := []struct {
		name   string
		chunks []string
		want   []Message
	}{
		{"one", []string{"\rsip:bob@sip.test: \"hi\"\n"}, []Message{msg("sip:bob@sip.test", "hi")}},
		{"among log lines", []string{"ua: something\n\rsip:bob@sip.test: \"a \"quoted\" b\"\nother log\n"},
			[]Message{msg("sip:bob@sip.test", `a "quoted" b`)}},
		{"split", []string{"\rsip:bob@sip", ".test: \"multi\nli", "ne\"\n"}, []Message{msg("sip:bob@sip.test", "multi\nline")}},
		{"two in one read", []string{"\rsip:a@x: \"1\"\n\rsips:b@y: \"2\"\n"}, []Message{msg("sip:a@x", "1"), msg("sips:b@y", "2")}},
		{"empty body", []string{"\rsip:a@x: \"\"\n"}, []Message{msg("sip:a@x", "")}},
		{"log only", []string{"baresip is ready.\n", "\r\n"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p consParser
			var got []Message
			for _, c := range tc.chunks {
				got = append(got, p.feed([]byte(c))...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzConsParser(f *testing.F) {
	f.Add([]byte("\rsip:bob@sip.test: \"hi\"\n"), 3)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var whole, parts consParser
		a := whole.feed(data)
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		b := append(parts.feed(data[:split]), parts.feed(data[split:])...)
		if len(a) != len(b) {
			t.Fatalf("whole %+v, split at %d %+v", a, split, b)
		}
		if len(whole.buf) > maxConsBuffer+len(data) {
			t.Fatalf("buffer grew to %d", len(whole.buf))
		}
	})
}

func TestParseContacts(t *testing.T) {
	out := "\n--- Contacts (3) ---\n" +
		">     \x1b[32mUnknown\x1b[;m bob <sip:bob@sip.test>\n" +
		"       \x1b[32mOnline\x1b[;m  <sip:carol@sip.test>\n" +
		"        \x1b[31mBusy\x1b[;m Dave D <sip:dave@sip.test>\n\n"
	want := []contactState{
		{uri: "sip:bob@sip.test", current: true, presence: PresenceUnknown},
		{uri: "sip:carol@sip.test", presence: PresenceOnline},
		{uri: "sip:dave@sip.test", presence: PresenceBusy},
	}
	tests := []struct {
		name string
		out  string
		want []contactState
	}{
		{"with presence", out, want},
		{"without presence module", "\n--- Contacts (1) ---\n>  <sip:bob@sip.test>\n", []contactState{{uri: "sip:bob@sip.test", current: true, presence: PresenceUnknown}}},
		{"none", "\n--- Contacts (0) ---\n\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseContacts(tc.out); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRegisteredIn(t *testing.T) {
	tests := []struct {
		name, out string
		want      bool
	}{
		{"ok", "\n--- User Agents (1) ---\n> sip:alice@sip.test   \x1b[32mOK \x1b[;m sip:127.0.0.1:5060 Expires 3600s\n\n", true},
		{"failed", "> sip:alice@sip.test   \x1b[31mERR\x1b[;m sip:127.0.0.1:5060 Expires 0s\n", false},
		{"no registration", "> sip:alice@sip.test                        \n", false},
		{"other account", "> sip:bob@sip.test OK\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := registeredIn(tc.out, "sip:alice@sip.test"); got != tc.want {
				t.Errorf("registeredIn = %v, want %v", got, tc.want)
			}
		})
	}
}
