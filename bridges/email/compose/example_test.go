package compose_test

import (
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/email/compose"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

func Example() {
	// A reply to a parsed mail, sent for the Matrix event $ev1.
	parent := mailparse.Mail{MessageID: "c2@example.net", References: []string{"c1@example.net"}, Subject: "Schichtplan"}
	raw, err := compose.Build(compose.Outgoing{
		From:       compose.Address{Name: "Leitstelle", Email: "leitstelle@example.org"},
		To:         []compose.Address{{Name: "Jürgen", Email: "juergen@example.net"}},
		Subject:    compose.ReplySubject(parent.Subject),
		InReplyTo:  parent.MessageID,
		References: compose.ReplyReferences(parent.References, parent.MessageID),
		MessageID:  compose.NewMessageID("$ev1", "example.org"),
		Date:       time.Date(2024, 4, 4, 10, 0, 0, 0, time.UTC),
		Text:       "Übernehme ich.",
		Headers:    map[string]string{"X-Switchboard-Event": "$ev1"},
	})
	if err != nil {
		panic(err)
	}
	m, _ := mailparse.Parse(raw, mailparse.Options{})
	fmt.Println(m.Subject)
	fmt.Println(m.InReplyTo, m.References)
	fmt.Println(m.To[0].Name, m.Text)
	// Output:
	// Re: Schichtplan
	// c2@example.net [c1@example.net c2@example.net]
	// Jürgen Übernehme ich.
}
