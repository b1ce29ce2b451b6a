/*
 * test_read.c
 *	  ReadIndex (dissertation §6.4): a read index is granted only after the
 *	  leader confirmed its leadership with a quorum heartbeat round started
 *	  after the request arrived; concurrent requests share one round;
 *	  followers forward requests to the leader; a new leader first commits
 *	  an entry of its own term.
 */
#include "harness.h"
#include "testlib.h"

static const raft_read_state *
find_read(h_net *net, raft_id id, uint64_t ctx)
{
	h_node	   *nd = &net->nodes[id];

	for (size_t i = 0; i < nd->n_reads; i++)
		if (nd->reads[i].ctx == ctx)
			return &nd->reads[i];
	return NULL;
}

TEST(readindex_on_leader_after_quorum_round)
{
	h_net	   *net = h_new(3, 3);
	const raft_read_state *rs;

	h_campaign(net, 1);
	CHECK_EQ(raft_read_index(h_r(net, 1), 77), 0);
	h_cycle(net, 1);
	CHECK(find_read(net, 1, 77) == NULL);	/* not before the round */
	CHECK_EQ(h_count(net, RAFT_MSG_HEARTBEAT, 1, 0), 2);
	h_settle(net);
	rs = find_read(net, 1, 77);
	CHECK(rs != NULL);
	CHECK_EQ(rs->err, 0);
	CHECK_EQ(rs->index, h_status(net, 1).commit);
	h_free(net);
}

/* a leader cut off from the quorum must not answer */
TEST(readindex_needs_a_quorum)
{
	h_net	   *net = h_new_opts(3, 3, true, false);

	h_campaign(net, 1);
	h_isolate(net, 1);
	CHECK_EQ(raft_read_index(h_r(net, 1), 5), 0);
	h_run(net, 300);
	CHECK(find_read(net, 1, 5) == NULL);
	h_heal(net);
	h_run(net, 20);
	CHECK(find_read(net, 1, 5) != NULL);
	h_free(net);
}

/* an acknowledgement of a round started before the request does not count */
TEST(readindex_old_round_does_not_confirm)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	hb;

	h_campaign(net, 1);
	h_tick(net, 1, 10);			/* periodic heartbeat round n */
	h_cycle(net, 1);
	CHECK(h_peek(net, RAFT_MSG_HEARTBEAT, 1, 2, &hb));
	h_drop_wire(net);
	CHECK_EQ(raft_read_index(h_r(net, 1), 9), 0);	/* wants round n + 1 */
	h_cycle(net, 1);
	h_drop_wire(net);			/* round n + 1 is lost */
	/* answers to round n arrive late */
	for (raft_id f = 2; f <= 3; f++)
	{
		raft_msg	resp = h_msg(RAFT_MSG_HEARTBEAT_RESP, f, 1, hb.term);

		resp.seq = hb.seq;
		raft_step(h_r(net, 1), &resp);
	}
	h_cycle(net, 1);
	CHECK(find_read(net, 1, 9) == NULL);
	h_drop_wire(net);
	h_run(net, 20);				/* the next periodic round confirms it */
	CHECK(find_read(net, 1, 9) != NULL);
	h_free(net);
}

/* concurrent requests share one heartbeat round */
TEST(readindex_requests_share_one_round)
{
	h_net	   *net = h_new(3, 3);
	uint64_t	rounds;

	h_campaign(net, 1);
	rounds = raft_get_stats(h_r(net, 1))->read_index_rounds;
	for (uint64_t i = 0; i < 100; i++)
		CHECK_EQ(raft_read_index(h_r(net, 1), 1000 + i), 0);
	h_settle(net);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->read_index_rounds, rounds + 1);
	CHECK_EQ(net->nodes[1].n_reads, 100);
	h_free(net);
}

/* a follower forwards to the leader and gets the index back */
TEST(readindex_forwarded_by_follower)
{
	h_net	   *net = h_new(3, 3);
	const raft_read_state *rs;

	h_campaign(net, 1);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "w", 1, NULL, NULL), 0);
	h_settle(net);
	CHECK_EQ(raft_read_index(h_r(net, 3), 42), 0);
	h_settle(net);
	rs = find_read(net, 3, 42);
	CHECK(rs != NULL);
	CHECK_EQ(rs->err, 0);
	CHECK_EQ(rs->index, 3);		/* includes the committed write */
	h_free(net);
}

TEST(readindex_without_leader_fails_fast)
{
	h_net	   *net = h_new(3, 3);

	CHECK_EQ(raft_read_index(h_r(net, 2), 1), RAFT_ENOLEADER);
	h_free(net);
}

/*
 * A new leader may not know the commit index yet: reads wait until its
 * no-op is committed, then get an index at least that high.
 */
TEST(readindex_waits_for_leaders_first_commit)
{
	h_net	   *net = h_new(3, 3);
	const raft_read_state *rs;

	net->drop_type[RAFT_MSG_APPEND_RESP] = true;
	h_campaign(net, 1);
	CHECK_EQ(h_leader(net), 1);
	CHECK_EQ(h_status(net, 1).commit, 1);	/* no-op (2) not committed */
	CHECK_EQ(raft_read_index(h_r(net, 1), 8), 0);
	h_run(net, 30);				/* heartbeat rounds are acknowledged */
	CHECK(find_read(net, 1, 8) == NULL);
	net->drop_type[RAFT_MSG_APPEND_RESP] = false;
	h_run(net, 30);
	rs = find_read(net, 1, 8);
	CHECK(rs != NULL);
	CHECK_EQ(rs->err, 0);
	CHECK(rs->index >= 2);
	h_free(net);
}

