package openid

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUserID(t *testing.T) {
	const token = "s3cr3t-openid-token"
	redirectTarget := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"sub":"@mallory:example.org"}`))
	}))
	defer redirectTarget.Close()
	for _, tt := range []struct {
		name    string
		status  int
		body    string
		header  map[string]string
		want    string
		invalid bool   // want ErrInvalidToken
		errPart string // another error containing this
	}{
		{name: "valid", status: 200, body: `{"sub":"@alice:example.org"}`, want: "@alice:example.org"},
		{name: "unknown token", status: 401, body: `{"errcode":"M_UNKNOWN_TOKEN"}`, invalid: true},
		{name: "forbidden", status: 403, invalid: true},
		{name: "not found", status: 404, invalid: true},
		{name: "other server's user", status: 200, body: `{"sub":"@alice:evil.example"}`, invalid: true},
		{name: "suffix trick", status: 200, body: `{"sub":"@alice:evil.example.org"}`, invalid: true},
		{name: "no sub", status: 200, body: `{}`, errPart: "no sub"},
		{name: "sub not a string", status: 200, body: `{"sub":7}`, errPart: "no sub"},
		{name: "not JSON", status: 200, body: `<html>`, errPart: "decode"},
		{name: "server error", status: 502, errPart: "status 502"},
		{name: "redirect not followed", status: 302, header: map[string]string{"Location": redirectTarget.URL}, errPart: "status 302"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != UserinfoPath || r.URL.Query().Get("access_token") != token {
					http.Error(w, "wrong request", http.StatusTeapot)
					return
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer hs.Close()
			v := &Verifier{HomeserverURL: hs.URL + "/", ServerName: "example.org"}
			got, err := v.UserID(context.Background(), token)
			switch {
			case tt.invalid && !errors.Is(err, ErrInvalidToken):
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			case tt.errPart != "" && (err == nil || !strings.Contains(err.Error(), tt.errPart) || errors.Is(err, ErrInvalidToken)):
				t.Fatalf("err = %v, want one containing %q", err, tt.errPart)
			case tt.want != "" && (err != nil || got.String() != tt.want):
				t.Fatalf("UserID = %q, %v; want %q", got, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), token) {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

func TestUnreachableHomeserverKeepsTokenOut(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close()
	_, err := (&Verifier{HomeserverURL: url, ServerName: "example.org"}).UserID(context.Background(), "tok-123456")
	if err == nil || errors.Is(err, ErrInvalidToken) || strings.Contains(err.Error(), "tok-123456") {
		t.Errorf("err = %v", err)
	}
}

func TestMalformedTokensNotSent(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the homeserver was asked")
	}))
	defer hs.Close()
	v := &Verifier{HomeserverURL: hs.URL, ServerName: "example.org"}
	for _, tok := range []string{"", "a b", "a\nb", strings.Repeat("x", 2000)} {
		if _, err := v.UserID(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %.20q: err = %v", tok, err)
		}
	}
}

func ExampleVerifier() {
	v := &Verifier{HomeserverURL: "https://matrix.example.org", ServerName: "example.org"}
	_ = v // user, err := v.UserID(ctx, tokenFromTheClient)
}
