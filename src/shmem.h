/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The shared-memory layout (shmem.c) that the worker, the apply worker
 *	  and the backends share.  Internal: only the modules that own a part
 *	  of it include this file (shmem.c, worker.c for the status, apply.c
 *	  for the apply status, snapshot.c for the snapshot's, peer.c for the
 *	  members' roles); the others go through status.h.
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
#include "status.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#define RAFTABLE_INBOX_BYTES (8 * 1024 * 1024)

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

	/*
	 * The first log index whose configuration holds this node, in its
	 * current identity: until it has applied that far, its list of
	 * replicated tables is not the cluster's (raftable_tables_known).  0:
	 * in no cluster; PG_UINT64_MAX: not a member yet, or the worker has
	 * not loaded the identity yet.  The worker alone writes it; anyone
	 * reads it without the lock.
	 */
	pg_atomic_uint64 member_since;
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

#endif							/* RAFTABLE_SHMEM_H */
