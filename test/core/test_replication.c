/*
 * test_replication.c
 *	  Log replication: Figure 2's AppendEntries rules, §5.3 (consistency
 *	  check, conflict resolution, fast back-off), §5.4.2 (commit only
 *	  current-term entries by counting), persistence before sending, and
 *	  flow control.
 */
#include "harness.h"
#include "testlib.h"

#include <string.h>

static void
propose(h_net *net, raft_id id, int n)
{
	for (int i = 0; i < n; i++)
		raft_propose(h_r(net, id), RAFT_ENTRY_NORMAL, "abc", 3, NULL, NULL);
}

/* §5.3: an entry on a majority commits and is applied everywhere */
TEST(sec53_entries_replicate_and_commit)
{
	h_net	   *net = h_new(3, 3);
	raft_index	idx;

	h_campaign(net, 1);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "hello", 5, &idx, NULL), 0);
	CHECK_EQ(idx, 3);
	h_settle(net);
	h_run(net, 20);				/* heartbeats carry the commit index */
	for (int i = 1; i <= 3; i++)
	{
		CHECK_EQ(h_status(net, i).commit, 3);
		CHECK_EQ(net->nodes[i].applied, 3);
		CHECK_EQ(net->nodes[i].n_log, 3);
		CHECK(memcmp(net->nodes[i].log[2].data, "hello", 5) == 0);
	}
	h_free(net);
}

/* a follower never proposes */
TEST(propose_on_follower_fails)
{
	h_net	   *net = h_new(3, 3);

	CHECK_EQ(raft_propose(h_r(net, 2), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL),
			 RAFT_ENOLEADER);
	h_campaign(net, 1);
	CHECK_EQ(raft_propose(h_r(net, 2), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL),
			 RAFT_ENOTLEADER);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_CONF, "x", 1, NULL, NULL),
			 RAFT_EINVAL);
	h_free(net);
}

/* Figure 2, AppendEntries 1: reply false (with our term) if term < currentTerm */
TEST(fig2_append_from_stale_leader_is_answered_with_newer_term)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	m,
				resp;

	h_campaign(net, 1);
	m = h_msg(RAFT_MSG_APPEND, 3, 2, 1);
	m.index = 1;
	m.log_term = 1;
	raft_step(h_r(net, 2), &m);
	h_cycle(net, 2);
	CHECK(h_peek(net, RAFT_MSG_APPEND_RESP, 2, 3, &resp));
	CHECK_EQ(resp.term, 2);
	CHECK_EQ(h_status(net, 2).lead, 1);
	h_free(net);
}

/* Figure 2, AppendEntries 2: reject when prevLogIndex/Term do not match */
TEST(fig2_append_rejected_on_log_mismatch_with_hint)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	m,
				resp;

	h_campaign(net, 1);
	h_drop_wire(net);
	m = h_msg(RAFT_MSG_APPEND, 1, 2, 2);
	m.index = 10;				/* beyond our log */
	m.log_term = 2;
	raft_step(h_r(net, 2), &m);
	h_cycle(net, 2);
	CHECK(h_peek(net, RAFT_MSG_APPEND_RESP, 2, 1, &resp));
	CHECK(resp.reject);
	CHECK_EQ(resp.index, 10);
	CHECK_EQ(resp.hint_index, 3);	/* our last index + 1 */
	CHECK_EQ(resp.hint_term, 0);
	h_free(net);
}

/*
 * Figure 2, AppendEntries 3 and 4: a conflicting suffix is deleted and the
 * leader's entries appended; the truncation is persisted.
 */
TEST(fig2_conflicting_entries_are_replaced)
{
	h_net	   *net = h_new(3, 3);
	raft_entry	ents[2];
	raft_msg	m;

	h_campaign(net, 1);			/* log: 1/t1 2/t2 everywhere */
	h_isolate(net, 1);
	propose(net, 1, 3);			/* 3..5 at term 2 only on node 1 */
	h_settle(net);
	CHECK_EQ(net->nodes[1].n_log, 5);

	/* a leader of term 7 says index 3 has term 7 */
	memset(ents, 0, sizeof(ents));
	ents[0].term = 7;
	ents[0].index = 3;
	ents[0].type = RAFT_ENTRY_NORMAL;
	ents[0].data = (uint8_t *) "new";
	ents[0].len = 3;
	m = h_msg(RAFT_MSG_APPEND, 2, 1, 7);
	m.index = 2;
	m.log_term = 2;
	m.n_entries = 1;
	m.entries = ents;
	raft_step(h_r(net, 1), &m);
	h_cycle(net, 1);
	CHECK_EQ(h_status(net, 1).last_index, 3);
	CHECK_EQ(net->nodes[1].n_log, 3);
	CHECK_EQ(net->nodes[1].log[2].term, 7);
	CHECK(memcmp(net->nodes[1].log[2].data, "new", 3) == 0);
	h_free(net);
}

