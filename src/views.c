/*-------------------------------------------------------------------------
 *
 * views.c
 *	  The set-returning functions behind raftable's monitoring views
 *	  (raftable.status, raftable.nodes, raftable.stats) and version().
 *
 * Each reads one copy of what the worker publishes in shared memory, so a
 * row is consistent with itself; nothing here waits for the worker.
 *
 * IDENTIFICATION
 *	  src/views.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "raftable.h"
#include "readindex.h"
#include "status.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

RAFTABLE_FUNCTION(raftable_version);
RAFTABLE_FUNCTION(raftable_status);
RAFTABLE_FUNCTION(raftable_nodes);
RAFTABLE_FUNCTION(raftable_stats);

Datum
raftable_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(RAFTABLE_VERSION));
}

/* ---------- views ---------- */

static Datum
views_id_or_null(uint64 id, bool *isnull)
{
	*isnull = id == 0;
	return Int64GetDatum((int64) id);
}

/*
 * An apply error as the views show it, (Datum) 0 if there is none or this
 * node cannot know.  This node's own (m NULL or self): the full error may
 * quote row values and statement text, so it is for superusers and
 * pg_monitor; others see its SQLSTATE, log index and table.  Another
 * member's, on the leader: as that member reported it, the SQLSTATE and
 * the log index (its own raftable.status says more).
 */
static Datum
views_apply_error(const RaftableMemberInfo *m)
{
	char		err[512];

	if (m == NULL || m->is_self)
	{
		raftable_apply_error(has_privs_of_role(GetUserId(), ROLE_PG_MONITOR),
							 err, sizeof(err));
	}
	else if (m->progress_known && m->stalled_at != 0)
		snprintf(err, sizeof(err), "SQLSTATE %s at log index %llu",
				 unpack_sql_state(m->stall_code), (unsigned long long) m->stalled_at);
	else
		err[0] = '\0';
	return err[0] ? CStringGetTextDatum(err) : (Datum) 0;
}

Datum
raftable_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RaftableStatus *st = raftable_status_get(true, 0);
	Datum		values[13];
	bool		nulls[13] = {0};
	const RaftableMemberInfo *lead = raftable_status_member(st, st->leader_id);
	bool		in = st->in_cluster;

	InitMaterializedSRF(fcinfo, 0);
	values[0] = views_id_or_null(st->node_id, &nulls[0]);
	values[1] = CStringGetTextDatum(st->node_name);
	nulls[1] = !in;
	values[2] = views_id_or_null(st->cluster_id, &nulls[2]);
	values[3] = CStringGetTextDatum(in ? st->role_name : "none");
	values[4] = Int64GetDatum((int64) st->term);
	nulls[4] = !in;
	values[5] = views_id_or_null(st->leader_id, &nulls[5]);
	values[6] = lead ? CStringGetTextDatum(lead->name) : (Datum) 0;
	nulls[6] = lead == NULL;
	values[7] = Int64GetDatum((int64) st->commit_index);
	values[8] = Int64GetDatum((int64) st->applied_index);
	values[9] = Int64GetDatum((int64) st->last_log_index);
	values[10] = Int64GetDatum((int64) st->snapshot_index);
	nulls[7] = nulls[8] = nulls[9] = nulls[10] = !in;
	values[11] = Int64GetDatum(st->role == RAFT_LEADER ? 0 :
							   (GetCurrentTimestamp() - st->leader_contact_at) / 1000);
	nulls[11] = !in;
	values[12] = views_apply_error(NULL);
	nulls[12] = values[12] == (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

Datum
raftable_nodes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RaftableStatus *st = raftable_status_get(true, 0);

	InitMaterializedSRF(fcinfo, 0);
	if (!st->in_cluster)
		return (Datum) 0;
	for (int i = 0; i < st->n_members; i++)
	{
		const RaftableMemberInfo *m = &st->members[i];
		Datum		values[12];
		bool		nulls[12] = {0};
		const char *role;

		if (m->is_self)
			role = st->role_name;
		else if (m->id == st->leader_id)
			role = "leader";
		else
			role = m->voter ? "follower" : "learner";
		values[0] = Int64GetDatum((int64) m->id);
		values[1] = CStringGetTextDatum(m->name);
		values[2] = CStringGetTextDatum(m->conninfo);
		values[3] = BoolGetDatum(m->voter);
		values[4] = CStringGetTextDatum(role);
		values[5] = BoolGetDatum(m->is_self);
		values[6] = BoolGetDatum(m->reachable);
		values[7] = Int64GetDatum((int64) m->match_index);
		values[8] = Int64GetDatum((int64) m->lag_entries);
		values[9] = Int64GetDatum(m->last_contact_ms);
		nulls[7] = nulls[8] = !m->progress_known;
		nulls[9] = !m->progress_known || m->last_contact_ms < 0;
		values[10] = Int64GetDatum((int64) m->applied_index);
		nulls[10] = !m->progress_known || m->applied_index == 0;
		values[11] = views_apply_error(m);
		nulls[11] = values[11] == (Datum) 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
raftable_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RaftableStats s;
	Datum		values[16];
	bool		nulls[16] = {0};
	const uint64 *f;

	raftable_check_preloaded();
	raftable_stats_copy(&s);
	readindex_stats(&s);
	InitMaterializedSRF(fcinfo, 0);
	StaticAssertStmt(sizeof(RaftableStats) == 16 * sizeof(uint64),
					 "raftable.stats columns and RaftableStats differ");
	f = (const uint64 *) &s;
	for (int i = 0; i < 15; i++)
		values[i] = Int64GetDatum((int64) f[i]);
	values[15] = Int64GetDatum((int64) (s.read_wait_us / 1000));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
