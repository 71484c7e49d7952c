package sipmsg

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rfc3862Example is the message of RFC 3862 section 3 ("Overall Message Structure"), the
// h: and e: lines, with its Require header.
const rfc3862Example = `From: MR SANDERS <im:piglet@100akerwood.com>
To: Depressed Donkey <im:eeyore@100akerwood.com>
DateTime: 2000-12-13T13:40:00-08:00
Subject: the weather will be fine today
Subject:;lang=fr beau temps prevu pour aujourd'hui
NS: MyFeatures <mid:MessageFeatures@id.foo.com>
Require: MyFeatures.VitalMessageOption
MyFeatures.VitalMessageOption: Confirmation-requested
MyFeatures.WackyMessageOption: Use-silly-font

Content-type: text/xml; charset=utf-8
Content-ID: <1234567890@foo.com>

<body>
Here is the text of my message.
</body>
`

// rfc5438Request is the message/cpim body of the RFC 5438 example of an IM
// asking for delivery notifications, as printed: without the empty line between the CPIM
// and the MIME headers.
const rfc5438Request = `From: Alice <im:alice@example.com>
To: Bob <im:bob@example.com>
NS: imdn <urn:ietf:params:imdn>
imdn.Message-ID: 34jk324j
DateTime: 2006-04-04T12:16:49-05:00
imdn.Disposition-Notification: positive-delivery, negative-delivery
Content-type: text/plain
Content-length: 12

Hello World
`

// rfc5438Delivery is the delivery notification example of RFC 5438.
const rfc5438Delivery = `<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
   <message-id>34jk324j</message-id>
   <datetime>2008-04-04T12:16:49-05:00</datetime>
   <recipient-uri>im:bob@example.com</recipient-uri>
   <original-recipient-uri
      >im:bob@example.com</original-recipient-uri>
   <delivery-notification>
      <status>
         <delivered/>
      </status>
   </delivery-notification>
</imdn>
`

// rfc5438Envelope wraps an IMDN as the RFC 5438 example does.
func rfc5438Envelope(xmlBody string) string {
	return "From: Bob <im:bob@example.com>\nTo: Alice <im:alice@example.com>\nNS: imdn <urn:ietf:params:imdn>\n" +
		"imdn.Message-ID: d834jied93rf\n\nContent-type: message/imdn+xml\nContent-Disposition: notification\n" +
		"Content-length: " + strconv.Itoa(len(crlf(xmlBody))) + "\n\n" + xmlBody
}

func TestParseCPIM(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want Content
		imdn *IMDN
	}{
		{
			name: "RFC 3862 section 3 example without Require, inner text/plain",
			body: crlf(strings.Replace(strings.Replace(rfc3862Example, "Require: MyFeatures.VitalMessageOption\n", "", 1),
				"text/xml", "text/plain", 1)),
			want: Content{Kind: KindText, Plain: "<body>\nHere is the text of my message.\n</body>\n",
				CPIMFrom: "im:piglet@100akerwood.com", CPIMTo: "im:eeyore@100akerwood.com",
				DateTime: mustTime(t, "2000-12-13T13:40:00-08:00")},
		},
		{
			name: "RFC 5438 IM example as printed (no empty line)",
			body: crlf(rfc5438Request),
			want: Content{Kind: KindText, Plain: "Hello World\n", MessageID: "34jk324j", WantDelivery: true,
				CPIMFrom: "im:alice@example.com", CPIMTo: "im:bob@example.com",
				DateTime: mustTime(t, "2006-04-04T12:16:49-05:00")},
		},
		{
			name: "RFC 5438 IM example with the empty line, Content-Length trims",
			body: crlf(strings.Replace(strings.Replace(rfc5438Request, "Content-type", "\nContent-type", 1),
				"Content-length: 12", "Content-length: 11", 1)),
			want: Content{Kind: KindText, Plain: "Hello World", MessageID: "34jk324j", WantDelivery: true,
				CPIMFrom: "im:alice@example.com", CPIMTo: "im:bob@example.com",
				DateTime: mustTime(t, "2006-04-04T12:16:49-05:00")},
		},
		{
			name: "RFC 5438 delivery notification example in CPIM",
			body: crlf(rfc5438Envelope(rfc5438Delivery)),
			want: Content{Kind: KindNotification, MessageID: "d834jied93rf",
				CPIMFrom: "im:bob@example.com", CPIMTo: "im:alice@example.com"},
			imdn: &IMDN{MessageID: "34jk324j", Type: "delivery", Status: "delivered",
				Datetime: mustTime(t, "2008-04-04T12:16:49-05:00"), RecipientURI: "im:bob@example.com"},
		},
		{
			name: "RCS style: LF ends, other prefix, display, html inner, no Content-Length",
			body: []byte("NS: x <urn:ietf:params:imdn>\nx.Message-ID: m1\nx.Disposition-Notification: display\n" +
				"From: <sip:a@b>\nTo: <sip:c@d>\nTo: <sip:e@f>\n\nContent-Type: text/html\n\n<i>hi</i>"),
			want: Content{Kind: KindText, Plain: "hi", HTML: "<i>hi</i>", MessageID: "m1", WantDisplay: true,
				CPIMFrom: "sip:a@b", CPIMTo: "sip:c@d"},
		},
		{
			name: "undeclared imdn prefix, unknown extension header, no inner type",
			body: crlf("From: sip:a@b\nimdn.Message-ID: m2\nfoo.Bar: baz\n\n\nhello"),
			want: Content{Kind: KindText, Plain: "hello", MessageID: "m2", CPIMFrom: "sip:a@b"},
		},
		{
			name: "Require of an understood header",
			body: crlf("NS: imdn <urn:ietf:params:imdn>\nRequire: imdn.Message-ID, DateTime\nimdn.Message-ID: m3\n\nContent-Type: text/plain\n\nok"),
			want: Content{Kind: KindText, Plain: "ok", MessageID: "m3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("message/CPIM", tt.body, 0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			gotIMDN := got.IMDN
			got.IMDN = nil
			if !got.DateTime.Equal(tt.want.DateTime) {
				t.Errorf("DateTime = %v, want %v", got.DateTime, tt.want.DateTime)
			}
			got.DateTime, tt.want.DateTime = time.Time{}, time.Time{}
			if *got != tt.want {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, tt.want)
			}
			if (gotIMDN == nil) != (tt.imdn == nil) || gotIMDN != nil && !sameIMDN(*gotIMDN, *tt.imdn) {
				t.Errorf("IMDN = %+v, want %+v", gotIMDN, tt.imdn)
			}
		})
	}
}

