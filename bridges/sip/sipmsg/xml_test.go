package sipmsg

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// rfc3994Idle is the idle example of RFC 3994.
const rfc3994Idle = `<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing iscomposing.xsd">
  <state>idle</state>
  <lastactive>2003-01-27T10:43:00Z</lastactive>
  <contenttype>audio</contenttype>
</isComposing>
`

// rfc3994Active is the active example of RFC 3994.
const rfc3994Active = `<?xml version="1.0" encoding="UTF-8"?>
<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="urn:ietf:params:xml:ns:im-composing iscomposing.xsd">
  <state>active</state>
  <contenttype>text</contenttype>
  <refresh>90</refresh>
</isComposing>
`

// rfc5438Display is the display notification example of RFC 5438.
const rfc5438Display = `<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
   <message-id>34jk324j</message-id>
   <datetime>2008-04-04T12:16:49-05:00</datetime>
   <recipient-uri>im:bob@example.com</recipient-uri>
   <original-recipient-uri
      >im:bob@example.com</original-recipient-uri>
   <display-notification>
      <status>
         <displayed/>
      </status>
   </display-notification>
</imdn>
`

func TestParseComposing(t *testing.T) {
	tests := []struct {
		name, body string
		want       Composing
	}{
		{"RFC 3994 idle example", rfc3994Idle,
			Composing{State: "idle", ContentType: "audio", LastActive: mustTime(t, "2003-01-27T10:43:00Z")}},
		{"RFC 3994 active example", rfc3994Active, Composing{State: "active", ContentType: "text", Refresh: 90}},
		{"prefixed, no declaration", `<ic:isComposing xmlns:ic="urn:ietf:params:xml:ns:im-iscomposing"><ic:state> active </ic:state></ic:isComposing>`,
			Composing{State: "active"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(TypeComposing, []byte(tt.body), 0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Kind != KindComposing || got.Composing == nil {
				t.Fatalf("Parse = %+v", got)
			}
			c := *got.Composing
			if !c.LastActive.Equal(tt.want.LastActive) {
				t.Errorf("LastActive = %v, want %v", c.LastActive, tt.want.LastActive)
			}
			c.LastActive, tt.want.LastActive = time.Time{}, time.Time{}
			if c != tt.want {
				t.Errorf("Composing = %+v, want %+v", c, tt.want)
			}
		})
	}
}

func TestComposingBody(t *testing.T) {
	tests := []struct {
		name    string
		active  bool
		refresh int
		want    Composing
	}{
		{"active with refresh", true, 60, Composing{State: "active", ContentType: "text/plain", Refresh: 60}},
		{"active without refresh", true, 0, Composing{State: "active", ContentType: "text/plain"}},
		{"idle", false, 60, Composing{State: "idle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := ComposingBody(tt.active, tt.refresh)
			got, err := Parse(ct, body, 0)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, body)
			}
			if *got.Composing != tt.want || got.Composing.Active() != tt.active {
				t.Errorf("round trip = %+v, want %+v", *got.Composing, tt.want)
			}
		})
	}
}

func TestParseIMDN(t *testing.T) {
	tests := []struct {
		name, body string
		want       IMDN
	}{
		{"RFC 5438 delivery notification example", rfc5438Delivery, IMDN{MessageID: "34jk324j", Type: "delivery", Status: "delivered",
			Datetime: mustTime(t, "2008-04-04T12:16:49-05:00"), RecipientURI: "im:bob@example.com"}},
		{"RFC 5438 display notification example", rfc5438Display, IMDN{MessageID: "34jk324j", Type: "display", Status: "displayed",
			Datetime: mustTime(t, "2008-04-04T12:16:49-05:00"), RecipientURI: "im:bob@example.com"}},
		{"processing stored", `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>x</message-id><processing-notification><status><stored/></status></processing-notification></imdn>`,
			IMDN{MessageID: "x", Type: "processing", Status: "stored"}},
		{"failed delivery", `<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>x</message-id><delivery-notification><status><failed/></status></delivery-notification></imdn>`,
			IMDN{MessageID: "x", Type: "delivery", Status: "failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("message/imdn+xml", []byte(tt.body), 0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Kind != KindNotification || got.IMDN == nil || !sameIMDN(*got.IMDN, tt.want) {
				t.Errorf("Parse = %+v, IMDN %+v; want %+v", got, got.IMDN, tt.want)
			}
		})
	}
}