/* a leader that steps down fails the reads it holds */
TEST(readindex_fails_when_leadership_lost)
{
	h_net	   *net = h_new(3, 3);
	const raft_read_state *rs;

	h_campaign(net, 1);
	h_isolate(net, 1);
	CHECK_EQ(raft_read_index(h_r(net, 1), 3), 0);
	h_run(net, 250);			/* check-quorum makes it step down */
	rs = find_read(net, 1, 3);
	CHECK(rs != NULL);
	CHECK_EQ(rs->err, RAFT_ELEADERLOST);
	h_free(net);
}

/*
 * A follower's request carries its term: in the leader's term it counts as
 * the follower's acknowledgement (with the leader, a quorum of three), and
 * is answered without a round; from an older term it does not, and the
 * read waits for a heartbeat round a quorum answers.
 */
TEST(readindex_request_acknowledges_only_in_the_leaders_term)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	req;
	raft_msg	resp;
	raft_term	t;

	h_campaign(net, 1);
	t = h_status(net, 1).term;

	req = h_msg(RAFT_MSG_READ_INDEX, 2, 1, 0);
	req.ctx = 11;
	req.hint_term = t;
	CHECK_EQ(raft_step(h_r(net, 1), &req), 0);
	h_cycle(net, 1);
	CHECK(h_peek(net, RAFT_MSG_READ_INDEX_RESP, 1, 2, &resp));
	CHECK_EQ(resp.ctx, 11);
	CHECK_EQ(h_count(net, RAFT_MSG_HEARTBEAT, 1, 0), 0);
	h_drop_wire(net);

	req.ctx = 12;
	req.hint_term = t - 1;		/* sent before it heard of this term */
	CHECK_EQ(raft_step(h_r(net, 1), &req), 0);
	h_cycle(net, 1);
	CHECK(!h_peek(net, RAFT_MSG_READ_INDEX_RESP, 1, 2, &resp));
	CHECK_EQ(h_count(net, RAFT_MSG_HEARTBEAT, 1, 0), 2);
	h_drop_wire(net);			/* the round is lost: no answer */
	h_cycle(net, 1);
	CHECK(!h_peek(net, RAFT_MSG_READ_INDEX_RESP, 1, 2, &resp));
	h_free(net);
}

/*
 * raft_get_read_grant says what the leader's own rule answers at once: in
 * its term, to a voter whose request with the leader is a quorum, the
 * commit index, once its no-op committed; nothing otherwise.  The driver
 * answers such requests outside the core with it.
 */
TEST(readindex_grant_is_the_leaders_own_answer)
{
	h_net	   *net = h_new(3, 3);
	raft_read_grant g;
	raft_msg	req;
	raft_msg	resp;

	net->drop_type[RAFT_MSG_APPEND_RESP] = true;
	h_campaign(net, 1);
	raft_get_read_grant(h_r(net, 1), &g);
	CHECK_EQ(g.term, 0);		/* its no-op has not committed */
	net->drop_type[RAFT_MSG_APPEND_RESP] = false;
	h_run(net, 30);
	raft_get_read_grant(h_r(net, 1), &g);
	CHECK_EQ(g.term, h_status(net, 1).term);
	CHECK_EQ(g.index, h_status(net, 1).commit);
	CHECK_EQ(g.n_ids, 2);
	CHECK(g.ids[0] != 1 && g.ids[1] != 1 && g.ids[0] != g.ids[1]);

	/* the core answers such a request at once, with the same index */
	req = h_msg(RAFT_MSG_READ_INDEX, 2, 1, 0);
	req.ctx = 21;
	req.hint_term = g.term;
	CHECK_EQ(raft_step(h_r(net, 1), &req), 0);
	h_cycle(net, 1);
	CHECK(h_peek(net, RAFT_MSG_READ_INDEX_RESP, 1, 2, &resp));
	CHECK_EQ(resp.index, g.index);
	h_drop_wire(net);

	/* a follower grants nothing */
	raft_get_read_grant(h_r(net, 2), &g);
	CHECK_EQ(g.term, 0);
	h_free(net);

	/* two voters and a learner: the other voter only */
	net = h_new(3, 2);
	h_campaign(net, 1);
	h_run(net, 30);
	raft_get_read_grant(h_r(net, 1), &g);
	CHECK(g.term != 0);
	CHECK_EQ(g.n_ids, 1);
	CHECK_EQ(g.ids[0], 2);
	h_free(net);

	/* five voters: a follower and the leader are not a quorum */
	net = h_new(5, 5);
	h_campaign(net, 1);
	h_run(net, 30);
	CHECK_EQ(h_leader(net), 1);
	raft_get_read_grant(h_r(net, 1), &g);
	CHECK_EQ(g.term, 0);
	h_free(net);
}