/* Figure 2, AppendEntries 5: commitIndex = min(leaderCommit, last new) */
TEST(fig2_follower_commit_bounded_by_last_new_entry)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	m;

	m = h_msg(RAFT_MSG_APPEND, 1, 2, 4);
	m.index = 1;
	m.log_term = 1;
	m.commit = 50;
	raft_step(h_r(net, 2), &m);
	CHECK_EQ(h_status(net, 2).commit, 1);
	h_free(net);
}

/* Leader Append-Only: a leader never overwrites its own log */
TEST(fig3_leader_append_only)
{
	h_net	   *net = h_new(3, 3);
	raft_entry	e;
	raft_msg	m;

	h_campaign(net, 1);
	propose(net, 1, 1);
	h_settle(net);
	memset(&e, 0, sizeof(e));
	e.term = 2;					/* same term, pretending to be another leader */
	e.index = 3;
	e.type = RAFT_ENTRY_NORMAL;
	m = h_msg(RAFT_MSG_APPEND, 2, 1, 2);
	m.index = 2;
	m.log_term = 2;
	m.n_entries = 1;
	m.entries = &e;
	raft_step(h_r(net, 1), &m);
	CHECK_EQ(raft_get_entry(h_r(net, 1), 3)->len, 3);
	CHECK_EQ(h_status(net, 1).role, RAFT_LEADER);
	h_free(net);
}

/*
 * The Figure 8 rule, checked directly: with the no-op of the current term
 * not yet acknowledged, an old-term entry acknowledged by a majority stays
 * uncommitted.
 */
TEST(sec542_commit_waits_for_current_term_entry)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	m;
	raft_index	old;

	h_campaign(net, 1);			/* term 2 */
	h_isolate(net, 2);
	h_isolate(net, 3);
	raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "old", 3, &old, NULL);
	h_settle(net);				/* index 3, term 2, only on node 1 */
	h_heal(net);
	h_isolate(net, 3);
	net->drop_type[RAFT_MSG_APPEND] = true;
	net->drop_type[RAFT_MSG_HEARTBEAT] = true;
	h_campaign(net, 2);			/* term 3: 1 refuses (its log is newer) */
	CHECK_EQ(h_status(net, 1).term, 3);
	CHECK_EQ(h_status(net, 1).role, RAFT_FOLLOWER);
	h_campaign(net, 1);			/* term 4 with 2's vote */
	CHECK_EQ(h_leader(net), 1);
	CHECK_EQ(h_status(net, 1).term, 4);
	CHECK_EQ(h_status(net, 1).commit, 2);
	/* node 2 acknowledges index 3 (term 2): a majority holds it */
	m = h_msg(RAFT_MSG_APPEND_RESP, 2, 1, 4);
	m.index = old;
	raft_step(h_r(net, 1), &m);
	h_settle(net);
	CHECK_EQ(h_status(net, 1).commit, 2);	/* not committed by counting */
	m.index = old + 1;			/* and now the no-op of term 4 too */
	raft_step(h_r(net, 1), &m);
	h_settle(net);
	CHECK_EQ(h_status(net, 1).commit, old + 1);
	h_free(net);
}

