package ucri

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fuzz targets for the UCRM's other answers and the keys and tokens in them: any input
// gives a result that holds what the decoder promises, or a short *Error (code 460); never
// a panic.

// checkTransportError fails unless err is an *Error with code 460 and a bounded text.
func checkTransportError(t *testing.T, name string, err error) {
	t.Helper()
	ue, ok := errors.AsType[*Error](err)
	if !ok || ue.Code != CodeInvalidTransport || len(ue.Error()) > maxErrorBytes {
		t.Fatalf("%s: error %v", name, err)
	}
}

func FuzzDecodeRegistry(f *testing.F) {
	p := apiExample(f, "commParticipant")
	f.Add([]byte(`{"commParticipants":[` + string(p) + `]}`))
	f.Add([]byte(`{"commParticipants":[` + string(p) + `,{"id":"x"}]}`))
	f.Add([]byte(`{"commParticipants":[]}`))
	f.Add([]byte(`{"commParticipants":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ps, err := DecodeRegistry(body)
		if err != nil {
			checkTransportError(t, "DecodeRegistry", err)
		} else if !json.Valid(body) {
			t.Fatal("accepted a body that is not JSON")
		}
		for _, p := range ps {
			if !IsOID(p.ID) {
				t.Fatalf("entry with id %q", p.ID)
			}
		}
	})
}

func FuzzDecodeParticipant(f *testing.F) {
	f.Add(apiExample(f, "commParticipant"))
	f.Add([]byte(`{"id":"1.2","systemName":"s","operatorName":"o","operatorShortName":"o","supportedApps":[],"techSupport":{"phone":"1","e-mail":"a@b"}}`))
	f.Add([]byte(`{"id":"1..2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodeParticipant(body)
		if err != nil {
			if p != nil {
				t.Fatal("a participant with an error")
			}
			checkTransportError(t, "DecodeParticipant", err)
			return
		}
		if !IsOID(p.ID) || !json.Valid(body) {
			t.Fatalf("accepted participant %q from %q", p.ID, body)
		}
	})
}

func FuzzDecodeInfo(f *testing.F) {
	f.Add(apiExample(f, "info"))
	f.Add([]byte(`{"apiVersion":"2.0.0","ucrmProvider":"p","ucrmProductName":"n","ucrmVersion":"1","status":3}`))
	f.Add([]byte(`{"status":1e400}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		info, err := DecodeInfo(body)
		if err != nil {
			if info != nil {
				t.Fatal("info with an error")
			}
			checkTransportError(t, "DecodeInfo", err)
			return
		}
		if !json.Valid(body) {
			t.Fatal("accepted a body that is not JSON")
		}
	})
}

func FuzzDecodeSendResponse(f *testing.F) {
	f.Add(apiExample(f, "senderResponse"))
	f.Add([]byte(`{"source":"1.2","destinations":["1..3"],"payload":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeSendResponse(body)
		if err != nil {
			if r != nil {
				t.Fatal("an answer with an error")
			}
			checkTransportError(t, "DecodeSendResponse", err)
			return
		}
		if !IsUUID(r.MessageID) || !IsOID(r.Source) || !json.Valid(body) {
			t.Fatalf("accepted messageId %q source %q", r.MessageID, r.Source)
		}
		for _, d := range r.Destinations {
			if !IsOID(d) {
				t.Fatalf("accepted destination %q", d)
			}
		}
	})
}

func FuzzPublicKeyFromJWK(f *testing.F) {
	good := JWKFromPublicKey(&testKey().PublicKey)
	f.Add(good.Kty, good.N, good.E)
	f.Add("RSA", good.N+"=", good.E)
	f.Add("RSA", "AA"+good.N, "AQ")
	f.Add("EC", "", "")
	f.Add("RSA", good.N, "AAAAAAAAAAE")
	f.Fuzz(func(t *testing.T, kty, n, e string) {
		pub, err := PublicKeyFromJWK(JWK{Kty: kty, N: n, E: e})
		if err != nil {
			if pub != nil || !errors.Is(err, ErrInvalidKey) || len(err.Error()) > maxErrorBytes {
				t.Fatalf("error %v", err)
			}
			if len(n) > 16 && strings.Contains(err.Error(), n) {
				t.Fatal("the error quotes the modulus")
			}
			return
		}
		if bits := pub.N.BitLen(); bits < MinRSABits || bits > maxRSABits || pub.E < 3 || pub.E%2 == 0 {
			t.Fatalf("accepted a key of %d bits, e=%d", bits, pub.E)
		}
		back, err := PublicKeyFromJWK(JWKFromPublicKey(pub))
		if err != nil || !back.Equal(pub) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzTokenLifetime(f *testing.F) {
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("secret"))
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	f.Add(sign(jwt.MapClaims{"iat": 1700000000, "exp": 1700000600}))
	f.Add(sign(jwt.MapClaims{"exp": 1700000600}))
	f.Add(sign(jwt.MapClaims{"exp": "soon"}))
	f.Add(sign(jwt.MapClaims{"iat": 1e300, "exp": -1e300}))
	f.Add(sign(jwt.MapClaims{}))
	f.Add("a.b.c")
	f.Add("")
	fetched := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, token string) {
		d, err := tokenLifetime(token, fetched)
		if err != nil {
			if d != 0 || !strings.HasPrefix(err.Error(), "ucri: token: ") || len(token) > 8 && strings.Contains(err.Error(), token) {
				t.Fatalf("tokenLifetime = %v, %v", d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("negative lifetime %v", d)
		}
	})
}
