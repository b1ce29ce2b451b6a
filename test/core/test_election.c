/*
 * test_election.c
 *	  Leader election: Figure 2's RequestVote rules, §5.2, §5.4.1, and the
 *	  dissertation's pre-vote (§9.6), check-quorum and disruption
 *	  prevention (§4.2.3), and leadership transfer (§3.10).
 */
#include "harness.h"
#include "testlib.h"

/* §5.2: a lone voter elects itself and appends a no-op (§8) */
TEST(sec52_single_voter_becomes_leader)
{
	h_net	   *net = h_new(1, 1);
	raft_status st;
	const raft_entry *e;

	h_campaign(net, 1);
	st = h_status(net, 1);
	CHECK_EQ(st.role, RAFT_LEADER);
	CHECK_EQ(st.term, 2);
	e = raft_get_entry(h_r(net, 1), 2);
	CHECK(e != NULL);
	CHECK_EQ(e->type, RAFT_ENTRY_NOOP);
	CHECK_EQ(e->term, 2);
	CHECK_EQ(st.commit, 2);
	h_free(net);
}

/* §5.2: one election, one leader, everyone else follows it */
TEST(sec52_three_nodes_elect_one_leader)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 2);
	CHECK_EQ(h_leader(net), 2);
	for (int i = 1; i <= 3; i++)
	{
		raft_status st = h_status(net, i);

		CHECK_EQ(st.lead, 2);
		CHECK_EQ(st.term, 2);
		CHECK_EQ(st.commit, 2);
	}
	h_free(net);
}

/* Figure 2, RequestVote 1: reply false if term < currentTerm */
TEST(fig2_vote_rejected_for_stale_term)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	m,
				resp;

	h_campaign(net, 1);
	h_campaign(net, 1 + 1);		/* term 3 now, led by 2 */
	m = h_msg(RAFT_MSG_VOTE, 3, 1, 2);
	m.index = 100;
	m.log_term = 2;
	raft_step(h_r(net, 1), &m);
	h_cycle(net, 1);
	/* refused, with our term, so that the candidate catches up */
	CHECK(h_peek(net, RAFT_MSG_VOTE_RESP, 1, 3, &resp));
	CHECK(resp.reject);
	CHECK_EQ(resp.term, 3);
	CHECK_EQ(h_status(net, 1).vote, 2);
	h_free(net);
}

/* Figure 2, RequestVote 2: at most one vote per term, and it is durable */
TEST(fig2_one_vote_per_term_survives_crash)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	m,
				resp;

	m = h_msg(RAFT_MSG_VOTE, 2, 1, 5);
	m.index = 1;
	m.log_term = 1;
	raft_step(h_r(net, 1), &m);
	h_cycle(net, 1);
	CHECK(h_peek(net, RAFT_MSG_VOTE_RESP, 1, 2, &resp));
	CHECK(!resp.reject);
	CHECK_EQ(net->nodes[1].hs.vote, 2);	/* persisted with the answer */
	CHECK_EQ(net->nodes[1].hs.term, 5);
	h_drop_wire(net);

	h_crash(net, 1);
	h_restart(net, 1);
	m = h_msg(RAFT_MSG_VOTE, 3, 1, 5);
	m.index = 1;
	m.log_term = 1;
	raft_step(h_r(net, 1), &m);
	h_cycle(net, 1);
	CHECK(h_peek(net, RAFT_MSG_VOTE_RESP, 1, 3, &resp));
	CHECK(resp.reject);
	h_free(net);
}

/* §5.4.1: no vote for a candidate whose log is less up-to-date */
TEST(sec541_vote_needs_up_to_date_log)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	m,
				resp;

	h_campaign(net, 1);			/* everyone has entries 1 (term 1), 2 (term 2) */
	m = h_msg(RAFT_MSG_VOTE, 3, 2, 9);
	m.index = 5;
	m.log_term = 1;				/* longer, but older last term */
	raft_step(h_r(net, 2), &m);
	h_cycle(net, 2);
	CHECK(h_peek(net, RAFT_MSG_VOTE_RESP, 2, 3, &resp));
	CHECK(resp.reject);
	CHECK_EQ(h_status(net, 2).term, 9);	/* the term is still adopted */
	h_drop_wire(net);

	m = h_msg(RAFT_MSG_VOTE, 3, 2, 9);
	m.index = 1;
	m.log_term = 3;				/* shorter, but newer last term */
	raft_step(h_r(net, 2), &m);
	h_cycle(net, 2);
	CHECK(h_peek(net, RAFT_MSG_VOTE_RESP, 2, 3, &resp));
	CHECK(!resp.reject);
	h_free(net);
}

