// Package sipe2e holds the end-to-end tests of the SIP bridge: Switchboard with the bridge
// between a real homeserver (Dendrite, and Synapse for the conversation tests) and a real
// Kamailio as the organisation's registrar, proxy and presence server, with SIP users
// played by a scripted sipgo phone (internal/testpeer/sipphone), SIPp and baresip.
// It has tests only.
package sipe2e
