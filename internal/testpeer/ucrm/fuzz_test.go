package ucrm

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzCanonical checks that the canonical form of any JSON document (within what
// Canonical supports) is valid JSON that decodes to the same value and is its own
// canonical form.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":"1","a":["\u0001",true,null]}`, `"\u2028é😀\"\\"`, `{"\uff61":1,"😀":{}}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := decodeJSON(in)
		if err != nil {
			return
		}
		c, err := Canonical(v)
		if err != nil {
			return // numbers that UCRI2 never signs
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form %q of %q is not JSON", c, in)
		}
		v2, err := decodeJSON(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Canonical(v2)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not stable: %q then %q (%v)", c, c2, err)
		}
	})
}

// FuzzParseMessage checks that ParseMessage never panics.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"messageId":"x","sequenceId":3,"payload":{"appId":"a","data":"{}"}}`))
	f.Add([]byte(`{"sequenceId":1e99,"payload":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = ParseMessage(in)
	})
}
