// Package xmppe2e holds the XMPP bridge's end-to-end tests: a real Prosody and a real
// Dendrite, started once for the package, with Switchboard and the bridge in between, and
// XMPP and Matrix clients acting as users on both sides. It has no code outside its
// tests.
package xmppe2e
