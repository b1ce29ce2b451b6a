/*
 * test_trace.c
 *	  Interaction traces: the exact messages a scenario exchanges, in
 *	  delivery order, compared with the expected trace.  They document the
 *	  protocol as much as they test it: a change in the message flow shows
 *	  up here as a readable diff.
 */
#include "harness.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>

static void
check_trace(h_net *net, const char *expected, const char *file, int line)
{
	if (strcmp(net->trace, expected) != 0)
		testlib_fail(file, line, "trace differs\n--- expected\n%s--- got\n%s",
					 expected, net->trace);
}

#define CHECK_TRACE(net, expected) do { \
	check_trace(net, expected, __FILE__, __LINE__); \
	if (testlib_failed_now) return; \
	net->trace_len = 0; net->trace[0] = '\0'; \
} while (0)

/*
 * Pre-vote, vote, no-op (§5.2, dissertation §9.6): node 1 times out, asks
 * for pre-votes at term 2 without changing its term, then runs for term 2,
 * and as leader replicates its no-op; the heartbeat carries the commit.
 */
TEST(trace_election_with_prevote)
{
	h_net	   *net = h_new(3, 3);

	net->tracing = true;
	h_campaign(net, 1);
	CHECK_TRACE(net,
				"1->2 PREVOTE t2 last=1/t1\n"
				"1->3 PREVOTE t2 last=1/t1\n"
				"2->1 PREVOTE_RESP t2 grant\n"
				"3->1 PREVOTE_RESP t2 grant\n"
				"1->2 VOTE t2 last=1/t1\n"
				"1->3 VOTE t2 last=1/t1\n"
				"2->1 VOTE_RESP t2 grant\n"
				"3->1 VOTE_RESP t2 grant\n"
				"1->2 APP t2 prev=1/t1 commit=1 ents=1\n"
				"1->3 APP t2 prev=1/t1 commit=1 ents=1\n"
				"2->1 APP_RESP t2 match=2\n"
				"3->1 APP_RESP t2 match=2\n"
				"1->2 APP t2 prev=2/t2 commit=2 ents=0\n"
				"1->3 APP t2 prev=2/t2 commit=2 ents=0\n"
				"2->1 APP_RESP t2 match=2\n"
				"3->1 APP_RESP t2 match=2\n");
	h_free(net);
}

/*
 * ReadIndex from a follower (dissertation §6.4): the request is forwarded,
 * the leader runs one heartbeat round, and answers once a quorum echoed it.
 */
TEST(trace_follower_read_index)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	net->tracing = true;
	raft_read_index(h_r(net, 2), 7);
	h_settle(net);
	/* leader and asking follower are a quorum of three: no round */
	CHECK_TRACE(net,
				"2->1 READ t0 ctx=7\n"
				"1->2 READ_RESP t0 ctx=7 idx=2\n");
	h_free(net);
}

/* of five voters, the leader and the asking follower are not a quorum */
TEST(trace_follower_read_index_five)
{
	h_net	   *net = h_new(5, 5);

	h_campaign(net, 1);
	net->tracing = true;
	raft_read_index(h_r(net, 2), 7);
	h_settle(net);
	CHECK_TRACE(net,
				"2->1 READ t0 ctx=7\n"
				"1->2 HB t2 commit=2 seq=1\n"
				"1->3 HB t2 commit=2 seq=1\n"
				"1->4 HB t2 commit=2 seq=1\n"
				"1->5 HB t2 commit=2 seq=1\n"
				"2->1 HB_RESP t2 seq=1\n"
				"3->1 HB_RESP t2 seq=1\n"
				"4->1 HB_RESP t2 seq=1\n"
				"5->1 HB_RESP t2 seq=1\n"
				"1->2 READ_RESP t0 ctx=7 idx=2\n");
	h_free(net);
}

/*
 * Fast back-off (§5.3): node 1 holds a divergent suffix 3..6 of term 2; the
 * leader (node 3, term 4) holds 3..8 of term 3 and its no-op at 9.  Node 1
 * first says its log ends at 6, then names the conflicting term's first
 * index, and the leader jumps there: three round trips, not seven.
 */
TEST(trace_conflict_backoff)
{
	h_net	   *net = h_new_opts(3, 3, false, false);

	h_campaign(net, 1);			/* term 2 */
	h_isolate(net, 1);
	for (int i = 0; i < 4; i++)
		raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL);
	h_settle(net);				/* 3..6 of term 2, node 1 only */
	h_heal(net);
	h_isolate(net, 1);
	h_campaign(net, 2);			/* term 3, no-op at 3 */
	for (int i = 0; i < 5; i++)
		raft_propose(h_r(net, 2), RAFT_ENTRY_NORMAL, "y", 1, NULL, NULL);
	h_settle(net);				/* 4..8 of term 3 on nodes 2 and 3 */
	h_campaign(net, 3);			/* term 4, no-op at 9 */
	CHECK_EQ(h_leader(net), 3);
	h_drop_wire(net);
	h_heal(net);
	net->tracing = true;
	h_tick(net, 3, 10);			/* a heartbeat un-pauses the probe of 1 */
	h_settle(net);
	CHECK_TRACE(net,
				"3->1 HB t4 commit=0 seq=1\n"
				"3->2 HB t4 commit=9 seq=1\n"
				"1->3 HB_RESP t4 seq=1\n"
				"2->3 HB_RESP t4 seq=1\n"
				"3->1 APP t4 prev=8/t3 commit=9 ents=1\n"
				"1->3 APP_RESP t4 reject=8 hint=7/t0\n"
				"3->1 APP t4 prev=6/t3 commit=9 ents=3\n"
				"1->3 APP_RESP t4 reject=6 hint=3/t2\n"
				"3->1 APP t4 prev=2/t2 commit=9 ents=7\n"
				"1->3 APP_RESP t4 match=9\n");
	CHECK_EQ(h_status(net, 1).last_index, 9);
	CHECK_EQ(h_status(net, 1).commit, 9);
	CHECK_EQ(raft_get_entry(h_r(net, 1), 3)->term, 3);
	h_free(net);
}

/*
 * Leadership transfer (dissertation §3.10): the target is up to date, so
 * the leader sends TimeoutNow at once; the target campaigns without
 * pre-vote, and its vote requests carry the transfer flag, which lets the
 * voters (who still hear from the old leader) answer despite their lease.
 */
TEST(trace_leadership_transfer)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	net->tracing = true;
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), 0);
	h_settle(net);
	CHECK_TRACE(net,
				"1->3 TIMEOUT_NOW t2\n"
				"3->1 VOTE t3 last=2/t2 transfer\n"
				"3->2 VOTE t3 last=2/t2 transfer\n"
				"1->3 VOTE_RESP t3 grant\n"
				"2->3 VOTE_RESP t3 grant\n"
				"3->1 APP t3 prev=2/t2 commit=2 ents=1\n"
				"3->2 APP t3 prev=2/t2 commit=2 ents=1\n"
				"1->3 APP_RESP t3 match=3\n"
				"2->3 APP_RESP t3 match=3\n"
				"3->1 APP t3 prev=3/t3 commit=3 ents=0\n"
				"3->2 APP t3 prev=3/t3 commit=3 ents=0\n"
				"1->3 APP_RESP t3 match=3\n"
				"2->3 APP_RESP t3 match=3\n");
	h_free(net);
}
