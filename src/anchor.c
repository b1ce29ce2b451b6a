/*-------------------------------------------------------------------------
 *
 * anchor.c
 *	  Ties a node's cluster identity to the data directory it was given in,
 *	  so that a copy of that directory, or the directory restored to an
 *	  earlier point, never takes part with it.
 *
 * A node's Raft hard state (term, vote) and log must never go back: a
 * node that votes twice in one term, or two servers answering as one
 * node, can elect two leaders in a term.  A directory restored from a
 * backup, rewound by point-in-time recovery, or cloned with pg_basebackup
 * carries raftable.node_state as it was, so the identity is recorded with
 * three anchors, checked each time the worker loads it:
 *
 *	- the system identifier (pg_control): another server that got the
 *	  tables by pg_dump or logical copy differs;
 *	- the timeline: recovery to a point in time, or a promoted standby,
 *	  starts a new one;
 *	- a replication slot named after the node (raftable_node_<id>),
 *	  created with the identity and never reserving WAL, so it holds
 *	  nothing back: pg_basebackup copies no slot, and a file-level backup
 *	  should not either (PostgreSQL's documentation), so a copy or a
 *	  restore lacks it.  Without slots (wal_level minimal, or
 *	  max_replication_slots 0) this anchor is off, with a WARNING.
 *
 * A node whose anchors do not match forgets its identity (worker.c) and
 * can be added again as a new node.
 *
 * IDENTIFICATION
 *	  src/anchor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "anchor.h"
#include "raftable.h"
#include "replication/slot.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#define ANCHOR_SLOT_PREFIX "raftable_node_"

static void
anchor_slot_name(uint64 node_id, char *name)
{
	snprintf(name, NAMEDATALEN, ANCHOR_SLOT_PREFIX "%llu", (unsigned long long) node_id);
}

static bool
anchor_slots_usable(void)
{
	return max_replication_slots > 0 && wal_level >= WAL_LEVEL_REPLICA;
}

/*
 * Run fn(arg) in a subtransaction: an error becomes a WARNING that says
 * what failed, since the worker must not exit over a slot.
 */
static bool
anchor_try(void (*fn) (void *), void *arg, const char *failure)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		ok = true;

	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *err;

		MemoryContextSwitchTo(cxt);
		err = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		ereport(WARNING,
				(errcode(err->sqlerrcode),
				 errmsg_internal("%s", _(failure)),
				 errdetail_internal("%s", err->message)));
		FreeErrorData(err);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return ok;
}

static void
anchor_drop_slots_guts(void *arg)
{
	uint64		keep_id = *(uint64 *) arg;
	char		keep[NAMEDATALEN];
	List	   *names = NIL;
	ListCell   *lc;

	anchor_slot_name(keep_id, keep);
	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; i < max_replication_slots; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];

		if (s->in_use &&
			strncmp(NameStr(s->data.name), ANCHOR_SLOT_PREFIX,
					strlen(ANCHOR_SLOT_PREFIX)) == 0 &&
			(keep_id == 0 || strcmp(NameStr(s->data.name), keep) != 0))
			names = lappend(names, pstrdup(NameStr(s->data.name)));
	}
	LWLockRelease(ReplicationSlotControlLock);
	foreach(lc, names)
		ReplicationSlotDrop((char *) lfirst(lc), true);
}

/*
 * Drop raftable's identity slots, all of them or all but keep_id's: left
 * over from an identity this node forgot.  Inside a transaction.
 */
void
anchor_drop_slots(uint64 keep_id)
{
	if (max_replication_slots > 0)
		anchor_try(anchor_drop_slots_guts, &keep_id, gettext_noop("raftable could not drop a replication slot it no longer needs"));
}

static void
anchor_create_slot(void *arg)
{
	const char *name = (const char *) arg;

	ReplicationSlotCreate(name, false, RS_PERSISTENT, false);
	ReplicationSlotRelease();
}

/*
 * The anchors of this data directory for a new identity: the slot is
 * created now (durable before the identity commits), after any left from
 * an earlier one is dropped.  The caller stores the rest with the
 * identity.  Called by the worker inside storage's transaction: a failure
 * to create the slot (all slots in use) is caught, and leaves the anchor
 * off with a WARNING rather than failing create_cluster or the join.
 */
void
anchor_take(uint64 node_id, RaftableAnchor *a)
{
	memset(a, 0, sizeof(*a));
	a->recorded = true;
	a->system_identifier = GetSystemIdentifier();
	a->timeline = GetWALInsertionTimeLine();
	if (!anchor_slots_usable())
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("raftable cannot tell a copy of this data directory from the original"),
				 errdetail("Replication slots are unavailable (wal_level is \"minimal\" or max_replication_slots is 0)."),
				 errhint("A copy made with pg_basebackup must not be started as a member; set wal_level = replica to detect it.")));
		return;
	}
	anchor_drop_slots(0);
	anchor_slot_name(node_id, a->slot);
	if (!anchor_try(anchor_create_slot, a->slot, gettext_noop("raftable could not create the replication slot that anchors this node's identity")))
	{
		a->slot[0] = '\0';
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("raftable cannot tell a copy of this data directory from the original"),
				 errhint("Free a replication slot; a copy made with pg_basebackup must not be started as a member.")));
	}
}

/*
 * Whether the identity was given in this very data directory; if not,
 * 'why' says what differs.
 */
bool
anchor_holds(uint64 node_id, const RaftableAnchor *a, char *why, size_t len)
{
	char		slot[NAMEDATALEN];
	bool		found;

	if (a->system_identifier != GetSystemIdentifier())
	{
		snprintf(why, len,
				 "Its identity was given on the server with system identifier %llu; this is %llu.",
				 (unsigned long long) a->system_identifier,
				 (unsigned long long) GetSystemIdentifier());
		return false;
	}
	if (a->timeline != GetWALInsertionTimeLine())
	{
		snprintf(why, len,
				 "Its identity was given on timeline %u; the server is on timeline %u: it was restored to an earlier point or promoted.",
				 a->timeline, GetWALInsertionTimeLine());
		return false;
	}
	if (a->slot[0] == '\0')
		return true;
	anchor_slot_name(node_id, slot);
	found = max_replication_slots > 0 && SearchNamedReplicationSlot(slot, true) != NULL;
	if (!found)
	{
		snprintf(why, len,
				 "Replication slot \"%s\", created with its identity, is missing: the data directory is a copy (pg_basebackup) or was restored from a backup.",
				 slot);
		return false;
	}
	return true;
}
