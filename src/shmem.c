/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  raftable's shared memory: what the worker publishes for the views
 *	  and the inbox of peer messages; and the segment's layout, in which
 *	  the other protocols (proposal.c, request.c, readindex.c, peer.c,
 *	  waits.c) own their parts.
 *
 * One segment, asked for through shmem_request_hook and laid out in
 * shmem_startup_hook, with a named LWLock tranche ("raftable"): one lock
 * for the status (and the members' roles beside it, which peer.c lays
 * out), the apply status and the snapshot request; one for the inbox,
 * which every backend running raftable._deliver writes and the worker
 * reads (messages can be megabytes: too long a copy for a spinlock); one
 * for the proposal slots of committing transactions (proposal.c); one for
 * the request slots (request.c).
 *
 * IDENTIFICATION
 *	  src/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "peer.h"
#include "proposal.h"
#include "raftable.h"
#include "readindex.h"
#include "request.h"
#include "shmem.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"
#include "waits.h"

RaftableShared *raftable_shared = NULL;

static shmem_request_hook_type raftable_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type raftable_prev_shmem_startup_hook = NULL;

static void
raftable_shmem_request_hook(void)
{
	if (raftable_prev_shmem_request_hook)
		raftable_prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(RaftableShared)) + peer_shmem_size() +
						   proposal_shmem_size() + request_shmem_size() +
						   readindex_shmem_size() + waits_shmem_size());
	RequestNamedLWLockTranche("raftable", 4);
}

