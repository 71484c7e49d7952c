package ucri

// Envelope signatures, as UCRI2 defines them (spec p2p_protocol.md, § Signierung) and as
// the PMeV reference implementation makes them (shared-js/crypto.js):
//
//   - The signed copy of a message holds only source, destinations (an array of OIDs; a
//     received message has one destination, which is taken as [destination]) and payload
//     (appId, appVersion, contentType, data, schemaId). messageId, sentDate, timeout, ack,
//     description and tags are not signed: the UCRM may set or rewrite them.
//   - That copy is canonicalised with RFC 8785 (JCS). The reference hashes
//     JSON.stringify(canonicalize(copy)), that is the canonical JSON written once more as a
//     JSON string literal (in quotes, with '"' and '\\' escaped); the example signature of
//     the Client API (senderRequest.yaml) is made this way, so Switchboard does the same.
//   - The hash is SHA3-256 of those bytes, in lowercase hex (64 characters).
//   - That hex string is the payload of a compact JWS, RS256, protected header
//     {"typ":"UCRI_PLAIN","alg":"RS256"}, made with the sender's key. The receiver recomputes
//     the hash, verifies the JWS with the sender's registry key and compares the two.

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha3"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
)

// SignatureType is the typ header of an envelope signature.
const SignatureType = "UCRI_PLAIN"

// RSA key size limits for envelope signatures.
const (
	MinRSABits = 2048
	maxRSABits = 8192
)

// ErrInvalidKey is wrapped by Sign, PublicKeyFromJWK and ParsePrivateKeyPEM.
var ErrInvalidKey = errors.New("ucri: invalid RSA key")

// CanonicalForm returns the RFC 8785 (JCS) canonical JSON of the signed copy of env sent to
// destination: {"destinations":[destination],"payload":{...},"source":...}; see the comment
// at the top of sign.go. Invalid UTF-8 in a value is taken as U+FFFD, as encoding/json sends
// it.
func CanonicalForm(env *Envelope, destination string) []byte {
	p := env.Payload
	var b bytes.Buffer
	jcsObject(&b, []jcsMember{
		{"destinations", []string{destination}},
		{"payload", []jcsMember{
			{"appId", p.AppID},
			{"appVersion", p.AppVersion},
			{"contentType", p.ContentType},
			{"data", p.Data},
			{"schemaId", p.SchemaID},
		}},
		{"source", env.Source},
	})
	return b.Bytes()
}

// SigningHash returns the JWS payload of env for destination: the lowercase hex SHA3-256 of
// CanonicalForm written as a JSON string literal, as the reference's
// sha3_256(JSON.stringify(canonicalize(copy))).
func SigningHash(env *Envelope, destination string) string {
	var lit bytes.Buffer
	jcsString(&lit, string(CanonicalForm(env, destination)))
	sum := sha3.Sum256(lit.Bytes())
	return hex.EncodeToString(sum[:])
}

// Sign sets env.Signature to the UCRI2 signature of env for destination (the one OID of the
// send request's destinations) with key.
func Sign(env *Envelope, destination string, key *rsa.PrivateKey) error {
	if key == nil || key.N == nil || key.N.BitLen() < MinRSABits {
		return fmt.Errorf("%w: signing key missing or shorter than %d bits", ErrInvalidKey, MinRSABits)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType(SignatureType))
	if err != nil {
		return fmt.Errorf("ucri: failed to create signer: %w", err)
	}
	jws, err := signer.Sign([]byte(SigningHash(env, destination)))
	if err != nil {
		return fmt.Errorf("ucri: failed to sign message %s: %w", env.MessageID, err)
	}
	sig, err := jws.CompactSerialize()
	if err != nil {
		return fmt.Errorf("ucri: failed to serialize signature of message %s: %w", env.MessageID, err)
	}
	env.Signature = sig
	return nil
}

// Verify checks env.Signature against env for destination (the OID the message was
// addressed to, ReceivedMessage.Destination) and the sender's key pub (from its registry
// entry, see PublicKeyFromJWK). It returns nil or an *Error with code 479 whose Message says why: no signature, not a JWS
// compact serialization, wrong alg or typ, a signature that pub did not make, or a signed
// digest that does not match the envelope (it was changed on the way, or signed for
// another destination).
func Verify(env *Envelope, destination string, pub *rsa.PublicKey) error {
	if pub == nil {
		return errors.New("ucri: Verify without a public key")
	}
	fail := func(msg string) error {
		return &Error{Code: CodeWrongSignature, Reason: "wrong signature", Message: msg}
	}
	sig := env.Signature
	if sig == "" {
		return fail("message is not signed")
	}
	parts := strings.Split(sig, ".")
	if len(parts) != 3 {
		return fail("signature is not a JWS compact serialization")
	}
	// Strict base64url (no padding, no stray bits), so that a signature has one encoding.
	b64 := base64.RawURLEncoding.Strict()
	headerJSON, err := b64.DecodeString(parts[0])
	if err != nil {
		return fail("signature header is not base64url")
	}
	if _, err := b64.DecodeString(parts[1]); err != nil {
		return fail("signature payload is not base64url")
	}
	if _, err := b64.DecodeString(parts[2]); err != nil {
		return fail("signature value is not base64url")
	}
	var header map[string]any
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return fail("signature header is not a JSON object")
	}
	if alg, _ := header["alg"].(string); alg != string(jose.RS256) {
		return fail("signature alg is " + displayHeader(header["alg"]) + ", want RS256")
	}
	if typ, _ := header["typ"].(string); typ != SignatureType {
		return fail("signature typ is " + displayHeader(header["typ"]) + ", want " + SignatureType)
	}
	jws, err := jose.ParseSignedCompact(sig, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return fail("signature is not a valid JWS")
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return fail("signature was not made with the sender's key")
	}
	want := SigningHash(env, destination)
	if subtle.ConstantTimeCompare(payload, []byte(want)) != 1 {
		return fail("signed digest does not match the message")
	}
	return nil
}

