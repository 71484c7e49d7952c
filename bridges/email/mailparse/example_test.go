package mailparse_test

import (
	"fmt"
	"strings"

	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

func Example() {
	raw := strings.ReplaceAll(`From: =?ISO-8859-1?Q?J=FCrgen?= <juergen@example.org>
To: dispatch@example.org
Subject: =?UTF-8?Q?Stra=C3=9Fe_gesperrt?=
Message-ID: <c2@example.org>
In-Reply-To: <c1@example.org>
Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain; charset=ISO-8859-1
Content-Transfer-Encoding: quoted-printable

Die Br=FCcke ist gesperrt.

On Monday, Dispatch <dispatch@example.org> wrote:
> Status?
--b
Content-Type: text/html; charset=UTF-8

<p onclick="x()">Die <b>Br&uuml;cke</b> ist gesperrt.<img src="https://tracker.example/p.gif"></p>
<div class="gmail_quote">On Monday, Dispatch wrote:<blockquote>Status?</blockquote></div>
--b--
`, "\n", "\r\n")
	m, err := mailparse.Parse([]byte(raw), mailparse.Options{StripQuoted: true})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.From.Name, m.From.Email)
	fmt.Println(m.Subject)
	fmt.Println(m.MessageID, "replies to", m.InReplyTo)
	fmt.Println(m.Text)
	fmt.Println(m.HTML)
	// Output:
	// Jürgen juergen@example.org
	// Straße gesperrt
	// c2@example.org replies to c1@example.org
	// Die Brücke ist gesperrt.
	// <p>Die <b>Brücke</b> ist gesperrt.</p>
}
