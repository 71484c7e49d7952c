package e2ee

import (
	"errors"
	"net/http"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
)

// TestIsUnsupported: which homeserver answers to PUT /devices mean "no MSC4190".
func TestIsUnsupported(t *testing.T) {
	answer := func(status int, code string) error {
		e := mautrix.HTTPError{Response: &http.Response{StatusCode: status}}
		if code != "" {
			e.RespError = &mautrix.RespError{ErrCode: code}
		}
		return e
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"dendrite 404", answer(404, "M_FORBIDDEN"), true},
		{"405", answer(405, ""), true},
		{"unrecognized", answer(400, "M_UNRECOGNIZED"), true},
		{"forbidden 403", answer(403, "M_FORBIDDEN"), false},
		{"server error", answer(500, "M_UNKNOWN"), false},
		{"transport", errors.New("connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUnsupported(tt.err); got != tt.want {
				t.Errorf("isUnsupported = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSeedsSealed: the cross-signing seeds are kept encrypted with the pickle key; another
// key cannot open them.
func TestSeedsSealed(t *testing.T) {
	m := &Manager{pickle: []byte("key one")}
	seeds := crypto.CrossSigningSeeds{MasterKey: []byte("m"), SelfSigningKey: []byte("s"), UserSigningKey: []byte("u")}
	sealed, err := m.sealSeeds(seeds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.openSeeds(sealed)
	if err != nil || string(got.MasterKey) != "m" || string(got.SelfSigningKey) != "s" || string(got.UserSigningKey) != "u" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	other := &Manager{pickle: []byte("key two")}
	if _, err := other.openSeeds(sealed); err == nil {
		t.Error("another pickle key opened the seeds")
	}
	for _, bad := range []string{"", "!!!", "AAAA"} {
		if _, err := m.openSeeds(bad); err == nil {
			t.Errorf("openSeeds(%q) succeeded", bad)
		}
	}
}
