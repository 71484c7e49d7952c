package upload_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/upload"
)

func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	// 1. Ask the upload service for a slot: an iq get with this payload.
	_ = upload.Request("cat.jpg", 5, "image/jpeg")
	// 2. Read the slot from the result's payload (IQ.Inner).
	slot, err := upload.ParseSlot([]byte(`<slot xmlns='urn:xmpp:http:upload:0'><put url='` + srv.URL + `/put/cat.jpg'>` +
		`<header name='Authorization'>Bearer secret</header></put><get url='` + srv.URL + `/get/cat.jpg'/></slot>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// 3. Upload, then share slot.GetURL.
	if err := upload.Put(context.Background(), srv.Client(), slot, []byte("image"), "image/jpeg"); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("uploaded; share", slot.GetURL == srv.URL+"/get/cat.jpg")
	// Output:
	// uploaded; share true
}