/* §9.6: pre-vote: an isolated node does not inflate its term */
TEST(prevote_isolated_node_keeps_term)
{
	h_net	   *net = h_new(3, 3);
	raft_term	before;

	h_campaign(net, 1);
	h_isolate(net, 3);
	before = h_status(net, 3).term;
	for (int i = 0; i < 10; i++)
		h_campaign(net, 3);
	CHECK_EQ(h_status(net, 3).term, before);
	CHECK(raft_get_stats(h_r(net, 3))->pre_elections >= 10);
	CHECK_EQ(raft_get_stats(h_r(net, 3))->elections, 0);
	/* back in the cluster it follows the leader without an election */
	h_heal(net);
	h_run(net, 50);
	CHECK_EQ(h_leader(net), 1);
	CHECK_EQ(h_status(net, 1).term, before);
	CHECK_EQ(h_status(net, 3).lead, 1);
	h_free(net);
}

/* without pre-vote the same isolated node does disrupt: the contrast */
TEST(no_prevote_isolated_node_inflates_term)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_term	before;

	h_campaign(net, 1);
	h_isolate(net, 3);
	before = h_status(net, 3).term;
	for (int i = 0; i < 3; i++)
		h_campaign(net, 3);
	CHECK_EQ(h_status(net, 3).term, before + 3);
	h_free(net);
}

/*
 * check-quorum: a leader that hears from no quorum for an election timeout
 * steps down, and no later than that plus a heartbeat interval
 */
TEST(check_quorum_leader_steps_down_within_election_timeout)
{
	h_net	   *net = h_new(3, 3);
	uint64_t	waited = 0;

	h_campaign(net, 1);
	h_run(net, 50);				/* followers answer heartbeats */
	h_isolate(net, 1);
	while (h_status(net, 1).role == RAFT_LEADER && waited < 1000)
	{
		h_tick(net, 1, 1);
		h_settle(net);
		waited++;
	}
	CHECK_EQ(h_status(net, 1).role, RAFT_FOLLOWER);
	CHECK_EQ(h_status(net, 1).lead, RAFT_NONE);
	/* election timeout 100 ms, heartbeat 10 ms in the harness */
	CHECK(waited >= 100 - 10);
	CHECK(waited <= 100 + 10);
	h_free(net);
}

/* §4.2.3: a follower that hears from its leader ignores candidates */
TEST(lease_follower_ignores_vote_while_leader_alive)
{
	h_net	   *net = h_new(3, 3);
	raft_msg	m;

	h_campaign(net, 1);
	h_run(net, 30);
	m = h_msg(RAFT_MSG_VOTE, 3, 2, 50);
	m.index = 100;
	m.log_term = 40;
	raft_step(h_r(net, 2), &m);
	h_cycle(net, 2);
	CHECK(!h_peek(net, RAFT_MSG_VOTE_RESP, 2, 3, &m));
	CHECK_EQ(h_status(net, 2).term, 2);
	CHECK_EQ(h_status(net, 2).lead, 1);
	h_free(net);
}

/* after a leader dies the others elect one of themselves */
TEST(sec52_new_leader_after_leader_crash)
{
	h_net	   *net = h_new(5, 5);
	raft_id		lead;

	h_campaign(net, 1);
	h_crash(net, 1);
	h_run(net, 600);
	lead = h_leader(net);
	CHECK(lead != 0 && lead != 1);
	CHECK(h_status(net, lead).term > 2);
	h_free(net);
}

