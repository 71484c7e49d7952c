package widget_test

import (
	"encoding/json"
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi/widget"
	"maunium.net/go/mautrix/id"
)

func Example() {
	roomID := id.RoomID("!a:b")
	conf := widget.ConferenceForUVS(roomID)
	content := widget.New(widget.Options{
		Domain:       "meet.example.org",
		ConferenceID: conf,
		RoomName:     "Team",
		Auth:         widget.AuthOpenIDJWT,
	})
	// Send content as state event widget.EventType with state key widget.NewWidgetID(),
	// then pin it:
	layout, _ := widget.PinLayout(nil, "W1")
	data, _ := json.Marshal(content.Data)
	fmt.Println(content.Type, content.Name)
	fmt.Println(string(data))
	fmt.Println(string(layout))
	// Jitsi sees the conference in lower case; either case maps back to the room.
	back, ok := widget.RoomFromUVSConference("efqtuyq")
	fmt.Println(back, ok)
	// Output:
	// jitsi Jitsi
	// {"conferenceId":"EFQTUYQ","roomName":"Team","isAudioOnly":false,"isVideoChannel":false,"domain":"meet.example.org","auth":"openidtoken-jwt"}
	// {"widgets":{"W1":{"container":"top","height":40,"index":0,"width":100}}}
	// !a:b true
}
