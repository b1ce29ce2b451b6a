/*
 * raftable.h
 *	  Declarations shared by raftable's PostgreSQL-side modules.
 *
 *	  raftable.c   _PG_init: settings, shared memory hooks, the worker
 *	  shmem.c      shared state: status for the views, inbox, requests
 *	  worker.c     the Raft background worker: event loop around the core
 *	  storage.c    durable log, hard state and snapshot in raftable tables
 *	  anchor.c     the identity's ties to its data directory
 *	  transport.c  outbound libpq connections to the peers
 *	  sqlfuncs.c   SQL-callable functions: membership, views, _deliver
 *	  changeset.c  what a log entry of table changes holds, and its format
 *	  capture.c    the leader's write path: capture, propose, wait, guard
 *	  ddl.c        DDL on replicated tables: replicated, or refused
 *	  apply.c      the apply worker: committed entries into the tables
 *	  readindex.c  read index rounds: the backends' and the worker's sides
 *	  reads.c      the read path: every read obeys its consistency level
 *	  waits.c      what each backend waits on raftable for (raftable.waits)
 *
 * The pure Raft core (src/core/) knows nothing of PostgreSQL; only the
 * worker drives it.  Backends never touch the core: they read what the
 * worker publishes in shared memory and hand it requests.
 */
#ifndef RAFTABLE_H
#define RAFTABLE_H

#include "postgres.h"

#include "core/raft.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"

#define RAFTABLE_VERSION "0.2"

/* SQLSTATEs of SPEC.md */
#define ERRCODE_RAFTABLE_UNAVAILABLE	MAKE_SQLSTATE('R','A','0','0','1')
#define ERRCODE_RAFTABLE_NOT_LEADER		MAKE_SQLSTATE('R','A','0','0','2')

/*
 * The largest change set one transaction may propose (its encoded row
 * images): an entry travels whole in one message through the peers'
 * inboxes, so it must stay well below RAFTABLE_INBOX_BYTES.
 */
#define RAFTABLE_MAX_CHANGE_BYTES (4 * 1024 * 1024)

/*
 * Symbols.  raftable.so is built with -fvisibility=hidden (Makefile), so
 * that none of its internal names (storage_load, raft_new, ...) can
 * collide with another library's in a backend: PostgreSQL 15 loads
 * libraries with their symbols global, and its PGDLLEXPORT is empty on
 * Linux.  Exported are only what PostgreSQL looks up by name: the magic
 * block, _PG_init, the background workers' entry points, and the SQL
 * functions with their info records, all named raftable_* (test/symbols.sh
 * checks it).  An SQL function is declared with RAFTABLE_FUNCTION(name)
 * instead of PG_FUNCTION_INFO_V1(name).
 */
#define RAFTABLE_EXPORT __attribute__((visibility("default")))

#define RAFTABLE_FUNCTION(name) \
extern RAFTABLE_EXPORT Datum name(PG_FUNCTION_ARGS); \
extern RAFTABLE_EXPORT const Pg_finfo_record *CppConcat(pg_finfo_,name)(void); \
PG_FUNCTION_INFO_V1(name)

/* ---------- settings (raftable.c) ---------- */
extern char *raftable_database;
extern int	raftable_election_timeout;	/* ms */
extern int	raftable_heartbeat_interval;	/* ms */
extern int	raftable_log_keep;	/* entries kept behind the applied index */
extern int	raftable_read_consistency;
extern int	raftable_max_staleness; /* ms */
extern int	raftable_read_timeout;	/* ms */
extern int	raftable_write_ack;
extern int	raftable_write_timeout; /* ms */

extern void raftable_check_preloaded(void);

/*
 * Running code with rights other than the caller's (privilege.c): a
 * security-restricted operation with search_path pinned to "pg_catalog,
 * pg_temp" and its own GUC nest level.  An error in between needs no
 * cleanup: transaction abort restores the user and the settings.
 */
typedef struct RaftableSavedUser
{
	Oid			userid;
	int			sec_context;
	int			nestlevel;
} RaftableSavedUser;

extern void raftable_switch_user(Oid role, RaftableSavedUser *saved);
extern void raftable_become_superuser(RaftableSavedUser *saved);
extern void raftable_restore_user(const RaftableSavedUser *saved);
extern void raftable_set_option(const char *name, const char *value);

extern void raftable_spi(const char *sql, int nargs, Oid *types, Datum *values);
extern SPIPlanPtr raftable_spi_prepare(const char *sql, int nargs, Oid *types);
extern int	raftable_spi_kept(SPIPlanPtr *plan, const char *sql, int nargs,
							  Oid *types, Datum *values);
