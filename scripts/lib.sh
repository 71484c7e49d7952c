# shellcheck shell=bash
# Shared helpers of scripts/test and scripts/demo; sourced, not run.
# The cache layout matches internal/testpeer/dendrite (CacheDir, BinDir).

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
