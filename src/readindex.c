/*-------------------------------------------------------------------------
 *
 * readindex.c
 *	  The shared-memory protocol between backends that need a read index
 *	  and the Raft worker that obtains it (ReadIndex, dissertation §6.4).
 *	  This file owns every transition of that state, on both sides.
 *
 * Requests are batched into rounds, numbered 1, 2, ...: a backend asks for
 * the round after the last one started (so the round that serves it is
 * one that started after it asked, as linearizability needs), the worker
 * starts a round when one is asked for and fewer than RI_MAX_INFLIGHT are
 * in flight (or the last one is older than an election timeout: its
 * message may be lost), and the core answers each round once, with the
 * index or an error.  A
 * round that finishes serves every backend that asked for it or an
 * earlier one; so one quorum round serves all the reads waiting at that
 * moment, on this node (the leader's core batches the rounds of its
 * followers in turn).
 *
 *	backend:  want = started + 1; asked = max(asked, want); wake worker;
 *			  sleep until done >= want; take (index, error) of round 'done'
 *	worker:   asked > started and (few in flight or stale):
 *				started += ..., raft_read_index(ctx = started)
 *			  Ready.reads[ctx]: done = max(done, ctx), with its result
 *
 * A leader answers its followers' requests.  When a request alone
 * confirms the leader's term (three voters: see step_leader in the core),
 * the backend running raftable._deliver answers it itself, from the grant
 * the worker publishes here (raft_get_read_grant), and the answer goes
 * back as the call's result: no wake-up of the leader's worker, and no
 * call back to the follower.  That is the same answer the core would give,
 * provided the grant is never newer in term, nor older in commit, than
 * what the rest of the world has been told:
 *
 *	- the worker publishes it before it sends any message after a step
 *	  (worker_cycle), so a leader that moved to a newer term, or voted in
 *	  one, has withdrawn its grant before anyone can hear of it;
 *	- and before it tells a writer its entry committed
 *	  (worker_settle_proposals), so the index answered covers every write
 *	  acknowledged before the request arrived.
 *
 * A round that succeeded also proves how fresh this node's state is once
 * it has applied the round's index: every write committed before the round
 * started is in it.  Bounded reads use that proof (reads.c), measured on
 * this node's monotonic clock from the round's start: no other node's
 * clock, and no heartbeat, enters it.
 *
 * IDENTIFICATION
 *	  src/readindex.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "raftable.h"
#include "readindex.h"
#include "status.h"
#include "storage/condition_variable.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/wait_event.h"

/* rounds whose start time is remembered, for the freshness proof */
#define RI_STARTS 16

/*
 * Rounds in flight at once.  One: a read that just missed a round waits
 * for it to end, and joins the next one with every read that arrived
 * meanwhile.  Measured with make bench (8 clients on a follower of three
 * nodes on two CPUs), four in flight made rounds smaller (0.48 rounds per
 * read instead of 0.21) and strong reads slower, the round's messages
 * costing more than the wait they saved.
 */
#define RI_MAX_INFLIGHT 1

/*
 * Backends waiting for round n sleep on cv[n % RI_CVS], so the end of a
 * round wakes only the backends it serves: those already waiting for the
 * next round (most of them, under load) sleep on.
 */
#define RI_CVS 4

typedef struct ReadIndexShared
{
	slock_t		mutex;
	uint64		asked;			/* the highest round a backend waits for */
	uint64		started;		/* the highest round the worker started */
	uint64		done;			/* the highest round answered */
	uint64		done_index;		/* ... its read index, if it succeeded */
	int			done_err;		/* ... 0, or a raft error */
	uint64		start_gen[RI_STARTS];	/* round -> start, as a ring */
	int64		start_us[RI_STARTS];
	/* the freshness proof: the last successful round's start and index */
	int64		proof_us;
	uint64		proof_index;
	ConditionVariable cv[RI_CVS];	/* round n was answered: cv[n % RI_CVS] */

	/* the leader's grant (raft_get_read_grant), for _deliver */
	slock_t		grant_mutex;
	raft_read_grant grant;

	/* raftable.stats' read counters: atomics, bumped by every read */
	pg_atomic_uint64 counters[RAFTABLE_READ_COUNTERS];
} ReadIndexShared;