extern void raftable_worker_session(void);

typedef enum RaftableReadConsistency
{
	RAFTABLE_READ_STRONG,
	RAFTABLE_READ_EVENTUAL,
	RAFTABLE_READ_BOUNDED,
} RaftableReadConsistency;

typedef enum RaftableWriteAck
{
	RAFTABLE_ACK_MAJORITY,
	RAFTABLE_ACK_ALL,
} RaftableWriteAck;

/* ---------- shared state (shmem.c) ---------- */

#define RAFTABLE_NAME_LEN	64		/* node names, NUL included */
#define RAFTABLE_CONNINFO_LEN 1024	/* conninfo with the password removed */
#define RAFTABLE_INBOX_BYTES (8 * 1024 * 1024)
#define RAFTABLE_MAX_REQUESTS 8
#define RAFTABLE_MAX_PROPOSALS 128
#define RAFTABLE_PROPOSAL_INLINE 2048	/* larger change sets go through DSM */
#define RAFTABLE_MAX_CONF_BYTES (1 + 4 + RAFT_MAX_MEMBERS * (11 + RAFT_MAX_ADDR))

/* one member as the views show it */
typedef struct RaftableMemberInfo
{
	uint64		id;
	char		name[RAFTABLE_NAME_LEN];
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* password stripped */
	bool		voter;
	bool		is_self;
	bool		reachable;		/* a connection to it is up (self: true) */
	bool		progress_known; /* leader only: match/lag below are real */
	uint64		match_index;
	uint64		lag_entries;
	uint64		applied_index;	/* as it last reported; 0: unknown */
	int64		last_contact_ms;	/* -1: never */
	uint64		stalled_at;		/* the entry its apply is stuck on; 0: none
								 * or unknown */
	int			stall_code;		/* ... its SQLSTATE */
} RaftableMemberInfo;

/* what the worker publishes after every cycle */
typedef struct RaftableStatus
{
	bool		worker_running;
	bool		in_cluster;		/* this node has a cluster identity */
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[RAFTABLE_NAME_LEN];
	int			role;			/* raft_role, or -1 for "none" */
	char		role_name[16];	/* as the views show it */
	bool		is_voter;
	uint64		term;
	uint64		leader_id;
	uint64		commit_index;
	uint64		applied_index;
	uint64		last_log_index;
	uint64		snapshot_index;
	uint64		term_start_index;	/* leader: first entry of its term */
	uint64		conf_index;		/* the configuration in force: its index */
	bool		conf_committed; /* ... and whether it is committed */
	TimestampTz leader_contact_at;	/* last contact with a leader; the view
									 * shows its age at read time */
	int			n_members;
	RaftableMemberInfo members[RAFT_MAX_MEMBERS];
} RaftableStatus;

/* cumulative since the postmaster started (the worker adds its deltas) */
typedef struct RaftableStats
{
	uint64		elections;
	uint64		leader_changes;
	uint64		proposals;
	uint64		commits;
	uint64		entries_applied;
	uint64		strong_reads;
	uint64		eventual_reads;
	uint64		bounded_reads;
	uint64		read_index_rounds;
	uint64		read_timeouts;
	uint64		write_timeouts;
	uint64		messages_sent;
	uint64		messages_received;
	uint64		snapshots_sent;
	uint64		snapshots_received;
	uint64		read_wait_us;	/* shown in ms */
} RaftableStats;

typedef enum RaftableRequestType
{
	RAFTABLE_REQ_CREATE_CLUSTER = 1,
	RAFTABLE_REQ_JOIN,			/* become a (future) member: identity only */
	RAFTABLE_REQ_LEAVE,			/* forget the cluster identity */
	RAFTABLE_REQ_ADD_LEARNER,	/* the worker promotes it once caught up */
	RAFTABLE_REQ_REMOVE,
	RAFTABLE_REQ_TRANSFER,
	RAFTABLE_REQ_GET_CONF,		/* the members with full conninfo */
} RaftableRequestType;

/* a request from a backend to the worker, and its answer */
typedef struct RaftableRequest
{
	bool		in_use;
	bool		done;
	uint64		generation;		/* which request the slot holds */
	int			type;			/* RaftableRequestType */
	uint64		node_id;
	uint64		cluster_id;
	char		name[RAFTABLE_NAME_LEN];
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* as recorded (never a password) */
	uint32		members_len;	/* JOIN: raft_conf_encode()d members */
	uint8		members[RAFTABLE_MAX_CONF_BYTES];
	/* answer */
	int			rc;				/* RAFT_OK or RAFT_E* */
	uint64		result;			/* node id, log index, ... */
	char		error[256];		/* detail when rc != 0 */
} RaftableRequest;