/* §3.10: leadership transfer with TimeoutNow */
TEST(transfer_leadership_to_named_voter)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), 0);
	h_settle(net);
	CHECK_EQ(h_leader(net), 3);
	CHECK_EQ(h_status(net, 1).lead, 3);
	CHECK_EQ(h_status(net, 3).term, 3);
	h_free(net);
}

/* a transfer to a lagging voter first catches it up */
TEST(transfer_leadership_waits_for_catch_up)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	h_isolate(net, 3);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL), 0);
	h_settle(net);
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), 0);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "y", 1, NULL, NULL),
			 RAFT_ETRANSFER);
	h_settle(net);
	CHECK_EQ(h_leader(net), 1);
	h_heal(net);
	h_run(net, 30);
	CHECK_EQ(h_leader(net), 3);
	CHECK_EQ(h_status(net, 3).last_index, 8);	/* 5 entries + 2 no-ops + conf */
	h_free(net);
}

/* a transfer that cannot finish is abandoned after an election timeout */
TEST(transfer_leadership_times_out)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	h_isolate(net, 3);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL), 0);
	h_settle(net);
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 3), 0);
	CHECK_EQ(h_status(net, 1).transferee, 3);
	h_run(net, 110);
	CHECK_EQ(h_status(net, 1).transferee, 0);
	CHECK_EQ(raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "y", 1, NULL, NULL), 0);
	h_free(net);
}

TEST(transfer_rejects_learner_and_unknown)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	CHECK_EQ(raft_transfer_leader(h_r(net, 1), 7), RAFT_EINVAL);
	CHECK_EQ(raft_transfer_leader(h_r(net, 2), 3), RAFT_ENOTLEADER);
	h_free(net);
}

/*
 * A follower told that its leader is unreachable moves its election
 * deadline to the end of the leader's lease plus less than half an
 * election timeout (instead of up to a whole one), and a leader is then
 * elected.  (Two followers can still time out together and split the
 * vote: the randomized timer bounds how often, not whether.)
 */
TEST(unreachable_leader_brings_election_forward)
{
	for (uint64_t seed = 1; seed <= 50; seed++)
	{
		h_net	   *net = h_new(3, 3);
		uint64_t	contact,
					waited = 0;

		net->nodes[2].opts.seed = seed;
		h_crash(net, 2);
		h_restart(net, 2);
		h_campaign(net, 1);
		h_run(net, 30);
		contact = net->nodes[2].now - h_status(net, 2).leader_contact_ms;
		h_crash(net, 1);
		raft_peer_unreachable(h_r(net, 2), 1);
		CHECK(raft_next_deadline(h_r(net, 2)) >= contact + 100);
		CHECK(raft_next_deadline(h_r(net, 2)) <= contact + 100 + 50);
		while (h_leader(net) == 0 && waited < 2000)
		{
			h_tick(net, 2, 1);
			h_tick(net, 3, 1);
			h_settle(net);
			waited++;
		}
		CHECK(h_leader(net) == 2 || h_leader(net) == 3);
		h_free(net);
	}
}

TEST(unreachable_leader_ignored_while_it_is_heard)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	raft_peer_unreachable(h_r(net, 2), 1);
	raft_peer_unreachable(h_r(net, 2), 3);	/* not the leader: no effect */
	h_run(net, 500);			/* heartbeats keep arriving */
	CHECK_EQ(h_leader(net), 1);
	CHECK_EQ(h_status(net, 1).term, 2);
	CHECK_EQ(raft_get_stats(h_r(net, 2))->pre_elections, 0);
	h_free(net);
}

/* new timeouts take effect without an election or any lost state */
TEST(set_timeouts_keeps_leadership)
{
	h_net	   *net = h_new(3, 3);
	uint64_t	waited = 0;

	h_campaign(net, 1);
	for (int i = 1; i <= 3; i++)
		CHECK_EQ(raft_set_timeouts(h_r(net, i), 400, 40), 0);
	CHECK_EQ(raft_set_timeouts(h_r(net, 2), 100, 100), RAFT_EINVAL);
	h_run(net, 1000);
	CHECK_EQ(h_leader(net), 1);
	CHECK_EQ(h_status(net, 1).term, 2);
	/* the longer timeout holds: a cut-off leader needs 400 ms now */
	h_isolate(net, 1);
	while (h_status(net, 1).role == RAFT_LEADER && waited < 2000)
	{
		h_tick(net, 1, 1);
		h_settle(net);
		waited++;
	}
	CHECK(waited >= 400 - 40);
	CHECK(waited <= 400 + 40);
	h_free(net);
}