// displayHeader shows a header value from an untrusted signature, cut short.
func displayHeader(v any) string {
	switch v := v.(type) {
	case nil:
		return "missing"
	case string:
		return quoteClipped(v)
	default:
		return "not a string"
	}
}

// PublicKeyFromJWK returns the RSA public key of a registry entry's JWK. It requires kty
// "RSA", n and e in base64url without padding, a modulus of MinRSABits to 8192 bits and an
// odd exponent from 3 to 2³¹-1. Errors wrap ErrInvalidKey.
func PublicKeyFromJWK(k JWK) (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("%w: kty is %s, want RSA", ErrInvalidKey, quoteClipped(k.Kty))
	}
	nb, err := base64.RawURLEncoding.Strict().DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("%w: n is not base64url without padding", ErrInvalidKey)
	}
	eb, err := base64.RawURLEncoding.Strict().DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("%w: e is not base64url without padding", ErrInvalidKey)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < MinRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("%w: modulus has %d bits, want %d to %d", ErrInvalidKey, bits, MinRSABits, maxRSABits)
	}
	if n.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: modulus is even", ErrInvalidKey)
	}
	e := new(big.Int).SetBytes(eb)
	if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("%w: exponent must be odd and from 3 to 2^31-1", ErrInvalidKey)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// JWKFromPublicKey returns pub as a JWK, for Switchboard's own registry entry.
func JWKFromPublicKey(pub *rsa.PublicKey) JWK {
	e := big.NewInt(int64(pub.E))
	return JWK{
		Kty: "RSA",
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(e.Bytes()),
	}
}

// ParsePrivateKeyPEM parses an RSA private key of at least MinRSABits bits from PEM, as
// PKCS #1 ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY"); other PEM blocks (such as
// certificates) before it are skipped. Encrypted PEM is not supported. Errors wrap
// ErrInvalidKey and never contain key material.
func ParsePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%w: no RSA PRIVATE KEY or PRIVATE KEY PEM block", ErrInvalidKey)
		}
		var key *rsa.PrivateKey
		switch block.Type {
		case "RSA PRIVATE KEY":
			if _, ok := block.Headers["Proc-Type"]; ok {
				return nil, fmt.Errorf("%w: encrypted PEM is not supported", ErrInvalidKey)
			}
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS #1: %w", ErrInvalidKey, err)
			}
			key = k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: PKCS #8: %w", ErrInvalidKey, err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%w: PKCS #8 key is %T, not RSA", ErrInvalidKey, k)
			}
			key = rk
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("%w: encrypted PEM is not supported", ErrInvalidKey)
		default:
			continue
		}
		if bits := key.N.BitLen(); bits < MinRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("%w: key has %d bits, want %d to %d", ErrInvalidKey, bits, MinRSABits, maxRSABits)
		}
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
		return key, nil
	}
}

// jcsMember is a member of a JSON object for jcsObject; value is a string, []string or
// []jcsMember.
type jcsMember struct {
	name  string
	value any
}

// jcsObject writes an object of string, string array and object values as RFC 8785 canonical JSON:
// members sorted by the UTF-16 code units of their names, no whitespace.
func jcsObject(b *bytes.Buffer, members []jcsMember) {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(x, y jcsMember) int { return compareUTF16(x.name, y.name) })
	b.WriteByte('{')
	for i, m := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		jcsString(b, m.name)
		b.WriteByte(':')
		switch v := m.value.(type) {
		case string:
			jcsString(b, v)
		case []string:
			b.WriteByte('[')
			for i, s := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				jcsString(b, s)
			}
			b.WriteByte(']')
		case []jcsMember:
			jcsObject(b, v)
		default:
			panic(fmt.Sprintf("ucri: jcsObject: unsupported value %T", v))
		}
	}
	b.WriteByte('}')
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts names.
func compareUTF16(x, y string) int {
	return slices.Compare(utf16.Encode([]rune(toValidUTF8(x))), utf16.Encode([]rune(toValidUTF8(y))))
}

func toValidUTF8(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// jcsString writes s as ECMAScript's JSON.stringify does (RFC 8785 section 3.2.2.2): only
// '"', '\\' and the control characters below U+0020 are escaped, with the short forms
// \b \t \n \f \r and \u00xx (lowercase hex) for the others; everything else, including
// non-ASCII, '<', '>', '&', U+2028 and U+2029, is written as is. Each invalid UTF-8 byte is
// taken as U+FFFD.
func jcsString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
