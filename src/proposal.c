/*-------------------------------------------------------------------------
 *
 * proposal.c
 *	  The proposal slots: the shared-memory protocol by which a committing
 *	  transaction hands its change set to the Raft worker, and learns what
 *	  became of the entry.  This file owns every transition of a slot, on
 *	  both sides (as syncrep.c owns the commit wait).
 *
 * A slot's states, and who moves it (all under the slots' lock):
 *
 *	FREE	  -> PENDING	backend: proposal_append, with the change set
 *	PENDING   -> FREE		backend: the worker did not take it in time
 *	PENDING   -> CLAIMED	worker: proposal_take; the backend can no
 *							longer withdraw it
 *	CLAIMED   -> APPENDED	worker: in the log at (index, term)
 *			  -> REFUSED	worker: not appended (not the leader, too big)
 *			  -> ABANDONED	backend: gave up while the worker appends
 *	ABANDONED -> FREE		worker: an appended entry is recorded as
 *							abandoned first
 *	APPENDED  -> COMMITTED	worker: proposal_settle, commit index reached
 *							in the entry's term, while leader
 *			  -> LOST		worker: a new term or role came first
 *	PENDING, CLAIMED -> REFUSED   worker: exiting
 *	any       -> FREE		backend: proposal_release at transaction end;
 *							APPENDED (and COMMITTED, on abort) is recorded
 *							as abandoned first
 *
 * Each use of a slot has a generation: a backend that finds another
 * generation in its slot knows the worker gave it up (LOST).  The worker
 * sets the backend's latch at every change it makes, so a commit wakes
 * just the transactions it commits.  Small change sets travel inline,
 * larger ones in a DSM segment the backend keeps attached until the worker
 * has appended it.
 *
 * An abandoned entry (its transaction gave up, 40003, before knowing its
 * fate) may still commit; until it is applied, no later write may commit
 * on this leader in that term, or the two would reach the tables out of
 * log order.  The last one is kept here; capture.c's guard waits for it
 * (proposal_writable_from).
 *
 * IDENTIFICATION
 *	  src/proposal.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "proposal.h"
#include "raftable.h"
#include "status.h"
#include "storage/condition_variable.h"
#include "storage/dsm.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#define PROPOSAL_SLOTS 128
#define PROPOSAL_INLINE 2048	/* larger change sets go through DSM */

typedef enum ProposalState
{
	PROP_FREE = 0,
	PROP_PENDING,
	PROP_CLAIMED,
	PROP_ABANDONED,
	PROP_REFUSED,
	PROP_APPENDED,
	PROP_COMMITTED,
	PROP_LOST,
} ProposalState;

typedef struct ProposalSlot
{
	ProposalState state;
	uint64		generation;
	Latch	   *latch;			/* the backend's */
	uint32		len;
	dsm_handle	handle;			/* DSM_HANDLE_INVALID: data[] holds it */
	int			rc;
	uint64		index;
	uint64		term;
	char		data[PROPOSAL_INLINE];
} ProposalSlot;

typedef struct ProposalShared
{
	LWLock	   *lock;			/* every field, every slot */
	ConditionVariable freed;	/* a slot became FREE */
	uint64		generation;		/* the last one handed out */
	uint64		abandoned_index;	/* the last abandoned entry */
	uint64		abandoned_term;
	ProposalSlot slots[PROPOSAL_SLOTS];
} ProposalShared;

static ProposalShared *proposal_shared = NULL;

/* backend: the slot this transaction holds, from its proposal to its end */
static ProposalSlot *proposal_held = NULL;
static uint64 proposal_held_gen = 0;

Size
proposal_shmem_size(void)
{
	return MAXALIGN(sizeof(ProposalShared));
}

void
proposal_shmem_init(LWLock *lock)
{
	bool		found;

	proposal_shared = ShmemInitStruct("raftable proposals", sizeof(ProposalShared),
									  &found);
	if (!found)
	{
		memset(proposal_shared, 0, sizeof(ProposalShared));
		proposal_shared->lock = lock;
		ConditionVariableInit(&proposal_shared->freed);
	}
}