static ReadIndexShared *ri_shared = NULL;

/* microseconds on this node's monotonic clock */
int64
readindex_now_us(void)
{
	instr_time	t;

	INSTR_TIME_SET_CURRENT(t);
	return (int64) INSTR_TIME_GET_MICROSEC(t);
}

Size
readindex_shmem_size(void)
{
	return MAXALIGN(sizeof(ReadIndexShared));
}

void
readindex_shmem_init(void)
{
	bool		found;

	ri_shared = ShmemInitStruct("raftable read index", sizeof(ReadIndexShared), &found);
	if (!found)
	{
		memset(ri_shared, 0, sizeof(ReadIndexShared));
		SpinLockInit(&ri_shared->mutex);
		SpinLockInit(&ri_shared->grant_mutex);
		for (int i = 0; i < RI_CVS; i++)
			ConditionVariableInit(&ri_shared->cv[i]);
		for (int i = 0; i < RAFTABLE_READ_COUNTERS; i++)
			pg_atomic_init_u64(&ri_shared->counters[i], 0);
	}
}

/* ---------- counters ---------- */

/* add n to a read counter (RaftableReadCounter) without a lock */
void
readindex_count(int counter, uint64 n)
{
	pg_atomic_fetch_add_u64(&ri_shared->counters[counter], n);
}

/* the read counters into raftable.stats' row */
void
readindex_stats(RaftableStats *s)
{
	s->strong_reads = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_STRONG]);
	s->eventual_reads = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_EVENTUAL]);
	s->bounded_reads = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_BOUNDED]);
	s->read_index_rounds = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_ROUNDS]);
	s->read_timeouts = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_TIMEOUTS]);
	s->read_wait_us = pg_atomic_read_u64(&ri_shared->counters[RAFTABLE_COUNT_WAIT_US]);
}

/* ---------- backend side ---------- */

/*
 * Ask for a round that starts after now and wait for its answer, until
 * deadline_us (readindex_now_us() time).  Returns RAFT_OK with *index set,
 * the raft error code the round failed with (negative), or
 * READINDEX_TIMED_OUT when the deadline passed first.
 */
