package smtppeer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mail is one message the server accepted.
type Mail struct {
	// From is the envelope sender (MAIL FROM) and To the accepted recipients (RCPT TO).
	From string
	To   []string
	// MessageID and Subject are the message's headers (the subject decoded), "" if absent.
	MessageID, Subject string
	// Raw is the message as transmitted, without the SMTP dot escaping.
	Raw []byte
	// User is the login that authenticated the session.
	User string
	// TLS reports whether the session was encrypted (STARTTLS or TLSAddr).
	TLS bool
	// LMTPError says why the onward LMTP delivery failed, for each refused recipient;
	// "" when it succeeded or Options.LMTPAddr is empty.
	LMTPError string
}

// logLine is a line of the mail log, as smtppeer.py writes it.
type logLine struct {
	MailFrom  string   `json:"mail_from"`
	RcptTos   []string `json:"rcpt_tos"`
	MessageID string   `json:"message_id"`
	Subject   string   `json:"subject"`
	User      string   `json:"user"`
	TLS       bool     `json:"tls"`
	LMTPError string   `json:"lmtp_error"`
	Data      string   `json:"data"` // base64
}

// Received returns the messages accepted so far, oldest first, across restarts. A message
// is listed once its DATA was answered, and after its onward LMTP delivery.
func (s *Server) Received() ([]Mail, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, mailLog))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("smtppeer: failed to read the mail log: %w", err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1] // a line still being written is left for the next call
	} else {
		b = nil
	}
	var mails []Mail
	for n, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return nil, fmt.Errorf("smtppeer: mail log line %d: %w", n+1, err)
		}
		raw, err := base64.StdEncoding.DecodeString(l.Data)
		if err != nil {
			return nil, fmt.Errorf("smtppeer: mail log line %d: %w", n+1, err)
		}
		mails = append(mails, Mail{
			From: l.MailFrom, To: l.RcptTos, MessageID: l.MessageID, Subject: l.Subject,
			Raw: raw, User: l.User, TLS: l.TLS, LMTPError: l.LMTPError,
		})
	}
	return mails, nil
}
