/*
 * raft.h
 *	  The pure Raft core of raftable: types, events in, work out.
 *
 * This library has no PostgreSQL dependency, no sockets, no clock, no
 * randomness and no allocator of its own.  The driver (raftable's worker, or
 * the deterministic simulator in test/core/sim.c) owns all of that:
 *
 *	 events in                        work out (raft_ready)
 *	 ---------                        ---------------------
 *	 raft_tick(now)                   hard state and entries to persist
 *	 raft_step(message)               messages to send, after persisting
 *	 raft_propose(data)               entries now committed, to apply
 *	 raft_read_index(ctx)             read states (read index granted/failed)
 *	 raft_transfer_leader(id)         a snapshot the driver must fetch
 *	 raft_snapshot_installed(meta)    a snapshot a follower needs
 *	 raft_compact(index)
 *
 * The driver loop is the one of etcd-io/raft's Ready/Advance:
 *
 *	 feed events; if raft_has_ready(): raft_get_ready(&rd);
 *	 persist rd.hs / rd.snapshot / rd.entries durably;
 *	 send rd.msgs; apply rd.committed; handle rd.reads; raft_advance(&rd).
 *
 * Time: every event is taken to happen at the time given to the last
 * raft_tick().  The driver calls raft_tick(now) at the start of each loop
 * iteration, before it feeds messages or requests, and again no later than
 * raft_next_deadline(); timers restarted by an event (an election timer
 * reset by a heartbeat) would otherwise be measured from a stale clock.
 *
 * Messages in a Ready may depend on its entries and hard state (a vote, an
 * acknowledgement), so nothing may be sent before they are durable (Raft
 * paper §5.1, "persist before responding"), with one exception: a leader
 * may send the messages raft_msg_may_precede_persist() accepts (its
 * appends and heartbeats) before persisting, so that its own disk write
 * and its followers' overlap (dissertation §10.2.1).  That is safe because
 * a leader counts its own entries towards commitment only once
 * raft_advance() has marked them stable.  No event may be fed between
 * raft_get_ready() and raft_advance().
 *
 * Membership changes are single-server changes (Ongaro's dissertation §4.1):
 * the configuration in force is the latest one in the log, committed or not;
 * a leader appends a new one only after the previous is committed and after
 * it has committed an entry of its own term (the fix for the single-server
 * change bug, raft-dev 2015).  A learner is a non-voting member: it receives
 * the log but never votes, campaigns or counts towards a quorum.
 *
 * Errors: functions return 0 or a negative RAFT_E* code.  After RAFT_ENOMEM
 * the instance is in an undefined state: the driver must discard it and
 * rebuild it from durable storage (raft_restore).
 */
#ifndef RAFTABLE_RAFT_H
#define RAFTABLE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------- errors ---------- */
#define RAFT_OK				0
#define RAFT_ENOMEM			(-1)	/* allocation failed: rebuild the instance */
#define RAFT_ENOTLEADER		(-2)	/* only the leader can do this */
#define RAFT_ENOLEADER		(-3)	/* no leader known: retry later */
#define RAFT_EBUSY			(-4)	/* a config change or transfer is in progress */
#define RAFT_EINVAL			(-5)	/* bad argument (unknown node, bad state) */
#define RAFT_ETOOBIG		(-6)	/* entry larger than the configured limit */
#define RAFT_EMALFORMED		(-7)	/* codec: bytes are not a valid encoding */
#define RAFT_EVERSION		(-8)	/* codec: encoding of an unknown version */
#define RAFT_ELEADERLOST	(-9)	/* leadership lost before the request completed */
#define RAFT_ETRANSFER		(-10)	/* leadership is being transferred */

extern const char *raft_strerror(int err);

/* ---------- identifiers ---------- */
typedef uint64_t raft_id;		/* node id; 0 means none */
typedef uint64_t raft_index;	/* log index; the first entry is 1 */
typedef uint64_t raft_term;

#define RAFT_NONE ((raft_id) 0)

/* ---------- configuration (membership) ---------- */
#define RAFT_MAX_MEMBERS	64
#define RAFT_MAX_ADDR		1024	/* bytes of opaque address per member */

typedef struct raft_member
{
	raft_id		id;
	bool		voter;			/* false: learner */
	uint16_t	addr_len;		/* opaque to the core (the driver's conninfo) */
	char		addr[RAFT_MAX_ADDR];
} raft_member;

