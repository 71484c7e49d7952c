// Package casee2e holds the end-to-end tests of the 116117 case-handover bot: Switchboard
// with the bot, a real Dendrite, and the fake UCRM of internal/testpeer/ucrm routing
// between the bot's dispatch centre (B) and a centre the test plays (A), over real HTTP on
// loopback. Every message the bot sends is checked against the official UCRI2 JSON schemas.
//
// The TestReference… tests run the same scenarios against PMeV's reference UCRM
// (internal/testpeer/refucrm) instead of the fake, and check every message the bot sends
// with the reference's own signing code.
package casee2e