/* persist before send: an ack leaves only in the Ready that persists it */
TEST(persist_before_send_ack_travels_with_entries)
{
	h_net	   *net = h_new(3, 3);
	raft_ready	rd;
	raft_entry	e;
	raft_msg	m;
	bool		acked = false;

	memset(&e, 0, sizeof(e));
	e.term = 2;
	e.index = 2;
	e.type = RAFT_ENTRY_NOOP;
	m = h_msg(RAFT_MSG_APPEND, 1, 2, 2);
	m.index = 1;
	m.log_term = 1;
	m.n_entries = 1;
	m.entries = &e;
	raft_step(h_r(net, 2), &m);
	CHECK_EQ(raft_get_ready(h_r(net, 2), &rd), 0);
	for (size_t i = 0; i < rd.n_msgs; i++)
		if (rd.msgs[i].type == RAFT_MSG_APPEND_RESP && !rd.msgs[i].reject)
			acked = rd.msgs[i].index == 2;
	CHECK(acked);
	CHECK_EQ(rd.n_entries, 1);
	CHECK_EQ(rd.entries[0].index, 2);
	CHECK(rd.hs_changed);
	CHECK_EQ(rd.hs.term, 2);
	raft_advance(h_r(net, 2), &rd);
	CHECK_EQ(h_status(net, 2).stable_index, 2);
	h_free(net);
}

/* §5.3 optimisation: back-off skips a whole conflicting term at once */
TEST(sec53_fast_backoff_skips_conflicting_term)
{
	h_net	   *net = h_new(3, 3);
	uint64_t	appends;

	h_campaign(net, 1);
	h_isolate(net, 1);
	propose(net, 1, 30);		/* 30 entries of term 2 nobody else gets */
	h_settle(net);
	h_heal(net);
	h_isolate(net, 1);
	h_run(net, 400);			/* 2 or 3 becomes leader, term > 2 */
	CHECK(h_leader(net) == 2 || h_leader(net) == 3);
	propose(net, h_leader(net), 3);
	h_settle(net);
	h_heal(net);
	appends = net->sent_by_type[RAFT_MSG_APPEND];
	h_run(net, 200);
	/* node 1 converged, with a handful of appends rather than ~30 */
	CHECK_EQ(h_status(net, 1).last_index, h_status(net, h_leader(net)).last_index);
	CHECK_EQ(h_status(net, 1).commit, h_status(net, h_leader(net)).commit);
	CHECK(net->sent_by_type[RAFT_MSG_APPEND] - appends < 30);
	h_free(net);
}

/* flow control: at most max_inflight unacknowledged appends per follower */
TEST(flow_control_bounds_inflight_appends)
{
	h_net	   *net = h_new(3, 3);
	raft_progress pr;

	h_campaign(net, 1);
	net->cut[2][1] = true;		/* 2 receives but its acks are lost */
	for (int i = 0; i < 20; i++)
	{
		propose(net, 1, 1);
		h_settle(net);			/* one append per proposal cycle */
	}
	CHECK_EQ(raft_get_progress(h_r(net, 1), 2, &pr), 0);
	CHECK_EQ(pr.state, RAFT_PR_REPLICATE);
	CHECK_EQ(pr.inflight, 8);	/* max_inflight in the harness */
	CHECK_EQ(h_status(net, 1).commit, 22);	/* node 3 acks: still commits */
	h_free(net);
}

/* flow control: entries per message are capped by bytes, at least one */
TEST(flow_control_caps_message_bytes)
{
	h_net	   *net = h_new(3, 3);
	char		big[3000];
	raft_msg	m;

	memset(big, 'x', sizeof(big));
	h_campaign(net, 1);
	h_isolate(net, 2);
	for (int i = 0; i < 6; i++)
		raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, big, sizeof(big), NULL, NULL);
	h_settle(net);
	h_drop_wire(net);
	h_heal(net);
	h_tick(net, 1, 10);			/* heartbeat; 2's answer makes 1 send */
	h_settle(net);
	CHECK_EQ(h_status(net, 2).last_index, 8);
	/* 4096-byte cap with 3000-byte entries: one entry per append */
	CHECK(net->sent_by_type[RAFT_MSG_APPEND] >= 6);
	(void) m;
	h_free(net);
}

/* batching: proposals of one cycle share one append per follower */
TEST(group_commit_one_append_per_cycle)
{
	h_net	   *net = h_new(3, 3);
	raft_ready	rd;
	size_t		appends = 0;

	h_campaign(net, 1);
	propose(net, 1, 50);
	CHECK_EQ(raft_get_ready(h_r(net, 1), &rd), 0);
	for (size_t i = 0; i < rd.n_msgs; i++)
		if (rd.msgs[i].type == RAFT_MSG_APPEND)
		{
			appends++;
			CHECK_EQ(rd.msgs[i].n_entries, 50);
		}
	CHECK_EQ(appends, 2);
	CHECK_EQ(rd.n_entries, 50);
	raft_advance(h_r(net, 1), &rd);
	h_free(net);
}

