package meeting_test

import (
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/jitsi/meeting"
)

func Example() {
	// No grace period here, so that the meeting ends at once; Switchboard waits a minute.
	tr := meeting.NewTracker(0, nil, func(ev meeting.Event) {
		switch ev.Kind {
		case meeting.Started:
			fmt.Println("meeting started")
		case meeting.Changed:
			fmt.Println("participants:", len(ev.Participants))
		case meeting.Ended:
			fmt.Println("meeting ended after", ev.EndedAt.Sub(ev.StartedAt).Round(time.Hour))
		}
	})
	defer tr.Close()
	tr.Update("conference1", []meeting.Participant{{Nick: "a1b2", Name: "Alice", UserID: "@alice:example.org"}})
	tr.Update("conference1", []meeting.Participant{
		{Nick: "a1b2", Name: "Alice", UserID: "@alice:example.org"},
		{Nick: "c3d4", Name: "Bob"},
	})
	tr.Update("conference1", nil)
	// Output:
	// meeting started
	// participants: 1
	// participants: 2
	// participants: 0
	// meeting ended after 0s
}
