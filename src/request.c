/*-------------------------------------------------------------------------
 *
 * request.c
 *	  The request slots: the shared-memory protocol by which a backend
 *	  hands the Raft worker a request (create or join a cluster, add or
 *	  remove a member, transfer the leadership, read the configuration)
 *	  and waits for its answer.  This file owns every transition of a
 *	  slot, on both sides.
 *
 *	backend:  free -> in_use (request_submit), wake the worker, wait for
 *			  done; in_use -> free when it has the answer or gives up
 *	worker:   in_use, not done -> done, with the answer (request_serve),
 *			  unless the slot now holds another request (generation);
 *			  every unanswered one -> done with an error when it exits
 *			  (request_abandon_all)
 *
 * The worker handles a request on a copy, outside the lock: a handler may
 * write to storage or talk to the core, and the asker may give up
 * meanwhile.  Requests are rare (membership changes), so one condition
 * variable serves both "a slot is free" and "an answer is in".
 *
 * IDENTIFICATION
 *	  src/request.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "raftable.h"
#include "request.h"
#include "status.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define REQUEST_SLOTS 8

/* how long the worker may take to answer a request */
#define REQUEST_WAIT_MS	(60 * 1000)

typedef struct RequestShared
{
	LWLock	   *lock;			/* every slot */
	ConditionVariable cv;		/* a slot was freed, or answered */
	uint64		generation;		/* the last one handed out */
	RaftableRequest slots[REQUEST_SLOTS];
} RequestShared;

static RequestShared *request_shared = NULL;

Size
request_shmem_size(void)
{
	return MAXALIGN(sizeof(RequestShared));
}

void
request_shmem_init(LWLock *lock)
{
	bool		found;

	request_shared = ShmemInitStruct("raftable requests", sizeof(RequestShared),
									 &found);
	if (!found)
	{
		memset(request_shared, 0, sizeof(RequestShared));
		request_shared->lock = lock;
		ConditionVariableInit(&request_shared->cv);
	}
}

/* ---------- backend side ---------- */

/*
 * Hand the worker a request and wait for its answer.  Returns a palloc'd
 * copy of the answered request.
 */
RaftableRequest *
request_submit(const RaftableRequest *in)
{
	RequestShared *sh = request_shared;
	RaftableRequest *out = palloc(sizeof(RaftableRequest));
	int			slot = -1;

	for (;;)
	{
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		for (int i = 0; i < REQUEST_SLOTS && slot < 0; i++)
			if (!sh->slots[i].in_use)
			{
				slot = i;
				memcpy(&sh->slots[i], in, sizeof(RaftableRequest));
				sh->slots[i].in_use = true;
				sh->slots[i].done = false;
				sh->slots[i].generation = ++sh->generation;
			}
		LWLockRelease(sh->lock);
		if (slot >= 0)
			break;
		ConditionVariableTimedSleep(&sh->cv, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	raftable_wake_worker();

	PG_TRY();
	{
		TimestampTz start = GetCurrentTimestamp();

		for (;;)
		{
			bool		done;

			LWLockAcquire(sh->lock, LW_SHARED);
			done = sh->slots[slot].done;
			if (done)
				memcpy(out, &sh->slots[slot], sizeof(RaftableRequest));
			LWLockRelease(sh->lock);
			if (done)
				break;
			if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), REQUEST_WAIT_MS))
				ereport(ERROR,
						(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
						 errmsg("the raftable worker did not answer in time"),
						 errhint("Check the server log.")));
			ConditionVariableTimedSleep(&sh->cv, 1000, PG_WAIT_EXTENSION);
		}
		ConditionVariableCancelSleep();
	}
	PG_FINALLY();
	{
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		sh->slots[slot].in_use = false;
		LWLockRelease(sh->lock);
		ConditionVariableBroadcast(&sh->cv);	/* a slot is free */
	}
	PG_END_TRY();
	return out;
}

/* ---------- the Raft worker's side ---------- */

/* is a request waiting for an answer? */
bool
request_pending(void)
{
	bool		any = false;

	LWLockAcquire(request_shared->lock, LW_SHARED);
	for (int i = 0; i < REQUEST_SLOTS && !any; i++)
		any = request_shared->slots[i].in_use && !request_shared->slots[i].done;
	LWLockRelease(request_shared->lock);
	return any;
}

/* fill in the answer on the worker's copy (handlers call this) */
void
request_answer(RaftableRequest *req, int rc, uint64 result, const char *error)
{
	req->rc = rc;
	req->result = result;
	strlcpy(req->error, error ? error : "", sizeof(req->error));
	req->done = true;
}

/*
 * Answer every waiting request: handle() works on a copy and answers it
 * with request_answer(); the answer goes back into the slot if it still
 * holds that request.
 */
void
request_serve(RequestHandler handle)
{
	RequestShared *sh = request_shared;
	RaftableRequest *req = NULL;	/* the copy: 70 kB, only when needed */

	for (int i = 0; i < REQUEST_SLOTS; i++)
	{
		RaftableRequest *slot = &sh->slots[i];
		bool		pending;

		/* unlocked peek, read again under the lock */
		if (!slot->in_use || slot->done)
			continue;
		if (req == NULL)
			req = palloc(sizeof(RaftableRequest));
		LWLockAcquire(sh->lock, LW_SHARED);
		pending = slot->in_use && !slot->done;
		if (pending)
			memcpy(req, slot, sizeof(RaftableRequest));
		LWLockRelease(sh->lock);
		if (!pending)
			continue;
		handle(req);
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		/* the asker may have given up, and another taken the slot */
		if (slot->in_use && !slot->done && slot->generation == req->generation)
		{
			slot->rc = req->rc;
			slot->result = req->result;
			slot->members_len = req->members_len;
			if (req->members_len)
				memcpy(slot->members, req->members, req->members_len);
			strlcpy(slot->error, req->error, sizeof(slot->error));
			slot->done = true;
		}
		LWLockRelease(sh->lock);
		ConditionVariableBroadcast(&sh->cv);
	}
	if (req != NULL)
		pfree(req);
}

/* the worker exits: answer what it leaves behind, so no backend waits */
void
request_abandon_all(const char *why)
{
	RequestShared *sh = request_shared;

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < REQUEST_SLOTS; i++)
		if (sh->slots[i].in_use && !sh->slots[i].done)
			request_answer(&sh->slots[i], RAFT_ELEADERLOST, 0, why);
	LWLockRelease(sh->lock);
	ConditionVariableBroadcast(&sh->cv);
}
