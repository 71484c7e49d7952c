// Package appservice is Switchboard's Matrix side: the Application Service API server that
// the homeserver pushes transactions to, the durable inbox that journals every event before
// a transaction is acknowledged, the per-room ordered dispatcher that hands events to
// modules, the outbox that sends module messages to Matrix exactly once, and the intents
// through which modules act as their ghosts. Modules (bridges and bots) implement [Module]
// and receive a [Host]; they never see the appservice token or talk HTTP to the homeserver.
package appservice
