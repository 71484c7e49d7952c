package sipp

import (
	"reflect"
	"strings"
	"testing"
)

// sampleLog is the shape of SIPp 3.6's message log (-trace_msg).
const sampleLog = `----------------------------------------------- 2026-12-03 16:20:14.536902
UDP message sent (315 bytes):

MESSAGE sip:alice@127.0.0.1:15060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:16000;branch=z9hG4bK-31979-1-0;rport
From: <sip:bob@sip.test>;tag=31979SIPpTag001
To: <sip:alice@127.0.0.1:15060>
Call-ID: pfx-1-31979@127.0.0.1
CSeq: 1 MESSAGE
Content-Type: text/plain
Content-Length:    10

hi there

----------------------------------------------- 2026-12-03 16:20:14.545549
UDP message received [315] bytes :

SIP/2.0 100 Trying
Call-ID: pfx-1-31979@127.0.0.1
CSeq: 1 MESSAGE
Content-Length: 0


----------------------------------------------- 2026-12-03 16:20:14.545549
UDP message received [315] bytes :

SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP 127.0.0.1:16000;branch=z9hG4bK-31979-1-0;rport=16000;received=127.0.0.1
i: pfx-1-31979@127.0.0.1
CSeq: 1 MESSAGE
Content-Length: 0


----------------------------------------------- 2026-12-03 16:20:14.546705
TCP message sent (315 bytes):

MESSAGE sip:alice@127.0.0.1:15060 SIP/2.0
Call-ID: pfx-2-31979@127.0.0.1
CSeq: 1 MESSAGE
Content-Length: 0

`

func TestParseMessageLog(t *testing.T) {
	want := []logEntry{
		{Sent: true, Request: true, Method: "MESSAGE", StartLine: "MESSAGE sip:alice@127.0.0.1:15060 SIP/2.0", CallID: "pfx-1-31979@127.0.0.1", CSeq: "1 MESSAGE"},
		{Method: "MESSAGE", Code: 100, StartLine: "SIP/2.0 100 Trying", CallID: "pfx-1-31979@127.0.0.1", CSeq: "1 MESSAGE"},
		{Method: "MESSAGE", Code: 486, StartLine: "SIP/2.0 486 Busy Here", CallID: "pfx-1-31979@127.0.0.1", CSeq: "1 MESSAGE"},
		{Sent: true, Request: true, Method: "MESSAGE", StartLine: "MESSAGE sip:alice@127.0.0.1:15060 SIP/2.0", CallID: "pfx-2-31979@127.0.0.1", CSeq: "1 MESSAGE"},
	}
	tests := []struct {
		name string
		log  string
		want []logEntry
	}{
		{"empty", "", nil},
		{"whole log", sampleLog, want},
		{"CRLF message", strings.ReplaceAll(sampleLog, "\n", "\r\n"), want},
		{"cut in the last entry", sampleLog[:strings.LastIndex(sampleLog, "Call-ID")], want[:3]},
		{"garbage", "nothing\nto see\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseMessageLog([]byte(tc.log)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestUACStats(t *testing.T) {
	sent := func(id string) logEntry { return logEntry{Sent: true, Request: true, Method: "MESSAGE", CallID: id} }
	answer := func(id string, code int) logEntry { return logEntry{Method: "MESSAGE", Code: code, CallID: id} }
	tests := []struct {
		name    string
		entries []logEntry
		want    Stats
	}{
		{"none", nil, Stats{Codes: map[int]int{}}},
		{"ok, failed, timed out", []logEntry{sent("a"), sent("b"), sent("c"), answer("a", 100), answer("a", 200), answer("b", 486), sent("c")},
			Stats{Sent: 4, OK: 1, Failed: 1, TimedOut: 1, Codes: map[int]int{200: 1, 486: 1},
				Calls: []Call{{"a", []int{200}}, {"b", []int{486}}, {"c", nil}}}},
		{"duplicate answered twice", []logEntry{sent("a"), answer("a", 200), sent("a"), answer("a", 200)},
			Stats{Sent: 2, OK: 1, Codes: map[int]int{200: 2}, Calls: []Call{{"a", []int{200, 200}}}}},
		{"duplicate refused", []logEntry{sent("a"), answer("a", 200), sent("a"), answer("a", 482)},
			Stats{Sent: 2, Failed: 1, Codes: map[int]int{200: 1, 482: 1}, Calls: []Call{{"a", []int{200, 482}}}}},
		{"stray answer", []logEntry{answer("x", 200)}, Stats{Codes: map[int]int{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := uacStats(tc.entries); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestStatusCode(t *testing.T) {
	tests := []struct {
		name string
		line string
		code int
		ok   bool
	}{
		{"ok", "SIP/2.0 200 OK", 200, true},
		{"no reason", "SIP/2.0 486", 486, true},
		{"request", "MESSAGE sip:a@b SIP/2.0", 0, false},
		{"four digits", "SIP/2.0 2000 OK", 0, false},
		{"out of range", "SIP/2.0 999 X", 0, false},
		{"empty", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, ok := statusCode(tc.line)
			if code != tc.code || ok != tc.ok {
				t.Errorf("statusCode(%q) = %d, %v; want %d, %v", tc.line, code, ok, tc.code, tc.ok)
			}
		})
	}
}

func FuzzParseMessageLog(f *testing.F) {
	f.Add([]byte(sampleLog))
	f.Add([]byte(logSeparator + "\nUDP message sent\n\nSIP/2.0 200\ni:x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, e := range parseMessageLog(data) {
			if e.CallID == "" || e.StartLine == "" || (e.Request == (e.Code != 0)) {
				t.Fatalf("entry %+v", e)
			}
		}
		_ = uacStats(parseMessageLog(data))
	})
}
