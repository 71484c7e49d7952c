// Package emaile2e holds the email bridge's end-to-end tests: a real Dovecot (IMAP and
// LMTP), a real SMTP server (aiosmtpd) and a real Dendrite, started once for the package,
// with Switchboard and the bridge in between. It has no code outside its tests.
package emaile2e
