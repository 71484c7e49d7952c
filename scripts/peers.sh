# shellcheck shell=bash
# Background peers that stop with the script that started them (scripts/demo's Prosody,
# Dovecot, submission server, fake UCRM, Dendrite and Switchboard). Sourced, not run.
#
# peer_start runs each peer in a session, and so a process group, of its own: the
# terminal's Ctrl-C reaches a peer only through peers_stop, in order (the last started
# first, so Switchboard leaves the homeserver and the XMPP server cleanly), and peers_stop
# signals the peer together with the children it started. peers_trap runs the cleanup on
# INT, TERM, HUP, PIPE and EXIT. The cleanup ignores SIGPIPE and every further INT, TERM and
# HUP, and never fails on a closed stdout or stderr: with `scripts/demo | tee log`, Ctrl-C
# ends tee first, and a cleanup that writes "stopping..." into the dead pipe would die of
# SIGPIPE and leave the peers running.

PEER_NAMES=()
PEER_PIDS=()
PEER_PID=
# PEERS_GRACE is how many seconds a peer gets between SIGTERM and SIGKILL.
PEERS_GRACE="${PEERS_GRACE:-10}"

# peer_start NAME DIR LOG COMMAND [ARG...] starts COMMAND in DIR in a new session, its
# output appended to LOG ("-" keeps the script's stdout and stderr), and sets PEER_PID.
peer_start() {
	local name="$1" dir="$2" log="$3"
	shift 3
	# The background subshell is not a process group leader (no job control), so setsid
	# makes it one without forking: PEER_PID is the peer's own pid and its group's id.
	if [[ "$log" == - ]]; then
		(cd "$dir" && exec setsid "$@") &
	else
		(cd "$dir" && exec setsid "$@") >>"$log" 2>&1 &
	fi
	PEER_PID=$!
	PEER_NAMES+=("$name")
	PEER_PIDS+=("$PEER_PID")
}

# peer_say prints a line to stderr, never failing (stderr may be a closed pipe).
peer_say() {
	{ printf '%s\n' "$*" >&2; } 2>/dev/null || true
}

# peer_signal SIG PID signals the peer's process group and the peer itself.
peer_signal() {
	kill -"$1" -- "-$2" 2>/dev/null || true
	kill -"$1" "$2" 2>/dev/null || true
}

# peer_alive PID succeeds while the peer or a process of its group runs. A zombie does not
# count: the script reaps its dead peers only after the cleanup, so kill -0 would count them.
peer_alive() {
	if ! command -v ps >/dev/null; then
		kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
		return
	fi
	ps -e -o pid= -o pgid= -o stat= 2>/dev/null |
		awk -v p="$1" '($1 == p || $2 == p) && $3 !~ /^Z/ { found = 1 } END { exit !found }'
}

# peers_stop stops the peers, the last started first: SIGTERM to its process group, up to
# PEERS_GRACE seconds to exit, then SIGKILL. Safe to run twice and from any trap.
peers_stop() {
	trap '' PIPE INT TERM HUP
	set +e
	((${#PEER_PIDS[@]} > 0)) || return 0
	peer_say ""
	peer_say "stopping..."
	local i t pid
	for ((i = ${#PEER_PIDS[@]} - 1; i >= 0; i--)); do
		pid="${PEER_PIDS[i]}"
		peer_signal TERM "$pid"
		for ((t = 0; t < PEERS_GRACE * 10; t++)); do
			peer_alive "$pid" || break
			sleep 0.1
		done
		if peer_alive "$pid"; then
			peer_say "${PEER_NAMES[i]} did not stop within ${PEERS_GRACE}s; killing it"
			peer_signal KILL "$pid"
		fi
	done
	for pid in "${PEER_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	PEER_PIDS=()
	PEER_NAMES=()
	return 0
}

# peers_trap [CLEANUP] makes CLEANUP (default peers_stop; it must call peers_stop) run when
# the script is interrupted (INT, TERM, HUP), writes into a closed pipe (PIPE) or exits,
# and then exit with 128 + the signal's number.
peers_trap() {
	local cleanup="${1:-peers_stop}"
	# shellcheck disable=SC2064 # $cleanup is expanded now, on purpose
	{
		trap "$cleanup; exit 129" HUP
		trap "$cleanup; exit 130" INT
		trap "$cleanup; exit 141" PIPE
		trap "$cleanup; exit 143" TERM
		trap "$cleanup" EXIT
	}
}
