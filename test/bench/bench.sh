#!/usr/bin/env bash
# test/bench/bench.sh
#	The benchmark behind `make bench`: measures the figures of the SPEC's
#	"Performance targets" on this machine, raftable and its reference side
#	by side, in one run, and prints them as a table.
#
#	    bash test/bench/bench.sh              (20 s of pgbench per figure)
#	    BENCH_SECONDS=3 bash test/bench/bench.sh   (about 1 minute in all)
#
#	It assumes raftable is built and installed (`make install`) into the
#	system PostgreSQL 15 and installs nothing.  As root, the servers run as
#	the `postgres` account (like test/demo.sh); as another user, as that
#	user.  Everything lives in a temporary directory that is removed at the
#	end, and every server listens on 127.0.0.1 on a free port.
#
#	What runs (6 servers at once, max_connections 100, shared_buffers 128MB):
#
#	  reference   PostgreSQL's synchronous streaming replication: a primary
#	              and two standbys made by pg_basebackup -R (application_name
#	              s1 and s2), synchronous_standby_names = 'ANY 1 (s1, s2)',
#	              synchronous_commit = remote_apply.
#	  raftable    three servers with shared_preload_libraries = 'raftable':
#	              node1 runs raftable.create_cluster and adds node2 and node3.
#
#	Both hold bench_t (id int primary key, v int) with 10,000 rows; on
#	raftable it is replicated with raftable.replicate_table on the leader.
#	Everything is measured with pgbench -n -M prepared, over TCP:
#
#	  reads, on follower node2 (measured first, while bench_t is fresh):
#	    SELECT v FROM bench_t WHERE id = :id (random id), with
#	    PGOPTIONS='-c raftable.read_consistency=eventual' and =strong:
#	    1 client (median latency, from pgbench's per-transaction logs, -l)
#	    and 8 clients (tps); and the same eventual read of plain_t, a
#	    non-replicated copy of bench_t on node2 (tps, 8 clients).  Each
#	    figure gets two runs of BENCH_SECONDS/2 (rounded up) in A B B A
#	    order, so that drift hits every variant alike.
#	  writes, on the reference primary and on the raftable leader:
#	    UPDATE bench_t SET v = v + 1 WHERE id = :id (random id) at 1, 8
#	    and 32 clients (-j min(clients, 4)), one run of BENCH_SECONDS
#	    each, interleaved (reference 1, raftable 1, reference 8, ...) so
#	    that noise hits both alike.
#
#	The last lines are a table (figure, raftable, reference, ratio, SPEC
#	target, met) and "bench: N figures measured".  Nothing is faked: if a
#	step fails (for instance raftable.replicate_table does not exist yet),
#	the script says which and exits non-zero.  Targets that are missed do
#	not change the exit status (short runs are noisy); the table says so.
#
#	Not measured: the SPEC's failover figure (leader killed -> writes
#	succeed again).
#
#	Environment:
#	  BENCH_SECONDS=N            seconds of pgbench per figure (default 20)
#	  BENCH_REFERENCE_ONLY=1     measure only the reference (no raftable)
#	  RAFTABLE_KEEP_TMP=1        keep the temporary directory (data, logs)

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=test/lib.sh
. test/lib.sh

BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_REFERENCE_ONLY=${BENCH_REFERENCE_ONLY:-0}
RAFTABLE_KEEP_TMP=${RAFTABLE_KEEP_TMP:-0}
ROWS=10000
CLIENT_COUNTS=(1 8 32)
READ_CLIENTS=8
SETUP_TIMEOUT=60	# seconds any setup step may take before we give up

WORK=
SHOW_LOGS=1		# on failure, show the tail of every server log
STARTED=()		# data directories of the servers we started
PASSFILE=

# --- helpers -----------------------------------------------------------------

say() {
	printf 'bench: %s\n' "$*" >&2
}

die() {
	say "FAILED: $*"
	exit 1
}

