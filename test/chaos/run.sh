#!/usr/bin/env bash
# test/chaos/short.sh
#	The CI variant of make chaos: a minute of faults against strong reads,
#	which must be linearizable, then twenty seconds with the clients on
#	eventual reads, which the checker must catch (stale reads on a cut-off
#	or restarted node): a checker that finds nothing there is broken.
#	As root.  Last line: "chaos-short: PASS|FAIL".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=/usr/bin/python3
seed=${CHAOS_SEED:-$RANDOM}
ok=1
echo "chaos-short: strong reads, ${CHAOS_SECONDS:-60} s, seed $seed"
if ! $PY test/chaos/chaos.py --seconds "${CHAOS_SECONDS:-60}" --seed "$seed"; then
	ok=0
fi
echo "chaos-short: eventual reads, 20 s, seed $seed: the checker must find them not linearizable"
out=$($PY test/chaos/chaos.py --seconds 20 --seed "$seed" --read-level eventual \
	--faults isolate,heal 2>&1)
echo "$out" | grep -E '^chaos: [0-9]+ operations'
if ! echo "$out" | grep -E '^chaos: [0-9]+ operations' | grep -qE ', [1-9][0-9]* not, '; then
	echo "chaos-short: the checker did not catch eventual reads"
	ok=0
fi
rm -rf /tmp/raftable-chaos.* 2>/dev/null
[ $ok = 1 ] && echo "chaos-short: PASS" || echo "chaos-short: FAIL"
[ $ok = 1 ]
