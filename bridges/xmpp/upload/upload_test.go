package upload

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestRequest(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		size  int64
		ctype string
		want  string
	}{
		{"with type", "cat.jpg", 23456, "image/jpeg",
			`<request xmlns='urn:xmpp:http:upload:0' filename='cat.jpg' size='23456' content-type='image/jpeg'/>`},
		{"escaped, no type", `a'<b>&.txt`, 1, "",
			`<request xmlns='urn:xmpp:http:upload:0' filename='a&#39;&lt;b&gt;&amp;.txt' size='1'/>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Request(tt.file, tt.size, tt.ctype)); got != tt.want {
				t.Errorf("Request = %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseSlot(t *testing.T) {
	const get = `<get url='https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg'/>`
	tests := []struct {
		name    string
		inner   string
		want    *Slot
		wantErr bool
	}{
		{
			name: "XEP-0363 example with headers",
			inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg'>` +
				`<header name='Authorization'>Basic Base64String==</header><header name='cookie'>foo=bar; user=romeo</header>` +
				`<header name='Expires'>Tue, 10 Oct 2028 10:00:00 GMT</header><header name='X-Evil'>x</header><header name='Host'>evil</header>` +
				`</put>` + get + `</slot>`,
			want: &Slot{PutURL: "https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg", GetURL: "https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg",
				Headers: map[string]string{"Authorization": "Basic Base64String==", "Cookie": "foo=bar; user=romeo", "Expires": "Tue, 10 Oct 2028 10:00:00 GMT"}},
		},
		{
			name:  "newlines stripped from header values",
			inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='http://127.0.0.1:8080/p'><header name='Authorization'>a&#xD;&#xA;X-Injected: 1</header></put><get url='http://127.0.0.1:8080/g'/></slot>`,
			want:  &Slot{PutURL: "http://127.0.0.1:8080/p", GetURL: "http://127.0.0.1:8080/g", Headers: map[string]string{"Authorization": "aX-Injected: 1"}},
		},
		{name: "missing put", inner: `<slot xmlns='urn:xmpp:http:upload:0'>` + get + `</slot>`, wantErr: true},
		{name: "missing get", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/p'/></slot>`, wantErr: true},
		{name: "ftp", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='ftp://a.example/p'/>` + get + `</slot>`, wantErr: true},
		{name: "javascript get", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='https://a.example/p'/><get url='javascript:alert(1)'/></slot>`, wantErr: true},
		{name: "relative", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='/p'/>` + get + `</slot>`, wantErr: true},
		{name: "userinfo", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='https://u:p@a.example/p'/>` + get + `</slot>`, wantErr: true},
		{name: "no host", inner: `<slot xmlns='urn:xmpp:http:upload:0'><put url='https:///p'/>` + get + `</slot>`, wantErr: true},
		{name: "old namespace", inner: `<slot xmlns='urn:xmpp:http:upload'><put>https://a.example/p</put><get>https://a.example/g</get></slot>`, wantErr: true},
		{name: "not XML", inner: `slot`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSlot([]byte(tt.inner))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseSlot error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSlot = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestPut(t *testing.T) {
	type seen struct {
		method, ctype, auth, other, body string
	}
	tests := []struct {
		name     string
		status   int
		headers  map[string]string
		ctype    string
		wantErr  bool
		wantSeen seen
	}{
		{"created", http.StatusCreated, map[string]string{"Authorization": "Bearer s3cret", "X-Other": "dropped"}, "image/png", false,
			seen{"PUT", "image/png", "Bearer s3cret", "", "hello"}},
		{"no content type", http.StatusOK, nil, "", false, seen{"PUT", "", "", "", "hello"}},
		{"refused", http.StatusForbidden, map[string]string{"Authorization": "Bearer s3cret"}, "image/png", true,
			seen{"PUT", "image/png", "Bearer s3cret", "", "hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got = seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.Header.Get("X-Other"), string(body)}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			s := &Slot{PutURL: srv.URL + "/upload/tok3n/f.png", GetURL: srv.URL + "/f.png", Headers: tt.headers}
			err := Put(context.Background(), srv.Client(), s, []byte("hello"), tt.ctype)
			if got != tt.wantSeen {
				t.Errorf("server saw %+v, want %+v", got, tt.wantSeen)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				return
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status || !errors.Is(err, ErrPut) {
				t.Fatalf("Put error = %v, want StatusError %d", err, tt.status)
			}
			if msg := err.Error(); strings.Contains(msg, "s3cret") || strings.Contains(msg, "tok3n") || !strings.Contains(msg, "403") {
				t.Errorf("error %q leaks a secret or lacks the status", msg)
			}
		})
	}
}

func TestPutUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	err := Put(context.Background(), nil, &Slot{PutURL: srv.URL + "/tok3n"}, []byte("x"), "")
	if !errors.Is(err, ErrPut) || strings.Contains(err.Error(), "tok3n") {
		t.Fatalf("Put error = %v, want ErrPut without the URL", err)
	}
}

func TestMaxFileSize(t *testing.T) {
	form := func(formType, size string) string {
		return `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>` + formType +
			`</value></field><field var='max-file-size'><value>` + size + `</value></field></x>`
	}
	info := func(forms ...string) []byte {
		return []byte(`<query xmlns='http://jabber.org/protocol/disco#info'><identity category='store' type='file' name='HTTP File Upload'/>` +
			`<feature var='urn:xmpp:http:upload:0'/>` + strings.Join(forms, "") + `</query>`)
	}
	tests := []struct {
		name string
		info []byte
		want int64
		ok   bool
	}{
		{"XEP-0363 example", info(form(NS, "5242880")), 5242880, true},
		{"other form first", info(form("urn:xmpp:http:upload", "1"), form(NS, "100")), 100, true},
		{"no form", info(), 0, false},
		{"only legacy namespace", info(form("urn:xmpp:http:upload", "1")), 0, false},
		{"not a number", info(form(NS, "big")), 0, false},
		{"negative", info(form(NS, "-1")), 0, false},
		{"not disco", []byte(`<x/>`), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := MaxFileSize(tt.info)
			if got != tt.want || ok != tt.ok {
				t.Errorf("MaxFileSize = %d %v, want %d %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
