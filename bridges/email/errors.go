package email

import (
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// roomError is a failure shown in the room with its details, which may hold addresses
// or a server's reply naming them, while its Error text, which the core logs, says only
// what failed: no address list, subject or body is logged below trace.
type roomError struct {
	what      string // for the log: no user data
	msg       string // for the room
	permanent bool
	cause     error // kept for errors.Is/As; its text is not part of Error
}

func (e roomError) Error() string { return "email: " + e.what }

// UserMessage implements appservice.UserError.
func (e roomError) UserMessage() string { return e.msg }

func (e roomError) Unwrap() error { return e.cause }

// Is makes a permanent roomError match appservice.ErrPermanent.
func (e roomError) Is(target error) bool { return e.permanent && target == appservice.ErrPermanent }

var _ appservice.UserError = roomError{}

// smtpFailure is a temporary SMTP failure for the log: the command and the reply codes,
// not the server's text (which may name recipients).
type smtpFailure struct {
	what string
	err  *smtp.SMTPError
}

func (e smtpFailure) Error() string {
	return fmt.Sprintf("email: %s: the mail server answered %s", e.what, smtpCode(e.err))
}

func (e smtpFailure) Unwrap() error { return e.err }

// smtpCode is a reply's code with its enhanced status code, such as "550 5.1.1".
func smtpCode(se *smtp.SMTPError) string {
	code := fmt.Sprint(se.Code)
	if e := se.EnhancedCode; e != smtp.NoEnhancedCode && e != (smtp.EnhancedCode{}) {
		code += fmt.Sprintf(" %d.%d.%d", e[0], e[1], e[2])
	}
	return code
}

// classifySMTP turns a server's 5xx answer into a permanent room error that shows the
// reply code, the enhanced status code and the server's text; a 4xx answer or a network
// failure stays temporary, retried by the dispatcher with backoff.
func classifySMTP(what string, err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return fmt.Errorf("email: %s: %w", what, err)
	}
	if se.Code >= 500 {
		return roomError{what: what + ": the mail server refused it (" + smtpCode(se) + ")",
			msg: fmt.Sprintf("the mail server refused it (%s %s)", smtpCode(se), se.Message), permanent: true, cause: err}
	}
	return smtpFailure{what: what, err: se}
}