# pg CMD...: run CMD as the servers' OS user, in $WORK, reaching the servers
# over TCP on 127.0.0.1 as the PostgreSQL user postgres with the passfile.
pg() {
	(cd "$WORK" && rt_as_pg env PGPASSFILE="$PASSFILE" PGHOST=127.0.0.1 \
		PGUSER=postgres PGDATABASE=postgres "$@")
}

# sql PORT SQL: run SQL on the server at PORT and print the result (-At).
sql() {
	pg psql -X -At -q -v ON_ERROR_STOP=1 -p "$1" -c "$2"
}

# poll DESCRIPTION CMD...: run CMD until it succeeds, for at most
# SETUP_TIMEOUT seconds; then fail naming DESCRIPTION.
poll() {
	local what=$1 deadline=$((SECONDS + SETUP_TIMEOUT))
	shift
	# (A subshell, so that a signal trap never runs with these redirections.)
	until ("$@") >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			die "timed out after ${SETUP_TIMEOUT}s waiting for: $what"
		fi
		sleep 0.1
	done
}

# sql_is PORT SQL EXPECTED: does SQL (with eventual reads) print EXPECTED?
sql_is() {
	local got
	got=$(pg env PGOPTIONS='-c raftable.read_consistency=eventual' \
		psql -X -At -q -v ON_ERROR_STOP=1 -p "$1" -c "$2" 2>/dev/null) || return 1
	[ "$got" = "$3" ]
}

cleanup() {
	local rc=$? dir
	trap - EXIT INT TERM
	[ -n "$WORK" ] || exit $rc
	if [ $rc -ne 0 ] && [ "$SHOW_LOGS" = 1 ]; then
		for dir in "${STARTED[@]}"; do
			if [ -s "$dir.log" ]; then
				say "last lines of $(basename "$dir").log:"
				tail -n 8 "$dir.log" | sed 's/^/    /' >&2
			fi
		done
	fi
	for dir in "${STARTED[@]}"; do
		if [ -f "$dir/postmaster.pid" ]; then
			pg pg_ctl --pgdata="$dir" -m immediate -w stop >/dev/null 2>&1 ||
				say "could not stop the server in $dir"
		fi
	done
	if [ "$RAFTABLE_KEEP_TMP" = 1 ]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}

# --- servers -----------------------------------------------------------------

# settings DATADIR LINE...: append configuration lines to DATADIR's
# postgresql.conf (later lines win).
settings() {
	local dir=$1
	shift
	printf '%s\n' "$@" | pg tee -a "$dir/postgresql.conf" >/dev/null
}

# new_server NAME PORT PRELOAD: initdb a server in $WORK/NAME listening on
# 127.0.0.1:PORT, with shared_preload_libraries = PRELOAD.
new_server() {
	local name=$1 port=$2 preload=$3 dir=$WORK/$1
	(cd "$WORK" && rt_init_node "$dir" "$port" "$WORK" 127.0.0.1) ||
		die "initdb of $name failed"
	settings "$dir" "# added by test/bench/bench.sh" \
		"shared_preload_libraries = '$preload'" \
		"max_connections = 100" "shared_buffers = 128MB"
}

# start_server NAME: start the server in $WORK/NAME, log in $WORK/NAME.log.
start_server() {
	local dir=$WORK/$1
	STARTED+=("$dir")
	pg pg_ctl --pgdata="$dir" --log="$dir.log" -t "$SETUP_TIMEOUT" -w \
		start >/dev/null || die "could not start $1 (see its log below)"
}

# set_password PORT: give the postgres role the bench password (over the
# Unix socket, which trusts local users; TCP asks for the password).
set_password() {
	pg psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$1" \
		-c "ALTER ROLE postgres PASSWORD '$PASSWORD'" >/dev/null
}

load_bench_t() {	# load_bench_t PORT TABLE
	sql "$1" "CREATE TABLE $2 (id int PRIMARY KEY, v int NOT NULL);
		INSERT INTO $2 SELECT i, 0 FROM generate_series(1, $ROWS) i;
		ANALYZE $2" >/dev/null
}

