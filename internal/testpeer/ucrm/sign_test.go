package ucrm

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"sorted keys, no whitespace", map[string]any{"b": "1", "a": map[string]any{"d": "x", "c": "y"}}, `{"a":{"c":"y","d":"x"},"b":"1"}`},
		{"short escapes", "\"\\\b\f\n\r\t", `"\"\\\b\f\n\r\t"`},
		{"other control characters lowercase", "\x01\x1f", `"\u0001\u001f"`},
		{"everything else literal", "é€/<>&\u2028\x7f😀", "\"é€/<>&\u2028\x7f😀\""},
		{"UTF-16 key order", map[string]any{"\uff61": "1", "😀": "2", "a": "3"}, "{\"a\":\"3\",\"😀\":\"2\",\"\uff61\":\"1\"}"},
		{"arrays, literals, integers", []any{true, nil, json.Number("42"), 7.0}, `[true,null,42,7]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.in)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
	if _, err := Canonical(1.5); err == nil {
		t.Fatal("a fraction was accepted")
	}
}

func TestSignEnvelope(t *testing.T) {
	key := testKeys()[0]
	env := map[string]any{
		"messageId": "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454", "source": "1.2.3.4.5.6", "ack": "NONE",
		"payload": map[string]any{"appId": "a", "appVersion": "1.0", "schemaId": "s", "contentType": "application/json", "data": "{\"x\":\"ä\\n\"}"},
	}
	sig, err := SignEnvelope(env, "1.2.3.4.5.7", key)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sig, ".")
	if parts[0] != "eyJ0eXAiOiJVQ1JJX1BMQUlOIiwiYWxnIjoiUlMyNTYifQ" {
		t.Fatalf("protected header %s", parts[0])
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	canon := `{"destination":"1.2.3.4.5.7","messageId":"f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454",` +
		`"payload":{"appId":"a","appVersion":"1.0","contentType":"application/json","data":"{\"x\":\"ä\\n\"}","schemaId":"s"},` +
		`"source":"1.2.3.4.5.6"}`
	sum := sha256.Sum256([]byte(canon))
	if want := hex.EncodeToString(sum[:]); string(payload) != want {
		t.Fatalf("payload %s, want %s (digest of %s)", payload, want, canon)
	}
	env["signature"] = sig
	if err := VerifySignature(env, "1.2.3.4.5.7", &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	env["ack"] = "ALL" // not covered by the signature
	if err := VerifySignature(env, "1.2.3.4.5.7", &key.PublicKey); err != nil {
		t.Fatal(err)
	}
	env["source"] = "1.2.3.4.5.8"
	if err := VerifySignature(env, "1.2.3.4.5.7", &key.PublicKey); err == nil {
		t.Fatal("a changed source verified")
	}
}
