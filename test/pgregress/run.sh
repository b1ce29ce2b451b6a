#!/usr/bin/env bash
# test/pgregress/run.sh
#	PostgreSQL's own regression suite as a guard for raftable's hooks,
#	which touch every query and every utility statement: the
#	parallel_schedule of PostgreSQL 15's source runs twice, against a
#	server with raftable preloaded, serving the test database, the
#	extension created there (pg_regress --load-extension) and the default
#	read level (strong), and against the same server without raftable.
#	The sets of failing tests must be identical, but for tests whose
#	output differs only in lines that show raftable's own objects (an
#	allow-list: event_trigger, opr_sanity), and there every differing line
#	must name raftable.
#
#	    bash test/pgregress/run.sh
#
#	The source is Debian's postgresql-15 source package, version 15.18 (the
#	newer one the server comes from is not served), fetched with apt-get
#	source (as root, with deb-src enabled) into $PGREGRESS_SRC (default
#	/var/cache/raftable/pgregress), once.  Some tests fail in both runs
#	because the sources are 15.18 and the server and psql are newer: that
#	is why the two runs are compared, not each run with the expected files.
#	regress.so, autoinc.so and refint.so are built from that source.  It
#	assumes raftable is installed.  Servers run as the PostgreSQL user (see
#	test/lib.sh) in a temporary directory removed at the end.
#
#	Last line: "pgregress: N tests, N failing in both runs, N differing:
#	PASS|FAIL".

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$(pwd)
# shellcheck source=test/lib.sh
. test/lib.sh

PG_VERSION=15.18
PG_PKG_VERSION=15.18-0+deb12u1
SRC_CACHE=${PGREGRESS_SRC:-/var/cache/raftable/pgregress}
ALLOWED=(event_trigger opr_sanity)

say() { printf 'pgregress: %s\n' "$*"; }
die() {
	say "$*" >&2
	say "0 tests, 0 failing in both runs, 0 differing: FAIL"
	exit 1
}

# --- the source ----------------------------------------------------------------

fetch_source() {
	local dir=$SRC_CACHE/postgresql-$PG_VERSION
	if [ -f "$dir/src/test/regress/parallel_schedule" ]; then
		echo "$dir"
		return
	fi
	[ "$(id -u)" = 0 ] || die "the PostgreSQL $PG_VERSION source is not in $SRC_CACHE; run as root once to fetch it"
	mkdir -p "$SRC_CACHE"
	local sources=/etc/apt/sources.list.d/debian.sources
	if [ -f $sources ] && ! grep -q '^Types:.*deb-src' $sources; then
		sed -i 's/^Types: deb$/Types: deb deb-src/' $sources
		DEBIAN_FRONTEND=noninteractive apt-get -q update >/dev/null
	fi
	(cd "$SRC_CACHE" && apt-get source --download-only "postgresql-15=$PG_PKG_VERSION" >/dev/null 2>&1) ||
		die "apt-get source postgresql-15=$PG_PKG_VERSION failed (deb-src enabled?)"
	tar -C "$SRC_CACHE" -xjf "$SRC_CACHE/postgresql-15_$PG_VERSION.orig.tar.bz2" \
		"postgresql-$PG_VERSION/src/test/regress" "postgresql-$PG_VERSION/contrib/spi"
	echo "$dir"
}

build_libs() {	# build_libs SRCDIR OUTDIR
	local src=$1 out=$2 inc
	inc=$("$PG_CONFIG" --includedir-server)
	cc -O2 -fPIC -shared -I"$inc" -o "$out/regress.so" "$src/src/test/regress/regress.c"
	cc -O2 -fPIC -shared -I"$inc" -o "$out/autoinc.so" "$src/contrib/spi/autoinc.c"
	cc -O2 -fPIC -shared -I"$inc" -o "$out/refint.so" "$src/contrib/spi/refint.c"
}

# --- one run -------------------------------------------------------------------