# --- the reference: synchronous streaming replication ------------------------

setup_reference() {
	local name port
	say "reference: primary and standbys s1, s2 on ports $REF_PORT ${STANDBY_PORTS[*]}"
	new_server primary "$REF_PORT" ''
	start_server primary
	set_password "$REF_PORT"
	load_bench_t "$REF_PORT" bench_t
	for name in s1 s2; do
		if [ $name = s1 ]; then port=${STANDBY_PORTS[0]}; else port=${STANDBY_PORTS[1]}; fi
		pg pg_basebackup --pgdata="$WORK/$name" -R -X stream -c fast \
			-d "host=127.0.0.1 port=$REF_PORT user=postgres application_name=$name" \
			>/dev/null || die "pg_basebackup for standby $name failed"
		settings "$WORK/$name" "port = $port"
		start_server $name
	done
	poll "standbys s1 and s2 streaming from the primary" sql_is "$REF_PORT" \
		"SELECT count(*) FROM pg_stat_replication
		 WHERE application_name IN ('s1', 's2') AND state = 'streaming'" 2
	sql "$REF_PORT" "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (s1, s2)'" >/dev/null
	sql "$REF_PORT" "ALTER SYSTEM SET synchronous_commit = 'remote_apply'" >/dev/null
	sql "$REF_PORT" "SELECT pg_reload_conf()" >/dev/null
	poll "both standbys in the synchronous quorum" sql_is "$REF_PORT" \
		"SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'" 2
	poll "synchronous_commit = remote_apply on the primary" sql_is "$REF_PORT" \
		"SHOW synchronous_commit" remote_apply
	# One synchronous write, seen by a standby, before measuring anything.
	sql "$REF_PORT" "UPDATE bench_t SET v = 0 WHERE id = 1" >/dev/null
	poll "standbys hold bench_t" sql_is "${STANDBY_PORTS[0]}" \
		"SELECT count(*) FROM bench_t" $ROWS
}

# --- raftable: three nodes ---------------------------------------------------

setup_raftable() {
	local i port conninfo fn out
	say "raftable: node1, node2, node3 on ports ${RAFT_PORTS[*]}"
	for i in 0 1 2; do
		new_server "node$((i + 1))" "${RAFT_PORTS[$i]}" raftable
		start_server "node$((i + 1))"
		set_password "${RAFT_PORTS[$i]}"
		sql "${RAFT_PORTS[$i]}" "CREATE EXTENSION raftable" >/dev/null ||
			die "CREATE EXTENSION raftable failed on node$((i + 1))"
	done
	for i in 0 1 2; do
		port=${RAFT_PORTS[$i]}
		conninfo="host=127.0.0.1 port=$port dbname=postgres user=postgres"
		if [ $i = 0 ]; then fn=create_cluster; else fn=add_node; fi
		out=$(sql "${RAFT_PORTS[0]}" \
			"SELECT raftable.$fn('$conninfo', 'n$((i + 1))')" 2>&1) ||
			die "raftable.$fn for node$((i + 1)) failed: $out"
	done
	poll "node1 leader" sql_is "${RAFT_PORTS[0]}" "SELECT role FROM raftable.status" leader
	poll "node2 follower" sql_is "${RAFT_PORTS[1]}" "SELECT role FROM raftable.status" follower
	poll "node3 follower" sql_is "${RAFT_PORTS[2]}" "SELECT role FROM raftable.status" follower

	load_bench_t "${RAFT_PORTS[0]}" bench_t
	if ! out=$(sql "${RAFT_PORTS[0]}" "SELECT raftable.replicate_table('bench_t')" 2>&1); then
		say "raftable.replicate_table('bench_t') failed on the leader:"
		printf '    %s\n' "$out" >&2
		SHOW_LOGS=0
		die "the installed raftable cannot replicate tables; no raftable figures measured"
	fi
	for i in 1 2; do
		poll "node$((i + 1)) holds the $ROWS rows of bench_t" \
			sql_is "${RAFT_PORTS[$i]}" "SELECT count(*) FROM bench_t" $ROWS
	done
	# The plain (not replicated) copy, on the follower that serves reads.
	load_bench_t "$FOLLOWER_PORT" plain_t
}

