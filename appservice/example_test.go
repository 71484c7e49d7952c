package appservice_test

import (
	"context"
	"fmt"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/registration"
)

// echoBridge is a minimal module: its "remote network" echoes every message back into the
// room as the ghost @_echo_bot.
type echoBridge struct {
	host appservice.Host
}

func (b *echoBridge) ID() string { return "echo" }

func (b *echoBridge) Namespaces() registration.Namespaces {
	return registration.Namespaces{Users: []registration.Pattern{{Localpart: "_echo_.+", Exclusive: true}}}
}

func (b *echoBridge) Start(_ context.Context, host appservice.Host) error {
	b.host = host // connect to the remote network here
	return nil
}

func (b *echoBridge) Stop(context.Context) error { return nil }

func (b *echoBridge) HandleEvent(ctx context.Context, evt *event.Event) error {
	if evt.Type != event.EventMessage {
		return nil
	}
	ghost, err := b.host.Ghost("_echo_bot")
	if err != nil {
		return err
	}
	// The remote ID keys idempotency: a redelivered event echoes once.
	return b.host.Enqueue(ctx, appservice.Message{
		RoomID:   evt.RoomID,
		Sender:   ghost.UserID(),
		RemoteID: "echo-of-" + evt.ID.String(),
		Content:  &event.MessageEventContent{MsgType: event.MsgNotice, Body: evt.Content.AsMessage().Body},
	})
}

// Status makes the module show up in the management bot's status command.
func (b *echoBridge) Status(context.Context) appservice.ModuleStatus {
	return appservice.ModuleStatus{Connected: true, State: "echoing"}
}

// ExampleModule shows the smallest useful module and how the core detects its optional
// capabilities.
func ExampleModule() {
	var m appservice.Module = &echoBridge{}
	_, reportsStatus := m.(appservice.StatusReporter)
	_, answersQueries := m.(appservice.QueryHandler)
	fmt.Println(m.ID(), reportsStatus, answersQueries)
	// Output: echo true false
}

// ExampleTxnIDFor shows that a remote message always maps to the same transaction ID, which
// is what makes a resend after a crash the same Matrix event.
func ExampleTxnIDFor() {
	first := appservice.TxnIDFor("xmpp", "stanza-1")
	resend := appservice.TxnIDFor("xmpp", "stanza-1")
	other := appservice.TxnIDFor("xmpp", "stanza-2")
	fmt.Println(first == resend, first == other)
	// Output: true false
}
