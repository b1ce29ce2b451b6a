#!/usr/bin/env bash
# test/run-tests.sh
#	The one command that runs every test tier of raftable, from a fresh
#	Debian 12 machine, as root:
#
#	    bash test/run-tests.sh
#
#	As root it installs the packages it needs (apt-get), builds and installs
#	the extension into the system PostgreSQL 15, runs the pure-core tiers,
#	then runs the PostgreSQL tiers as the `postgres` account (PostgreSQL
#	refuses to run as root) on a copy of the tree in a temporary directory.
#	As another user it skips apt and uses sudo (if any) for `make install`.
#
#	Tiers: core-check, mutants-core, sim, sanitize, fuzz, checkers (no
#	server); installcheck
#	(pg_regress) and pgtap on a scratch server; tap (multi-node TAP tests);
#	pg-regress (PostgreSQL's own regression suite with and without raftable);
#	chaos (90 s of randomized faults, every workload's history checked);
#	bench (the short benchmark).
#	All tiers run even when one fails; the exit status is non-zero if any
#	failed, and the last line of output is "N passed, N failed".
#
#	Environment:
#	  RAFTABLE_SKIP_CORE=1   skip the four core tiers
#	  SIM_SEEDS=N            simulator seeds (default 20000, about 75 s)
#	  FUZZ_SECONDS=N         fuzzing time (default 30)
#	  BENCH_SECONDS=N        pgbench seconds per figure of the bench tier
#	                         (default 3; make bench uses 20)
#	  RAFTABLE_KEEP_TMP=1    keep the temporary directory (logs, data)

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
# shellcheck source=test/lib.sh
. test/lib.sh

SIM_SEEDS=${SIM_SEEDS:-20000}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
BENCH_SECONDS=${BENCH_SECONDS:-3}
RAFTABLE_SKIP_CORE=${RAFTABLE_SKIP_CORE:-0}

PACKAGES=(
	build-essential				# gcc, make
	clang libclang-rt-14-dev	# sanitizers and libFuzzer for the core
	postgresql-15 postgresql-server-dev-15
	postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl	# pgTAP, pg_prove
	libipc-run-perl perl		# PostgreSQL::Test::Cluster
	iptables					# network partitions in TAP tests
	util-linux					# runuser
	python3-psycopg				# ParameterStatus from a real client (017_reads)
	libfaketime					# clocks at other rates (018_bounded_clocks)
)

# --- bookkeeping -----------------------------------------------------------

passed=0
failed=0
summary=()