# --- pgbench -----------------------------------------------------------------

TPS=
XACTS=		# transactions the last run_pgbench processed
RUN_SECONDS=	# length of each pgbench run; set before calling run_pgbench
# run_pgbench LABEL PORT CLIENTS SCRIPT PGOPTIONS [LOGPREFIX]: one pgbench
# run of RUN_SECONDS; sets TPS and XACTS.  With LOGPREFIX, pgbench writes
# per-transaction logs LOGPREFIX.PID.
run_pgbench() {
	local label=$1 port=$2 clients=$3 script=$4 pgoptions=$5 logprefix=${6:-}
	local jobs=$((clients < 4 ? clients : 4)) out=$WORK/pgbench-$1.out failed
	local args=(-n -M prepared -T "$RUN_SECONDS" -c "$clients" -j "$jobs"
		-f "$WORK/$script.sql" -p "$port")
	[ -z "$logprefix" ] || args+=(-l --log-prefix="$logprefix")
	say "pgbench $label (${RUN_SECONDS}s)"
	if ! (pg env PGOPTIONS="$pgoptions" pgbench "${args[@]}") >"$out" 2>&1; then
		sed 's/^/    /' "$out" >&2
		die "pgbench $label failed"
	fi
	failed=$(awk '/^number of failed transactions:/ {print $5}' "$out")
	if [ -n "$failed" ] && [ "$failed" != 0 ]; then
		sed 's/^/    /' "$out" >&2
		die "pgbench $label: $failed transactions failed"
	fi
	TPS=$(awk '/^tps = / {print $3; exit}' "$out")
	XACTS=$(awk '/^number of transactions actually processed:/ {print $NF; exit}' "$out")
	if [ -z "$TPS" ] || [ -z "$XACTS" ]; then
		die "pgbench $label printed no tps or transaction count (see $out)"
	fi
}

# check_writes NAME PRIMARY_PORT UPDATES REPLICA_PORT...: the writes really
# happened and reached the replicas: on the primary, sum(v) of bench_t is
# the number of UPDATEs pgbench reported (each adds 1), and every replica
# comes to hold the same rows (raftable.table_checksum where raftable is
# installed, else sum(v)).
check_writes() {
	local name=$1 primary=$2 updates=$3 port sum digest
	shift 3
	sum=$(sql "$primary" "SELECT sum(v) FROM bench_t")
	[ "$sum" = "$updates" ] ||
		die "$name: sum(v) of bench_t is $sum, but pgbench reported $updates updates"
	if [ "$name" = raftable ]; then
		digest="SELECT raftable.table_checksum('bench_t')"
	else
		digest="SELECT sum(v) FROM bench_t"
	fi
	sum=$(sql "$primary" "$digest")
	for port in "$@"; do
		poll "$name: the replica on port $port holds the primary's bench_t" \
			sql_is "$port" "$digest" "$sum"
	done
	say "$name: all $updates updates are on the node written to and on every replica"
}

# median_ms PREFIX: the median latency in ms of the transactions in
# pgbench's per-transaction logs PREFIX* (third field: latency in us).
# quantile_ms PREFIX Q: the Q quantile (0..1) of the per-transaction
# latencies of pgbench's logs PREFIX*, in ms
quantile_ms() {
	cat "$1"* | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n | awk -v q="$2" '
		{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			i = int(q * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
			printf "%.3f\n", v[i] / 1000
		}'
}

median_ms() {
	cat "$1"* | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.3f\n", m / 1000
		}'
}

