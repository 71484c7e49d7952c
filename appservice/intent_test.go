package appservice

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"maunium.net/go/mautrix/id"
)

// TestDownloadMediaFallsBack: authenticated media (MSC3916) first; a homeserver that does
// not know it (404 M_UNRECOGNIZED, as Dendrite before v1.11 support) is asked on the legacy
// media API; a missing file is not retried there; oversize media is refused.
func TestDownloadMediaFallsBack(t *testing.T) {
	tests := []struct {
		name          string
		authenticated bool // the homeserver serves /_matrix/client/v1/media
		file          string
		max           int64
		want          string
		wantErr       bool
	}{
		{"authenticated", true, "present", 100, "authenticated bytes", false},
		{"legacy fallback", false, "present", 100, "legacy bytes", false},
		{"missing file", true, "missing", 100, "", true},
		{"too large", true, "present", 5, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /_matrix/client/v1/media/download/{server}/{file}", func(w http.ResponseWriter, r *http.Request) {
				switch {
				case !tt.authenticated:
					w.WriteHeader(http.StatusNotFound)
					_, _ = w.Write([]byte(`{"errcode":"M_UNRECOGNIZED","error":"unknown endpoint"}`))
				case r.PathValue("file") != "present":
					w.WriteHeader(http.StatusNotFound)
					_, _ = w.Write([]byte(`{"errcode":"M_NOT_FOUND","error":"no such file"}`))
				case r.Header.Get("Authorization") == "":
					w.WriteHeader(http.StatusUnauthorized)
				default:
					_, _ = w.Write([]byte("authenticated bytes"))
				}
			})
			mux.HandleFunc("GET /_matrix/media/v3/download/{server}/{file}", func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte("legacy bytes"))
			})
			srv := httptest.NewServer(mux)
			defer srv.Close()
			as := fakeAppService(t, srv.URL)
			in := &Intent{api: as.BotIntent()}
			got, err := in.DownloadMedia(context.Background(), id.ContentURI{Homeserver: "test", FileID: tt.file}, tt.max)
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Fatalf("DownloadMedia = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
