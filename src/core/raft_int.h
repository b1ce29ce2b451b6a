/*
 * raft_int.h
 *	  The Raft core's internal state and the functions its files share.
 *	  Only the core's own files include this; drivers use raft.h.
 *
 *	  raft.c      roles and elections, message handlers, driver events, the
 *	              Ready cycle, construction and observation
 *	  log.c       the log
 *	  conf.c      configurations and membership changes
 *	  progress.c  the leader's view of each member, and replication
 *	  quorum.c    majorities: commitment and check-quorum
 *	  read.c      ReadIndex
 *	  codec.c     the wire and storage encodings
 */
#ifndef RAFT_INT_H
#define RAFT_INT_H

#include "raft.h"

#include <stdlib.h>
#include <string.h>

/* a pending ReadIndex request on the leader (§6.4 of the dissertation) */
typedef struct raft_pending_read
{
	uint64_t	ctx;
	raft_id		from;			/* node that asked; self for local reads */
	uint64_t	seq;			/* heartbeat round that must confirm it */
	bool		from_acked;		/* the request itself acknowledges this
								 * term: see step_leader */
	raft_index	index;			/* read index; 0 until the leader has
								 * committed an entry of its term */
} raft_pending_read;

/* what the leader knows of one member (and, for votes, what it answered) */
typedef struct raft_peer
{
	raft_id		id;
	bool		voter;
	raft_progress_state state;
	raft_index	match;
	raft_index	next;
	bool		probe_sent;		/* PROBE: one AppendEntries outstanding */
	raft_index	pending_snapshot;	/* SNAPSHOT: index offered */
	uint64_t	snapshot_sent_at;
	raft_index *inflight;		/* ring of last indexes of unacked appends */
	uint32_t	inflight_start;
	uint32_t	inflight_count;
	uint64_t	last_contact;	/* when we last heard from it */
	uint64_t	acked_seq;		/* highest heartbeat round acknowledged */
	raft_index	applied;		/* as it last reported */
	raft_index	stalled_at;		/* ... and the entry its apply is stuck on */
	uint64_t	stall_code;
	bool		vote_responded;
	bool		vote_granted;
} raft_peer;

struct raft
{
	raft_options opts;
	raft_allocator alloc;
	raft_id		id;
	uint64_t	rng;
	uint64_t	now;

	/* persistent state (Figure 2) */
	raft_term	term;
	raft_id		vote;
	raft_hard_state persisted_hs;

	/* volatile state */
	raft_role	role;
	raft_id		lead;
	raft_index	commit;
	raft_index	applied;		/* committed entries handed out */

	/* the log: ents[i].index == snap->index + 1 + i */
	raft_snapshot_meta *snap;
	bool		snap_dirty;
	raft_entry *ents;
	size_t		n_ents;
	size_t		cap_ents;
	raft_index	stable;			/* entries persisted up to here */
	raft_index	truncate_from;	/* persisted entries >= this are stale */

	/* configuration in force: the latest in the log (dissertation §4.1) */
	raft_conf  *conf;
	raft_index	conf_index;

	raft_peer  *peers;			/* one per member of conf, self included */
	uint32_t	n_peers;

	/* timers, in the driver's ms */
	uint64_t	election_deadline;
	uint64_t	heartbeat_deadline;
	uint64_t	last_leader_contact;
	uint64_t	led_until;		/* when this node last stopped leading */
	bool		hastened;		/* raft_peer_unreachable moved the timer */

	/* leader state */
	raft_index	noop_index;		/* first entry of this leader's term */
	raft_index	local_applied;	/* raft_set_applied(): the driver's */
	raft_index	local_stalled_at;	/* raft_set_apply_stall() */
	uint64_t	local_stall_code;
	raft_index	applied_sent;	/* ... as last reported, and to whom */
	raft_index	stalled_sent;
	uint64_t	stall_code_sent;
	raft_id		applied_sent_to;
	raft_id		transferee;
	uint64_t	transfer_deadline;
	bool		bcast_pending;	/* coalesced AppendEntries broadcast */
	bool		round_pending;	/* coalesced heartbeat round for reads */
	uint64_t	hb_seq;
	raft_pending_read *preads;
	size_t		n_preads;
	size_t		cap_preads;

	/* output queues */
	raft_msg   *msgs;
	size_t		n_msgs;
	size_t		cap_msgs;
	raft_read_state *reads;
	size_t		n_reads;
	size_t		cap_reads;
	raft_snapshot_meta *wanted; /* snapshot offered by the leader */
	raft_id		wanted_from;
	bool		wanted_new;		/* not yet handed to the driver */

	raft_stats	stats;
	int			err;			/* sticky RAFT_ENOMEM */
};

/*
 * Invariants.  RAFT_ASSERT is assert(): checked in the core's own test
 * builds, and compiled out in raftable.so (built with NDEBUG, as
 * PostgreSQL's Assert is outside --enable-cassert builds).
 */
#include <assert.h>
#define RAFT_ASSERT(cond) assert(cond)

/* raft.c */
extern void check_invariants(const raft *r);
extern void *ralloc(raft *r, size_t size);
extern void rfree(raft *r, void *p);
extern bool rgrow(raft *r, void **arr, size_t *cap, size_t need, size_t elem);
extern raft_msg *queue_msg(raft *r, uint8_t type, raft_id to);
extern void become_follower(raft *r, raft_term term, raft_id lead);

/* log.c; the three most used are inline */
static inline raft_index
log_last_index(const raft *r)
{
	return r->snap->index + r->n_ents;
}

static inline raft_term
log_last_term(const raft *r)
{
	return r->n_ents ? r->ents[r->n_ents - 1].term : r->snap->term;
}

static inline raft_entry *
log_entry(const raft *r, raft_index i)
{
	if (i <= r->snap->index || i > log_last_index(r))
		return NULL;
	return &r->ents[i - r->snap->index - 1];
}

extern raft_term log_term(const raft *r, raft_index i, bool *ok);
extern bool log_matches(const raft *r, raft_index i, raft_term t);
extern bool log_append(raft *r, raft_term term, uint8_t type, const void *data, uint32_t len);
extern void log_free_range(raft *r, size_t from, size_t to);
extern void log_drop_prefix(raft *r, raft_index upto);
extern void purge_entry_msgs(raft *r, raft_index lo, raft_index hi);
extern void log_truncate(raft *r, raft_index i);

/* conf.c */
extern void reload_conf(raft *r);
extern void note_conf_entry(raft *r, const raft_entry *e);

/* progress.c */
extern raft_peer *find_peer(raft *r, raft_id id);
extern bool self_is_voter(const raft *r);
extern void peer_reset(raft *r, raft_peer *p);
extern void sync_peers(raft *r);
extern void inflight_free_to(raft *r, raft_peer *p, raft_index index);
extern void send_append(raft *r, raft_peer *p, bool allow_empty);
extern void bcast_append(raft *r, bool allow_empty);
extern void bcast_heartbeat(raft *r);

/* quorum.c */
extern int quorum(const raft *r);
extern raft_index peer_match(const raft *r, const raft_peer *p);
extern void maybe_commit(raft *r);
extern bool peer_active(const raft *r, const raft_peer *p);
extern bool quorum_active(raft *r);

/* read.c */
extern void push_read_state(raft *r, uint64_t ctx, raft_index index, int err);
extern void fail_pending_reads(raft *r);
extern void release_reads(raft *r);
extern void queue_read(raft *r, uint64_t ctx, raft_id from, bool from_acked);

#endif							/* RAFT_INT_H */