typedef enum RaftableProposalState
{
	RAFTABLE_PROP_FREE = 0,
	RAFTABLE_PROP_PENDING,		/* waiting for the worker to append it */
	RAFTABLE_PROP_CLAIMED,		/* the worker is appending it */
	RAFTABLE_PROP_ABANDONED,	/* the backend gave up while CLAIMED */
	RAFTABLE_PROP_REFUSED,		/* not appended: rc says why */
	RAFTABLE_PROP_APPENDED,		/* appended at (index, term); waiting */
	RAFTABLE_PROP_COMMITTED,	/* committed */
	RAFTABLE_PROP_LOST,			/* leadership lost first: outcome unknown */
} RaftableProposalState;

/*
 * A committing transaction's change set, handed to the worker to append
 * to the log, and then the slot the backend waits on until the entry is
 * committed (or its fate cannot be known).  The worker sets the backend's
 * latch at each change, so that a commit wakes just the transactions it
 * commits.  Small change sets travel inline, larger ones in a DSM segment
 * the backend owns until the worker has appended it.
 */
typedef struct RaftableProposal
{
	int			state;			/* RaftableProposalState */
	uint64		generation;
	Latch	   *latch;			/* the backend's */
	uint32		len;
	dsm_handle	handle;			/* DSM_HANDLE_INVALID: data[] holds it */
	int			rc;
	uint64		index;
	uint64		term;
	char		data[RAFTABLE_PROPOSAL_INLINE];
} RaftableProposal;

#define RAFTABLE_APPLIED_XIDS 64

/* what the apply worker publishes */
typedef struct RaftableApplyStatus
{
	Latch	   *latch;
	uint64		applied_index;
	uint64		durable_index;	/* applied, and flushed: what compaction
								 * may rely on (a batch that only skips
								 * marked entries commits asynchronously) */
	char		error[512];		/* the last error, with its table and log
								 * index; empty once apply succeeds again */
	char		error_brief[256];	/* its SQLSTATE, log index and table
									 * only, for roles without pg_monitor */
	uint64		stalled_at;		/* the entry that fails, while it does */
	int			stall_code;		/* ... and its SQLSTATE */

	/*
	 * Which transaction brought the applied index past which index, for
	 * the last RAFTABLE_APPLIED_XIDS commits (a ring): a reader that waited
	 * for an index learns whether its snapshot sees it (reads.c).  Indexes
	 * up to base_index were applied before the server started.
	 */
	uint64		base_index;
	bool		base_set;
	int			xids_next;
	uint64		xid_index[RAFTABLE_APPLIED_XIDS];
	TransactionId xids[RAFTABLE_APPLIED_XIDS];
} RaftableApplyStatus;

/*
 * A snapshot the Raft worker wants installed (the leader offered it), and
 * the apply worker's answer (snapshot.c).  Under lock.
 */
typedef struct RaftableSnapshotRequest
{
	uint64		generation;		/* asked */
	uint64		done_generation;	/* answered */
	bool		ok;
	uint64		min_index;		/* the offered snapshot's index */
	uint64		source_id;
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* as recorded (never a password) */
	uint64		installed_index;	/* the source's applied index copied */
} RaftableSnapshotRequest;

/* the last snapshot installed or being installed, for the view */
typedef struct RaftableSnapshotProgress
{
	char		phase[16];		/* connecting, copying, installing, done,
								 * failed; empty: none yet */
	uint64		source_id;
	uint64		source_index;
	int			tables_total;
	int			tables_done;
	char		current_table[2 * NAMEDATALEN + 2];
	uint64		rows_copied;
	uint64		bytes_copied;
	TimestampTz started_at;
	TimestampTz finished_at;
	char		error[256];		/* message of a failed attempt */
	int			error_code;		/* its SQLSTATE */
	char		error_detail[512];	/* its detail: the source's own error,
									 * shown to pg_monitor */
} RaftableSnapshotProgress;

