package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// TestAuthenticatedMediaDendrite: the media test on Dendrite (see testAuthenticatedMedia);
// TestAuthenticatedMediaSynapse is the same test on Synapse.
func TestAuthenticatedMediaDendrite(t *testing.T) {
	testAuthenticatedMedia(t, onHS(t, homeserver.Dendrite))
}

// testAuthenticatedMedia: a ghost uploads a file through the core's Intent; a real user
// downloads it through authenticated media (GET /_matrix/client/v1/media/download with her
// token), a request without a token is refused, and the ghost's own download
// (Intent.DownloadMedia) works and honours its size limit. What the homeserver does with the
// legacy unauthenticated /_matrix/media/v3/download is logged: Synapse (authenticated
// media on by default) no longer serves new media there, Dendrite does.
func testAuthenticatedMedia(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startInProcess(t, h, openStore(t, store.SQLite), testmodule.Config{})
	ghost, err := p.tm.Host().Ghost(testmodule.GhostPrefix + "media")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("a scanned referral from the remote network")
	mxc, err := ghost.UploadMedia(ctx, data, "text/plain", "referral.txt")
	if err != nil {
		t.Fatal(err)
	}
	alice := newUser(t, h, "media")

	get := func(cli *mautrix.Client, url string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cli != nil {
			req.Header.Set("Authorization", "Bearer "+cli.AccessToken)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var merr mautrix.RespError
		_ = merr.UnmarshalJSON(body)
		return resp.StatusCode, merr.ErrCode, body
	}
	authURL := h.BaseURL() + "/_matrix/client/v1/media/download/" + mxc.Homeserver + "/" + mxc.FileID
	legacyURL := h.BaseURL() + "/_matrix/media/v3/download/" + mxc.Homeserver + "/" + mxc.FileID

	status, code, body := get(alice, authURL)
	authenticated := status == http.StatusOK
	switch {
	case authenticated && string(body) != string(data):
		t.Errorf("authenticated download = %q, want %q", body, data)
	case !authenticated && h.Kind() == homeserver.Synapse:
		t.Errorf("authenticated download with a token = %d %s, want 200", status, code)
	case !authenticated:
		t.Logf("%s has no authenticated media: %d %s", h.Kind(), status, code)
	}
	if authenticated {
		if status, code, _ := get(nil, authURL); status != http.StatusUnauthorized {
			t.Errorf("authenticated download without a token = %d %s, want 401", status, code)
		}
	}
	status, code, _ = get(nil, legacyURL)
	t.Logf("%s: authenticated download %v; legacy unauthenticated download of new media: %d %s", h.Kind(), authenticated, status, code)
	if h.Kind() == homeserver.Synapse && status == http.StatusOK {
		t.Errorf("Synapse served new media on the legacy unauthenticated endpoint")
	}
	if h.Kind() == homeserver.Synapse {
		t.Log("Synapse differs from Dendrite: new media only through /_matrix/client/v1/media with a token; the legacy endpoint answers 404")
	} else if status == http.StatusOK {
		t.Logf("%s differs from Synapse: it serves new media on the legacy unauthenticated endpoint too", h.Kind())
	}

	got, err := ghost.DownloadMedia(ctx, mxc, 1<<20)
	if err != nil || string(got) != string(data) {
		t.Fatalf("Intent.DownloadMedia = %q, %v", got, err)
	}
	if _, err := ghost.DownloadMedia(ctx, mxc, 4); err == nil {
		t.Error("a download over the size limit was accepted")
	}
	if _, err := ghost.DownloadMedia(ctx, id.ContentURI{Homeserver: mxc.Homeserver, FileID: "nosuchfile"}, 1<<20); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("download of a missing file = %v, want the homeserver's error", err)
	}
}
