package fetch_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/fetch"
)

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("hello"))
	}))
	defer srv.Close()

	// The default Fetcher refuses the bridge's own network, such as this test server.
	var strict fetch.Fetcher
	_, err := strict.Get(context.Background(), srv.URL+"/notes/hello.txt")
	fmt.Println(errors.Is(err, fetch.ErrForbiddenAddress))

	// A Fetcher for tests, allowing loopback addresses.
	f := &fetch.Fetcher{AllowPrivate: true, MaxBytes: 1 << 20}
	file, err := f.Get(context.Background(), srv.URL+"/notes/hello.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(file.FileName, file.ContentType, string(file.Data))
	// Output:
	// true
	// hello.txt text/plain hello
}