write_scripts() {
	pg tee "$WORK/update.sql" >/dev/null <<EOF
\\set id random(1, $ROWS)
UPDATE bench_t SET v = v + 1 WHERE id = :id;
EOF
	pg tee "$WORK/select.sql" >/dev/null <<EOF
\\set id random(1, $ROWS)
SELECT v FROM bench_t WHERE id = :id;
EOF
	pg tee "$WORK/select_plain.sql" >/dev/null <<EOF
\\set id random(1, $ROWS)
SELECT v FROM plain_t WHERE id = :id;
EOF
}

# measure_reads: the read figures, on follower node2.  Each figure gets two
# runs of half of BENCH_SECONDS, ordered A B B A (and A B C C B A), so that
# drift during the runs hits every variant alike.  Sets EV_P50, ST_P50
# (ms, median over both runs), EV_TPS, ST_TPS, PLAIN_TPS (mean of both).
measure_reads() {
	local v n=0 before after
	local -A script=([eventual]=select [strong]=select [plain]=select_plain
		[plainstrong]=select_plain)
	local -A level=([eventual]=eventual [strong]=strong [plain]=eventual
		[plainstrong]=strong)
	local -A sum=([eventual]=0 [strong]=0 [plain]=0 [plainstrong]=0)
	local reads0 rounds0
	RUN_SECONDS=$(((BENCH_SECONDS + 1) / 2))
	say "reads on follower node2 (runs of ${RUN_SECONDS}s, A B B A order)"
	before=$(strong_reads "$FOLLOWER_PORT")
	for v in eventual strong strong eventual; do
		n=$((n + 1))
		run_pgbench "read-$v-1-$n" "$FOLLOWER_PORT" 1 "${script[$v]}" \
			"-c raftable.read_consistency=${level[$v]}" "$WORK/log-$v-$n"
	done
	EV_P50=$(median_ms "$WORK/log-eventual-") || die "no transactions logged (eventual)"
	ST_P50=$(median_ms "$WORK/log-strong-") || die "no transactions logged (strong)"
	EV_P99=$(quantile_ms "$WORK/log-eventual-" 0.99)
	ST_P99=$(quantile_ms "$WORK/log-strong-" 0.99)
	reads0=$(strong_reads "$FOLLOWER_PORT")
	rounds0=$(stat_of "$FOLLOWER_PORT" read_index_rounds)
	for v in eventual strong plain plainstrong plainstrong plain strong eventual; do
		n=$((n + 1))
		run_pgbench "read-$v-$READ_CLIENTS-$n" "$FOLLOWER_PORT" "$READ_CLIENTS" \
			"${script[$v]}" "-c raftable.read_consistency=${level[$v]}"
		sum[$v]=$(awk -v a="${sum[$v]}" -v b="$TPS" 'BEGIN {print a + b}')
	done
	after=$(strong_reads "$FOLLOWER_PORT")
	ROUNDS_PER_READ=$(awk -v r0="$rounds0" -v r1="$(stat_of "$FOLLOWER_PORT" read_index_rounds)" \
		-v s0="$reads0" -v s1="$after" 'BEGIN {
			if (s1 - s0 > 0) printf "%.3f", (r1 - r0) / (s1 - s0); else print "-" }')
	PLAINST_TPS=$(fmt_tps "$(awk -v a="${sum[plainstrong]}" 'BEGIN {print a / 2}')")
	EV_TPS=$(fmt_tps "$(awk -v a="${sum[eventual]}" 'BEGIN {print a / 2}')")
	ST_TPS=$(fmt_tps "$(awk -v a="${sum[strong]}" 'BEGIN {print a / 2}')")
	PLAIN_TPS=$(fmt_tps "$(awk -v a="${sum[plain]}" 'BEGIN {print a / 2}')")
	if [ "$before" = '?' ] || [ "$after" = '?' ]; then
		NOTES+=("raftable.stats has no strong_reads counter: cannot tell whether strong reads took the strong path")
	elif [ "$before" = "$after" ]; then
		NOTES+=("raftable.stats.strong_reads did not move during the strong runs: strong reads seem not to be implemented yet")
	fi
}

# --- results -----------------------------------------------------------------

ROWS_OUT=()
MEASURED=0
NOTES=()