func TestIMDNBody(t *testing.T) {
	at := mustTime(t, "2008-04-04T12:16:49-05:00")
	ct, body := IMDNBody("34jk324j", "delivered", "im:bob@example.com", at)
	want := `<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <delivery-notification>
    <status>
      <delivered/>
    </status>
  </delivery-notification>
</imdn>
`
	if ct != TypeIMDN || string(body) != want {
		t.Errorf("IMDNBody = %q,\n%s\nwant\n%s", ct, body, want)
	}
	tests := []struct {
		name, status, wantType, wantStatus string
	}{
		{"delivered", "delivered", "delivery", "delivered"},
		{"displayed", "displayed", "display", "displayed"},
		{"failed", "failed", "delivery", "failed"},
		{"forbidden", "forbidden", "delivery", "forbidden"},
		{"processed", "processed", "processing", "processed"},
		{"unknown becomes error", "exploded", "delivery", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := IMDNBody("id <&> 1", tt.status, "", time.Time{})
			got, err := Parse(ct, body, 0)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, body)
			}
			want := IMDN{MessageID: "id <&> 1", Type: tt.wantType, Status: tt.wantStatus}
			if !sameIMDN(*got.IMDN, want) {
				t.Errorf("round trip = %+v, want %+v", *got.IMDN, want)
			}
		})
	}
}

func TestParseXMLErrors(t *testing.T) {
	const ns = `xmlns="urn:ietf:params:xml:ns:imdn"`
	tests := []struct {
		name, ct, body string
		max            int
		want           error
		msg            string
	}{
		{"billion laughs", TypeComposing, `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&lol2;</state></isComposing>`,
			0, ErrMalformed, "DTD"},
		{"external entity", TypeIMDN, `<!DOCTYPE imdn SYSTEM "file:///etc/passwd"><imdn ` + ns + `/>`, 0, ErrMalformed, "DTD"},
		{"processing instruction", TypeIMDN, `<imdn ` + ns + `><?php x ?></imdn>`, 0, ErrMalformed, "<?php?>"},
		{"late xml declaration", TypeIMDN, ` <?xml version="1.0"?><imdn ` + ns + `/>`, 0, ErrMalformed, "<?xml?>"},
		{"latin-1 declared", TypeIMDN, `<?xml version="1.0" encoding="ISO-8859-1"?><imdn ` + ns + `/>`, 0, ErrMalformed, "imdn"},
		{"two roots", TypeIMDN, `<imdn ` + ns + `/><imdn ` + ns + `/>`, 0, ErrMalformed, "2 root elements"},
		{"no root", TypeIMDN, ``, 0, ErrMalformed, "0 root elements"},
		{"text outside", TypeIMDN, `<imdn ` + ns + `/>junk`, 0, ErrMalformed, "text outside"},
		{"unclosed", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id>`, 0, ErrMalformed, "imdn"},
		{"deep", TypeIMDN, strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40), 0, ErrMalformed, "deeper than 32"},
		{"too large", TypeIMDN, `<imdn ` + ns + `/>`, 10, ErrTooLarge, "limit is 10"},
		{"wrong namespace", TypeIMDN, `<imdn xmlns="urn:example"><message-id>x</message-id></imdn>`, 0, ErrMalformed, "root element is {urn:example}imdn"},
		{"no message-id", TypeIMDN, `<imdn ` + ns + `><delivery-notification><status><delivered/></status></delivery-notification></imdn>`, 0, ErrMalformed, "no <message-id>"},
		{"no notification", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id></imdn>`, 0, ErrMalformed, "no delivery-"},
		{"two notifications", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id><delivery-notification><status><delivered/></status></delivery-notification><display-notification><status><displayed/></status></display-notification></imdn>`,
			0, ErrMalformed, "both <delivery-notification> and <display-notification>"},
		{"status of the wrong type", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id><delivery-notification><status><displayed/></status></delivery-notification></imdn>`,
			0, ErrMalformed, "<displayed/> is not a delivery status"},
		{"two statuses", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id><delivery-notification><status><delivered/><failed/></status></delivery-notification></imdn>`,
			0, ErrMalformed, "exactly one element"},
		{"bad datetime", TypeIMDN, `<imdn ` + ns + `><message-id>x</message-id><datetime>now</datetime></imdn>`, 0, ErrMalformed, `<datetime> "now"`},
		{"composing no state", TypeComposing, `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"/>`, 0, ErrMalformed, "no <state>"},
		{"composing bad state", TypeComposing, `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>typing</state></isComposing>`, 0, ErrMalformed, `<state> "typing"`},
		{"composing bad refresh", TypeComposing, `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>-5</refresh></isComposing>`, 0, ErrMalformed, `<refresh> "-5"`},
		{"composing bad lastactive", TypeComposing, `<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>idle</state><lastactive>x</lastactive></isComposing>`, 0, ErrMalformed, "<lastactive>"},
		{"composing wrong root", TypeComposing, `<composing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>idle</state></composing>`, 0, ErrMalformed, "want {urn:ietf:params:xml:ns:im-iscomposing}isComposing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.ct, []byte(tt.body), tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}