typedef struct raft_conf
{
	uint32_t	n;
	raft_member members[RAFT_MAX_MEMBERS];
} raft_conf;

extern const raft_member *raft_conf_find(const raft_conf *conf, raft_id id);
extern int	raft_conf_voters(const raft_conf *conf);

/* ---------- log entries ---------- */
typedef enum raft_entry_type
{
	RAFT_ENTRY_NOOP = 0,		/* appended by every new leader (§8) */
	RAFT_ENTRY_NORMAL = 1,		/* the driver's payload */
	RAFT_ENTRY_CONF = 2,		/* data is a raft_conf_encode()d config */
} raft_entry_type;

typedef struct raft_entry
{
	raft_term	term;
	raft_index	index;
	uint8_t		type;			/* raft_entry_type */
	uint32_t	len;
	uint8_t    *data;			/* owned by whoever built the entry */
} raft_entry;

/* ---------- persistent state ---------- */
typedef struct raft_hard_state
{
	raft_term	term;			/* currentTerm (Figure 2) */
	raft_id		vote;			/* votedFor in that term */
	raft_index	commit;			/* not required for safety; saves work */
} raft_hard_state;

typedef struct raft_snapshot_meta
{
	raft_index	index;			/* last index the snapshot covers */
	raft_term	term;			/* term of that entry */
	raft_conf	conf;			/* configuration as of that index */
} raft_snapshot_meta;

/* ---------- messages ---------- */
typedef enum raft_msg_type
{
	RAFT_MSG_APPEND = 1,		/* AppendEntries (Figure 2) */
	RAFT_MSG_APPEND_RESP,
	RAFT_MSG_HEARTBEAT,			/* empty AppendEntries; carries seq */
	RAFT_MSG_HEARTBEAT_RESP,
	RAFT_MSG_VOTE,				/* RequestVote (Figure 2) */
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_PREVOTE,			/* dissertation §9.6 */
	RAFT_MSG_PREVOTE_RESP,
	RAFT_MSG_SNAPSHOT,			/* InstallSnapshot, metadata only */
	RAFT_MSG_TIMEOUT_NOW,		/* leadership transfer, dissertation §3.10 */
	RAFT_MSG_READ_INDEX,		/* follower -> leader: want a read index */
	RAFT_MSG_READ_INDEX_RESP,	/* leader -> follower: index (or reject) */
	RAFT_MSG_APPLIED,			/* follower -> leader: applied up to index */
} raft_msg_type;

#define RAFT_MSG_TYPE_MAX RAFT_MSG_APPLIED

/*
 * One message.  Which fields are meaningful depends on the type:
 *
 *	APPEND:			index/log_term = entry preceding entries[], commit
 *	APPEND_RESP:	reject; index = last index matched (success) or the index
 *					rejected; hint_index/hint_term for fast back-off (§5.3)
 *	HEARTBEAT:		commit (bounded by the follower's match), seq
 *	HEARTBEAT_RESP: seq
 *	VOTE, PREVOTE:	index/log_term = candidate's last entry; transfer
 *	*_RESP:			reject
 *	SNAPSHOT:		snapshot (metadata; the content moves out of band)
 *	READ_INDEX:		ctx; hint_term = the sender's term (0 from older
 *					nodes), which lets the request count as its
 *					acknowledgement of the leader's term
 *	READ_INDEX_RESP: ctx, index, reject
 *	APPLIED:		index = how far the driver applied (raft_set_applied);
 *					hint_index = the entry its apply is stuck on and ctx
 *					the driver's code for why (raft_set_apply_stall), 0
 *					and 0 when it is not stuck
 */
typedef struct raft_msg
{
	uint8_t		type;			/* raft_msg_type */
	raft_id		from;
	raft_id		to;
	raft_term	term;
	raft_index	index;
	raft_term	log_term;
	raft_index	commit;
	bool		reject;
	bool		transfer;		/* vote asked for by TimeoutNow */
	raft_index	hint_index;
	raft_term	hint_term;
	uint64_t	seq;			/* leadership-confirmation round */
	uint64_t	ctx;			/* read request id, chosen by the driver */
	uint32_t	n_entries;
	raft_entry *entries;
	raft_snapshot_meta *snapshot;	/* SNAPSHOT only */
} raft_msg;

