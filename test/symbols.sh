#!/usr/bin/env bash
# test/symbols.sh
#	make symbols: raftable.so exports exactly what PostgreSQL looks up by
#	name (src/raftable.h, "Symbols"): the magic block, _PG_init, the
#	background workers' entry points, and every C function the install
#	and upgrade scripts name, with its pg_finfo_ record.  Anything else
#	exported could collide with another library loaded in the same
#	backend.  Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
so=${1:-raftable.so}
passed=0
failed=0
check() {	# check WHAT OK
	if [ "$2" = 0 ]; then
		passed=$((passed + 1))
		echo "ok - $1"
	else
		failed=$((failed + 1))
		echo "not ok - $1"
	fi
}

exported=$(nm -D --defined-only "$so" | awk '{print $3}' | sort -u)
# the C functions the SQL scripts name, and the workers raftable.c registers
named=$(grep -ho "'MODULE_PATHNAME', *'[a-z_0-9]*'" sql/*.sql | sed -E "s/.*'([a-z_0-9]+)'$/\1/" | sort -u)
workers=$(grep -o 'raftable_register_bgworker("[a-z_]*"' src/raftable.c | sed -E 's/.*"([a-z_]+)"/\1/')

want=$( (printf '%s\n' Pg_magic_func _PG_init $workers; for f in $named; do echo "$f"; echo "pg_finfo_$f"; done) | sort -u)
missing=$(comm -13 <(echo "$exported") <(echo "$want"))
extra=$(comm -23 <(echo "$exported") <(echo "$want"))
check "every name PostgreSQL looks up is exported ($(echo "$want" | wc -l))${missing:+; missing: $(echo $missing)}" \
	"$([ -z "$missing" ]; echo $?)"
check "nothing else is exported${extra:+; also: $(echo $extra)}" "$([ -z "$extra" ]; echo $?)"
bad=$(echo "$exported" | grep -v -E '^(Pg_magic_func|_PG_init|pg_finfo_raftable_[a-z_0-9]+|raftable_[a-z_0-9]+)$')
check "every exported name but the magic block and _PG_init starts with raftable${bad:+; not: $(echo $bad)}" \
	"$([ -z "$bad" ]; echo $?)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
