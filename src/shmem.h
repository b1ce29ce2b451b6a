/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The shared-memory layout that the worker, the apply worker and the
 *	  backends share (shmem.c), and the helpers around it.  Internal: only
 *	  the modules that own a part of it include this file.
 *
 * IDENTIFICATION
 *	  src/shmem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_SHMEM_H
#define RAFTABLE_SHMEM_H

#include "core/raft.h"
#include "raftable.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#define RAFTABLE_NAME_LEN	64		/* node names, NUL included */
#define RAFTABLE_CONNINFO_LEN 1024	/* conninfo with the password removed */
#define RAFTABLE_INBOX_BYTES (8 * 1024 * 1024)
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

#define RAFTABLE_APPLIED_XIDS 64

/* what the apply worker publishes */
typedef struct RaftableApplyStatus
{
	Latch	   *latch;

	/*
	 * The applied index, and its flushed part: what compaction may rely on
	 * (a batch that only skips marked entries commits asynchronously).
	 * The apply worker alone writes them, under the lock (beside the xids
	 * below); anyone reads them without it.
	 */
	pg_atomic_uint64 applied_index;
	pg_atomic_uint64 durable_index;
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
	LWLock	   *lock;			/* status, members, apply, snapshot */
	Latch	   *worker_latch;
	pid_t		worker_pid;
	RaftableStatus status;
	RaftableStats stats;
	ConditionVariable status_cv;	/* status changed (commit, role, ...) */
	RaftableApplyStatus apply;	/* under lock */
	RaftableSnapshotRequest snapshot_req;	/* under lock */
	RaftableSnapshotProgress snapshot;	/* under lock */

	/* inbox: peer messages from _deliver, framed as u32 length + bytes */
	LWLock	   *inbox_lock;
	uint64		inbox_head;		/* bytes ever written */
	uint64		inbox_tail;		/* bytes ever read */
	uint64		inbox_dropped;	/* messages dropped, inbox full */
	char		inbox[RAFTABLE_INBOX_BYTES];
} RaftableShared;

extern RaftableShared *raftable_shared;

extern void raftable_shmem_request(void);
extern bool raftable_inbox_push(const uint8 *msg, uint32 len);
extern uint32 raftable_inbox_pop(uint8 *buf, uint32 bufsize);
extern void raftable_wake_worker(void);
extern void raftable_wake_apply(void);
extern RaftableStatus *raftable_status_copy(bool with_members);
extern RaftableStatus *raftable_status_get(bool with_members, int wait_ms);
extern const RaftableMemberInfo *raftable_status_member(const RaftableStatus *st,
														uint64 id);
extern void raftable_require_served_database(void);
extern void raftable_require_cluster(const RaftableStatus *st);
extern void raftable_require_leader(const RaftableStatus *st);
extern void raftable_error_not_leader(int sqlstate, const char *msg) pg_attribute_noreturn();

#endif							/* RAFTABLE_SHMEM_H */
