// Package jitsie2e holds the end-to-end tests of the Jitsi module: Switchboard with the
// module on a real Synapse (OpenID tokens from its /openid/request_token, checked through
// its federation userinfo endpoint; encrypted rooms with an encrypting test client) and a
// real Prosody playing Jitsi's conference MUC, with occupants played by slixmpp and a Go
// XMPP client. It has tests only.
package jitsie2e
