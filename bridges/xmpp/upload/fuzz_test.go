package upload

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseSlot: ParseSlot never panics, and what it accepts has http(s) URLs with a
// host and no userinfo, and only allowed headers without line breaks.
func FuzzParseSlot(f *testing.F) {
	f.Add([]byte(`<slot xmlns='urn:xmpp:http:upload:0'><put url='https://upload.example/a/b.jpg'><header name='Authorization'>Basic x==</header><header name='Cookie'>a=b</header></put><get url='https://dl.example/a/b.jpg'/></slot>`))
	f.Add([]byte(`<s:slot xmlns:s='urn:xmpp:http:upload:0'><s:put url='http://127.0.0.1:1/p'><s:header name='expires'>a&#xA;b</s:header></s:put><s:get url='http://[::1]/g'/></s:slot>`))
	f.Fuzz(func(t *testing.T, inner []byte) {
		s, err := ParseSlot(inner)
		if err != nil {
			return
		}
		for _, raw := range []string{s.PutURL, s.GetURL} {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Hostname() == "" {
				t.Fatalf("accepted URL %q", raw)
			}
		}
		for k, v := range s.Headers {
			if !allowedHeaders[k] || strings.ContainsAny(v, "\r\n") {
				t.Fatalf("accepted header %q: %q", k, v)
			}
		}
	})
}