typedef struct RaftableShared
{
	LWLock	   *lock;			/* status, members, requests */
	Latch	   *worker_latch;
	pid_t		worker_pid;
	RaftableStatus status;
	RaftableStats stats;
	ConditionVariable request_cv;	/* a request was answered */
	ConditionVariable status_cv;	/* status changed (commit, role, ...) */
	RaftableRequest requests[RAFTABLE_MAX_REQUESTS];
	uint64		request_generation;
	RaftableApplyStatus apply;	/* under lock */
	RaftableSnapshotRequest snapshot_req;	/* under lock */
	RaftableSnapshotProgress snapshot;	/* under lock */

	/* proposals, under proposal_lock */
	LWLock	   *proposal_lock;
	ConditionVariable proposal_cv;	/* a slot was freed */
	uint64		proposal_generation;
	RaftableProposal proposals[RAFTABLE_MAX_PROPOSALS];

	/*
	 * The last entry of this leader's term whose transaction gave up
	 * (40003) before knowing its fate: the entry may still commit, and
	 * then no later write may commit here before it is applied, or the
	 * two would reach the tables out of log order (capture.c's guard).
	 */
	uint64		abandoned_index;
	uint64		abandoned_term;

	/* inbox: peer messages from _deliver, framed as u32 length + bytes */
	LWLock	   *inbox_lock;
	uint64		inbox_head;		/* bytes ever written */
	uint64		inbox_tail;		/* bytes ever read */
	uint64		inbox_dropped;	/* messages dropped, inbox full */
	char		inbox[RAFTABLE_INBOX_BYTES];
} RaftableShared;

extern RaftableShared *raftable_shared;

extern void raftable_shmem_request(void);
extern void raftable_shmem_startup(void);
extern bool raftable_inbox_push(const uint8 *msg, uint32 len);
extern uint32 raftable_inbox_pop(uint8 *buf, uint32 bufsize);
extern void raftable_wake_worker(void);
extern void raftable_wake_apply(void);
extern RaftableStatus *raftable_status_copy(bool with_members);
extern void raftable_abandoned(uint64 index, uint64 term);
extern void raftable_error_not_leader(int sqlstate, const char *msg) pg_attribute_noreturn();

/* ---------- read index rounds (readindex.c) ---------- */
typedef enum RaftableReadCounter
{
	RAFTABLE_COUNT_STRONG,
	RAFTABLE_COUNT_EVENTUAL,
	RAFTABLE_COUNT_BOUNDED,
	RAFTABLE_COUNT_ROUNDS,
	RAFTABLE_COUNT_TIMEOUTS,
	RAFTABLE_COUNT_WAIT_US,
	RAFTABLE_READ_COUNTERS
} RaftableReadCounter;

extern void readindex_count(int counter, uint64 n);
extern void readindex_stats(RaftableStats *s);
extern Size readindex_shmem_size(void);
extern void readindex_shmem_init(void);
extern int64 readindex_now_us(void);
#define READINDEX_TIMED_OUT 1	/* readindex_round: no answer in time */
extern int	readindex_round(int64 deadline_us, uint64 *index);
extern bool readindex_proof(uint64 *index, int64 *age_us);
extern void readindex_start_rounds(raft *r, int64 stale_us);
extern void readindex_answer(uint64 round, uint64 index, int err);
extern void readindex_reset(void);
extern bool readindex_granted(uint64 from, uint64 hint_term, uint64 *index);
extern void readindex_publish_grant(const raft *r);

/* ---------- the read path (reads.c) ---------- */
extern void reads_define_settings(void);
extern void reads_init(void);
extern void reads_report_last_write(uint64 index);

/* ---------- what backends wait for (waits.c) ---------- */
typedef enum RaftableWaitKind
{
	RAFTABLE_WAIT_NONE = 0,
	RAFTABLE_WAIT_COMMIT,
	RAFTABLE_WAIT_READ_INDEX,
	RAFTABLE_WAIT_READ_AFTER_INDEX,
	RAFTABLE_WAIT_SNAPSHOT,
} RaftableWaitKind;

extern Size waits_shmem_size(void);
extern void waits_shmem_init(void);
extern void raftable_report_wait(int kind, uint64 index);

/* ---------- the worker (worker.c) ---------- */
extern RAFTABLE_EXPORT void raftable_worker_main(Datum arg);

/* ---------- the apply worker (apply.c) ---------- */
extern RAFTABLE_EXPORT void raftable_apply_main(Datum arg);
extern bool raftable_applying;	/* this process applies: capture nothing */
extern bool raftable_applied_visible(uint64 index, Snapshot snapshot);

/* ---------- snapshots (snapshot.c), in the apply worker ---------- */
extern TransactionId snapshot_install_xid;	/* the last install's */
extern uint64 snapshot_install(const char *conninfo, uint64 source_id,
							   uint64 min_index);