# row FIGURE RAFTABLE REFERENCE UNIT KIND TARGET_TEXT TARGET_VALUE
#	KIND ratio: ratio = raftable / reference, met if ratio >= TARGET_VALUE;
#	KIND delta: ratio column shows raftable - reference, met if it is
#	<= TARGET_VALUE; KIND none: no target.
row() {
	local fig=$1 raft=$2 ref=$3 unit=$4 kind=$5 ttext=$6 tval=$7 ratio met
	if [ "$raft" = - ] || [ "$ref" = - ]; then
		ratio=- met=-
	elif [ "$kind" = delta ]; then
		ratio=$(awk -v a="$raft" -v b="$ref" 'BEGIN {printf "%+.3f ms", a - b}')
		met=$(awk -v a="$raft" -v b="$ref" -v t="$tval" \
			'BEGIN {print (a - b <= t) ? "yes" : "NO"}')
	else
		ratio=$(awk -v a="$raft" -v b="$ref" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
		if [ "$kind" = ratio ]; then
			met=$(awk -v a="$raft" -v b="$ref" -v t="$tval" \
				'BEGIN {print (b > 0 && a / b >= t) ? "yes" : "NO"}')
		else
			met=-
		fi
	fi
	if [ "$raft" != - ] || [ "$ref" != - ]; then
		MEASURED=$((MEASURED + 1))
	fi
	[ "$raft" = - ] || raft="$raft $unit"
	[ "$ref" = - ] || ref="$ref $unit"
	ROWS_OUT+=("$(printf '%-44s | %13s | %13s | %10s | %-26s | %s' \
		"$fig" "$raft" "$ref" "$ratio" "$ttext" "$met")")
}

fmt_tps() {
	awk -v x="$1" 'BEGIN {printf "%.0f", x}'
}

# strong_reads PORT: raftable.stats' strong_reads counter, or "?"
strong_reads() {
	sql "$1" "SELECT strong_reads FROM raftable.stats" 2>/dev/null || echo '?'
}

# stat_of PORT COLUMN: a raftable.stats counter, or 0
stat_of() {
	sql "$1" "SELECT $2 FROM raftable.stats" 2>/dev/null || echo 0
}

# --- main ----------------------------------------------------------------------

main() {
	local pgbench=$RT_PG_BINDIR/pgbench c
	[ -x "$pgbench" ] || die "$pgbench not found (package postgresql-15)"
	case $BENCH_SECONDS in
		'' | *[!0-9]* | 0) die "BENCH_SECONDS must be a positive integer, not '$BENCH_SECONDS'" ;;
	esac
	if [ "$BENCH_REFERENCE_ONLY" != 1 ] &&
		[ ! -f "$("$PG_CONFIG" --sharedir)/extension/raftable.control" ]; then
		die "raftable is not installed into $("$PG_CONFIG" --sharedir); run make install first"
	fi

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/raftable-bench.XXXXXX")
	trap cleanup EXIT
	trap 'SHOW_LOGS=0; say interrupted; exit 130' INT
	trap 'SHOW_LOGS=0; say terminated; exit 143' TERM
	chmod 700 "$WORK"
	[ "$(id -u)" != 0 ] || chown "$RT_PG_USER" "$WORK"
	(cd "$WORK" && rt_as_pg test -w "$WORK") ||
		die "$RT_PG_USER cannot write $WORK; set TMPDIR to a directory it can use"

	# Peers, standbys and pgbench connect over TCP with a password, kept in
	# a passfile that only the servers' OS user can read.
	PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	PASSFILE=$WORK/pgpass
	printf '127.0.0.1:*:*:postgres:%s\n' "$PASSWORD" | pg tee "$PASSFILE" >/dev/null
	pg chmod 600 "$PASSFILE"
	write_scripts

	local ports=()
	REF_PORT=$(rt_free_port); ports+=("$REF_PORT")
	STANDBY_PORTS=()
	for c in 1 2; do
		STANDBY_PORTS+=("$(rt_free_port "${ports[@]}")")
		ports+=("${STANDBY_PORTS[-1]}")
	done
	RAFT_PORTS=()
	for c in 1 2 3; do
		RAFT_PORTS+=("$(rt_free_port "${ports[@]}")")
		ports+=("${RAFT_PORTS[-1]}")
	done
	LEADER_PORT=${RAFT_PORTS[0]}
	FOLLOWER_PORT=${RAFT_PORTS[1]}

	setup_reference
	[ "$BENCH_REFERENCE_ONLY" = 1 ] || setup_raftable

	EV_P50=- ST_P50=- EV_TPS=- ST_TPS=- PLAIN_TPS=-
	[ "$BENCH_REFERENCE_ONLY" = 1 ] || measure_reads

	local -A ref_w raft_w
	local ref_updates=0 raft_updates=0
	RUN_SECONDS=$BENCH_SECONDS
	for c in "${CLIENT_COUNTS[@]}"; do
		run_pgbench "write-reference-$c" "$REF_PORT" "$c" update ''
		ref_w[$c]=$(fmt_tps "$TPS")
		ref_updates=$((ref_updates + XACTS))
		if [ "$BENCH_REFERENCE_ONLY" = 1 ]; then
			raft_w[$c]=-
		else
			run_pgbench "write-raftable-$c" "$LEADER_PORT" "$c" update ''
			raft_w[$c]=$(fmt_tps "$TPS")
			raft_updates=$((raft_updates + XACTS))
		fi
	done
	check_writes reference "$REF_PORT" "$ref_updates" "${STANDBY_PORTS[@]}"
	[ "$BENCH_REFERENCE_ONLY" = 1 ] ||
		check_writes raftable "$LEADER_PORT" "$raft_updates" "${RAFT_PORTS[1]}" "${RAFT_PORTS[2]}"

	row "replicated write tps, 1 client" "${raft_w[1]}" "${ref_w[1]}" tps ratio ">= 0.5 x reference" 0.5
	row "replicated write tps, 8 clients" "${raft_w[8]}" "${ref_w[8]}" tps none "-" 0
	row "replicated write tps, 32 clients" "${raft_w[32]}" "${ref_w[32]}" tps ratio ">= 1.0 x reference" 1.0
	row "strong read p50, 1 client (ref: eventual)" "$ST_P50" "$EV_P50" ms delta "<= eventual p50 + 0.3 ms" 0.3
	row "strong read tps, 8 clients (ref: eventual)" "$ST_TPS" "$EV_TPS" tps ratio ">= 0.5 x eventual" 0.5
	row "eventual read tps, 8 clients (ref: plain)" "$EV_TPS" "$PLAIN_TPS" tps ratio ">= 0.95 x plain table" 0.95
	row "plain-table read tps under strong (ref: eventual)" "$PLAINST_TPS" "$PLAIN_TPS" tps ratio ">= 0.98" 0.98
	row "strong read p99, 1 client (ref: eventual)" "${ST_P99:--}" "${EV_P99:--}" ms none "-" 0
	NOTES+=("read-index rounds per strong read, 8 clients on the follower: ${ROUNDS_PER_READ:--}")

	echo
	echo "raftable benchmark: ${BENCH_SECONDS}s of pgbench per figure, $(nproc) CPUs, PostgreSQL $RT_PG_MAJOR, loopback"
	echo "reference for writes: synchronous streaming replication, ANY 1 (s1, s2), remote_apply"
	echo "reads on a raftable follower; writes on the raftable leader / reference primary"
	echo
	printf '%-44s | %13s | %13s | %10s | %-26s | %s\n' \
		figure raftable reference ratio "SPEC target" met
	printf '%s\n' "$(printf '%.0s-' {1..125})"
	printf '%s\n' "${ROWS_OUT[@]}"
	local n
	for n in "${NOTES[@]}"; do
		echo "note: $n"
	done
	echo
	echo "bench: $MEASURED figures measured"
}

main "$@"