/* ---------- reads ---------- */
typedef struct raft_read_state
{
	uint64_t	ctx;			/* the id given to raft_read_index() */
	raft_index	index;			/* wait until applied >= index, then read */
	int			err;			/* 0, or RAFT_ELEADERLOST/RAFT_ENOLEADER */
} raft_read_state;

/* ---------- output of one cycle ---------- */
typedef struct raft_ready
{
	/*
	 * Persist, in this order, before sending anything:
	 *	1. if truncate_from: drop persisted entries with index >= it;
	 *	2. if snapshot_changed: store *snapshot and drop persisted entries
	 *	   with index <= snapshot->index;
	 *	3. append entries[] (their indexes follow the persisted log);
	 *	4. if hs_changed: store hs.
	 * All four must become durable together (or in this order).
	 */
	raft_index	truncate_from;
	bool		snapshot_changed;
	raft_snapshot_meta *snapshot;
	raft_entry *entries;
	size_t		n_entries;
	bool		hs_changed;
	raft_hard_state hs;

	/* then send */
	raft_msg   *msgs;
	size_t		n_msgs;

	/* then apply, in order */
	raft_entry *committed;
	size_t		n_committed;

	raft_read_state *reads;
	size_t		n_reads;

	/*
	 * A snapshot was offered by the leader: the driver fetches content for
	 * at least this index from a peer and then calls
	 * raft_snapshot_installed() with what it got.
	 */
	bool		snapshot_wanted;
	raft_snapshot_meta *wanted;
	raft_id		wanted_from;

	/* internal: what raft_advance() marks done */
	raft_index	stable_to;
	raft_term	stable_term;
	raft_index	applied_to;
} raft_ready;

