// Package casee2e holds the end-to-end tests of the 116117 case-handover bot: Switchboard
// with the bot, a real Dendrite, and the fake UCRM of internal/testpeer/ucrm routing
// between the bot's dispatch centre (B) and a centre the test plays (A), over real HTTP on
// loopback. Every message the bot sends is checked against the official UCRI2 JSON schemas.
package casee2e
