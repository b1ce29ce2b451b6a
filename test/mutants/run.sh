#!/usr/bin/env bash
# test/mutants/run.sh
#	make mutants: each mutant breaks one mechanism on purpose, in a copy
#	of the tree, and the test that guards that mechanism must fail on it
#	("killed").  A mutant that survives is a hole in the test suite.
#
#	    bash test/mutants/run.sh            (all)
#	    bash test/mutants/run.sh --core     (those the core tests or the
#	                                         simulator catch: CI; of the
#	                                         others it checks that each
#	                                         still applies)
#	    bash test/mutants/run.sh NAME...    (some)
#
#	Core mutants run the core unit tests; server mutants install the
#	mutated extension, run one TAP file as the PostgreSQL user or a minute
#	of make chaos (seed MUTANT_CHAOS_SEED, default 1), and then install the
#	unmutated build again.  As root (like test/run-tests.sh).
#	Last line: "mutants: N killed, N survived".

set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$(pwd)
# shellcheck source=test/lib.sh
. test/lib.sh

# name @ file @ perl substitution (one line, must match) @ how it is caught
MUTANTS=(
	"readindex-requester-any-term@src/core/raft.c@s/queue_read\(r, m->ctx, m->from, m->hint_term == r->term\)/queue_read(r, m->ctx, m->from, true)/@core"
	"vote-resets-timer@src/core/raft.c@s/else if \(m->type == RAFT_MSG_VOTE && r->role == RAFT_FOLLOWER\)/else if (0)/@core"
	"figure8-commit-by-counting@src/core/quorum.c@s{if \(idx <= r->commit \|\| log_term\(r, idx, &ok\) != r->term \|\| !ok\)}{if (idx <= r->commit \|\| (log_term(r, idx, &ok), !ok))}@core"
	"vote-without-up-to-date-check@src/core/raft.c@s{if \(can_vote && up_to_date\)}{if (can_vote && (up_to_date \|\| true))}@core"
	"quorum-off-by-one-even@src/core/quorum.c@s{return raft_conf_voters\(r->conf\) / 2 \+ 1;}{return (raft_conf_voters(r->conf) + 1) / 2;}@core"
	"append-without-prev-term-match@src/core/raft.c@s{if \(!log_matches\(r, m->index, m->log_term\)\)}{if (m->index > log_last_index(r))}@core"
	"follower-commit-beyond-last-new@src/core/raft.c@s{raft_index\s+c = m->commit < last_new \? m->commit : last_new;}{raft_index c = m->commit;}@core"
	"check-quorum-off@src/core/raft.c@s{if \(r->opts.check_quorum && !quorum_active\(r\)\)}{if (0 && !quorum_active(r))}@core"
	"figure8-commit-by-counting-sim@src/core/quorum.c@s{if \(idx <= r->commit \|\| log_term\(r, idx, &ok\) != r->term \|\| !ok\)}{if (idx <= r->commit \|\| (log_term(r, idx, &ok), !ok))}@sim"
	"check-quorum-off-sim@src/core/raft.c@s{if \(r->opts.check_quorum && !quorum_active\(r\)\)}{if (0 && !quorum_active(r))}@sim"
	"read-index-before-noop-commit@src/core/read.c@s{pr->index = r->commit >= r->noop_index \? r->commit : 0;}{pr->index = r->commit;}@core"
	"vote-reply-before-persist@src/core/raft.c@s{return m->type == RAFT_MSG_APPEND \|\| m->type == RAFT_MSG_HEARTBEAT;}{return true;}@core"
	"apply-stall-not-reported@src/core/raft.c@s/p->stalled_at = m->hint_index;/p->stalled_at = 0;/@core"
	"snapshot-keeps-stale-stable@src/core/raft.c@s/if \(r->stable > meta->index\)\n\t\t\tr->stable = meta->index;/;/@core"
	"peek-skips-snapshot-conf@src/core/codec.c@s/\t\t\trc = conf_read\(r, NULL\);/\t\t\trc = RAFT_OK;/@core"
	"strong-without-read-index@src/reads.c@s/target = reads_round\(deadline_us, \"strong\"\);/target = 0;/@tap:test/tap/017_reads.pl"
	"rr-no-wait-at-begin@src/reads.c@s/reads_xact_covered = reads_prepare\(\);/reads_xact_covered = 0;/@tap:test/tap/017_reads.pl"
	"grant-ignores-request-term@src/readindex.c@s/if \(ri_shared->grant.term != 0 && hint_term == ri_shared->grant.term\)/if (ri_shared->grant.term != 0)/@tap:test/tap/017_reads.pl"
	"grant-index-once-per-term@src/readindex.c@s/\tri_shared->grant = g;/\tif (g.term != ri_shared->grant.term)\n\t\tri_shared->grant = g;/@tap:test/tap/017_reads.pl"
	"unknown-outcome-acknowledged@src/capture.c@s/if \(outcome == PROPOSAL_COMMITTED\)\n\t\treturn;\n\tif \(outcome == PROPOSAL_TIMED_OUT\)/return;\n\tif (outcome == PROPOSAL_TIMED_OUT)/@chaos"
	"leader-writes-before-applying-earlier-terms@src/capture.c@s/if \(st->applied_index >= need\)/if (true)/@chaos"
	"strong-without-read-index-chaos@src/reads.c@s/target = reads_round\(deadline_us, \"strong\"\);/target = 0;/@chaos"
	"commit-acknowledged-before-quorum@src/proposal.c@s/if \(st->commit < p->index\)\n\t\t\t\tcontinue;/if (false)\n\t\t\t\tcontinue;/@chaos"
	"apply-rows-and-index-apart@src/apply.c@s/(\t+)raftable_spi_kept\(&apply_advance_plan,/\1SPI_finish(); PopActiveSnapshot(); CommitTransactionCommand(); StartTransactionCommand(); SPI_connect(); PushActiveSnapshot(GetTransactionSnapshot());\n\1raftable_spi_kept(\&apply_advance_plan,/@tap:test/tap/020_apply_atomic.pl"
	"apply-visible-before-durable@src/apply.c@s/apply_batch_xid = raftable_worker_xact_commit\(changed\);/apply_batch_xid = raftable_worker_xact_commit(false);/@tap:test/tap/020_apply_atomic.pl"
	"snapshot-without-marks@src/snapshot.c@s{for \(int i = 0; i < PQntuples\(src->marks\); i\+\+\)}{for (int i = 0; i < 0 * PQntuples(src->marks); i++)}@tap:test/tap/019_snapshot_marks.pl"
	"core-memory-in-malloc@src/worker.c@s/\topts->allocator = &worker_core_allocator;\n//@tap:test/tap/002_cluster.pl"
	"removed-node-stays@src/worker.c@s/if \(worker_member_since == 0 \|\| st.conf_index == 0\)/if (true)/@tap:test/tap/016_node_lifecycle.pl"
	"apply-idles-with-work@src/apply.c@s/commit <= applied && node == apply_node/commit <= applied + 1 \&\& node == apply_node/@tap:test/tap/017_reads.pl"
	"rejoined-node-trusts-old-tables@src/shmem.c@s/return since == 0 \|\|/return true ||/@tap:test/tap/016_node_lifecycle.pl"
)

