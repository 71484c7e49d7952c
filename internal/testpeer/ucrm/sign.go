package ucrm

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	jose "github.com/go-jose/go-jose/v4"
)

// jwsHeader is the protected header of every UCRI2 message signature, byte for byte as in
// the examples of the Client API.
const jwsHeader = `{"typ":"UCRI_PLAIN","alg":"RS256"}`

// Canonical returns the RFC 8785 (JCS) serialization of v: object keys sorted by their
// UTF-16 code units, no whitespace, strings escaped like ECMAScript's JSON.stringify.
// v may hold map[string]any, []any, string, bool, nil, json.Number and integral float64
// (the values encoding/json produces); other numbers are refused, UCRI2 signs strings only.
func Canonical(v any) ([]byte, error) {
	var b strings.Builder
	if err := canonical(&b, v); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func canonical(b *strings.Builder, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case string:
		canonicalString(b, v)
	case json.Number:
		i, err := v.Int64()
		if err != nil || i > 1<<53 || i < -(1<<53) {
			return fmt.Errorf("ucrm: canonical JSON: unsupported number %s", v)
		}
		b.WriteString(strconv.FormatInt(i, 10))
	case float64:
		if v != float64(int64(v)) || v > 1<<53 || v < -(1<<53) {
			return fmt.Errorf("ucrm: canonical JSON: unsupported number %v", v)
		}
		b.WriteString(strconv.FormatInt(int64(v), 10))
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := canonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y string) int {
			return slices.Compare(utf16.Encode([]rune(x)), utf16.Encode([]rune(y)))
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			canonicalString(b, k)
			b.WriteByte(':')
			if err := canonical(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("ucrm: canonical JSON: unsupported type %T", v)
	}
	return nil
}

func canonicalString(b *strings.Builder, s string) {
	const hexDigits = "0123456789abcdef"
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hexDigits[r>>4])
				b.WriteByte(hexDigits[r&0xf])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// signedContent is the JWS payload for an envelope sent to destination, as UCRI2 defines it
// (p2p_protocol.md, § Signierung) and the reference implementation computes it
// (sha3_256(JSON.stringify(canonicalize(copy)))): the lowercase hex SHA3-256 of the
// canonical JSON (RFC 8785) of the copy {"source", "destinations": [destination],
// "payload"}, written as a JSON string literal. payload is taken whole, as received.
func signedContent(envelope map[string]any, destination string) ([]byte, error) {
	source, ok := envelope["source"].(string)
	if !ok {
		return nil, errors.New("ucrm: signature: \"source\" is missing or not a string")
	}
	payload, ok := envelope["payload"].(map[string]any)
	if !ok {
		return nil, errors.New("ucrm: signature: payload is missing or not an object")
	}
	c, err := Canonical(map[string]any{
		"source":       source,
		"destinations": []any{destination},
		"payload":      payload,
	})
	if err != nil {
		return nil, err
	}
	var lit strings.Builder
	canonicalString(&lit, string(c))
	sum := sha3.Sum256([]byte(lit.String()))
	return []byte(hex.EncodeToString(sum[:])), nil
}

// SignEnvelope returns the UCRI2 signature of envelope for destination: a JWS compact
// serialization, RS256, protected header {"typ":"UCRI_PLAIN","alg":"RS256"}, whose payload
// is the signing hash of signedContent. In a send request destination is destinations[0];
// in a received message it is destination. The envelope is not changed.
func SignEnvelope(envelope map[string]any, destination string, key *rsa.PrivateKey) (string, error) {
	content, err := signedContent(envelope, destination)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(jwsHeader)) + "." + enc.EncodeToString(content)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("ucrm: failed to sign: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

// VerifySignature checks envelope["signature"] against key for destination (see
// SignEnvelope): an RS256 JWS of type UCRI_PLAIN whose payload is the digest of the
// envelope's signed fields.
func VerifySignature(envelope map[string]any, destination string, key *rsa.PublicKey) error {
	sig, ok := envelope["signature"].(string)
	if !ok || sig == "" {
		return errors.New("ucrm: the message has no signature")
	}
	jws, err := jose.ParseSignedCompact(sig, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return fmt.Errorf("ucrm: the signature is not an RS256 JWS: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return errors.New("ucrm: the signature must hold exactly one signature")
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "UCRI_PLAIN" {
		return fmt.Errorf("ucrm: the signature has typ %v, want UCRI_PLAIN", typ)
	}
	got, err := jws.Verify(key)
	if err != nil {
		return fmt.Errorf("ucrm: the signature does not verify with the sender's key: %w", err)
	}
	want, err := signedContent(envelope, destination)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return errors.New("ucrm: the signature is valid but signs other content (digest mismatch)")
	}
	return nil
}

// jwk returns key as a JSON Web Key {kty, n, e}, base64url without padding.
func jwk(key *rsa.PublicKey) map[string]any {
	enc := base64.RawURLEncoding
	return map[string]any{
		"kty": "RSA",
		"n":   enc.EncodeToString(key.N.Bytes()),
		"e":   enc.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}
}
