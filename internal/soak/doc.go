// Package soak holds Switchboard's kill soak (scripts/soak): the real binary with the XMPP
// and email bridges, traffic both ways through both, and the process killed with SIGKILL
// every 1–4 s and restarted at once. Afterwards every message must have arrived on the
// other side exactly once (nothing lost, nothing doubled into Matrix), and the soak counts
// how often a peer got the same stanza id or Message-ID twice: the outbound at-least-once
// window, reported per 100 kills.
//
// The test runs only when SWITCHBOARD_SOAK_KILLS is set (scripts/soak sets it); the
// ordinary `go test ./...` skips it at once, without starting any peer.
package soak