int
readindex_round(int64 deadline_us, uint64 *index)
{
	uint64		want;
	int			result = READINDEX_TIMED_OUT;
	bool		wake;

	SpinLockAcquire(&ri_shared->mutex);
	want = ri_shared->started + 1;
	wake = ri_shared->asked < want;
	if (wake)
		ri_shared->asked = want;
	SpinLockRelease(&ri_shared->mutex);
	if (wake)
		raftable_wake_worker(); /* else a reader before us woke it */

	ConditionVariablePrepareToSleep(&ri_shared->cv[want % RI_CVS]);
	for (;;)
	{
		bool		answered;
		int64		left;

		SpinLockAcquire(&ri_shared->mutex);
		answered = ri_shared->done >= want;
		if (answered)
		{
			result = ri_shared->done_err;
			*index = ri_shared->done_index;
		}
		SpinLockRelease(&ri_shared->mutex);
		if (answered)
			break;
		left = deadline_us - readindex_now_us();
		if (left <= 0)
			break;
		(void) ConditionVariableTimedSleep(&ri_shared->cv[want % RI_CVS], Max(left / 1000, 1),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return result;
}

/*
 * The freshness proof: the index of the last successful round and how long
 * ago (microseconds) it started.  false if there was none.
 */
bool
readindex_proof(uint64 *index, int64 *age_us)
{
	int64		at;

	SpinLockAcquire(&ri_shared->mutex);
	at = ri_shared->proof_us;
	*index = ri_shared->proof_index;
	SpinLockRelease(&ri_shared->mutex);
	if (at == 0)
		return false;
	*age_us = readindex_now_us() - at;
	return true;
}

/*
 * _deliver, on the leader: may this node answer a READ_INDEX from voter
 * `from`, sent in term hint_term, without its worker?  If so *index is the
 * answer (the ordering that makes it safe is in the header comment).
 */
bool
readindex_granted(uint64 from, uint64 hint_term, uint64 *index)
{
	bool		ok = false;

	SpinLockAcquire(&ri_shared->grant_mutex);
	if (ri_shared->grant.term != 0 && hint_term == ri_shared->grant.term)
	{
		for (uint32 i = 0; i < ri_shared->grant.n_ids && !ok; i++)
			ok = ri_shared->grant.ids[i] == from;
		*index = ri_shared->grant.index;
	}
	SpinLockRelease(&ri_shared->grant_mutex);
	return ok;
}

/* ---------- worker side ---------- */

/*
 * Publish what the core grants now (nothing, without a core).  Called
 * before every send and every acknowledgement of a write: see above.
 */
void
readindex_publish_grant(const raft *r)
{
	raft_read_grant g;

	if (r != NULL)
		raft_get_read_grant(r, &g);
	else
		memset(&g, 0, sizeof(g));
	SpinLockAcquire(&ri_shared->grant_mutex);
	ri_shared->grant = g;
	SpinLockRelease(&ri_shared->grant_mutex);
}

/*
 * Start a round if one is asked for and fewer than RI_MAX_INFLIGHT are in
 * flight (or the last one has waited longer than stale_us: its message or
 * answer may be lost, or the leader it went to is gone).  A core that refuses at once
 * (no leader known) answers the round with that error here.
 */
void
readindex_start_rounds(raft *r, int64 stale_us)
{
	uint64		round = 0;
	int64		now = readindex_now_us();
	int			rc;

	SpinLockAcquire(&ri_shared->mutex);
	if (ri_shared->asked > ri_shared->started &&
		(ri_shared->started - ri_shared->done < RI_MAX_INFLIGHT ||
		 now - ri_shared->start_us[ri_shared->started % RI_STARTS] > stale_us))
	{
		round = ri_shared->asked;
		ri_shared->started = round;
		ri_shared->start_gen[round % RI_STARTS] = round;
		ri_shared->start_us[round % RI_STARTS] = now;
	}
	SpinLockRelease(&ri_shared->mutex);
	if (round == 0)
		return;
	readindex_count(RAFTABLE_COUNT_ROUNDS, 1);
	rc = raft_read_index(r, round);
	if (rc != RAFT_OK)
		readindex_answer(round, 0, rc);
}

/* wake the backends waiting for rounds after..upto */
static void
readindex_wake(uint64 after, uint64 upto)
{
	for (uint64 n = after + 1; n <= upto && n <= after + RI_CVS; n++)
		ConditionVariableBroadcast(&ri_shared->cv[n % RI_CVS]);
}

/*
 * The core answered round 'round' (a raft_read_state): wake every backend
 * it serves.  A successful round becomes the freshness proof if it
 * started after the current one.
 */
void
readindex_answer(uint64 round, uint64 index, int err)
{
	uint64		before;

	SpinLockAcquire(&ri_shared->mutex);
	before = ri_shared->done;
	if (round > ri_shared->done)
	{
		ri_shared->done = round;
		ri_shared->done_index = index;
		ri_shared->done_err = err;
	}
	if (err == 0 && ri_shared->start_gen[round % RI_STARTS] == round &&
		ri_shared->start_us[round % RI_STARTS] > ri_shared->proof_us)
	{
		ri_shared->proof_us = ri_shared->start_us[round % RI_STARTS];
		ri_shared->proof_index = index;
	}
	SpinLockRelease(&ri_shared->mutex);
	readindex_wake(before, round);
}

/*
 * The core is gone (the node left its cluster, or the worker restarts it):
 * no round in flight will be answered, and the proof is void.
 */
void
readindex_reset(void)
{
	SpinLockAcquire(&ri_shared->mutex);
	ri_shared->done = ri_shared->started;
	ri_shared->done_err = RAFT_ENOLEADER;
	ri_shared->proof_us = 0;
	ri_shared->proof_index = 0;
	SpinLockRelease(&ri_shared->mutex);
	readindex_publish_grant(NULL);
	readindex_wake(0, RI_CVS);
}