killed=0
survived=0
results=()

install_from() {	# install_from DIR
	(cd "$1" && make -s >/dev/null 2>&1 && rt_as_root make -s install >/dev/null 2>&1)
}

run_mutant() {
	local name=$1 file=$2 subst=$3 how=$4 dir
	dir=$(mktemp -d /tmp/raftable-mutant.XXXXXX)
	tar -C "$REPO" --exclude=./.git --exclude=./build --exclude=./tmp_check -cf - . | tar -C "$dir" -xf -
	if ! perl -0pi -e "\$n = ($subst); END { exit(\$n ? 0 : 1) }" "$dir/$file"; then
		echo "mutants: $name: the substitution does not apply to $file"
		results+=("ERROR    $name (does not apply)")
		survived=$((survived + 1))
		rm -rf "$dir"
		return
	fi
	local caught=0
	case $how in
		core)
			# a test run that never ends has caught the mutant as surely
			(cd "$dir" && timeout "${MUTANT_CORE_SECONDS:-60}" make -s core-check >"$dir/out.log" 2>&1)
			case $? in
				0) ;;
				124) echo "not ok - the core tests did not finish in ${MUTANT_CORE_SECONDS:-60} s" >>"$dir/out.log"
					caught=1 ;;
				# a failed test, or one of the core's invariants (RAFT_ASSERT)
				*) grep -qE '^not ok|Assertion .* failed' "$dir/out.log" && caught=1 || caught=2 ;;
			esac
			;;
		tap:*)
			if ! install_from "$dir"; then
				caught=2
			else
				chown -R "$RT_PG_USER" "$dir"
				(cd "$dir" && rt_as_pg make tap PROVE_TESTS="${how#tap:}" >"$dir/out.log" 2>&1) || caught=1
			fi
			;;
		sim)
			# the simulator alone, over the seeds CI runs
			(cd "$dir" && timeout 900 make -s sim SEEDS="${MUTANT_SIM_SEEDS:-20000}" >"$dir/out.log" 2>&1)
			case $? in
				0) ;;
				*) grep -q '^FAIL' "$dir/out.log" && caught=1 || caught=2 ;;
			esac
			;;
		chaos)
			# the fault suite, a minute, a fixed seed: its checkers must object
			if ! install_from "$dir"; then
				caught=2
			else
				(cd "$dir" && /usr/bin/python3 test/chaos/chaos.py --seconds "${MUTANT_CHAOS_SECONDS:-60}" \
					--seed "${MUTANT_CHAOS_SEED:-1}" >"$dir/out.log" 2>&1) || caught=1
			fi
			;;
	esac
	if [ $caught = 2 ]; then
		survived=$((survived + 1))
		results+=("ERROR    $name: the mutant does not build (see $dir/out.log)")
	elif [ $caught = 1 ]; then
		killed=$((killed + 1))
		# what caught it: the first failed test or anomaly
		why=$(grep -m1 -E '^not ok|^FAIL|ANOMALY|^chaos: .*error|Assertion .* failed' "$dir/out.log" | cut -c1-150)
		results+=("killed   $name (${how})${why:+: $why}")
		rm -rf "$dir"
	else
		survived=$((survived + 1))
		results+=("SURVIVED $name (${how}): see $dir/out.log")
	fi
}

core_only=0
if [ "${1:-}" = --core ]; then
	core_only=1
	shift
fi
want=("$@")
for m in "${MUTANTS[@]}"; do
	IFS='@' read -r name file subst how <<<"$m"
	if [ ${#want[@]} -gt 0 ] && ! printf '%s\n' "${want[@]}" | grep -qx "$name"; then
		continue
	fi
	if [ $core_only = 1 ] && [ "$how" != core ] && [ "$how" != sim ]; then
		# not run here, but a change to the code it breaks must not
		# quietly make it a no-op: its substitution must still apply
		if ! perl -0e "\$_ = do { local \$/; <STDIN> }; exit((\$n = ($subst)) ? 0 : 1)" \
			<"$REPO/$file"; then
			results+=("ERROR    $name (does not apply to $file any more)")
			survived=$((survived + 1))
		fi
		continue
	fi
	echo "mutants: $name"
	run_mutant "$name" "$file" "$subst" "$how"
done
# the server tiers must find the real extension again
if [ $core_only = 0 ]; then
	install_from "$REPO" || echo "mutants: could not reinstall the unmutated build"
fi
printf '%s\n' "${results[@]}"
echo "mutants: $killed killed, $survived survived"
[ $survived = 0 ]