/* a crash loses what was not persisted, and nothing that was */
TEST(restart_restores_log_and_term)
{
	h_net	   *net = h_new(3, 3);
	raft_status before,
				after;

	h_campaign(net, 1);
	propose(net, 1, 4);
	h_settle(net);
	h_run(net, 20);
	before = h_status(net, 2);
	h_crash(net, 2);
	h_restart(net, 2);
	after = h_status(net, 2);
	CHECK_EQ(after.term, before.term);
	CHECK_EQ(after.last_index, before.last_index);
	CHECK_EQ(after.commit, before.commit);
	CHECK_EQ(after.applied, before.applied);
	CHECK_EQ(after.role, RAFT_FOLLOWER);
	h_run(net, 20);
	CHECK_EQ(h_status(net, 2).lead, 1);
	h_free(net);
}

/*
 * The driver's applied index reaches the leader (raft_set_applied), once
 * per change, and again for a new leader: what write_ack = all waits on.
 */
TEST(applied_index_is_reported_to_the_leader)
{
	h_net	   *net = h_new(3, 3);
	raft_progress pr;

	h_campaign(net, 1);
	propose(net, 1, 2);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 0);	/* nothing reported yet */

	raft_set_applied(h_r(net, 2), 3);
	CHECK_EQ(h_count(net, RAFT_MSG_APPLIED, 2, 1), 0);
	h_cycle(net, 2);
	CHECK_EQ(h_count(net, RAFT_MSG_APPLIED, 2, 1), 1);
	raft_set_applied(h_r(net, 2), 3);	/* unchanged: nothing more sent */
	h_cycle(net, 2);
	CHECK_EQ(h_count(net, RAFT_MSG_APPLIED, 2, 1), 1);
	h_settle(net);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 3);
	raft_set_applied(h_r(net, 1), 4);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 1, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 4);	/* the leader's own, as set */

	/* a new leader hears it again, though the index did not change */
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), RAFT_OK);
	h_settle(net);
	CHECK_EQ(h_leader(net), 3);
	raft_set_applied(h_r(net, 2), 3);
	h_settle(net);
	CHECK_EQ(raft_get_progress(h_r(net, 3), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 3);
	h_free(net);
}

/*
 * A member whose apply is stuck says so with its applied index
 * (raft_set_apply_stall): the leader shows which entry and the driver's
 * code for why, until the member reports it is past it.
 */
TEST(apply_stall_is_reported_to_the_leader)
{
	h_net	   *net = h_new(3, 3);
	raft_progress pr;

	h_campaign(net, 1);
	propose(net, 1, 3);
	h_settle(net);
	raft_set_applied(h_r(net, 2), 2);
	raft_set_apply_stall(h_r(net, 2), 3, 0x1234);
	h_settle(net);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 2);
	CHECK_EQ(pr.stalled_at, 3);
	CHECK_EQ(pr.stall_code, 0x1234);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 3, &pr), RAFT_OK);
	CHECK_EQ(pr.stalled_at, 0);	/* only the stuck one */

	/* the same stall again sends nothing; a new leader hears it again */
	raft_set_apply_stall(h_r(net, 2), 3, 0x1234);
	h_cycle(net, 2);
	CHECK_EQ(h_count(net, RAFT_MSG_APPLIED, 2, 1), 0);
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), RAFT_OK);
	h_settle(net);
	CHECK_EQ(h_leader(net), 3);
	raft_set_applied(h_r(net, 2), 2);
	h_settle(net);
	CHECK_EQ(raft_get_progress(h_r(net, 3), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.stalled_at, 3);

	/* past it: the leader shows it is no longer stuck */
	raft_set_apply_stall(h_r(net, 2), 0, 0x1234);
	raft_set_applied(h_r(net, 2), 4);
	h_settle(net);
	CHECK_EQ(raft_get_progress(h_r(net, 3), 2, &pr), RAFT_OK);
	CHECK_EQ(pr.applied, 4);
	CHECK_EQ(pr.stalled_at, 0);
	CHECK_EQ(pr.stall_code, 0);
	h_free(net);
}
