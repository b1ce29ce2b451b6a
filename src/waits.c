/*-------------------------------------------------------------------------
 *
 * waits.c
 *	  What each backend waits on raftable for, as raftable.waits shows it:
 *	  a commit, a read index, a read-after index.  PostgreSQL 15 shows
 *	  every extension's wait as the one "Extension" wait event, so this
 *	  view, joined to pg_stat_activity on pid, says which.
 *
 * One slot per backend (indexed by its BackendId), written only by its
 * backend; readers take a consistent copy through a change counter, as
 * pgstat's backend status does, so that reporting takes no lock.
 *
 * IDENTIFICATION
 *	  src/waits.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "raftable.h"
#include "storage/backendid.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "waits.h"

RAFTABLE_FUNCTION(raftable_waits);

typedef struct RaftableWaitSlot
{
	pg_atomic_uint32 changecount;	/* odd while being written */
	int			pid;
	int			kind;			/* RaftableWaitKind */
	uint64		index;
	TimestampTz since;
} RaftableWaitSlot;

static RaftableWaitSlot *waits_slots = NULL;

Size
waits_shmem_size(void)
{
	return mul_size(MaxBackends, sizeof(RaftableWaitSlot));
}

void
waits_shmem_init(void)
{
	bool		found;

	waits_slots = ShmemInitStruct("raftable waits", waits_shmem_size(), &found);
	if (!found)
	{
		memset(waits_slots, 0, waits_shmem_size());
		for (int i = 0; i < MaxBackends; i++)
			pg_atomic_init_u32(&waits_slots[i].changecount, 0);
	}
}

/* this backend now waits for 'kind' (RAFTABLE_WAIT_NONE: no longer) */
void
raftable_report_wait(int kind, uint64 index)
{
	RaftableWaitSlot *s;

	if (waits_slots == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends)
		return;
	s = &waits_slots[MyBackendId - 1];
	if (s->kind == kind && s->index == index && (kind == RAFTABLE_WAIT_NONE || s->pid == MyProcPid))
		return;
	pg_atomic_add_fetch_u32(&s->changecount, 1);
	pg_write_barrier();
	s->pid = MyProcPid;
	s->kind = kind;
	s->index = index;
	s->since = kind == RAFTABLE_WAIT_NONE ? 0 : GetCurrentTimestamp();
	pg_write_barrier();
	pg_atomic_add_fetch_u32(&s->changecount, 1);
}

static const char *
waits_kind_name(int kind)
{
	switch (kind)
	{
		case RAFTABLE_WAIT_COMMIT:
			return "commit";
		case RAFTABLE_WAIT_READ_INDEX:
			return "read index";
		case RAFTABLE_WAIT_READ_AFTER_INDEX:
			return "read after index";
		case RAFTABLE_WAIT_SNAPSHOT:
			return "snapshot";
		default:
			return NULL;
	}
}

/* raftable._waits(): the set behind raftable.waits */
Datum
raftable_waits(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	raftable_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < MaxBackends; i++)
	{
		RaftableWaitSlot copy;
		Datum		values[4];
		bool		nulls[4] = {0};
		const char *what;

		for (;;)
		{
			uint32		before = pg_atomic_read_u32(&waits_slots[i].changecount);

			pg_read_barrier();
			copy.pid = waits_slots[i].pid;
			copy.kind = waits_slots[i].kind;
			copy.index = waits_slots[i].index;
			copy.since = waits_slots[i].since;
			pg_read_barrier();
			if (before % 2 == 0 &&
				before == pg_atomic_read_u32(&waits_slots[i].changecount))
				break;
			CHECK_FOR_INTERRUPTS();
		}
		what = waits_kind_name(copy.kind);
		if (what == NULL || copy.pid == 0)
			continue;
		values[0] = Int32GetDatum(copy.pid);
		values[1] = CStringGetTextDatum(what);
		values[2] = Int64GetDatum((int64) copy.index);
		nulls[2] = copy.index == 0;
		values[3] = TimestampTzGetDatum(copy.since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
