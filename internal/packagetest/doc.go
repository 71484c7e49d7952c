// Package packagetest tests the Debian package that scripts/package builds: it builds the
// package for the host's architecture, checks its contents and the static binary's stamped
// version, and, as root, installs it with dpkg -i, checks files, owners, modes, the system
// user and the registration, verifies the systemd unit with systemd-analyze, runs the
// installed binary as the service would (as the user switchboard, in /var/lib/switchboard),
// first without a homeserver up to an open database, then with the registration the
// package generated on Dendrite and on Synapse until it is ready and its management bot
// answers, and finally removes and purges the package, leaving no secret behind. The steps
// follow docs/operations.md ("Installing the Debian package").
//
// Without root the install part is skipped, or fails when SWITCHBOARD_REQUIRE_PEERS=1. As
// root it changes the machine: a leftover install of an earlier run is purged first, and
// /etc/switchboard and /var/lib/switchboard are deleted, so run it on test machines only.
// It contains tests only.
package packagetest
