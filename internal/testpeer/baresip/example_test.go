package baresip_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/baresip"
)

// A baresip registered through a proxy sends a MESSAGE and waits for one.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ua, err := baresip.Start(ctx, baresip.Options{
		AOR:              "sip:alice@sip.test",
		Password:         "secret",
		Proxy:            "sip:127.0.0.1:5060;transport=tcp",
		RegisterInterval: time.Hour,
		Contacts:         []string{"sip:bob@sip.test"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ua.Stop()
	if err := ua.WaitRegistered(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := ua.SendMessage(ctx, "sip:bob@sip.test", "hello bob"); err != nil {
		fmt.Println(err)
		return
	}
	m, err := ua.WaitMessage(ctx, func(m baresip.Message) bool { return m.From == "sip:bob@sip.test" })
	fmt.Println(m.Body, err)
}
