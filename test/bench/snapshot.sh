#!/usr/bin/env bash
# test/bench/snapshot.sh
#	The snapshot measurement behind `make bench-snapshot`: how long a new
#	node takes to copy a large replicated table.
#
#	    bash test/bench/snapshot.sh               (3,300,000 rows: about 1.1 GB)
#	    SNAPSHOT_ROWS=100000 bash test/bench/snapshot.sh
#
#	A one-node cluster (raftable.log_keep = 0, so that the log is compacted
#	and the new node must take a snapshot) replicates an empty table
#	big (id bigint primary key, pad text of 288 bytes) and loads it through
#	the log in transactions of 3,500 rows, below the 4 MB change-set limit.
#	Then add_node adds a second instance, which copies the table from the
#	first.  Printed: the table's size, the load time, the time until the
#	new node has applied everything, raftable.snapshot_progress on the new
#	node, and both checksums, which must be equal (else the exit status is
#	1).  Assumes raftable is installed; like bench.sh, runs the servers as
#	`postgres` when root, in a temporary directory removed at the end, on
#	free ports.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=test/lib.sh
. test/lib.sh

ROWS=${SNAPSHOT_ROWS:-3300000}
STEP=3500
DIR=$(mktemp -d /tmp/raftable-snapshot.XXXXXX)
chown "$RT_PG_USER" "$DIR" 2>/dev/null || true
PORTS=()

cleanup() {
	local i
	for i in 1 2; do
		if [ -f "$DIR/n$i/postmaster.pid" ]; then
			(cd "$DIR" && rt_as_pg pg_ctl -D "$DIR/n$i" -m immediate stop >/dev/null 2>&1) || true
		fi
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

psql_on() {
	local i=$1
	shift
	(cd "$DIR" && rt_as_pg psql -X -Atq -v ON_ERROR_STOP=1 -h "$DIR" -p "${PORTS[$((i - 1))]}" \
		-d postgres "$@")
}

now() { date +%s.%N; }

for i in 1 2; do
	PORTS+=("$(rt_free_port "${PORTS[@]}")")
	(cd "$DIR" && rt_as_pg initdb -D "$DIR/n$i" -A trust >/dev/null)
	cat >>"$DIR/n$i/postgresql.conf" <<-EOF
		port = ${PORTS[$((i - 1))]}
		unix_socket_directories = '$DIR'
		listen_addresses = ''
		shared_preload_libraries = 'raftable'
		raftable.log_keep = 0
		max_wal_size = 4GB
		checkpoint_timeout = 30min
	EOF
	(cd "$DIR" && rt_as_pg pg_ctl -D "$DIR/n$i" -l "$DIR/n$i.log" -w start >/dev/null)
	psql_on "$i" -c 'CREATE EXTENSION raftable'
done

psql_on 1 -c "SELECT raftable.create_cluster('host=$DIR port=${PORTS[0]} dbname=postgres', 'n1')" >/dev/null
psql_on 1 -c 'CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL)' \
	-c "SELECT raftable.replicate_table('big')" >/dev/null

t0=$(now)
for ((s = 1; s <= ROWS; s += STEP)); do
	e=$((s + STEP - 1 < ROWS ? s + STEP - 1 : ROWS))
	psql_on 1 -c "INSERT INTO big SELECT g, repeat(md5(g::text), 9) FROM generate_series($s, $e) g"
done
t1=$(now)
echo "table: $(psql_on 1 -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('big'))
                              || ' with its index' FROM big")"
echo "load through the log: $(echo "$t1 - $t0" | bc) s"

psql_on 1 -c "SELECT raftable.add_node('host=$DIR port=${PORTS[1]} dbname=postgres', 'n2')" >/dev/null
commit=$(psql_on 1 -c 'SELECT commit_index FROM raftable.status')
deadline=$(($(date +%s) + 3600))
until [ "$(psql_on 2 -c "SELECT applied_index >= $commit FROM raftable.status")" = t ]; do
	[ "$(date +%s)" -lt "$deadline" ] || { rt_log "the new node did not catch up in an hour"; exit 1; }
	sleep 0.2
done
t2=$(now)
echo "add_node until the new node applied everything: $(echo "$t2 - $t1" | bc) s"
psql_on 2 -P footer=off -A -F ' | ' -c "\\pset tuples_only off" \
	-c "SELECT phase, tables_total, rows_copied, pg_size_pretty(bytes_copied) AS copied,
	           finished_at - started_at AS took FROM raftable.snapshot_progress"
a=$(psql_on 1 -c "SELECT raftable.table_checksum('big')")
b=$(psql_on 2 -c "SELECT raftable.table_checksum('big')")
echo "checksums: first node $a, new node $b"
[ "$a" = "$b" ]
