/*
 * test_membership.c
 *	  Single-server membership changes (dissertation §4.1-§4.2) with
 *	  learners, and snapshots (§7, dissertation §5).
 */
#include "harness.h"
#include "testlib.h"

#include <string.h>

static void
propose(h_net *net, raft_id id, int n)
{
	for (int i = 0; i < n; i++)
		raft_propose(h_r(net, id), RAFT_ENTRY_NORMAL, "m", 1, NULL, NULL);
}

/* add as learner, catch up, promote; the new voter then counts */
TEST(membership_add_learner_then_promote)
{
	h_net	   *net = h_new(4, 3);	/* node 4 starts empty */
	raft_index	idx;

	h_campaign(net, 1);
	propose(net, 1, 5);
	h_settle(net);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 4, "node4", 5, &idx), 0);
	h_run(net, 30);
	CHECK_EQ(h_status(net, 4).last_index, h_status(net, 1).last_index);
	CHECK(h_status(net, 4).is_member);
	CHECK(!h_status(net, 4).is_voter);
	CHECK_EQ(raft_get_conf(h_r(net, 4))->n, 4);
	CHECK_EQ(raft_promote(h_r(net, 1), 4, &idx), 0);
	h_run(net, 30);
	CHECK(h_status(net, 4).is_voter);
	CHECK_EQ(raft_conf_voters(raft_get_conf(h_r(net, 1))), 4);
	/* with 2 and 3 down, 1 and 4 are not a quorum of 4 */
	h_isolate(net, 2);
	h_isolate(net, 3);
	propose(net, 1, 1);
	h_settle(net);
	CHECK(h_status(net, 1).commit < h_status(net, 1).last_index);
	h_heal(net);
	h_run(net, 30);
	CHECK_EQ(h_status(net, 1).commit, h_status(net, 1).last_index);
	h_free(net);
}

/* a learner's acknowledgement never counts towards commitment */
TEST(membership_learner_ack_does_not_count)
{
	h_net	   *net = h_new(3, 2);	/* voters 1,2 */
	raft_index	idx;

	h_campaign(net, 1);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 3, "n3", 2, &idx), 0);
	h_run(net, 30);
	CHECK_EQ(h_status(net, 3).last_index, idx);
	h_isolate(net, 2);
	propose(net, 1, 1);
	h_run(net, 30);
	CHECK_EQ(h_status(net, 3).last_index, idx + 1);	/* learner has it */
	CHECK_EQ(h_status(net, 1).commit, idx);	/* but it is not committed */
	h_free(net);
}

/* a learner never campaigns, and its vote never counts */
TEST(membership_learner_never_campaigns)
{
	h_net	   *net = h_new(3, 3);
	raft_index	idx;

	h_campaign(net, 1);
	CHECK_EQ(raft_remove(h_r(net, 1), 3, &idx), 0);
	h_run(net, 30);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 3, "n3", 2, &idx), 0);
	h_run(net, 30);
	CHECK(!h_status(net, 3).is_voter);
	h_isolate(net, 3);
	h_run(net, 600);
	CHECK_EQ(raft_get_stats(h_r(net, 3))->pre_elections, 0);
	CHECK_EQ(raft_get_stats(h_r(net, 3))->elections, 0);
	h_free(net);
}

/* one change at a time; and not before the leader committed in its term */
TEST(membership_one_change_at_a_time)
{
	h_net	   *net = h_new(5, 3);

	h_campaign(net, 1);
	h_isolate(net, 2);
	h_isolate(net, 3);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 4, "n4", 2, NULL), 0);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 5, "n5", 2, NULL), RAFT_EBUSY);
	h_heal(net);
	h_run(net, 30);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 5, "n5", 2, NULL), 0);
	CHECK_EQ(raft_add_learner(h_r(net, 2), 6, "n6", 2, NULL), RAFT_ENOTLEADER);
	h_free(net);
}

TEST(membership_bad_requests)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 2, "dup", 3, NULL), RAFT_EINVAL);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 0, "zero", 4, NULL), RAFT_EINVAL);
	CHECK_EQ(raft_promote(h_r(net, 1), 9, NULL), RAFT_EINVAL);
	CHECK_EQ(raft_promote(h_r(net, 1), 2, NULL), RAFT_EINVAL);	/* voter */
	CHECK_EQ(raft_remove(h_r(net, 1), 9, NULL), RAFT_EINVAL);
	h_free(net);
}

/* the last voter cannot be removed */
TEST(membership_keeps_one_voter)
{
	h_net	   *net = h_new(1, 1);

	h_campaign(net, 1);
	CHECK_EQ(raft_remove(h_r(net, 1), 1, NULL), RAFT_EINVAL);
	h_free(net);
}

