package ucrm

import (
	"crypto/rsa"
	"crypto/sha3"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri/spec"
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
	canon := `{"destinations":["1.2.3.4.5.7"],` +
		`"payload":{"appId":"a","appVersion":"1.0","contentType":"application/json","data":"{\"x\":\"ä\\n\"}","schemaId":"s"},` +
		`"source":"1.2.3.4.5.6"}`
	// The reference hashes JSON.stringify(canonical string): the canonical JSON as a string literal.
	lit := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(canon) + `"`
	sum := sha3.Sum256([]byte(lit))
	if want := hex.EncodeToString(sum[:]); string(payload) != want {
		t.Fatalf("payload %s, want %s (SHA3-256 of %s)", payload, want, lit)
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

// TestVerifyOfficialExample verifies the signature of the Client API's senderRequest example
// with the key of its commParticipant example, as the UCRI2 scheme makes it.
func TestVerifyOfficialExample(t *testing.T) {
	b, err := spec.FS.ReadFile(spec.ClientAPI)
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Components struct {
			Schemas map[string]struct {
				Example map[string]any
				AllOf   []struct{ Example map[string]any }
			}
		}
	}
	if err := json.Unmarshal(b, &api); err != nil {
		t.Fatal(err)
	}
	env := api.Components.Schemas["senderRequest"].AllOf[1].Example
	part := api.Components.Schemas["commParticipant"].Example
	k, _ := part["key"].(map[string]any)
	n, err1 := base64.RawURLEncoding.DecodeString(k["n"].(string))
	e, err2 := base64.RawURLEncoding.DecodeString(k["e"].(string))
	if env == nil || err1 != nil || err2 != nil {
		t.Fatalf("examples not found: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	dest := env["destinations"].([]any)[0].(string)
	if err := VerifySignature(env, dest, pub); err != nil {
		t.Fatalf("official example: %v", err)
	}
	if err := VerifySignature(env, "1.2.3.4.5.99", pub); err == nil {
		t.Fatal("official example verified for another destination")
	}
}
