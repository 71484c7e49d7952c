package ucri_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
)

func ExampleClient_Info() {
	// A stand-in UCRM; in production BaseURL is the UCRM's https address.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/ucrm/client/v0/token":
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString([]byte("secret"))
			_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
		case "/ucrm/client/v0/info":
			_, _ = io.WriteString(w, `{"apiVersion":"0.1","ucrmProvider":"Example","ucrmProductName":"UCRM","ucrmVersion":"2.0.0","status":0}`)
		}
	}))
	defer srv.Close()

	c, err := ucri.NewClient(ucri.ClientConfig{
		BaseURL:  srv.URL + "/ucrm/client/v0",
		Username: "leitstelle-a",
		Password: "secret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	info, err := c.Info(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(info.UCRMProductName, info.UCRMVersion, info.Status)
	// Output: UCRM 2.0.0 0
}
