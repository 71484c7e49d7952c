package ucri

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestJCSVectors(t *testing.T) {
	t.Run("RFC 8785 3.2.2.2 string", func(t *testing.T) {
		var b bytes.Buffer
		jcsString(&b, "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"/")
		if want := `"€$\u000f\nA'B\"\\\\\"/"`; b.String() != want {
			t.Errorf("got  %s\nwant %s", b.String(), want)
		}
	})
	t.Run("RFC 8785 3.2.3 sorting", func(t *testing.T) {
		var b bytes.Buffer
		jcsObject(&b, []jcsMember{
			{"\u20ac", "Euro Sign"},
			{"\r", "Carriage Return"},
			{"\ufb33", "Hebrew Letter Dalet With Dagesh"},
			{"1", "One"},
			{"\U0001F600", "Emoji: Grinning Face"},
			{"\u0080", "Control"},
			{"\u00f6", "Latin Small Letter O With Diaeresis"},
		})
		want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"," +
			"\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\"," +
			"\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
		if b.String() != want {
			t.Errorf("got  %s\nwant %s", b.String(), want)
		}
	})
	escapes := []struct{ in, want string }{
		{"\x00", `\u0000`}, {"\x01", `\u0001`}, {"\x07", `\u0007`}, {"\b", `\b`}, {"\t", `\t`}, {"\n", `\n`},
		{"\x0b", `\u000b`}, {"\f", `\f`}, {"\r", `\r`}, {"\x1f", `\u001f`}, {" ", " "}, {"\x7f", "\x7f"},
		{`"`, `\"`}, {`\`, `\\`}, {"/", "/"}, {"<>&", "<>&"}, {"\u2028\u2029", "\u2028\u2029"},
		{"äöüß€", "äöüß€"}, {"\U0001F691", "\U0001F691"}, {"\xff", "\uFFFD"}, {"a\xc3", "a\uFFFD"},
	}
	for _, e := range escapes {
		var b bytes.Buffer
		jcsString(&b, e.in)
		if got := b.String(); got != `"`+e.want+`"` {
			t.Errorf("jcsString(%q) = %s, want %q", e.in, got, `"`+e.want+`"`)
		}
	}
}

// testEnvelope is an envelope with a signed incident-like payload.
func testEnvelope() *Envelope {
	return &Envelope{
		Description: "Einsatzübergabe",
		MessageID:   "f8c3de3d-1fea-4d7c-a8b0-29f63c4c3454",
		SentDate:    "2024-01-01T10:05:08Z",
		Timeout:     300,
		Ack:         AckNACK,
		Source:      "1.2.3.4.5.6",
		Tags:        []string{"a"},
		Payload: Payload{AppID: AppIncidentWithPatient, AppVersion: AppVersion, SchemaID: SchemaAcknowledgement,
			ContentType: ContentTypeJSON, Data: "{\"cause\":\"Straße <gesperrt>\\n\"}"},
	}
}

func TestCanonicalForm(t *testing.T) {
	got := string(CanonicalForm(testEnvelope(), "1.2.3.4.5.7"))
	want := `{"destinations":["1.2.3.4.5.7"],` +
		`"payload":{"appId":"incident_transfer_with_patient","appVersion":"1.0","contentType":"application/json",` +
		`"data":"{\"cause\":\"Straße <gesperrt>\\n\"}","schemaId":"acknowledgement"},"source":"1.2.3.4.5.6"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// It is JSON that gives back the signed values.
	var back struct {
		Destinations []string
		Source       string
		Payload      Payload
	}
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatal(err)
	}
	if env := testEnvelope(); back.Payload != env.Payload || back.Source != env.Source || len(back.Destinations) != 1 {
		t.Errorf("round trip %+v", back)
	}
}

// TestSigningHashReference pins the hash to the reference implementation's
// sha3_256(JSON.stringify(canonicalize({source, destinations, payload}))), computed for
// the official senderRequest example: the canonical JSON is hashed as a JSON string literal.
func TestSigningHashReference(t *testing.T) {
	var req SendRequest
	if err := json.Unmarshal(apiExample(t, "senderRequest"), &req); err != nil {
		t.Fatal(err)
	}
	if got, want := SigningHash(&req.Envelope, req.Destinations[0]), "82f8f10cddf74db1bee3184e43c3b88188bcbde621f042a61a08f9db30ae6f43"; got != want {
		t.Errorf("SigningHash = %s, want %s", got, want)
	}
	env := testEnvelope()
	if got := SigningHash(env, "1.2"); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) || got == SigningHash(env, "1.3") {
		t.Errorf("SigningHash = %s", got)
	}
}

func TestSignVerify(t *testing.T) {
	env := testEnvelope()
	if err := Sign(env, "1.2.3.4.5.7", testKey()); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(env.Signature, ".")
	if len(parts) != 3 {
		t.Fatalf("signature %q is not compact", env.Signature)
	}
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil || h["alg"] != "RS256" || h["typ"] != "UCRI_PLAIN" || len(h) != 2 {
		t.Errorf("header %s", header)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(payload) {
		t.Errorf("JWS payload %q is not a hex SHA3-256", payload)
	}
	if string(payload) != SigningHash(env, "1.2.3.4.5.7") {
		t.Errorf("JWS payload %q is not the signing hash", payload)
	}
	if err := Verify(env, "1.2.3.4.5.7", &testKey().PublicKey); err != nil {
		t.Fatal(err)
	}
	// A signed envelope survives a JSON round trip.
	b, _ := json.Marshal(env)
	var back Envelope
	_ = json.Unmarshal(b, &back)
	if err := Verify(&back, "1.2.3.4.5.7", &testKey().PublicKey); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyTampering(t *testing.T) {
	const dest = "1.2.3.4.5.7"
	signed := testEnvelope()
	if err := Sign(signed, dest, testKey()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Envelope) string // returns the destination to verify for
		msg    string                 // "" if the signature still verifies
	}{
		{"unchanged", func(*Envelope) string { return dest }, ""},
		{"data", func(e *Envelope) string {
			e.Payload.Data = strings.Replace(e.Payload.Data, "gesperrt", "frei", 1)
			return dest
		}, "digest does not match"},
		{"data whitespace", func(e *Envelope) string { e.Payload.Data += " "; return dest }, "digest does not match"},
		{"source", func(e *Envelope) string { e.Source = "1.2.3.4.5.8"; return dest }, "digest does not match"},
		{"message id is not signed", func(e *Envelope) string { e.MessageID = NewMessageID(); return dest }, ""},
		{"destination", func(e *Envelope) string { return "1.2.3.4.5.8" }, "digest does not match"},
		{"app id", func(e *Envelope) string { e.Payload.AppID = AppTransport; return dest }, "digest does not match"},
		{"app version", func(e *Envelope) string { e.Payload.AppVersion = "1.1"; return dest }, "digest does not match"},
		{"schema id", func(e *Envelope) string { e.Payload.SchemaID = SchemaCompletion; return dest }, "digest does not match"},
		{"content type", func(e *Envelope) string { e.Payload.ContentType = ContentTypeJOSE; return dest }, "digest does not match"},
		{"sent date is not signed", func(e *Envelope) string { e.SentDate = "2025-01-01T00:00:00Z"; return dest }, ""},
		{"timeout is not signed", func(e *Envelope) string { e.Timeout = 10; return dest }, ""},
		{"ack is not signed", func(e *Envelope) string { e.Ack = AckAll; return dest }, ""},
		{"description is not signed", func(e *Envelope) string { e.Description = ""; return dest }, ""},
		{"tags are not signed", func(e *Envelope) string { e.Tags = nil; return dest }, ""},
		{"unsigned", func(e *Envelope) string { e.Signature = ""; return dest }, "not signed"},
		{"garbage", func(e *Envelope) string { e.Signature = "garbage"; return dest }, "not a JWS compact serialization"},
		{"JSON serialization", func(e *Envelope) string { e.Signature = `{"payload":"x","signatures":[]}`; return dest }, "not a JWS compact"},
		{"bad header", func(e *Envelope) string { e.Signature = "!!." + strings.SplitN(e.Signature, ".", 2)[1]; return dest }, "not base64url"},
		{"stray bits in base64", func(e *Envelope) string {
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, e.Signature[len(e.Signature)-1])
			e.Signature = e.Signature[:len(e.Signature)-1] + string(alphabet[last^1]) // an unused bit of a 256-byte value
			return dest
		}, "signature value is not base64url"},
		{"signature bytes", func(e *Envelope) string { e.Signature = e.Signature[:len(e.Signature)-4] + "AAAA"; return dest }, "not made with the sender's key"},
		{"payload swapped", func(e *Envelope) string {
			p := strings.Split(e.Signature, ".")
			p[1] = base64.RawURLEncoding.EncodeToString([]byte(SigningHash(e, "1.9")))
			e.Signature = strings.Join(p, ".")
			return dest
		}, "not made with the sender's key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := *signed
			d := tt.change(&env)
			err := Verify(&env, d, &testKey().PublicKey)
			if tt.msg == "" {
				wantCode(t, err, 0, "")
				return
			}
			wantCode(t, err, CodeWrongSignature, tt.msg)
		})
	}
}

// jwsWith signs the digest of env with the given options, to build wrong signatures.
func jwsWith(t *testing.T, env *Envelope, alg jose.SignatureAlgorithm, key any, typ string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.Sign([]byte(SigningHash(env, "1.2")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := j.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyRejectsWrongSigners(t *testing.T) {
	env := testEnvelope()
	tests := []struct {
		name string
		sig  string
		msg  string
	}{
		{"other key", jwsWith(t, env, jose.RS256, otherTestKey(), SignatureType), "not made with the sender's key"},
		{"HS256", jwsWith(t, env, jose.HS256, bytes.Repeat([]byte("k"), 32), SignatureType), `alg is "HS256", want RS256`},
		{"PS256", jwsWith(t, env, jose.PS256, testKey(), SignatureType), `alg is "PS256"`},
		{"typ JWT", jwsWith(t, env, jose.RS256, testKey(), "JWT"), `typ is "JWT", want UCRI_PLAIN`},
		{"no typ", jwsWith(t, env, jose.RS256, testKey(), ""), "typ is missing"},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"UCRI_PLAIN"}`)) + ".eA.", `alg is "none"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := *env
			e.Signature = tt.sig
			wantCode(t, Verify(&e, "1.2", &testKey().PublicKey), CodeWrongSignature, tt.msg)
		})
	}
	if err := Verify(env, "1.2", nil); err == nil {
		t.Error("Verify without a key succeeded")
	}
}

// TestOfficialExampleSignature verifies the signature of the official senderRequest example
// with the key of the official commParticipant example: it is made with the UCRI2 scheme.
// (The senderResponse example reuses that signature for other fields, so it does not
// verify.)
func TestOfficialExampleSignature(t *testing.T) {
	var p CommParticipant
	if err := json.Unmarshal(apiExample(t, "commParticipant"), &p); err != nil {
		t.Fatal(err)
	}
	pub, err := PublicKeyFromJWK(*p.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"senderRequest"} {
		t.Run(name, func(t *testing.T) {
			var env SendRequest
			if err := json.Unmarshal(apiExample(t, name), &env); err != nil {
				t.Fatal(err)
			}
			if err := Verify(&env.Envelope, env.Destinations[0], pub); err != nil {
				t.Fatalf("Verify(official example) = %v", err)
			}
			wantCode(t, Verify(&env.Envelope, "1.2.3.4.5.8", pub), CodeWrongSignature, "signed digest does not match the message")
			wantCode(t, Verify(&env.Envelope, env.Destinations[0], &testKey().PublicKey), CodeWrongSignature, "not made with the sender's key")
		})
	}
}

func TestSignRequiresKey(t *testing.T) {
	if err := Sign(testEnvelope(), "1.2", nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Sign without key = %v", err)
	}
}

func TestPublicKeyFromJWK(t *testing.T) {
	good := JWKFromPublicKey(&testKey().PublicKey)
	b64 := base64.RawURLEncoding.EncodeToString
	odd1024 := new(big.Int).Lsh(big.NewInt(1), 1023)
	odd1024.SetBit(odd1024, 0, 1)
	tests := []struct {
		name string
		jwk  JWK
		msg  string
	}{
		{"round trip", good, ""},
		{"leading zero in n", JWK{"RSA", b64(append([]byte{0}, testKey().N.Bytes()...)), good.E}, ""},
		{"kty", JWK{"EC", good.N, good.E}, `kty is "EC"`},
		{"padding", JWK{"RSA", good.N + "=", good.E}, "n is not base64url"},
		{"std base64", JWK{"RSA", strings.NewReplacer("-", "+", "_", "/").Replace(good.N) + "+/", good.E}, "n is not base64url"},
		{"short modulus", JWK{"RSA", b64(odd1024.Bytes()), good.E}, "modulus has 1024 bits"},
		{"even modulus", JWK{"RSA", b64(new(big.Int).Lsh(big.NewInt(1), 2047).Bytes()), good.E}, "modulus is even"},
		{"e = 1", JWK{"RSA", good.N, b64([]byte{1})}, "exponent"},
		{"e even", JWK{"RSA", good.N, b64([]byte{1, 0, 0})}, "exponent"},
		{"e huge", JWK{"RSA", good.N, b64(bytes.Repeat([]byte{0xff}, 9))}, "exponent"},
		{"e empty", JWK{"RSA", good.N, ""}, "exponent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := PublicKeyFromJWK(tt.jwk)
			if tt.msg == "" {
				if err != nil || !pub.Equal(&testKey().PublicKey) {
					t.Fatalf("PublicKeyFromJWK = %v, %v", pub, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want ErrInvalidKey with %q", err, tt.msg)
			}
		})
	}
	if good.E != "AQAB" {
		t.Errorf("e = %s", good.E)
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey())})
	der8, _ := x509.MarshalPKCS8PrivateKey(testKey())
	pkcs8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der8})
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	derEC, _ := x509.MarshalPKCS8PrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not parsed")})
	tests := []struct {
		name string
		pem  []byte
		msg  string
	}{
		{"PKCS #1", pkcs1, ""},
		{"PKCS #8", pkcs8, ""},
		{"after a certificate", append(cert, pkcs8...), ""},
		{"EC", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: derEC}), "not RSA"},
		{"small", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}), "1024 bits"},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"encrypted PKCS #1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}), "encrypted"},
		{"broken", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("x")}), "PKCS #1"},
		{"no PEM", []byte("hello"), "no RSA PRIVATE KEY"},
		{"only a certificate", cert, "no RSA PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParsePrivateKeyPEM(tt.pem)
			if tt.msg == "" {
				if err != nil || !k.Equal(testKey()) {
					t.Fatalf("ParsePrivateKeyPEM = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error = %v, want ErrInvalidKey with %q", err, tt.msg)
			}
		})
	}
}
