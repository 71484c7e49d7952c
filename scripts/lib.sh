# shellcheck shell=bash
# Shared helpers of scripts/test, scripts/demo and scripts/soak; sourced, not run.
# The cache layout matches internal/testpeer/dendrite (CacheDir, BinDir) and
# internal/testpeer/synapse (VenvDir).

# mautrix-go's crypto (end-to-end encryption, appservice/e2ee) is built with its pure-Go
# goolm backend: without the goolm tag it needs libolm through cgo. Every go command of the
# scripts gets the tag.
case " ${GOFLAGS:-} " in
*goolm*) ;;
*) export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=goolm" ;;
esac

# step prints a header for one step of a script.
step() {
	printf '\n\033[1m==> %s\033[0m\n' "$*"
}

# die prints a message to stderr and exits 1.
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# cache_dir prints $SWITCHBOARD_CACHE, else $XDG_CACHE_HOME/switchboard, else ~/.cache/switchboard.
cache_dir() {
	if [[ -n "${SWITCHBOARD_CACHE:-}" ]]; then
		printf '%s\n' "$SWITCHBOARD_CACHE"
	elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then
		printf '%s\n' "$XDG_CACHE_HOME/switchboard"
	else
		printf '%s\n' "$HOME/.cache/switchboard"
	fi
}

# dendrite_version prints the Dendrite version pinned by tools/dendrite/go.mod.
dendrite_version() {
	awk '$1 == "github.com/matrix-org/dendrite" { print $2; exit }
	     $1 == "require" && $2 == "github.com/matrix-org/dendrite" { print $3; exit }' \
		tools/dendrite/go.mod
}

# dendrite_bin_dir prints where the Dendrite binaries are built.
dendrite_bin_dir() {
	printf '%s/dendrite-%s\n' "$(cache_dir)" "$(dendrite_version)"
}

# build_dendrite builds Dendrite and its helpers into dendrite_bin_dir, through the Go
# harness itself (same freshness check and build lock as the tests); quick when up to date.
build_dendrite() {
	SWITCHBOARD_REQUIRE_PEERS=1 go test -count=1 -run '^TestBuild$' ./internal/testpeer/dendrite || return 1
	local dir
	dir="$(dendrite_bin_dir)"
	[[ -x "$dir/dendrite" ]] || die "Dendrite binary missing in $dir after the build"
}

# synapse_version prints the matrix-synapse version pinned by tools/synapse/requirements.txt.
synapse_version() {
	awk -F'==' '$1 == "matrix-synapse" { print $2; exit }' tools/synapse/requirements.txt
}

# synapse_venv_dir prints where Synapse is installed (a virtualenv).
synapse_venv_dir() {
	printf '%s/synapse-%s\n' "$(cache_dir)" "$(synapse_version)"
}

# install_synapse installs the pinned Synapse with pip into synapse_venv_dir, through the Go
# harness itself (same stamp check and install lock as the tests); quick when up to date.
# Needs python3 with the venv module (Debian: python3-venv) and the Python package index.
install_synapse() {
	SWITCHBOARD_REQUIRE_PEERS=1 go test -count=1 -run '^TestInstall$' ./internal/testpeer/synapse || return 1
	local dir
	dir="$(synapse_venv_dir)"
	[[ -x "$dir/bin/python" ]] || die "Synapse's virtualenv missing in $dir after the install"
}

# start_postgres starts a private PostgreSQL cluster for the tests: a new data directory
# under $TMPDIR, a free loopback port, trust authentication for the local user "postgres",
# stopped (and removed) by stop_postgres when the script exits. initdb refuses to run as
# root, so as root the cluster runs as the system user "postgres" that Debian's package
# creates. SWITCHBOARD_TEST_POSTGRES from the environment wins.
PG_DIR=""
PG_BIN=""
PG_AS=()
start_postgres() {
	if [[ -n "${SWITCHBOARD_TEST_POSTGRES:-}" ]]; then
		echo "using SWITCHBOARD_TEST_POSTGRES from the environment"
		return 0
	fi
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/initdb" ]] && PG_BIN="$d"
	done
	[[ -n "$PG_BIN" ]] || { echo "no PostgreSQL server (Debian package postgresql) installed"; return 1; }
	PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pg.XXXXXX")" || return 1
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || { echo "no system user postgres to run the cluster as"; return 1; }
		chown postgres: "$PG_DIR" || return 1
		PG_AS=(runuser -u postgres --)
	fi
	local port fsync="-c fsync=off"
	[[ -z "${PG_DURABLE:-}" ]] || fsync="-c fsync=on" # start_postgres_durable
	port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" || return 1
	"${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log"; return 1; }
	"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/data/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR $fsync -c max_connections=300" start ||
		{ cat "$PG_DIR/data/server.log"; return 1; }
	export SWITCHBOARD_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "PostgreSQL ($PG_BIN) started on 127.0.0.1:$port, data in $PG_DIR"
}

# start_postgres_durable is start_postgres for benchmarks: the cluster keeps PostgreSQL's
# defaults (fsync on, synchronous commit), because durability is what is measured. It too
# prefers SWITCHBOARD_TEST_POSTGRES from the environment.
start_postgres_durable() {
	PG_DURABLE=1 start_postgres
}

# stop_postgres stops and removes the cluster start_postgres made, if any.
stop_postgres() {
	[[ -n "$PG_DIR" && -d "$PG_DIR/data" ]] || return 0
	"${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
}
