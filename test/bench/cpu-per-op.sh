#!/bin/bash
# test/bench/cpu-per-op.sh read LEVEL [SECONDS]
# test/bench/cpu-per-op.sh write CLIENTS [SECONDS]
#	Where an operation's CPU goes, on the demo cluster (bash test/demo.sh
#	must be running).  read: pgbench (8 clients, a point SELECT) at
#	raftable.read_consistency = LEVEL against node2.  write: pgbench
#	(CLIENTS clients, an UPDATE by key of one of 10,000 rows of a
#	replicated table it creates, cpu_op_t) against node1, the leader.
#	Prints the machine's busy time per operation (from /proc/stat), the
#	CPU and context switches per operation of each long-lived process
#	(the workers, the peers' backends), and for writes the leader's WAL
#	bytes per transaction, and how deep group commit goes: log entries
#	per peer message, WAL syncs per entry on the leader and on node2
#	(pg_stat_wal, as far as the processes have reported it).  The
#	clients' own backends exit before the
#	second count, so they show only in the machine total.  As root (it
#	reads every process's counters).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
usage="usage: cpu-per-op.sh read strong|eventual|bounded [SECONDS] | write CLIENTS [SECONDS]"
MODE=${1:?$usage}
ARG=${2:?$usage}
SECONDS_RUN=${3:-5}
DEMO_DIR=${DEMO_DIR:-/var/tmp/raftable-demo}
NODE=node2
[ "$MODE" = write ] && NODE=node1
# test/demo.sh records each node's port in $DEMO_DIR/nodes
PORT=$(sed -n "s/^$NODE port=\([0-9]*\).*/\1/p" "$DEMO_DIR/nodes" 2>/dev/null || true)
[ -n "$PORT" ] || { echo "cpu-per-op: no demo cluster in $DEMO_DIR (bash test/demo.sh)" >&2; exit 2; }
PORT2=$(sed -n "s/^node2 port=\([0-9]*\).*/\1/p" "$DEMO_DIR/nodes")
psql_on() { runuser -u postgres -- psql -h "$DEMO_DIR" -p "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2" postgres; }
psql_leader() { psql_on "$PORT" "$1"; }
# the write path's batching: log index, peer messages sent, WAL syncs (of
# the leader, then of follower node2), as one line
counters() {
	echo "$(psql_leader "SELECT s.commit_index, t.messages_sent, w.wal_sync
		FROM raftable.status s, raftable.stats t, pg_stat_wal w") $(psql_on "$PORT2" "SELECT wal_sync FROM pg_stat_wal")"
}

SQL=$(mktemp)
trap 'rm -f "$SQL" "$SQL".*' EXIT
case $MODE in
read)
	printf '%s\n' '\set id random(1, 3)' 'SELECT * FROM accounts WHERE id = :id;' >"$SQL"
	PGOPT="-c raftable.read_consistency=$ARG"
	CLIENTS=8 ;;
write)
	psql_leader "CREATE TABLE IF NOT EXISTS cpu_op_t (id int PRIMARY KEY, v int)" >/dev/null
	psql_leader "SELECT raftable.replicate_table('cpu_op_t') WHERE NOT EXISTS
		(SELECT FROM raftable.tables WHERE table_name = 'cpu_op_t')" >/dev/null
	psql_leader "INSERT INTO cpu_op_t SELECT g, 0 FROM generate_series(1, 10000) g ON CONFLICT DO NOTHING" >/dev/null
	printf '%s\n' '\set id random(1, 10000)' 'UPDATE cpu_op_t SET v = v + 1 WHERE id = :id;' >"$SQL"
	PGOPT=""
	CLIENTS=$ARG ;;
*)
	echo "$usage" >&2; exit 2 ;;
esac
chmod 644 "$SQL"

# pid, CPU ticks (user + system), command line (with the demo node its
# postmaster serves, if any), of every process
count() {
	local p cmd t ppid node
	for p in /proc/[0-9]*; do
		{
			cmd=$(tr '\0' ' ' <"$p/cmdline") &&
			read -r _ _ _ ppid _ <"$p/stat" &&
			t=$(awk '{print $14 + $15}' "$p/stat") &&
			cs=$(awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' "$p/status")
		} 2>/dev/null || continue
		[ -n "$cmd" ] || continue
		node=$({ tr '\0' ' ' <"/proc/$ppid/cmdline"; } 2>/dev/null | grep -o 'raftable-demo/node[0-9]*' | sed 's|.*/||' || true)
		echo "${p#/proc/} $t $cs ${node:+$node: }$cmd"
	done
}
lsn0=$(psql_leader "SELECT pg_current_wal_insert_lsn()")
c0=""
[ "$MODE" = write ] && c0=$(counters)
count >"$SQL.before"
head -1 /proc/stat >"$SQL.stat.before"
out=$(runuser -u postgres -- env PGOPTIONS="$PGOPT" pgbench -n -M prepared -h "$DEMO_DIR" \
	-p "$PORT" -c "$CLIENTS" -j $((CLIENTS < 4 ? CLIENTS : 4)) -T "$SECONDS_RUN" -f "$SQL" postgres 2>&1)
count >"$SQL.after"
head -1 /proc/stat >"$SQL.stat.after"
wal=$(psql_leader "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0')")
c1=""
[ "$MODE" = write ] && c1=$(counters)
tps=$(echo "$out" | grep -oP 'tps = \K[0-9.]+')

/usr/bin/python3 - "$tps" "$SECONDS_RUN" "$MODE $ARG" "$SQL" "$wal" "$c0" "$c1" <<'PY'
import os, sys
tps, secs, level, base = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
wal = float(sys.argv[5])
c0 = [float(x) for x in sys.argv[6].replace('|', ' ').split()]
c1 = [float(x) for x in sys.argv[7].replace('|', ' ').split()]
dc = [b - a for a, b in zip(c0, c1)]
hz = os.sysconf('SC_CLK_TCK')
ops = tps * secs
def load(f):
    d = {}
    for line in open(f):
        parts = line.rstrip('\n').split(' ', 3)
        if len(parts) == 4:
            d[parts[0]] = (int(parts[1]), int(parts[2]), parts[3])
    return d
before, after = load(base + '.before'), load(base + '.after')
sb = [int(x) for x in open(base + '.stat.before').read().split()[1:]]
sa = [int(x) for x in open(base + '.stat.after').read().split()[1:]]
d = [a - b for a, b in zip(sa, sb)]
idle = d[3] + d[4]
busy = sum(d) - idle
us = 1e6 / hz / ops
print(f"{level}: {tps:.0f} operations/s; machine busy {busy * us:.1f} us per operation, "
      f"idle {100 * idle / sum(d):.0f}%")
if level.startswith('write'):
    print(f"  leader's WAL: {wal / ops:.0f} bytes per transaction (pgbench's included)")
    if dc[0] > 0:
        print(f"  {dc[0]:.0f} log entries: {dc[0] / max(dc[1], 1):.2f} per peer message sent; "
              f"WAL syncs per entry (as pg_stat_wal has them so far): "
              f"leader {dc[2] / dc[0]:.2f}, node2 {dc[3] / dc[0]:.2f}")
rows = []
for pid, (t, cs, cmd) in after.items():
    if pid in before and t > before[pid][0] and 'postgres' in cmd:
        rows.append(((t - before[pid][0]) * us, (cs - before[pid][1]) / ops, cmd.strip()[:60]))
for v, c, cmd in sorted(rows, reverse=True)[:9]:
    print(f"  {v:7.1f} us {c:5.2f} switches per operation  {cmd}")
PY