static void
raftable_shmem_startup_hook(void)
{
	bool		found;

	if (raftable_prev_shmem_startup_hook)
		raftable_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raftable_shared = ShmemInitStruct("raftable", sizeof(RaftableShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("raftable");

		memset(raftable_shared, 0, offsetof(RaftableShared, inbox));
		raftable_shared->lock = &locks[0].lock;
		raftable_shared->inbox_lock = &locks[1].lock;
		raftable_shared->status.role = -1;
		pg_atomic_init_u64(&raftable_shared->apply.applied_index, 0);
		pg_atomic_init_u64(&raftable_shared->member_since, PG_UINT64_MAX);
		pg_atomic_init_u64(&raftable_shared->apply.durable_index, 0);
		ConditionVariableInit(&raftable_shared->status_cv);
	}
	peer_shmem_init();
	proposal_shmem_init(&GetNamedLWLockTranche("raftable")[2].lock);
	request_shmem_init(&GetNamedLWLockTranche("raftable")[3].lock);
	readindex_shmem_init();
	waits_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* called from _PG_init while preloading */
void
raftable_shmem_request(void)
{
	raftable_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = raftable_shmem_request_hook;
	raftable_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = raftable_shmem_startup_hook;
}

/*
 * Wake the worker, or the apply worker.  The latch pointer is read without
 * the lock: a pointer is read whole, and a stale one still points at a
 * latch in shared memory (a PGPROC's), whose SetLatch is harmless when
 * its owner has gone.
 */
void
raftable_wake_worker(void)
{
	Latch	   *latch = raftable_shared->worker_latch;

	if (latch)
		SetLatch(latch);
}

void
raftable_wake_apply(void)
{
	Latch	   *latch = raftable_shared->apply.latch;

	if (latch)
		SetLatch(latch);
}

/*
 * A palloc'd copy of the status, with the apply worker's applied index.
 * The members (tens of kilobytes) only when asked for: writes check the
 * role at every statement.
 */
RaftableStatus *
raftable_status_copy(bool with_members)
{
	RaftableStatus *st;
	Size		len = with_members ? sizeof(RaftableStatus) :
		offsetof(RaftableStatus, members);

	raftable_check_preloaded();
	st = palloc(with_members ? sizeof(RaftableStatus) : len);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	memcpy(st, &raftable_shared->status, len);
	st->applied_index = pg_atomic_read_u64(&raftable_shared->apply.applied_index);
	LWLockRelease(raftable_shared->lock);
	if (!with_members)
		st->n_members = 0;
	return st;
}

/*
 * The error for a leader-only action on another node: errcode sqlstate
 * (RA002 or 25006), with a HINT naming the leader and its conninfo
 * (never a password: the views' copy has it stripped).
 */
void
raftable_error_not_leader(int sqlstate, const char *msg)
{
	RaftableStatus *st = raftable_status_copy(true);

	for (int i = 0; i < st->n_members; i++)
	{
		const RaftableMemberInfo *m = &st->members[i];

		if (m->id == st->leader_id && st->leader_id != st->node_id)
			ereport(ERROR,
					(errhidestmt(sqlstate == ERRCODE_RAFTABLE_NOT_LEADER),
					 errcode(sqlstate),
					 errmsg("%s", msg),
					 errhint("The leader is node \"%s\" (id %llu), conninfo: %s",
							 m->name, (unsigned long long) m->id, m->conninfo)));
	}
	ereport(ERROR,
			(errhidestmt(sqlstate == ERRCODE_RAFTABLE_NOT_LEADER),
			 errcode(sqlstate),
			 errmsg("%s", msg),
			 errhint("No leader is known at the moment; retry shortly.")));
	pg_unreachable();
}

/* copy len bytes into the ring at position pos (mod size) */
static void
inbox_write(uint64 pos, const void *src, uint32 len)
{
	uint64		off = pos % RAFTABLE_INBOX_BYTES;
	uint32		first = Min(len, RAFTABLE_INBOX_BYTES - off);

	memcpy(raftable_shared->inbox + off, src, first);
	if (first < len)
		memcpy(raftable_shared->inbox, (const char *) src + first, len - first);
}

static void
inbox_read(uint64 pos, void *dst, uint32 len)
{
	uint64		off = pos % RAFTABLE_INBOX_BYTES;
	uint32		first = Min(len, RAFTABLE_INBOX_BYTES - off);

	memcpy(dst, raftable_shared->inbox + off, first);
	if (first < len)
		memcpy((char *) dst + first, raftable_shared->inbox, len - first);
}

/*
 * Queue one peer message for the worker.  A full inbox drops the message
 * (Raft tolerates loss; the sender retransmits) and says so.
 */
bool
raftable_inbox_push(const uint8 *msg, uint32 len)
{
	RaftableShared *sh = raftable_shared;
	bool		ok = false;

	LWLockAcquire(sh->inbox_lock, LW_EXCLUSIVE);
	if (sh->inbox_head - sh->inbox_tail + sizeof(uint32) + len <= RAFTABLE_INBOX_BYTES)
	{
		inbox_write(sh->inbox_head, &len, sizeof(uint32));
		inbox_write(sh->inbox_head + sizeof(uint32), msg, len);
		sh->inbox_head += sizeof(uint32) + len;
		ok = true;
	}
	else
		sh->inbox_dropped++;
	LWLockRelease(sh->inbox_lock);
	return ok;
}

/*
 * Take the next message out of the inbox into buf.  Returns its length, or
 * 0 when the inbox is empty.  A message larger than bufsize is skipped
 * (the worker's buffer holds the largest message a peer may send).
 */
uint32
raftable_inbox_pop(uint8 *buf, uint32 bufsize)
{
	RaftableShared *sh = raftable_shared;
	uint32		len = 0;

	LWLockAcquire(sh->inbox_lock, LW_EXCLUSIVE);
	while (sh->inbox_tail < sh->inbox_head)
	{
		inbox_read(sh->inbox_tail, &len, sizeof(uint32));
		if (len <= bufsize)
			inbox_read(sh->inbox_tail + sizeof(uint32), buf, len);
		sh->inbox_tail += sizeof(uint32) + len;
		if (len <= bufsize)
			break;
		sh->inbox_dropped++;
		len = 0;
	}
	LWLockRelease(sh->inbox_lock);
	return len;
}

/* ---------- the status as backends see it ---------- */

RaftableStatus *
raftable_status_get(bool with_members, int wait_ms)
{
	RaftableStatus *st = raftable_status_copy(with_members);
	TimestampTz start = GetCurrentTimestamp();

	/*
	 * A worker that is starting (the server just started, or it exited
	 * because raftable.database did not exist yet and restarts a second
	 * later) gets wait_ms before this fails: membership calls wait, views
	 * and peer calls answer at once.
	 */
	while (!st->worker_running &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), wait_ms))
	{
		pfree(st);
		(void) ConditionVariableTimedSleep(&raftable_shared->status_cv, 100,
										   PG_WAIT_EXTENSION);
		st = raftable_status_copy(with_members);
	}
	ConditionVariableCancelSleep();
	if (!st->worker_running)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg("the raftable worker is not running"),
				 wait_ms > 0 ? errdetail("It did not start within %d seconds.", wait_ms / 1000) : 0,
				 errhint("Check that raftable.database (\"%s\") exists, and the server log; the worker restarts by itself.",
						 raftable_database)));
	return st;
}