record() {	# record NAME STATUS DETAIL
	summary+=("$(printf '%-6s %-13s %s' "$2" "$1" "$3")")
	if [ "$2" = PASS ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
}

# tier NAME CMD...: run CMD (with errexit on) as one tier and record it.
tier() {
	local name=$1 start=$SECONDS rc
	shift
	echo
	echo "=== tier $name"
	set +e
	(set -e; "$@")
	rc=$?
	set -e
	if [ $rc -eq 0 ]; then
		record "$name" PASS "($((SECONDS - start))s)"
	else
		record "$name" FAIL "(exit $rc, $((SECONDS - start))s)"
	fi
}

not_run() {	# not_run REASON NAME...
	local reason=$1 name
	shift
	for name in "$@"; do
		echo "=== tier $name: not run: $reason"
		record "$name" FAIL "(not run: $reason)"
	done
}

finish() {
	echo
	echo "=== summary"
	local line
	for line in "${summary[@]}"; do
		echo "$line"
	done
	if [ "$RAFTABLE_SKIP_CORE" = 1 ]; then
		echo "skipped: core-check sim sanitize fuzz (RAFTABLE_SKIP_CORE=1)"
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# --- scratch directory and server, removed on exit -------------------------

TMP=
PGDATA_DIR=
cleanup() {
	if [ -n "$PGDATA_DIR" ] && [ -f "$PGDATA_DIR/postmaster.pid" ]; then
		(cd "$TMP" && rt_as_pg pg_ctl --pgdata="$PGDATA_DIR" -m fast -w stop) >/dev/null 2>&1 || true
	fi
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "${RAFTABLE_KEEP_TMP:-0}" = 1 ]; then
			rt_log "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -----------------------------------------------------------------

packages_ok=1
rt_install_packages "${PACKAGES[@]}" || packages_ok=0

build_ok=0
if [ $packages_ok = 1 ]; then
	echo "=== build and install"
	if make && rt_as_root make install; then
		build_ok=1
	fi
fi

# --- tiers without a server ------------------------------------------------

CORE_TIERS=(core-check mutants-core sim sanitize fuzz checkers)
if [ "$RAFTABLE_SKIP_CORE" = 1 ]; then
	echo "=== core tiers skipped (RAFTABLE_SKIP_CORE=1)"
elif [ $packages_ok = 0 ]; then
	not_run "package installation failed" "${CORE_TIERS[@]}"
else
	tier core-check make core-check
	tier mutants-core bash test/mutants/run.sh --core
	tier sim make sim SEEDS="$SIM_SEEDS"
	tier sanitize make sanitize
	tier fuzz make fuzz FUZZ_SECONDS="$FUZZ_SECONDS"
	# the fault suite's checkers must reject known anomalies
	tier checkers make checkers
fi

# --- tiers with PostgreSQL, as a non-root user -----------------------------

# The PostgreSQL user works on its own copy of the tree.
prepare_copy() {
	TMP=$(mktemp -d /tmp/raftable-test.XXXXXX)
	mkdir "$TMP/src" "$TMP/sock"
	tar -C "$REPO" --exclude=./.git --exclude=./build -cf - . | tar -C "$TMP/src" -xf -
	chown -R "$RT_PG_USER" "$TMP"
	chmod 700 "$TMP/sock"
}

start_scratch_server() {
	local port
	# shellcheck disable=SC2119
	port=$(rt_free_port) || return 1
	PGDATA_DIR=$TMP/pgdata
	(cd "$TMP" && rt_init_node "$PGDATA_DIR" "$port" "$TMP/sock" '') || return 1
	if ! (cd "$TMP" && rt_as_pg pg_ctl --pgdata="$PGDATA_DIR" \
		--log="$TMP/server.log" -w start >/dev/null); then
		cat "$TMP/server.log" >&2 || true
		return 1
	fi
	export PGHOST=$TMP/sock PGPORT=$port PGUSER=postgres
	echo "scratch server: PGHOST=$PGHOST PGPORT=$PGPORT"
}

run_installcheck() {
	cd "$TMP/src"
	if ! rt_as_pg make installcheck; then
		cat regression.diffs 2>/dev/null || true
		return 1
	fi
}

run_pgtap() {
	cd "$TMP/src"
	rt_as_pg make pgtap
}

run_tap() {
	cd "$TMP/src"
	# The TAP framework starts its own servers; keep the scratch one out.
	unset PGHOST PGPORT PGUSER
	if ! rt_as_pg make tap PROVE_FLAGS=--verbose; then
		local f
		for f in tmp_check/log/regress_log_*; do
			[ -f "$f" ] || continue
			echo "--- tail of $f"
			tail -n 60 "$f"
		done
		return 1
	fi
}

PG_TIERS=(symbols installcheck pgtap tap pg-regress chaos bench)
if [ $build_ok = 0 ]; then
	not_run "build or install failed" "${PG_TIERS[@]}"
else
	# the module exports only what PostgreSQL looks up by name
	tier symbols make symbols
	prepare_copy
	echo
	echo "=== scratch server"
	if start_scratch_server; then
		tier installcheck run_installcheck
		tier pgtap run_pgtap
	else
		not_run "scratch server did not start" installcheck pgtap
	fi
	tier tap run_tap
	# PostgreSQL's regression suite, with and without raftable's hooks
	tier pg-regress bash test/pgregress/run.sh
	# randomized faults, histories checked (make chaos; as root)
	if [ "$(id -u)" = 0 ]; then
		tier chaos make chaos
	else
		not_run "needs root (iptables, per-node OS users)" chaos
	fi
	# the short variant of make bench: the figures, not a pass mark
	tier bench env BENCH_SECONDS="$BENCH_SECONDS" bash test/bench/bench.sh
fi

finish
