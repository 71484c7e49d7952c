package joinpage

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Handler(next)
	tests := []struct {
		name, method, path string
		status             int
		ctype, contains    string
	}{
		{"page", "GET", "/widget.html", 200, "text/html", `<script src="widget.js" defer>`},
		{"script", "GET", "/widget.js", 200, "text/javascript", `action: "get_openid"`},
		{"head", "HEAD", "/widget.js", 200, "text/javascript", ""},
		{"post refused", "POST", "/widget.html", 405, "", ""},
		{"other path passed on", "GET", "/token", http.StatusTeapot, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if tt.ctype != "" && !strings.HasPrefix(w.Header().Get("Content-Type"), tt.ctype) {
				t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
			}
			if tt.status == 200 && !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("CSP %q", w.Header().Get("Content-Security-Policy"))
			}
			if !strings.Contains(w.Body.String(), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

func ExampleWidgetURL() {
	fmt.Println(WidgetURL("https://matrix.example.org/jitsi/"))
	// Output: https://matrix.example.org/jitsi/widget.html?room=$matrix_room_id&widgetId=$matrix_widget_id
}

func TestWidgetURL(t *testing.T) {
	got := WidgetURL("https://matrix.example.org/jitsi/")
	want := "https://matrix.example.org/jitsi/widget.html?room=$matrix_room_id&widgetId=$matrix_widget_id"
	if got != want {
		t.Errorf("WidgetURL = %q, want %q", got, want)
	}
}
