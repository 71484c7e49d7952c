package linphone_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/linphone"
)

// A test sends a CPIM message from liblinphone and waits until liblinphone has the
// recipient's IMDN "delivered" for it.
func Example() {
	var t testing.TB // the test's
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ua := linphone.StartTest(t, linphone.Options{
		AOR: "sip:alice@sip.test", Password: "alice-pw", Proxy: "sip:127.0.0.1:5060;transport=tcp",
	})
	if err := ua.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ua.SendMessage(ctx, "sip:bob@sip.test", "hello"); err != nil {
		t.Fatal(err)
	}
	_, err := ua.WaitLog(ctx, "DeliveredToUser", func(log string) bool {
		for _, s := range linphone.MessageStates(log, "sip:bob@sip.test") {
			if s == "DeliveredToUser" {
				return true
			}
		}
		return false
	})
	fmt.Println(err)
}
