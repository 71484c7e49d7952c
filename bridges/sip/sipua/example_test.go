package sipua_test

import (
	"context"
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
)

func ExampleNew() {
	ua, err := sipua.New(sipua.Config{
		Domain: "matrix.example.org",
		Listen: []sipua.Listener{{Transport: "tcp", Addr: "127.0.0.1:5070"}},
		Proxy:  "sip:127.0.0.1:5060;transport=tcp",
	}, sipua.HandlerFunc(func(ctx context.Context, req *sipua.Request) sipua.Response {
		// Store the message durably, then answer: the 200 is sent only now.
		zerolog.Ctx(ctx).Info().Str("call_id", req.CallID).Msg("message from the SIP side")
		return sipua.Response{Code: 200}
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := zerolog.New(os.Stderr).WithContext(context.Background())
	go func() { _ = ua.Run(ctx) }() // until ctx ends
	<-ua.Ready()
	res, err := ua.Send(ctx, sipua.Outgoing{
		Method:      "MESSAGE",
		RequestURI:  "sip:alice@example.org",
		From:        sipua.Addr{URI: "sip:bob@matrix.example.org"},
		To:          sipua.Addr{URI: "sip:alice@example.org"},
		ContentType: "text/plain",
		Body:        []byte("Hello"),
	})
	fmt.Println(res.Code, err)
}

func ExampleNew_invalid() {
	_, err := sipua.New(sipua.Config{
		Domain: "matrix.example.org",
		Listen: []sipua.Listener{{Transport: "udp", Addr: "127.0.0.1:0"}, {Transport: "sctp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:127.0.0.1",
	}, sipua.HandlerFunc(func(context.Context, *sipua.Request) sipua.Response { return sipua.Response{Code: 200} }))
	fmt.Println(err)
	// Output: sipua: invalid config: listen[1].transport: "sctp" is not udp, tcp or tls
}