extern void snapshot_failed(const ErrorData *err);

/* ---------- capture (capture.c) and DDL (ddl.c), in backends ---------- */
extern void raftable_capture_init(void);
extern void raftable_ddl_init(void);
extern void capture_require_writable(void);
#define CAPTURE_DDL_NSETTINGS 6
extern const char *const capture_ddl_settings[CAPTURE_DDL_NSETTINGS];
extern void capture_ddl(Oid relid, const char *schema, const char *name,
						const char *tag, const char *sql);
extern void capture_replicate(Oid relid, const char *ddl);
extern void capture_unreplicate(Oid relid);
extern bool raftable_table_is_replicated(Oid relid);
extern bool raftable_any_replicated(void);
extern void ddl_check_replay(const char *sql, const char *tag, Oid relid);
extern Oid	ddl_replay_target(const char *sql, const char **tag);
extern void ddl_create_table(const char *schema, const char *name,
							 const char *owner, const char *script);

/* ---------- the identity's anchors (anchor.c), worker only ---------- */
typedef struct RaftableAnchor
{
	bool		recorded;		/* false: an identity from release 0.1 */
	uint64		system_identifier;
	uint32		timeline;
	char		slot[NAMEDATALEN];	/* "": none (slots unavailable) */
} RaftableAnchor;

extern void anchor_take(uint64 node_id, RaftableAnchor *a);
extern bool anchor_holds(uint64 node_id, const RaftableAnchor *a, char *why,
						 size_t len);
extern void anchor_drop_slots(uint64 keep_id);

/* ---------- storage (storage.c), worker only ---------- */
typedef struct RaftableIdentity
{
	bool		in_cluster;
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[RAFTABLE_NAME_LEN];
	char		self_conninfo[RAFTABLE_CONNINFO_LEN];
	RaftableAnchor anchor;
} RaftableIdentity;

extern Oid	storage_extension_oid(void);
extern bool storage_load(RaftableIdentity *id, raft_hard_state *hs,
						 raft_snapshot_meta *snap, raft_entry **entries,
						 size_t *n, uint64 *applied);
extern void storage_save_identity(const RaftableIdentity *id,
								  const raft_snapshot_meta *snap);
extern void storage_reset(void);
extern void storage_record_anchor(RaftableIdentity *id);
extern void storage_drop_stale_slots(uint64 keep_id);
extern void storage_persist(const raft_ready *rd, bool hs);

/* ---------- transport (transport.c), worker only ---------- */

/*
 * Outbound connections to the peers, one per peer, non-blocking.  The
 * worker queues encoded messages with transport_send(); they leave in
 * batches, one SQL call of raftable._deliver(bytea) per batch, several
 * calls in flight per connection (libpq pipeline mode).  A batch is a
 * sequence of (uint32 little-endian length, message bytes).
 */
extern int	transport_frame_next(const uint8 **p, size_t *left,
								 const uint8 **msg, uint32 *len);
extern void transport_frame_append(StringInfo buf, const uint8 *msg, uint32 len);
extern void transport_init(void);
extern void transport_shutdown(void);

/* this node's id: sent as application_name "raftable-node-<id>" */
extern void transport_set_self(uint64 id);

/* peers to talk to: id and conninfo as recorded; others dropped */
extern void transport_set_peer(uint64 id, const char *conninfo);
extern void transport_forget_peers_except(const uint64 *ids, int n);

extern void transport_send(uint64 to, const uint8 *msg, size_t len);

/* the sockets to wait on, and when they may have been replaced */
extern int	transport_wait_events(pgsocket *socks, int *events, int max);
extern uint64 transport_socket_epoch(void);

/* after a wait: progress connects, flush queues, read results, timeouts */
extern void transport_poll(void);
extern long transport_next_timeout_ms(void);	/* -1: none */

extern bool transport_peer_reachable(uint64 id);
extern uint64 transport_messages_sent(void);
extern uint64 transport_left_out(uint64 *by);

/* ---------- helpers (sqlfuncs.c) ---------- */
extern void raftable_require_everywhere(List *roles, Oid relid);
extern uint64 raftable_random_id(void);
extern void raftable_strip_password(const char *conninfo, char *out,
									size_t outlen);
extern void raftable_member_addr_encode(const char *name, const char *conninfo,
										char *addr, uint16 *addr_len);
extern void raftable_member_addr_decode(const char *addr, uint16 addr_len,
										char *name, size_t namelen,
										char *conninfo, size_t conninfolen);

#endif							/* RAFTABLE_H */