/* §4.2.2: a removed leader steps down once the change is committed */
TEST(membership_removed_leader_steps_down)
{
	h_net	   *net = h_new(3, 3);
	raft_index	idx;
	raft_id		lead;
	uint64_t	elections,
				pre_elections;

	h_campaign(net, 1);
	elections = raft_get_stats(h_r(net, 1))->elections;
	pre_elections = raft_get_stats(h_r(net, 1))->pre_elections;
	CHECK_EQ(raft_remove(h_r(net, 1), 1, &idx), 0);
	/* until committed it still leads, not counting itself */
	CHECK_EQ(h_status(net, 1).role, RAFT_LEADER);
	h_settle(net);
	CHECK(h_status(net, 1).commit >= idx);
	CHECK_EQ(h_status(net, 1).role, RAFT_FOLLOWER);
	CHECK(!h_status(net, 1).is_member);
	h_run(net, 600);
	lead = h_leader(net);
	CHECK(lead == 2 || lead == 3);
	CHECK_EQ(raft_conf_voters(raft_get_conf(h_r(net, lead))), 2);
	/* the removed node does not disturb the new cluster */
	CHECK_EQ(raft_get_stats(h_r(net, 1))->elections, elections);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->pre_elections, pre_elections);
	h_free(net);
}

/* removing a follower shrinks the quorum */
TEST(membership_remove_follower_shrinks_quorum)
{
	h_net	   *net = h_new(3, 3);
	raft_index	idx;

	h_campaign(net, 1);
	CHECK_EQ(raft_remove(h_r(net, 1), 3, &idx), 0);
	h_settle(net);
	h_isolate(net, 3);
	propose(net, 1, 2);
	h_settle(net);
	CHECK_EQ(h_status(net, 1).commit, h_status(net, 1).last_index);
	h_free(net);
}

/* a truncated configuration entry is rolled back (the log is the truth) */
TEST(membership_uncommitted_change_rolled_back_on_truncation)
{
	h_net	   *net = h_new(4, 3);

	h_campaign(net, 1);
	h_isolate(net, 1);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 4, "n4", 2, NULL), 0);
	h_settle(net);
	CHECK_EQ(raft_get_conf(h_r(net, 1))->n, 4);
	h_heal(net);
	h_isolate(net, 1);
	h_run(net, 600);			/* 2 or 3 leads, term > 2 */
	propose(net, h_leader(net), 1);
	h_settle(net);
	h_heal(net);
	h_run(net, 60);
	CHECK_EQ(raft_get_conf(h_r(net, 1))->n, 3);
	CHECK(raft_conf_find(raft_get_conf(h_r(net, 1)), 4) == NULL);
	h_free(net);
}

/* ---------- snapshots ---------- */

/* §7: compaction keeps the configuration and the term of the last entry */
TEST(snapshot_compact_keeps_conf_and_term)
{
	h_net	   *net = h_new(3, 3);
	raft_status st;

	h_campaign(net, 1);
	propose(net, 1, 10);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(raft_compact(h_r(net, 1), 8), 0);
	h_cycle(net, 1);
	st = h_status(net, 1);
	CHECK_EQ(st.snapshot_index, 8);
	CHECK_EQ(st.snapshot_term, 2);
	CHECK_EQ(net->nodes[1].snap.index, 8);
	CHECK_EQ(net->nodes[1].snap.conf.n, 3);
	CHECK_EQ(net->nodes[1].log[0].index, 9);
	CHECK(raft_get_entry(h_r(net, 1), 8) == NULL);
	CHECK(raft_compact(h_r(net, 1), 100) == RAFT_EINVAL);	/* not applied */
	/* a restart from disk restores the same state */
	h_crash(net, 1);
	h_restart(net, 1);
	st = h_status(net, 1);
	CHECK_EQ(st.snapshot_index, 8);
	CHECK_EQ(st.last_index, 12);
	CHECK_EQ(raft_get_conf(h_r(net, 1))->n, 3);
	h_free(net);
}

/*
 * A follower whose next entry was compacted away is offered a snapshot;
 * the driver fetches it and reports it installed; replication resumes.
 */
TEST(snapshot_offered_to_lagging_follower)
{
	h_net	   *net = h_new(3, 3);
	raft_progress pr;
	raft_snapshot_meta meta;

	h_campaign(net, 1);
	h_isolate(net, 3);
	propose(net, 1, 20);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(raft_compact(h_r(net, 1), 15), 0);
	h_heal(net);
	h_run(net, 20);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 3, &pr), 0);
	CHECK_EQ(pr.state, RAFT_PR_SNAPSHOT);
	CHECK(net->nodes[3].snapshot_wanted);
	CHECK_EQ(net->nodes[3].wanted.index, 15);
	CHECK_EQ(net->nodes[3].wanted.conf.n, 3);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->snapshot_offers, 1);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->snapshots_sent, 0);	/* not installed yet */

	meta = net->nodes[3].wanted;
	CHECK_EQ(raft_snapshot_installed(h_r(net, 3), &meta), 0);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(h_status(net, 3).snapshot_index, 15);
	CHECK_EQ(h_status(net, 3).last_index, h_status(net, 1).last_index);
	CHECK_EQ(h_status(net, 3).commit, h_status(net, 1).commit);
	CHECK_EQ(net->nodes[3].snap.index, 15);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 3, &pr), 0);
	CHECK_EQ(pr.state, RAFT_PR_REPLICATE);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->snapshots_sent, 1);	/* installed */
	h_free(net);
}

