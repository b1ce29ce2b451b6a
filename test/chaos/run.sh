#!/usr/bin/env bash
# test/chaos/run.sh
#	make chaos: randomized faults against a real cluster, every history
#	checked (chaos.py).  First a control: twenty seconds with the register's
#	reads at eventual under network isolation, which the checker must find
#	not linearizable (a checker that finds nothing there is broken); then
#	the run itself, all faults, strong reads.  As root.
#
#	    make chaos                               (90 s, 3 nodes: CI)
#	    make chaos DURATION=30m NODES=5 SEED=7   (a long run)
#
#	The seed is printed first; the same seed draws the same schedule.
#	Last line, from the run itself:
#	    chaos: <ops> operations, <faults> faults, <anomalies> anomalies
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=/usr/bin/python3
DURATION=${DURATION:-90s}
NODES=${NODES:-3}
SEED=${SEED:-$RANDOM}
echo "chaos: seed $SEED, $DURATION, $NODES nodes"
echo "chaos: control run: eventual register reads, 20 s of isolation; the checker must find anomalies"
control=$($PY test/chaos/chaos.py --seconds 20 --seed "$SEED" --read-level eventual \
	--faults isolate,isolate-leader,heal 2>&1)
echo "$control" | grep -E '^chaos: (register|[0-9]+ operations)' | sed 's/^chaos: /chaos: control: /'
caught=$(echo "$control" | sed -nE 's/^chaos: [0-9]+ operations, [0-9]+ faults, ([0-9]+) anomalies$/\1/p')
$PY test/chaos/chaos.py --seconds "$DURATION" --nodes "$NODES" --seed "$SEED"
rc=$?
if [ "${caught:-0}" -eq 0 ]; then
	echo "chaos: the control run's stale reads went unnoticed: the checker is broken"
	rc=1
fi
exit $rc
