package vcard_test

import (
	"fmt"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
)

func Example() {
	// inner is IQ.Inner of the result of an iq get with vcard.Request() as payload.
	inner := []byte(`<vCard xmlns='vcard-temp'><FN>Alice Example</FN><NICKNAME>alice</NICKNAME>
		<PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0K
		GgoAAAAN</BINVAL></PHOTO></vCard>`)
	card, err := vcard.Parse(inner)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(card.FullName, card.Nick, card.PhotoType, len(card.Photo))
	fmt.Println(vcard.PhotoHash(card.Photo))
	// Output:
	// Alice Example alice image/png 12
	// 8065a779640b58ab93fdaf4b6ce0f29cddf2bc1f
}