func sameIMDN(a, b IMDN) bool {
	return a.Datetime.Equal(b.Datetime) && a.MessageID == b.MessageID && a.Type == b.Type &&
		a.Status == b.Status && a.RecipientURI == b.RecipientURI
}

func TestParseCPIMErrors(t *testing.T) {
	const inner = "\nContent-Type: text/plain\n\nhi"
	tests := []struct {
		name string
		body string
		want error
		msg  string
	}{
		{"RFC 3862 section 3 example: Require not understood", rfc3862Example, ErrUnsupportedType, "MyFeatures.VitalMessageOption"},
		{"RFC 3862 example without Require: text/xml inside", strings.Replace(rfc3862Example, "Require: MyFeatures.VitalMessageOption\n", "", 1), ErrUnsupportedType, "text/xml"},
		{"empty", "", ErrMalformed, "not followed by an empty line"},
		{"headers only", "From: <sip:a@b>\n", ErrMalformed, "not followed by an empty line"},
		{"no MIME block end", "From: <sip:a@b>\n\nContent-Type: text/plain", ErrMalformed, "MIME headers"},
		{"nested cpim", "From: <sip:a@b>\n\nContent-Type: message/cpim\n\nFrom: <sip:a@b>\n" + inner, ErrUnsupportedType, "nested"},
		{"line without colon", "Subject hello\n" + inner, ErrMalformed, "line 1: no colon"},
		{"folded header", "Subject: a\n  b\n" + inner, ErrMalformed, "line 2 is folded"},
		{"bad name", "Fr om: x\n" + inner, ErrMalformed, "bad header name"},
		{"bad DateTime", "DateTime: yesterday\n" + inner, ErrMalformed, `DateTime "yesterday"`},
		{"two DateTime", "DateTime: 2000-12-13T13:40:00Z\nDateTime: 2000-12-13T13:40:00Z\n" + inner, ErrMalformed, "more than one DateTime"},
		{"two Message-ID", "imdn.Message-ID: a\nimdn.Message-ID: b\n" + inner, ErrMalformed, "more than one imdn.Message-ID"},
		{"empty Message-ID", "imdn.Message-ID: \n" + inner, ErrMalformed, "1 to 256 characters"},
		{"long Message-ID", "imdn.Message-ID: " + strings.Repeat("x", 257) + "\n" + inner, ErrMalformed, "1 to 256 characters"},
		{"bad From", "From: Alice <sip:a@b\n" + inner, ErrMalformed, "From: unterminated <"},
		{"empty To", "To: Bob <>\n" + inner, ErrMalformed, "To: empty <>"},
		{"bad NS", "NS: imdn urn:ietf:params:imdn\n" + inner, ErrMalformed, "NS header"},
		{"base64 inner", "From: <sip:a@b>\n\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGk=", ErrUnsupportedType, "base64"},
		{"bad Content-Length", "From: <sip:a@b>\n\nContent-Type: text/plain\nContent-Length: -1\n\nhi", ErrMalformed, "Content-Length"},
		{"bad MIME header", "From: <sip:a@b>\n\nContent Type: text/plain\n\nhi", ErrMalformed, "MIME header line 1"},
		{"inner invalid UTF-8", "From: <sip:a@b>\n\nContent-Type: text/plain\n\n\xff", ErrMalformed, "UTF-8"},
		{"inner image", "From: <sip:a@b>\n\nContent-Type: image/png\n\nPNG", ErrUnsupportedType, "image/png"},
		{"inner pidf", "From: <sip:a@b>\n\nContent-Type: application/pidf+xml\n\n<x/>", ErrUnsupportedType, "pidf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(TypeCPIM, crlf(tt.body), 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestCPIMBuild(t *testing.T) {
	now := mustTime(t, "2006-04-04T12:16:49-05:00")
	ct, body := CPIM("Alice <im:alice@example.com>", "im:bob@example.com", "34jk324j",
		[]string{NotifyPositiveDelivery, NotifyDisplay}, "text/plain", []byte("Hello World"), now)
	want := "From: Alice <im:alice@example.com>\r\n" +
		"To: <im:bob@example.com>\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: 34jk324j\r\n" +
		"DateTime: 2006-04-04T12:16:49-05:00\r\n" +
		"imdn.Disposition-Notification: positive-delivery, display\r\n" +
		"\r\n" +
		"Content-Type: text/plain\r\n" +
		"Content-Length: 11\r\n" +
		"\r\n" +
		"Hello World"
	if ct != TypeCPIM || string(body) != want {
		t.Errorf("CPIM = %q,\n%s\nwant\n%s", ct, body, want)
	}
	got, err := Parse(ct, body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plain != "Hello World" || got.MessageID != "34jk324j" || !got.WantDelivery || !got.WantDisplay ||
		got.CPIMFrom != "im:alice@example.com" || got.CPIMTo != "im:bob@example.com" || !got.DateTime.Equal(now) {
		t.Errorf("round trip = %+v", got)
	}
}

func TestCPIMBuildCases(t *testing.T) {
	tests := []struct {
		name                   string
		from, to, id, typ      string
		notify                 []string
		inner                  []byte
		now                    time.Time
		contains, notContains  []string
		wantKind               Kind
		wantFrom, wantID, want string
	}{
		{
			name: "anonymous, no IMDN, no time", typ: "text/plain;charset=utf-8", inner: []byte("x"),
			contains:    []string{"From: <im:anonymous@anonymous.invalid>\r\n", "To: <im:anonymous@anonymous.invalid>\r\n"},
			notContains: []string{"NS:", "imdn.", "DateTime"},
			wantKind:    KindText, wantFrom: "im:anonymous@anonymous.invalid", want: "x",
		},
		{
			name: "header injection refused", from: "sip:a@b\r\nimdn.Message-ID: evil", to: "sip:c@d",
			id: "id1\r\nX: y", notify: []string{"display\r\nFoo: bar", "bad value", NotifyPositiveDelivery},
			typ: "text/plain", inner: []byte("x"),
			contains:    []string{"imdn.Message-ID: id1X: y\r\n", "imdn.Disposition-Notification: positive-delivery\r\n"},
			notContains: []string{"\r\nX: y", "bad value", "Foo"},
			wantKind:    KindText, wantFrom: "sip:a@bimdn.Message-ID: evil", wantID: "id1X: y", want: "x",
		},
		{
			name: "IMDN inner gets Content-Disposition", from: "sip:b@x", to: "sip:a@x", id: "n1", typ: TypeIMDN,
			inner:    func() []byte { _, b := IMDNBody("m1", "delivered", "sip:b@x", time.Time{}); return b }(),
			contains: []string{"Content-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n"},
			wantKind: KindNotification, wantFrom: "sip:b@x", wantID: "n1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := CPIM(tt.from, tt.to, tt.id, tt.notify, tt.typ, tt.inner, tt.now)
			for _, s := range tt.contains {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.notContains {
				if strings.Contains(string(body), s) {
					t.Errorf("body has %q:\n%s", s, body)
				}
			}
			got, err := Parse(TypeCPIM, body, 0)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, body)
			}
			if got.Kind != tt.wantKind || got.CPIMFrom != tt.wantFrom || got.MessageID != tt.wantID || got.Plain != tt.want {
				t.Errorf("Parse = %+v", got)
			}
		})
	}
}