# run_suite NAME WITH_RAFTABLE: a server, the schedule against it; leaves
# $WORK/NAME/out (pg_regress's output directory) and prints nothing else
run_suite() {
	local name=$1 with=$2 dir=$WORK/$1 port
	local pg_regress
	pg_regress=$("$PG_CONFIG" --pgxs | sed 's|src/makefiles/pgxs.mk$|src/test/regress/pg_regress|')
	mkdir -p "$dir/out" "$dir/sock"
	chown -R "$RT_PG_USER" "$dir"
	port=$(rt_free_port)
	rt_as_pg initdb --pgdata="$dir/data" --username=postgres --auth=trust \
		--encoding=UTF8 --no-locale >/dev/null
	rt_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir/sock'
max_prepared_transactions = 10
EOF
	if [ "$with" = 1 ]; then
		rt_as_pg tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF
shared_preload_libraries = 'raftable'
raftable.database = 'regression'
raftable.read_consistency = 'strong'
EOF
	fi
	rt_as_pg pg_ctl --pgdata="$dir/data" --log="$dir/server.log" -w start >/dev/null ||
		die "$name: the server did not start"
	local ext=()
	[ "$with" = 1 ] && ext=(--load-extension=raftable)
	(cd "$dir" && rt_as_pg "$pg_regress" \
		--inputdir="$SRC/src/test/regress" --outputdir="$dir/out" \
		--bindir="$RT_PG_BINDIR" --dlpath="$WORK/lib" \
		--schedule="$SRC/src/test/regress/parallel_schedule" \
		--host="$dir/sock" --port="$port" --max-connections=20 \
		"${ext[@]}" >"$dir/pg_regress.log" 2>&1) || true
	rt_as_pg pg_ctl --pgdata="$dir/data" -m fast stop >/dev/null || true
	grep -qE '^(ok|not ok|test |     )' "$dir/pg_regress.log" ||
		die "$name: pg_regress ran no test (see $dir/pg_regress.log)"
}

# the tests a run lists as failed, one per line, sorted
failing() {
	grep -E '^not ok|FAILED' "$WORK/$1/pg_regress.log" |
		sed -E 's/^not ok [0-9]+ +[-+] +//; s/^test +//; s/^ +//' |
		awk '{print $1}' | sort -u
}

# all tests the run reports
all_tests() {
	grep -E '^(ok|not ok) [0-9]+|^test |^     [a-z]' "$WORK/$1/pg_regress.log" |
		sed -E 's/^(not )?ok [0-9]+ +[-+] +//; s/^test +//; s/^ +//' |
		awk '{print $1}' | sort -u
}

# a test allowed to differ only in lines that name raftable's objects
differs_only_by_raftable() {
	local t=$1 a=$WORK/plain/out/results/$1.out b=$WORK/raftable/out/results/$1.out
	[ -f "$a" ] && [ -f "$b" ] || return 1
	# every line changed either way must name raftable (or be a row count)
	diff "$a" "$b" | grep -E '^[<>]' | sed -E 's/^[<>] ?//' |
		grep -vE 'raftable|^\([0-9]+ rows?\)$' | grep -q . && return 1
	return 0
}

main() {
	[ -x "$RT_PG_BINDIR/initdb" ] || die "PostgreSQL 15 is not installed"
	SRC=$(fetch_source)
	WORK=$(mktemp -d /tmp/raftable-pgregress.XXXXXX)
	trap 'rm -rf "$WORK"' EXIT
	mkdir "$WORK/lib"
	build_libs "$SRC" "$WORK/lib"
	chown -R "$RT_PG_USER" "$WORK"

	say "PostgreSQL $PG_VERSION regression suite without raftable"
	run_suite plain 0
	say "... and with raftable preloaded, serving the database, strong reads"
	run_suite raftable 1

	local n both=0 bad=0 t
	n=$(all_tests raftable | wc -l)
	comm -12 <(failing plain) <(failing raftable) >"$WORK/both"
	both=$(wc -l <"$WORK/both")
	say "failing in both runs (the 15.18 sources against a newer server): $(tr '\n' ' ' <"$WORK/both")"
	while read -r t; do
		[ -n "$t" ] || continue
		if printf '%s\n' "${ALLOWED[@]}" | grep -qx "$t" && differs_only_by_raftable "$t"; then
			say "$t: differs only in lines that show raftable's objects (allowed)"
			continue
		fi
		say "$t: fails with raftable only"
		diff "$WORK/plain/out/results/$t.out" "$WORK/raftable/out/results/$t.out" | head -40 || true
		bad=$((bad + 1))
	done < <(comm -13 <(failing plain) <(failing raftable))
	while read -r t; do
		[ -n "$t" ] || continue
		say "$t: fails without raftable only"
		bad=$((bad + 1))
	done < <(comm -23 <(failing plain) <(failing raftable))
	if grep -q 'PANIC\|server process .* was terminated' "$WORK/raftable/server.log"; then
		say "the server with raftable crashed:"
		grep -B2 -A5 'PANIC\|was terminated' "$WORK/raftable/server.log" | head -40
		bad=$((bad + 1))
	fi
	if [ $bad = 0 ]; then
		say "$n tests, $both failing in both runs, 0 differing: PASS"
	else
		say "$n tests, $both failing in both runs, $bad differing: FAIL"
		exit 1
	fi
}

main "$@"