/*
 * A leader that steps down (here: check-quorum, cut off from the others)
 * last heard a leader when it was one: its leader_contact_ms counts from
 * then, not from the last leader it followed, or from its start.
 */
TEST(deposed_leader_contact_counts_from_its_step_down)
{
	h_net	   *net = h_new_opts(3, 3, true, true);
	uint64_t	down_at = 0;

	h_campaign(net, 1);
	h_run(net, 30);
	CHECK_EQ(h_status(net, 1).role, RAFT_LEADER);
	h_isolate(net, 1);
	for (int i = 0; i < 1000 && down_at == 0; i++)
	{
		h_tick(net, 1, 1);
		h_settle(net);
		if (h_status(net, 1).role != RAFT_LEADER)
			down_at = net->nodes[1].now;
	}
	CHECK(down_at != 0);
	h_tick(net, 1, 40);
	CHECK(h_status(net, 1).role != RAFT_LEADER);
	CHECK_EQ(h_status(net, 1).leader_contact_ms, net->nodes[1].now - down_at);
	h_free(net);
}

/*
 * Figure 3.1: a follower's election timer restarts when it grants a vote,
 * not when a candidate whose log is behind overtakes its term; so such a
 * candidate cannot keep the nodes that could win from campaigning.
 */
TEST(rejected_vote_keeps_the_election_timer)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	vote;
	uint64_t	deadline;
	raft_status st;

	h_campaign(net, 1);
	raft_propose(h_r(net, 1), RAFT_ENTRY_NORMAL, "x", 1, NULL, NULL);
	h_settle(net);
	h_tick(net, 2, 5);
	deadline = raft_next_deadline(h_r(net, 2));
	st = h_status(net, 2);

	vote = h_msg(RAFT_MSG_VOTE, 3, 2, st.term + 1);
	vote.index = 1;				/* behind node 2's log */
	vote.log_term = 1;
	CHECK_EQ(raft_step(h_r(net, 2), &vote), 0);
	CHECK_EQ(h_status(net, 2).term, st.term + 1);
	CHECK_EQ(raft_next_deadline(h_r(net, 2)), deadline);

	vote = h_msg(RAFT_MSG_VOTE, 3, 2, st.term + 2);
	vote.index = st.last_index;	/* as up to date: granted */
	vote.log_term = st.last_term;
	h_tick(net, 2, 5);
	CHECK_EQ(raft_step(h_r(net, 2), &vote), 0);
	CHECK(raft_next_deadline(h_r(net, 2)) != deadline);
	h_free(net);
}

/*
 * Figure 2 ("persistent state ... updated on stable storage before
 * responding to RPCs"): a vote reply is never one of the messages a node
 * may send before its Ready is persisted, or a crash right after could
 * let it vote twice in one term.  The Ready that grants the vote carries
 * the vote in its hard state.
 */
TEST(fig2_vote_reply_waits_for_persistence)
{
	h_net	   *net = h_new_opts(3, 3, false, false);
	raft_msg	m = h_msg(RAFT_MSG_VOTE, 2, 1, 5);
	raft_ready	rd;
	int			replies = 0;

	m.index = 1;
	m.log_term = 1;
	raft_step(h_r(net, 1), &m);
	CHECK_EQ(raft_get_ready(h_r(net, 1), &rd), 0);
	CHECK_EQ(rd.hs.vote, 2);
	CHECK_EQ(rd.hs.term, 5);
	for (size_t i = 0; i < rd.n_msgs; i++)
	{
		if (rd.msgs[i].type != RAFT_MSG_VOTE_RESP)
			continue;
		replies++;
		CHECK(!rd.msgs[i].reject);
		CHECK(!raft_msg_may_precede_persist(&rd.msgs[i]));
	}
	CHECK_EQ(replies, 1);
	raft_advance(h_r(net, 1), &rd);
	h_free(net);
}