/* membership and peer calls only make sense where the worker serves */
void
raftable_require_served_database(void)
{
	static bool served = false; /* a backend never changes database */
	char	   *db;

	if (served)
		return;
	db = get_database_name(MyDatabaseId);
	served = db != NULL && strcmp(db, raftable_database) == 0;
	if (!served)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("raftable serves database \"%s\", not this one", raftable_database),
				 errhint("Connect to database \"%s\", or set raftable.database.",
						 raftable_database)));
}

const RaftableMemberInfo *
raftable_status_member(const RaftableStatus *st, uint64 id)
{
	for (int i = 0; i < st->n_members; i++)
		if (st->members[i].id == id)
			return &st->members[i];
	return NULL;
}

/* this node has a cluster identity (it may not be a member yet: joining) */
void
raftable_require_cluster(const RaftableStatus *st)
{
	if (!st->in_cluster)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is not in a raftable cluster"),
				 errhint("Start one with raftable.create_cluster(), or add this node from the leader with raftable.add_node().")));
}

/* RA002 with a hint naming the leader, when we are not it */
void
raftable_require_leader(const RaftableStatus *st)
{
	raftable_require_cluster(st);
	if (st->role != RAFT_LEADER)
		raftable_error_not_leader(ERRCODE_RAFTABLE_NOT_LEADER,
								  "this node is not the raftable leader");
}

/* ---------- accessors, for the modules that do not own the layout ---------- */

bool
raftable_shmem_ready(void)
{
	return raftable_shared != NULL;
}

ConditionVariable *
raftable_status_cv(void)
{
	return &raftable_shared->status_cv;
}

bool
raftable_in_cluster(void)
{
	bool		in;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	in = raftable_shared->status.in_cluster;
	LWLockRelease(raftable_shared->lock);
	return in;
}

/* this node's applied index (no lock: see RaftableApplyStatus) */
uint64
raftable_applied_index(void)
{
	return pg_atomic_read_u64(&raftable_shared->apply.applied_index);
}

/*
 * Whether this node's list of replicated tables is the cluster's: it is in
 * no cluster, or has applied the log up to the configuration that made it
 * a member.  Before that (just added, or added back after a removal) its
 * catalog lists the tables of a state the cluster no longer has, or none,
 * while the tables themselves may hold rows from before: reads.c then
 * takes every table as possibly replicated.  Not known either until the
 * worker has loaded this node's identity after the server started.
 *
 * The applied index read here may, for one apply cycle after the node left
 * a cluster, still be that cluster's.  Added back to the same cluster, the
 * node's member_since is past its removal, so above that stale index; added
 * to another, the worker woke the apply worker when the identity went
 * (worker_publish), which publishes the new identity's index first.
 */
bool
raftable_tables_known(void)
{
	uint64		since = pg_atomic_read_u64(&raftable_shared->member_since);

	return since == 0 ||
		(since != PG_UINT64_MAX && raftable_applied_index() >= since);
}

/* raftable.stats' counters but the read ones (readindex.c has those) */
void
raftable_stats_copy(RaftableStats *s)
{
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	*s = raftable_shared->stats;
	LWLockRelease(raftable_shared->lock);
}

void
raftable_count_write_timeout(void)
{
	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	raftable_shared->stats.write_timeouts++;
	LWLockRelease(raftable_shared->lock);
}

/*
 * This node's last apply error ("" if none): in full (it may quote row
 * values and statements), or only its SQLSTATE, log index and table.
 */
void
raftable_apply_error(bool full, char *buf, size_t len)
{
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	strlcpy(buf, full ? raftable_shared->apply.error : raftable_shared->apply.error_brief,
			len);
	LWLockRelease(raftable_shared->lock);
}
