package component_test

import (
	"context"
	"log"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
)

func Example() {
	ctx := context.Background()
	c, err := component.New(component.Config{
		Addr:   "127.0.0.1:5347",
		Domain: "matrix.localhost",
		Secret: "from-the-config-file",
	}, func(ctx context.Context, raw []byte) error {
		// Parse raw (e.g. with bridges/xmpp/stanza) and hand it on; an error makes the
		// sender of a message get a stanza error back.
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = c.Run(ctx) }()

	// Returns once the server has confirmed the stanza; on error, resend with the same id.
	err = c.Send(ctx, []byte(`<message from='bob@matrix.localhost' to='alice@localhost' id='m1' type='chat'><body>hi</body></message>`))
	if err != nil {
		log.Print(err)
	}
}
