// Package provisiontest is a test client of Switchboard's provisioning API that checks every
// request and every answer against docs/provisioning.openapi.yaml with kin-openapi (an
// independent OpenAPI validator): an answer whose status the document does not list for the
// operation, or whose body does not match its schema, fails the test. Module tests and the
// end-to-end tests use it, so the document and the code cannot drift apart.
package provisiontest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Prefix is the API's path prefix (appservice.ProvisioningPrefix; not imported, so that
// this package stays usable from any test).
const Prefix = "/_switchboard/provision/v1"

var (
	loadOnce sync.Once
	doc      *openapi3.T
	router   routers.Router
	loadErr  error
)

// SpecPath is the OpenAPI document's path.
func SpecPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs", "provisioning.openapi.yaml")
}

// Spec loads and validates the OpenAPI document once.
func Spec(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	loadOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, loadErr = loader.LoadFromFile(SpecPath())
		if loadErr != nil {
			return
		}
		if loadErr = doc.Validate(context.Background()); loadErr != nil {
			return
		}
		// Route on paths only: the test servers listen on random ports.
		doc.Servers = openapi3.Servers{{URL: Prefix}}
		router, loadErr = gorillamux.NewRouter(doc)
	})
	if loadErr != nil {
		t.Fatalf("provisiontest: %s: %v", SpecPath(), loadErr)
	}
	return doc, router
}

// Client calls the provisioning API at Base (the ops listener's URL, "http://127.0.0.1:N").
type Client struct {
	Base string
	// Auth is the Authorization header's value without "Bearer "; "" sends none.
	Auth string
	HTTP *http.Client // nil: http.DefaultClient
}

// Answer is an answer of the API.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (a Answer) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		t.Fatalf("provisiontest: answer %d is not the JSON expected: %v\n%s", a.Status, err, a.Body)
	}
}

// Errcode is the errcode of an error answer ("" for none).
func (a Answer) Errcode() string {
	var e struct {
		Errcode string `json:"errcode"`
	}
	_ = json.Unmarshal(a.Body, &e)
	return e.Errcode
}

// Do sends method path (below Prefix, with its query) with body (nil: none; a string or
// []byte is sent as it is, anything else as JSON) and checks the request and the answer
// against the document. Requests the document does not know are sent unchecked, and their
// answer must then be an error.
func (c *Client) Do(t testing.TB, method, path string, body any) Answer {
	t.Helper()
	return c.DoWith(t, method, path, body, nil)
}

// DoWith is Do with extra request headers.
func (c *Client) DoWith(t testing.TB, method, path string, body any, header http.Header) Answer {
	t.Helper()
	_, rt := Spec(t)
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.Base+Prefix+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Auth != "" {
		req.Header.Set("Authorization", "Bearer "+c.Auth)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("provisiontest: %s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	ans := Answer{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("provisiontest: %s %s: answer %d has Content-Type %q, want application/json", method, path, ans.Status, ct)
	}

	// Check against the document: route on a copy of the request without the host.
	vreq, _ := http.NewRequest(method, Prefix+path, bytes.NewReader(raw))
	vreq.Header = req.Header.Clone()
	route, params, err := rt.FindRoute(vreq)
	if err != nil {
		if ans.Status < 400 {
			t.Errorf("provisiontest: %s %s is not in the OpenAPI document (%v) but answered %d", method, path, err, ans.Status)
		}
		checkErrorBody(t, method, path, ans)
		return ans
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && ans.Status < 400 {
		t.Errorf("provisiontest: %s %s: the request does not match the document (%v) but answered %d", method, path, reqErr, ans.Status)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ans.Status, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(data)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("provisiontest: %s %s: answer %d does not match the document: %v\n%s", method, path, ans.Status, err, data)
	}
	if ans.Status >= 400 {
		checkErrorBody(t, method, path, ans)
	}
	return ans
}

// checkErrorBody checks that an error answer has an errcode and a message.
func checkErrorBody(t testing.TB, method, path string, ans Answer) {
	t.Helper()
	var e struct {
		Errcode string `json:"errcode"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(ans.Body, &e); err != nil || !strings.HasPrefix(e.Errcode, "M_") || e.Error == "" {
		t.Errorf("provisiontest: %s %s: error answer %d is not {errcode, error}: %s", method, path, ans.Status, ans.Body)
	}
}
