// Package e2e holds Switchboard's end-to-end tests against a real Dendrite: the management
// bot answering a real Matrix user, ghosts, exactly-once sends after a forced resend, and
// the kill -9 crash test. The tests live in _test files; this file only names the package.
package e2e
