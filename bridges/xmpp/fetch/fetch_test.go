package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pngData is the start of a PNG file, enough for content sniffing.
var pngData = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/media/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(pngData)
	})
	mux.HandleFunc("/typed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Content-Disposition", "attachment; filename=\"../../etc/pass\u202Ewd.txt\"")
		_, _ = w.Write([]byte("hello"))
	})
	mux.HandleFunc("/utf8", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename*=UTF-8''tr%C3%A8s%20cool.jpg`)
		_, _ = w.Write(pngData)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write(make([]byte, 100))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 20 {
			_, _ = w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 1000))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		_, _ = fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			http.Redirect(w, r, "/media/end.png", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGet(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name     string
		path     string
		wantType string
		wantName string
		wantData []byte
	}{
		{"sniffed type, name from path", "/media/cat%20photo.png", "image/png", "cat photo.png", pngData},
		{"header type, sanitized disposition name", "/typed", "text/plain; charset=utf-8", "pass\u202Ewd.txt", []byte("hello")},
		{"RFC 5987 file name", "/utf8", "image/png", "très cool.jpg", pngData},
		{"exactly the cap", "/exact", "application/octet-stream", "exact", make([]byte, 1000)},
		{"five redirects", "/redirect/4", "image/png", "end.png", pngData},
	}
	f := &Fetcher{AllowPrivate: true, MaxBytes: 1000}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.Get(context.Background(), srv.URL+tt.path)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			// The disposition's U+202E is a format character and is dropped.
			wantName := strings.ReplaceAll(tt.wantName, "\u202E", "")
			if got.ContentType != tt.wantType || got.FileName != wantName || !bytes.Equal(got.Data, tt.wantData) {
				t.Errorf("Get = %q %q %d bytes, want %q %q %d bytes", got.ContentType, got.FileName, len(got.Data),
					tt.wantType, wantName, len(tt.wantData))
			}
		})
	}
}

func TestGetRefused(t *testing.T) {
	srv := newServer(t)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	only127 := func(a netip.Addr) bool { return a != netip.MustParseAddr("127.0.0.1") }
	tests := []struct {
		name    string
		f       *Fetcher
		url     string
		wantErr error
	}{
		{"loopback by default", &Fetcher{}, srv.URL + "/media/a.png", ErrForbiddenAddress},
		{"localhost by name", &Fetcher{}, "http://localhost:" + port + "/media/a.png", ErrForbiddenAddress},
		{"IPv6 loopback", &Fetcher{}, "http://[::1]:" + port + "/", ErrForbiddenAddress},
		{"RFC 1918", &Fetcher{}, "http://10.0.0.1:" + port + "/", ErrForbiddenAddress},
		{"cloud metadata", &Fetcher{}, "http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"CGNAT", &Fetcher{}, "https://100.64.0.1/", ErrForbiddenAddress},
		{"unspecified", &Fetcher{}, "http://0.0.0.0:" + port + "/", ErrForbiddenAddress},
		{"ftp", &Fetcher{AllowPrivate: true}, "ftp://127.0.0.1/a", ErrScheme},
		{"file", &Fetcher{AllowPrivate: true}, "file:///etc/passwd", ErrScheme},
		{"userinfo", &Fetcher{AllowPrivate: true}, "http://user:pass@127.0.0.1:" + port + "/media/a.png", ErrScheme},
		{"no host", &Fetcher{AllowPrivate: true}, "http:///media/a.png", ErrScheme},
		{"relative", &Fetcher{AllowPrivate: true}, "/media/a.png", ErrScheme},
		{"not a URL", &Fetcher{AllowPrivate: true}, "http://[::1", ErrScheme},
		{"redirect to metadata", &Fetcher{denied: only127}, srv.URL + "/to?u=http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"redirect to IPv6 loopback", &Fetcher{denied: only127}, srv.URL + "/to?u=http://[::1]:" + port + "/media/a.png", ErrForbiddenAddress},
		{"redirect to file", &Fetcher{AllowPrivate: true}, srv.URL + "/to?u=file:///etc/passwd", ErrScheme},
		{"redirect with userinfo", &Fetcher{AllowPrivate: true}, srv.URL + "/to?u=http://a:b@127.0.0.1:" + port + "/media/a.png", ErrScheme},
		{"six redirects", &Fetcher{AllowPrivate: true}, srv.URL + "/redirect/5", ErrRedirects},
		{"announced length over the cap", &Fetcher{AllowPrivate: true, MaxBytes: 1000}, srv.URL + "/big", ErrTooLarge},
		{"streamed body over the cap", &Fetcher{AllowPrivate: true, MaxBytes: 1000}, srv.URL + "/chunked", ErrTooLarge},
		{"one byte over the cap", &Fetcher{AllowPrivate: true, MaxBytes: 999}, srv.URL + "/exact", ErrTooLarge},
		{"not found", &Fetcher{AllowPrivate: true}, srv.URL + "/missing", ErrStatus},
		{"timeout", &Fetcher{AllowPrivate: true, Timeout: 100 * time.Millisecond}, srv.URL + "/slow", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Get(context.Background(), tt.url)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Get = %v, %v; want error %v", got, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "pass") || strings.Contains(err.Error(), "meta-data") {
				t.Errorf("error %q holds a part of the URL it should not", err)
			}
		})
	}
}

func TestGetStatusError(t *testing.T) {
	srv := newServer(t)
	_, err := (&Fetcher{AllowPrivate: true}).Get(context.Background(), srv.URL+"/missing")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("Get error = %v, want StatusError 404", err)
	}
}

func TestGetTLSBaseClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(pngData)
	}))
	defer srv.Close()
	f := &Fetcher{AllowPrivate: true, Client: srv.Client()}
	got, err := f.Get(context.Background(), srv.URL+"/x/y.png")
	if err != nil || got.FileName != "y.png" || got.ContentType != "image/png" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	// The base client's transport is not trusted to check addresses.
	f = &Fetcher{Client: srv.Client()}
	if _, err := f.Get(context.Background(), srv.URL+"/x/y.png"); !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("Get error = %v, want ErrForbiddenAddress", err)
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "photo.jpg", "photo.jpg"},
		{"path", "../../etc/passwd", "passwd"},
		{"windows path", `C:\Users\x\evil.exe`, "evil.exe"},
		{"control characters", "a\x00b\nc\x7f.txt", "abc.txt"},
		{"right-to-left override", "cod\u202Egpj.exe", "codgpj.exe"},
		{"dots only", "..", ""},
		{"trailing slash", "dir/", ""},
		{"spaces trimmed", "  a b  ", "a b"},
		{"long", strings.Repeat("é", 200), strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in); got != tt.want {
				t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
