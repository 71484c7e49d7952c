package sipmsg_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
)

func ExampleParse() {
	body := "From: Alice <sip:alice@example.org>\r\n" +
		"To: <sip:bob@example.org>\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: 34jk324j\r\n" +
		"DateTime: 2026-01-02T03:04:05Z\r\n" +
		"imdn.Disposition-Notification: positive-delivery, display\r\n" +
		"\r\n" +
		"Content-Type: text/html;charset=utf-8\r\n" +
		"\r\n" +
		`<p>Hi <a href="https://example.org/">there</a></p>`
	c, err := sipmsg.Parse("message/cpim", []byte(body), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Kind, c.CPIMFrom, c.MessageID, c.WantDelivery, c.WantDisplay)
	fmt.Println(c.Plain)
	// Output:
	// text sip:alice@example.org 34jk324j true true
	// Hi there (https://example.org/)
}

func ExampleCPIM() {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	innerType, inner := sipmsg.Text("Hello World", "")
	ct, body := sipmsg.CPIM("sip:alice@example.org", "sip:bob@example.org", "34jk324j",
		[]string{sipmsg.NotifyPositiveDelivery, sipmsg.NotifyDisplay}, innerType, inner, now)
	fmt.Println(ct)
	fmt.Print(strings.ReplaceAll(string(body), "\r\n", "\n"))
	// Output:
	// message/cpim
	// From: <sip:alice@example.org>
	// To: <sip:bob@example.org>
	// NS: imdn <urn:ietf:params:imdn>
	// imdn.Message-ID: 34jk324j
	// DateTime: 2026-01-02T03:04:05Z
	// imdn.Disposition-Notification: positive-delivery, display
	//
	// Content-Type: text/plain;charset=utf-8
	// Content-Length: 11
	//
	// Hello World
}

func ExampleIMDNBody() {
	sent := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	innerType, inner := sipmsg.IMDNBody("34jk324j", "displayed", "sip:bob@example.org", sent)
	ct, body := sipmsg.CPIM("sip:bob@example.org", "sip:alice@example.org", "n-1", nil, innerType, inner, sent)
	c, err := sipmsg.Parse(ct, body, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Kind, c.IMDN.MessageID, c.IMDN.Type, c.IMDN.Status)
	// Output: notification 34jk324j display displayed
}

func ExampleComposingBody() {
	ct, body := sipmsg.ComposingBody(true, 60)
	c, _ := sipmsg.Parse(ct, body, 0)
	fmt.Println(c.Kind, c.Composing.State, c.Composing.Refresh)
	// Output: composing active 60
}

func ExamplePIDF() {
	ct, body := sipmsg.PIDF("alice@example.org", false, "In a meeting")
	p, err := sipmsg.ParsePIDF(body, 0)
	fmt.Println(ct, p.Entity, p.Open, p.Note, err)
	// Output: application/pidf+xml pres:alice@example.org false In a meeting <nil>
}

func ExampleHTMLToPlain() {
	fmt.Println(sipmsg.HTMLToPlain(`<mx-reply><blockquote>earlier</blockquote></mx-reply>` +
		`<p>See <a href="https://example.org/doc">the doc</a>:</p><ul><li>one</li><li>two</li></ul>` +
		`<blockquote>a quote</blockquote>`))
	// Output:
	// See the doc (https://example.org/doc):
	//
	// - one
	// - two
	//
	// > a quote
}
