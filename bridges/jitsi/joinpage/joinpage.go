// Package joinpage is the Jitsi module's join page for Jitsi's token authentication: a
// Matrix widget (static HTML and JavaScript, embedded) that asks the Matrix client for the
// user's OpenID token over the widget API, exchanges it at the module's POST /token for a
// Jitsi token and opens the conference with it. Element renders Jitsi widgets with its own
// wrapper, which knows no plain Jitsi tokens; this page is what a room's widget points to
// when the module mints them.
package joinpage

import (
	"embed"
	"net/http"
	"net/url"
	"strings"
)

//go:embed static
var static embed.FS

// Paths the handler serves, relative to the module's listener.
const (
	PagePath   = "/widget.html"
	ScriptPath = "/widget.js"
)

// Handler serves the page and its script; other paths go to next.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var file, ctype string
		switch r.URL.Path {
		case PagePath:
			file, ctype = "static/widget.html", "text/html; charset=utf-8"
		case ScriptPath:
			file, ctype = "static/widget.js", "text/javascript; charset=utf-8"
		default:
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		data, err := static.ReadFile(file)
		if err != nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		// Scripts only from here, requests only to here (POST /token), embeddable by any
		// Matrix client; Jitsi itself opens in place of the page.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; frame-ancestors *; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(data)
	})
}

// WidgetURL is the widget URL of the page at publicURL (the module's listener as browsers
// reach it) for a room: Element fills in the $ templates and adds widgetId and parentUrl.
func WidgetURL(publicURL string) string {
	q := url.Values{}
	q.Set("room", "$matrix_room_id")
	q.Set("widgetId", "$matrix_widget_id")
	// url.Values escapes "$"; Element's templating wants it literal.
	return strings.TrimRight(publicURL, "/") + PagePath + "?" + strings.ReplaceAll(q.Encode(), "%24", "$")
}
