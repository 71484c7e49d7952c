package muc_test

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi/muc"
)

func Example() {
	w, err := muc.New(muc.Config{
		Address:  "meet.example.org:5222",
		JID:      "switchboard@recorder.meet.example.org", // a domain Jitsi hides
		Password: "from-the-config",
		CAFile:   "/etc/switchboard/jitsi-ca.pem", // optional, added to the system roots
	}, "conference.meet.example.org", muc.HandlerFunc(func(ctx context.Context, room string, occupants []muc.Occupant) {
		for _, o := range occupants {
			zerolog.Ctx(ctx).Debug().Str("room", room).Str("name", o.DisplayName).Str("user", o.UserID).Msg("in the meeting")
		}
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	w.Watch("standup")
	// go w.Run(ctx) keeps the connection; w.Unwatch("standup") leaves.
	connected, _ := w.Connected()
	fmt.Println("connected:", connected)
	// Output: connected: false
}