/* a lost snapshot offer is repeated after an election timeout */
TEST(snapshot_offer_repeated_when_lost)
{
	h_net	   *net = h_new(3, 3);

	h_campaign(net, 1);
	h_isolate(net, 3);
	propose(net, 1, 5);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(raft_compact(h_r(net, 1), 6), 0);
	h_heal(net);
	net->cut[1][3] = true;		/* offers do not arrive ... */
	h_run(net, 20);
	net->cut[1][3] = false;		/* ... until later */
	CHECK(!net->nodes[3].snapshot_wanted);
	h_run(net, 150);
	CHECK(net->nodes[3].snapshot_wanted);
	CHECK(raft_get_stats(h_r(net, 1))->snapshot_offers >= 2);
	CHECK_EQ(raft_get_stats(h_r(net, 1))->snapshots_sent, 0);	/* none installed */
	h_free(net);
}

/* a snapshot that disagrees with the follower's log replaces all of it */
TEST(snapshot_discards_conflicting_log)
{
	h_net	   *net = h_new(3, 3);
	raft_snapshot_meta meta;

	h_campaign(net, 1);
	h_isolate(net, 1);
	propose(net, 1, 5);			/* divergent tail on node 1 */
	h_run(net, 250);			/* it steps down (check-quorum) */
	CHECK_EQ(h_status(net, 1).role, RAFT_FOLLOWER);
	CHECK_EQ(h_status(net, 1).last_index, 7);
	memset(&meta, 0, sizeof(meta));
	meta.index = 4;
	meta.term = 9;				/* differs from node 1's entry 4 */
	meta.conf = h_conf(3, 0);
	CHECK_EQ(raft_snapshot_installed(h_r(net, 1), &meta), 0);
	CHECK_EQ(h_status(net, 1).last_index, 4);
	/* the entries it held durable went with the log: new ones must be written */
	CHECK_EQ(h_status(net, 1).stable_index, 4);
	h_cycle(net, 1);
	CHECK_EQ(net->nodes[1].n_log, 0);
	CHECK_EQ(net->nodes[1].snap.index, 4);
	CHECK_EQ(h_status(net, 1).commit, 4);
	h_free(net);
}

/*
 * A learner added after the leader compacted its log starts at index 1,
 * which is gone: it must be offered a snapshot (found by the simulator:
 * the term of index 0 was taken as known, and compacted entries were read).
 */
TEST(membership_new_learner_after_compaction_gets_snapshot)
{
	h_net	   *net = h_new(4, 3);
	raft_progress pr;

	h_campaign(net, 1);
	propose(net, 1, 5);
	h_settle(net);
	h_run(net, 20);
	CHECK_EQ(raft_compact(h_r(net, 1), 6), 0);
	CHECK_EQ(raft_add_learner(h_r(net, 1), 4, "n4", 2, NULL), 0);
	h_run(net, 30);
	CHECK(net->nodes[4].snapshot_wanted);
	CHECK_EQ(net->nodes[4].wanted.index, 6);
	CHECK_EQ(raft_get_progress(h_r(net, 1), 4, &pr), 0);
	CHECK_EQ(pr.state, RAFT_PR_SNAPSHOT);
	h_free(net);
}

/*
 * Two voters; the leader removes itself and is cut off before the change
 * commits, so it steps down.  The other voter still has the old
 * configuration and a shorter log: it cannot win without the old leader's
 * vote, which the old leader refuses.  The old leader must be allowed to
 * stand (its removal is not committed), win with the other's vote, commit
 * its removal and step down (found by the simulator as a deadlock).
 */
TEST(membership_self_removal_of_two_voter_leader_recovers)
{
	h_net	   *net = h_new(2, 2);
	raft_index	idx;
	raft_id		lead;

	h_campaign(net, 1);
	h_isolate(net, 1);
	CHECK_EQ(raft_remove(h_r(net, 1), 1, &idx), 0);
	h_run(net, 250);			/* check-quorum: it steps down */
	CHECK_EQ(h_status(net, 1).role, RAFT_FOLLOWER);
	CHECK(h_status(net, 1).commit < idx);
	h_heal(net);
	h_run(net, 1500);
	lead = h_leader(net);
	CHECK_EQ(lead, 2);
	CHECK(h_status(net, 2).commit >= idx);
	CHECK_EQ(raft_conf_voters(raft_get_conf(h_r(net, 2))), 1);
	CHECK(!h_status(net, 1).is_member);
	h_free(net);
}