/* record an abandoned entry; the caller holds the lock exclusively */
static void
proposal_note_abandoned(uint64 index, uint64 term)
{
	ProposalShared *sh = proposal_shared;

	if (term > sh->abandoned_term ||
		(term == sh->abandoned_term && index > sh->abandoned_index))
	{
		sh->abandoned_term = term;
		sh->abandoned_index = index;
	}
}

/* ---------- backend side ---------- */

/* the held slot's state (LOST if the worker gave it up), and its answer */
static ProposalState
proposal_held_state(int *rc, uint64 *index, uint64 *term)
{
	ProposalState state;

	LWLockAcquire(proposal_shared->lock, LW_SHARED);
	state = proposal_held->generation == proposal_held_gen ?
		proposal_held->state : PROP_LOST;
	if (rc)
		*rc = proposal_held->rc;
	if (index)
		*index = proposal_held->index;
	if (term)
		*term = proposal_held->term;
	LWLockRelease(proposal_shared->lock);
	return state;
}

/*
 * Wait on our latch until the held slot leaves state `from`, for at most
 * until start + raftable.write_timeout; returns the new state, or -1 on
 * timeout.  The worker sets our latch at every change of the slot.
 */
static int
proposal_wait(ProposalState from, TimestampTz start, int *rc, uint64 *index,
			  uint64 *term)
{
	for (;;)
	{
		ProposalState state;
		long		left;

		ResetLatch(MyLatch);
		state = proposal_held_state(rc, index, term);
		if (state != from)
			return state;
		left = raftable_write_timeout -
			(long) ((GetCurrentTimestamp() - start) / 1000);
		if (left <= 0)
			return -1;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);

		/*
		 * A cancel (or statement_timeout) cannot undo an entry the log may
		 * commit: as synchronous replication does, say so and wait on, for
		 * raftable.write_timeout at most.  Termination still ends it.
		 */
		if (QueryCancelPending)
		{
			QueryCancelPending = false;
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("canceling the wait for the raftable log is not possible"),
					 errdetail("The transaction's fate is being decided by the log; waiting for it, for raftable.write_timeout at most.")));
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/* take a free slot for data (inline, or the segment's handle) */
static void
proposal_take_slot(const char *data, int len, dsm_segment *seg, TimestampTz start)
{
	ProposalShared *sh = proposal_shared;

	for (;;)
	{
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		for (int i = 0; i < PROPOSAL_SLOTS && proposal_held == NULL; i++)
			if (sh->slots[i].state == PROP_FREE)
			{
				ProposalSlot *p = &sh->slots[i];

				p->state = PROP_PENDING;
				p->generation = proposal_held_gen = ++sh->generation;
				p->latch = MyLatch;
				p->len = len;
				p->handle = seg ? dsm_segment_handle(seg) : DSM_HANDLE_INVALID;
				if (seg == NULL)
					memcpy(p->data, data, len);
				proposal_held = p;
			}
		LWLockRelease(sh->lock);
		if (proposal_held != NULL)
			break;
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), raftable_write_timeout))
			ereport(ERROR,
					(errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
					 errmsg("too many transactions are committing at once"),
					 errdetail("All %d proposal slots stayed busy for raftable.write_timeout.",
							   PROPOSAL_SLOTS)));
		ConditionVariableTimedSleep(&sh->freed, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Hand the worker an entry to append and wait, for raftable.write_timeout
 * at most, until it is appended or refused.  The slot stays held for
 * proposal_wait_committed() until proposal_release().  WITHDRAWN means the
 * worker never took it; TIMED_OUT that it did, and its fate is unknown.
 */
ProposalOutcome
proposal_append(const char *data, int len, int *rc, uint64 *index, uint64 *term)
{
	TimestampTz start = GetCurrentTimestamp();
	dsm_segment *seg = NULL;
	int			state;

	Assert(proposal_held == NULL);
	*rc = RAFT_OK;
	if (len > PROPOSAL_INLINE)
	{
		seg = dsm_create(len, 0);
		memcpy(dsm_segment_address(seg), data, len);
	}
	PG_TRY();
	{
		proposal_take_slot(data, len, seg, start);
		raftable_wake_worker();
		state = proposal_wait(PROP_PENDING, start, rc, index, term);
		if (state == PROP_CLAIMED)
			state = proposal_wait(PROP_CLAIMED, start, rc, index, term);
	}
	PG_FINALLY();
	{
		if (seg)
			dsm_detach(seg);
	}
	PG_END_TRY();

	if (state == -1)
	{
		/* not taken yet: withdraw it, and nothing happened */
		LWLockAcquire(proposal_shared->lock, LW_EXCLUSIVE);
		if (proposal_held->generation == proposal_held_gen &&
			proposal_held->state == PROP_PENDING)
		{
			proposal_held->state = PROP_FREE;
			proposal_held = NULL;
		}
		LWLockRelease(proposal_shared->lock);
		if (proposal_held == NULL)
		{
			ConditionVariableBroadcast(&proposal_shared->freed);
			return PROPOSAL_WITHDRAWN;
		}
		return PROPOSAL_TIMED_OUT;
	}
	switch (state)
	{
		case PROP_REFUSED:
			return PROPOSAL_REFUSED;
		case PROP_APPENDED:
			return PROPOSAL_APPENDED;
		case PROP_COMMITTED:
			return PROPOSAL_COMMITTED;
		default:
			return PROPOSAL_LOST;
	}
}

/*
 * Wait, for raftable.write_timeout at most, until the held slot's entry is
 * committed (COMMITTED), or its outcome cannot be known here (LOST), or
 * the time is up (TIMED_OUT).
 */
ProposalOutcome
proposal_wait_committed(void)
{
	int			state = proposal_wait(PROP_APPENDED, GetCurrentTimestamp(),
									  NULL, NULL, NULL);

	if (state == PROP_COMMITTED)
		return PROPOSAL_COMMITTED;
	return state == -1 ? PROPOSAL_TIMED_OUT : PROPOSAL_LOST;
}

/*
 * Let go of the held slot at the end of the transaction.  A transaction
 * that aborts after its entry left leaves that entry to the apply worker:
 * it may still commit (APPENDED), or has committed in the log while the
 * local commit failed after it (COMMITTED: a full NOTIFY queue, a
 * terminate during the write_ack = all wait).  Either way it is recorded
 * as abandoned, so that later writes wait until it is applied.
 */
void
proposal_release(bool aborted)
{
	ProposalShared *sh = proposal_shared;

	if (proposal_held == NULL)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (proposal_held->generation == proposal_held_gen)
	{
		/* one being appended right now is the worker's to record */
		if (proposal_held->state == PROP_CLAIMED)
			proposal_held->state = PROP_ABANDONED;
		else
		{
			if (proposal_held->state == PROP_APPENDED ||
				(aborted && proposal_held->state == PROP_COMMITTED))
				proposal_note_abandoned(proposal_held->index, proposal_held->term);
			proposal_held->state = PROP_FREE;
		}
	}
	LWLockRelease(sh->lock);
	proposal_held = NULL;
	ConditionVariableBroadcast(&sh->freed);
}

/*
 * The index a leader in `term`, whose term began at term_start_index, must
 * have applied before a write may commit: its term's first entry, or the
 * last abandoned entry of that term if later.
 */
uint64
proposal_writable_from(uint64 term, uint64 term_start_index)
{
	uint64		need;

	LWLockAcquire(proposal_shared->lock, LW_SHARED);
	need = proposal_shared->abandoned_term == term ?
		Max(term_start_index, proposal_shared->abandoned_index) :
		term_start_index;
	LWLockRelease(proposal_shared->lock);
	return need;
}

/* ---------- the Raft worker's side ---------- */

/*
 * Append every PENDING slot's change set to the log through the core (no
 * core: refused), and tell each backend.  Returns whether any was taken.
 */
bool
proposal_take(raft *r)
{
	ProposalShared *sh = proposal_shared;
	uint8	   *data = NULL;	/* an inline change set's copy, when needed */
	bool		took = false;

	for (int i = 0; i < PROPOSAL_SLOTS; i++)
	{
		ProposalSlot *p = &sh->slots[i];
		uint64		gen;
		uint32		len;
		dsm_handle	handle;
		dsm_segment *seg = NULL;
		const void *bytes;
		raft_index	index = 0;
		raft_term	term = 0;
		int			rc;

		/*
		 * Unlocked peek, read again under the lock: a slot that just turned
		 * PENDING is seen at the next call, which the backend's wake-up
		 * brings.
		 */
		if (p->state != PROP_PENDING)
			continue;
		if (data == NULL)
			data = palloc(PROPOSAL_INLINE);
		bytes = data;
		/* claimed: from now on the backend cannot withdraw it */
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		gen = p->generation;
		len = p->len;
		handle = p->handle;
		rc = p->state == PROP_PENDING ? RAFT_OK : RAFT_EINVAL;
		if (rc == RAFT_OK)
		{
			p->state = PROP_CLAIMED;
			if (handle == DSM_HANDLE_INVALID)
				memcpy(data, p->data, len);
		}
		LWLockRelease(sh->lock);
		if (rc != RAFT_OK)
			continue;
		if (handle != DSM_HANDLE_INVALID)
		{
			/* the backend may have given up and detached already */
			seg = dsm_attach(handle);
			bytes = seg ? dsm_segment_address(seg) : NULL;
		}
		if (r == NULL)
			rc = RAFT_ENOLEADER;
		else if (bytes == NULL)
			rc = RAFT_EINVAL;
		else
			rc = raft_propose(r, RAFT_ENTRY_NORMAL, bytes, len, &index, &term);
		if (seg)
			dsm_detach(seg);
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		if (p->generation == gen && p->state == PROP_CLAIMED)
		{
			p->rc = rc;
			p->index = index;
			p->term = term;
			p->state = rc == RAFT_OK ? PROP_APPENDED : PROP_REFUSED;
			SetLatch(p->latch);
		}
		else if (p->generation == gen && p->state == PROP_ABANDONED)
		{
			if (rc == RAFT_OK)
				proposal_note_abandoned(index, term);
			p->state = PROP_FREE;
		}
		LWLockRelease(sh->lock);
		ConditionVariableBroadcast(&sh->freed);
		took = true;
	}
	if (data != NULL)
		pfree(data);
	return took;
}

/*
 * Decide the fate of every APPENDED entry from the core's status st: on
 * this leader, in the entry's term, a commit index that reaches it
 * commits it; another term or role means its outcome cannot be known
 * here.  A worker that exits (st unused) refuses what it has not
 * appended and gives up the rest.
 */
void
proposal_settle(const raft_status *st, bool exiting)
{
	ProposalShared *sh = proposal_shared;

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < PROPOSAL_SLOTS; i++)
	{
		ProposalSlot *p = &sh->slots[i];

		if ((p->state == PROP_PENDING || p->state == PROP_CLAIMED) && exiting)
		{
			p->rc = RAFT_ELEADERLOST;
			p->state = PROP_REFUSED;
			SetLatch(p->latch);
		}
		if (p->state != PROP_APPENDED)
			continue;
		if (!exiting && st->role == RAFT_LEADER && st->term == p->term)
		{
			if (st->commit < p->index)
				continue;
			p->state = PROP_COMMITTED;
		}
		else
			p->state = PROP_LOST;
		SetLatch(p->latch);
	}
	LWLockRelease(sh->lock);
}
