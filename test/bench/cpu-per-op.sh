#!/bin/bash
# test/bench/cpu-per-read.sh LEVEL [SECONDS]
#	Where a read's CPU goes: runs pgbench (8 clients, a point SELECT) at
#	raftable.read_consistency = LEVEL against node2 of the demo cluster
#	(bash test/demo.sh must be running), and prints the machine's busy
#	time per read (from /proc/stat) and the CPU per read of each long-lived
#	process (the workers, the peers' backends).  The clients' own backends
#	exit before the second count, so they show only in the machine total.
#	As root (it reads every process's counters).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
LEVEL=${1:?usage: cpu-per-read.sh strong|eventual|bounded [SECONDS]}
SECONDS_RUN=${2:-5}
DEMO_DIR=${DEMO_DIR:-/var/tmp/raftable-demo}
# test/demo.sh records each node's port in $DEMO_DIR/nodes
PORT=$(sed -n 's/^node2 port=\([0-9]*\).*/\1/p' "$DEMO_DIR/nodes" 2>/dev/null || true)
[ -n "$PORT" ] || { echo "cpu-per-read: no demo cluster in $DEMO_DIR (bash test/demo.sh)" >&2; exit 2; }

SQL=$(mktemp)
trap 'rm -f "$SQL" "$SQL".*' EXIT
printf '%s\n' '\set id random(1, 3)' 'SELECT * FROM accounts WHERE id = :id;' >"$SQL"
chmod 644 "$SQL"

# pid, CPU ticks (user + system), command line (with the demo node its
# postmaster serves, if any), of every process
count() {
	local p cmd t ppid node
	for p in /proc/[0-9]*; do
		{
			cmd=$(tr '\0' ' ' <"$p/cmdline") &&
			read -r _ _ _ ppid _ <"$p/stat" &&
			t=$(awk '{print $14 + $15}' "$p/stat")
		} 2>/dev/null || continue
		[ -n "$cmd" ] || continue
		node=$({ tr '\0' ' ' <"/proc/$ppid/cmdline"; } 2>/dev/null | grep -o 'raftable-demo/node[0-9]*' | sed 's|.*/||' || true)
		echo "${p#/proc/} $t ${node:+$node: }$cmd"
	done
}
count >"$SQL.before"
head -1 /proc/stat >"$SQL.stat.before"
out=$(runuser -u postgres -- env PGOPTIONS="-c raftable.read_consistency=$LEVEL" \
	pgbench -n -M prepared -h "$DEMO_DIR" -p "$PORT" -c 8 -j 4 -T "$SECONDS_RUN" -f "$SQL" postgres 2>&1)
count >"$SQL.after"
head -1 /proc/stat >"$SQL.stat.after"
tps=$(echo "$out" | grep -oP 'tps = \K[0-9.]+')

/usr/bin/python3 - "$tps" "$SECONDS_RUN" "$LEVEL" "$SQL" <<'PY'
import os, sys
tps, secs, level, base = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
hz = os.sysconf('SC_CLK_TCK')
reads = tps * secs
def load(f):
    d = {}
    for line in open(f):
        parts = line.rstrip('\n').split(' ', 2)
        if len(parts) == 3:
            d[parts[0]] = (int(parts[1]), parts[2])
    return d
before, after = load(base + '.before'), load(base + '.after')
sb = [int(x) for x in open(base + '.stat.before').read().split()[1:]]
sa = [int(x) for x in open(base + '.stat.after').read().split()[1:]]
d = [a - b for a, b in zip(sa, sb)]
idle = d[3] + d[4]
busy = sum(d) - idle
us = 1e6 / hz / reads
print(f"{level}: {tps:.0f} reads/s; machine busy {busy * us:.1f} us per read, idle {100 * idle / sum(d):.0f}%")
rows = []
for pid, (t, cmd) in after.items():
    if pid in before and t > before[pid][0] and 'postgres' in cmd:
        rows.append(((t - before[pid][0]) * us, cmd.strip()[:70]))
for v, cmd in sorted(rows, reverse=True)[:6]:
    print(f"  {v:7.1f} us per read  {cmd}")
PY