/* ---------- options ---------- */
typedef struct raft_allocator
{
	void	   *(*alloc) (void *ctx, size_t size);
	void	   *(*realloc) (void *ctx, void *ptr, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
} raft_allocator;

typedef struct raft_options
{
	raft_id		id;				/* this node, nonzero */
	uint64_t	seed;			/* randomizes election timeouts */
	uint64_t	election_timeout;	/* ms; randomized in [t, 2t) */
	uint64_t	heartbeat_interval; /* ms */
	bool		pre_vote;		/* §9.6 */
	bool		check_quorum;	/* leader steps down without a quorum */
	uint32_t	max_inflight;	/* AppendEntries in flight per follower */
	uint32_t	max_msg_bytes;	/* entry bytes per AppendEntries (>= 1 entry) */
	uint32_t	max_entry_bytes;	/* largest proposal accepted */
	const raft_allocator *allocator;	/* NULL: malloc/realloc/free */
} raft_options;

extern void raft_options_default(raft_options *opts, raft_id id);

/* ---------- the instance ---------- */
typedef struct raft raft;

typedef enum raft_role
{
	RAFT_FOLLOWER = 0,
	RAFT_PRECANDIDATE,
	RAFT_CANDIDATE,
	RAFT_LEADER,
} raft_role;

extern const char *raft_role_name(raft_role role);

extern int	raft_new(const raft_options *opts, raft **out);
extern void raft_free(raft *r);

/*
 * Load persisted state after raft_new() and before any event: the hard
 * state, the snapshot (may be NULL), the entries that follow it, and the
 * index the driver has applied (committed entries up to it are not handed
 * out again).  The core copies what it needs.
 */
extern int	raft_restore(raft *r, const raft_hard_state *hs,
						 const raft_snapshot_meta *snap,
						 const raft_entry *entries, size_t n,
						 raft_index applied);

/*
 * Start a new cluster on an empty node: appends the configuration as entry 1
 * of term 1.  Every node of a cluster bootstrapped at once must be given the
 * same configuration; a node added later starts empty and is not
 * bootstrapped.
 */
extern int	raft_bootstrap(raft *r, const raft_conf *conf);

/* events */
extern int	raft_tick(raft *r, uint64_t now_ms);
extern int	raft_step(raft *r, const raft_msg *m);
/* see "persist before responding" above: leader's appends and heartbeats */
extern bool raft_msg_may_precede_persist(const raft_msg *m);

extern int	raft_propose(raft *r, raft_entry_type type, const void *data,
						 uint32_t len, raft_index *index, raft_term *term);
extern int	raft_read_index(raft *r, uint64_t ctx);
extern int	raft_transfer_leader(raft *r, raft_id to);
extern int	raft_snapshot_installed(raft *r, const raft_snapshot_meta *meta);

/*
 * The driver lost its connection to a peer.  If it is the leader this
 * follower follows, the election timer is brought forward to the end of
 * the leader's lease plus a random part of half an election timeout
 * (instead of up to a whole one): a leader that died is replaced sooner,
 * while pre-vote and the lease keep a live leader from being disturbed.
 */
extern void raft_peer_unreachable(raft *r, raft_id id);

/*
 * How far the driver's state machine has applied the log, which may lag
 * what the core handed out.  A follower or learner reports it to its
 * leader (an APPLIED message when it changes, or when the leader does);
 * the leader shows every member's in raft_get_progress(), for a driver
 * that waits until an entry is applied everywhere.
 */
extern void raft_set_applied(raft *r, raft_index applied);

/*
 * The driver cannot apply entry 'index' (0: apply is not stuck), for a
 * reason the driver encodes in 'code' (raftable: the SQLSTATE).  Reported
 * to the leader with the applied index, so that an operator looking at the
 * leader sees which member is stuck where, and why.
 */
extern void raft_set_apply_stall(raft *r, raft_index index, uint64_t code);

/*
 * New timeouts (a settings reload), without losing any state: timers that
 * are running are restarted with the new values.  RAFT_EINVAL unless
 * 0 < heartbeat < election.
 */
extern int	raft_set_timeouts(raft *r, uint64_t election_timeout,
							  uint64_t heartbeat_interval);
extern int	raft_compact(raft *r, raft_index upto);

/* membership: propose a configuration change (leader only) */
extern int	raft_add_learner(raft *r, raft_id id, const char *addr,
							 uint16_t addr_len, raft_index *index);
extern int	raft_promote(raft *r, raft_id id, raft_index *index);
extern int	raft_remove(raft *r, raft_id id, raft_index *index);

/* the Ready cycle */
extern bool raft_has_ready(const raft *r);
extern int	raft_get_ready(raft *r, raft_ready *rd);
extern void raft_advance(raft *r, const raft_ready *rd);

/* the earliest time at which raft_tick() has work; the driver sleeps until */
extern uint64_t raft_next_deadline(const raft *r);

/* ---------- observation ---------- */
typedef struct raft_status
{
	raft_id		id;
	raft_role	role;
	bool		is_voter;
	bool		is_member;
	raft_term	term;
	raft_id		vote;
	raft_id		lead;
	raft_index	commit;
	raft_index	applied;		/* handed out to the driver for apply */
	raft_index	last_index;
	raft_term	last_term;
	raft_index	stable_index;	/* persisted */
	raft_index	snapshot_index;
	raft_term	snapshot_term;
	raft_index	conf_index;		/* index of the configuration in force */
	uint64_t	leader_contact_ms;	/* now - last contact with a leader */
	raft_id		transferee;		/* leadership transfer target, or 0 */
	raft_index	term_start_index;	/* leader: its no-op, the first entry of
									 * its term; 0 otherwise */
} raft_status;

typedef enum raft_progress_state
{
	RAFT_PR_PROBE = 0,
	RAFT_PR_REPLICATE,
	RAFT_PR_SNAPSHOT,
} raft_progress_state;

typedef struct raft_progress
{
	raft_id		id;
	bool		voter;
	raft_progress_state state;
	raft_index	match;
	raft_index	next;
	uint32_t	inflight;
	bool		recent_active;
	uint64_t	last_contact_ms;	/* now - last message from it */
	raft_index	applied;		/* as last reported (raft_set_applied); 0:
								 * unknown */
	raft_index	stalled_at;		/* as last reported (raft_set_apply_stall);
								 * 0: not stuck, or unknown */
	uint64_t	stall_code;
} raft_progress;

typedef struct raft_stats
{
	uint64_t	elections;		/* campaigns started (real votes) */
	uint64_t	pre_elections;	/* pre-vote rounds started */
	uint64_t	leader_changes; /* times this node saw a new leader */
	uint64_t	proposals;
	uint64_t	commits;		/* entries committed */
	uint64_t	read_index_rounds;	/* quorum rounds confirming leadership */
	uint64_t	msgs_sent;
	uint64_t	msgs_received;
	uint64_t	snapshot_offers;	/* snapshots offered (§7), resent ones too */
	uint64_t	snapshots_sent; /* offers a follower acknowledged installing */
	uint64_t	snapshots_received;
} raft_stats;

extern void raft_get_status(const raft *r, raft_status *st);
extern const raft_conf *raft_get_conf(const raft *r);
extern const raft_stats *raft_get_stats(const raft *r);

/* what a leader may answer a follower's READ_INDEX with, core untouched */
typedef struct raft_read_grant
{
	raft_term	term;			/* the request's hint_term must be this; 0:
								 * nothing may be answered so */
	raft_index	index;			/* the answer */
	uint32_t	n_ids;			/* the voters whose request alone confirms */
	raft_id		ids[RAFT_MAX_MEMBERS];
} raft_read_grant;

extern void raft_get_read_grant(const raft *r, raft_read_grant *g);

/* progress of a peer as the leader sees it; RAFT_ENOTLEADER elsewhere */
extern int	raft_get_progress(const raft *r, raft_id id, raft_progress *pr);

/* an entry of the in-memory log (index in (snapshot_index, last_index]) */
extern const raft_entry *raft_get_entry(const raft *r, raft_index index);

/* term of the entry at index, or 0 with *ok = false if unknown (compacted) */
extern raft_term raft_term_at(const raft *r, raft_index index, bool *ok);

/* ---------- codec (codec.c) ---------- */

/*
 * A versioned, little-endian binary encoding with bounds-checked decoding:
 * malformed input yields RAFT_EMALFORMED (or RAFT_EVERSION), never a crash
 * or a read outside the buffer.  The envelope carries the cluster id, which
 * the driver checks; the core never sees it.  The byte layout is described
 * at the top of codec.c.
 *
 * Decoders leave their output zeroed on error and allocate nothing then;
 * their RAFT_ENOMEM concerns only that call (unlike the core's).  A decoded
 * entry of length 0 has data NULL.  Decoding checks the encoding, not Raft:
 * the core itself ignores messages whose entries are not consecutive, and
 * treats an undecodable configuration entry as no configuration.
 */
#define RAFT_CODEC_VERSION 1

/* bytes needed to encode m */
extern size_t raft_msg_encoded_size(const raft_msg *m);

/* encode into buf (of raft_msg_encoded_size() bytes); returns bytes written */
extern size_t raft_msg_encode(const raft_msg *m, uint64_t cluster_id,
							  uint8_t *buf);

/*
 * Decode one message.  On success *m is filled: entries' data point into
 * buf (which must outlive *m), the entries array and snapshot are allocated
 * with the allocator (NULL: malloc) and freed by raft_msg_free() with the
 * same allocator; raft_msg_free() is only for decoded messages, never for
 * those of a raft_ready.  cluster_id may be NULL.
 */
extern int	raft_msg_decode(const uint8_t *buf, size_t len,
							uint64_t *cluster_id, raft_msg *m,
							const raft_allocator *a);
extern void raft_msg_free(raft_msg *m, const raft_allocator *a);

/*
 * Check one message as raft_msg_decode() does (the same result for every
 * input, except that it never fails for memory) and fill only its
 * envelope: *envelope has every fixed field, and neither entries nor a
 * snapshot (n_entries 0, snapshot NULL).  Nothing is allocated.
 */
extern int	raft_msg_peek(const uint8_t *buf, size_t len,
						  uint64_t *cluster_id, raft_msg *envelope);

/* a configuration on its own (RAFT_ENTRY_CONF data), with a version byte */
extern size_t raft_conf_encoded_size(const raft_conf *conf);
extern size_t raft_conf_encode(const raft_conf *conf, uint8_t *buf);
extern int	raft_conf_decode(const uint8_t *buf, size_t len, raft_conf *conf);

/* one entry (for the driver's log storage) */
extern size_t raft_entry_encoded_size(const raft_entry *e);
extern size_t raft_entry_encode(const raft_entry *e, uint8_t *buf);
extern int	raft_entry_decode(const uint8_t *buf, size_t len, raft_entry *e);

#endif							/* RAFTABLE_RAFT_H */
