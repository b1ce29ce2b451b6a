/*-------------------------------------------------------------------------
 *
 * storage.c
 *	  Durable Raft state in the database: the node's identity, hard state
 *	  and snapshot metadata (raftable.node_state) and the log
 *	  (raftable.log).
 *
 * Only the worker calls these, each in a transaction of its own that it
 * commits with synchronous_commit on: "persisted" means that commit
 * returned, so the WAL flush is the Raft flush, and a crash of the whole
 * server (kill -9 of the postmaster) loses nothing that was acknowledged.
 * One cycle's truncation, snapshot, entries and hard state commit together,
 * which is stronger than the order raft.h asks for.
 *
 * IDENTIFICATION
 *	  src/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "anchor.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "raftable.h"
#include "status.h"
#include "storage.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

/*
 * The caller's memory context: committing a transaction leaves
 * CurrentMemoryContext at TopMemoryContext, where everything the worker
 * allocated afterwards would stay for good.
 */
static MemoryContext storage_caller_cxt;

/* the statements of every cycle, prepared once and kept */
static SPIPlanPtr storage_insert_plan;
static SPIPlanPtr storage_truncate_plan;
static SPIPlanPtr storage_hs_plan;

/* the last index raftable.log holds, so that appends skip the overlap check */
static uint64 storage_log_last;

static void
storage_begin(void)
{
	storage_caller_cxt = CurrentMemoryContext;
	raftable_worker_xact_begin(NULL);
}

static void
storage_commit(void)
{
	(void) raftable_worker_xact_commit(false);	/* the worker's session commits synchronously */
	MemoryContextSwitchTo(storage_caller_cxt);
	pgstat_report_stat(false);
}

static void
storage_exec(const char *sql, int nargs, Oid *types, Datum *values, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL,
										   false, 0);

	if (rc != expect)
		elog(ERROR, "raftable storage: \"%s\" failed: %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * Run a statement through a plan prepared on first use and kept; the plan
 * cache re-plans it if the table is renewed (DROP/CREATE EXTENSION).
 */
static void
storage_exec_kept(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
				  Datum *values, int expect)
{
	int			rc = raftable_spi_kept(plan, sql, nargs, types, values);

	if (rc != expect)
		elog(ERROR, "raftable storage: \"%s\" failed: %s", sql,
			 SPI_result_code_string(rc));
}

/*
 * The extension's OID in this database, or InvalidOid: its tables are
 * there to use only while it exists, and a new OID means new tables
 * (DROP EXTENSION may come at any time, and CREATE after it).
 */
Oid
storage_extension_oid(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			oid;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	oid = get_extension_oid("raftable", true);
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	return oid;
}

static bytea *
bytes_to_bytea(const void *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len)
		memcpy(VARDATA(b), data, len);
	return b;
}

/*
 * Load what this node persisted.  Returns false when it has no identity
 * (not in a cluster).  Entries and their data are allocated in the
 * caller's memory context.
 */
bool
storage_load(RaftableIdentity *id, raft_hard_state *hs,
			 raft_snapshot_meta *snap, raft_entry **entries, size_t *n,
			 uint64 *applied)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		found = false;

	memset(id, 0, sizeof(*id));
	memset(hs, 0, sizeof(*hs));
	memset(snap, 0, sizeof(*snap));
	*entries = NULL;
	*n = 0;
	*applied = 0;

	storage_begin();
	storage_exec("SELECT cluster_id, node_id, node_name, self_conninfo, term, vote, "
				 "commit_index, (SELECT applied_index FROM raftable.apply_state), "
				 "snapshot_index, snapshot_term, snapshot_conf, "
				 "system_identifier, timeline, identity_slot FROM raftable.node_state",
				 0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		conf;

		found = true;
		id->in_cluster = true;
		id->cluster_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		id->node_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		strlcpy(id->node_name, SPI_getvalue(tup, desc, 3), RAFTABLE_NAME_LEN);
		strlcpy(id->self_conninfo, SPI_getvalue(tup, desc, 4), RAFTABLE_CONNINFO_LEN);
		hs->term = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
		hs->vote = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
		hs->commit = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
		*applied = DatumGetInt64(SPI_getbinval(tup, desc, 8, &isnull));
		snap->index = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		snap->term = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
		conf = SPI_getbinval(tup, desc, 11, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(conf);

			if (raft_conf_decode((uint8 *) VARDATA_ANY(b),
								 VARSIZE_ANY_EXHDR(b), &snap->conf) != 0)
				elog(ERROR, "raftable.node_state.snapshot_conf is not a valid configuration");
		}
		id->anchor.system_identifier = DatumGetInt64(SPI_getbinval(tup, desc, 12, &isnull));
		id->anchor.recorded = !isnull;
		id->anchor.timeline = DatumGetInt32(SPI_getbinval(tup, desc, 13, &isnull));
		(void) SPI_getbinval(tup, desc, 14, &isnull);
		if (!isnull)
			strlcpy(id->anchor.slot, SPI_getvalue(tup, desc, 14), NAMEDATALEN);
	}
	if (found)
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum(snap->index)};

		storage_exec("SELECT idx, term, kind, data FROM raftable.log "
					 "WHERE idx > $1 ORDER BY idx",
					 1, types, values, SPI_OK_SELECT);
		if (SPI_processed > 0)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			*entries = palloc0(sizeof(raft_entry) * SPI_processed);
			MemoryContextSwitchTo(old);
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			raft_entry *e = &(*entries)[i];
			bool		isnull;
			Datum		d;

			e->index = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			e->term = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			e->type = DatumGetInt16(SPI_getbinval(tup, desc, 3, &isnull));
			d = SPI_getbinval(tup, desc, 4, &isnull);
			if (!isnull)
			{
				bytea	   *b = DatumGetByteaPP(d);

				e->len = VARSIZE_ANY_EXHDR(b);
				e->data = MemoryContextAlloc(cxt, Max(e->len, 1));
				memcpy(e->data, VARDATA_ANY(b), e->len);
			}
		}
		*n = SPI_processed;
	}
	storage_log_last = snap->index + *n;
	storage_commit();
	return found;
}

/* a new identity starts from an empty log, with nothing applied */
static void
storage_forget_log(void)
{
	storage_exec("DELETE FROM raftable.log", 0, NULL, NULL, SPI_OK_DELETE);
	storage_exec("DELETE FROM raftable.node_state", 0, NULL, NULL, SPI_OK_DELETE);
	storage_exec("DELETE FROM raftable.applied_marks", 0, NULL, NULL, SPI_OK_DELETE);
	storage_exec("UPDATE raftable.apply_state SET applied_index = 0", 0, NULL, NULL,
				 SPI_OK_UPDATE);
	storage_log_last = 0;
}

/*
 * Give this node its cluster identity (create_cluster, or being added),
 * with the membership it starts from as a snapshot at index 0.
 */
void
storage_save_identity(const RaftableIdentity *id, const raft_snapshot_meta *snap)
{
	Oid			types[8] = {INT8OID, INT8OID, TEXTOID, TEXTOID, BYTEAOID,
	INT8OID, INT4OID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = "        ";
	size_t		len = raft_conf_encoded_size(&snap->conf);
	uint8	   *buf = palloc(len);
	RaftableAnchor a;

	raft_conf_encode(&snap->conf, buf);
	values[0] = Int64GetDatum(id->cluster_id);
	values[1] = Int64GetDatum(id->node_id);
	values[2] = CStringGetTextDatum(id->node_name);
	values[3] = CStringGetTextDatum(id->self_conninfo);
	values[4] = PointerGetDatum(bytes_to_bytea(buf, len));
	storage_begin();
	storage_forget_log();
	anchor_take(id->node_id, &a);	/* its slot is durable before the identity */
	values[5] = Int64GetDatum((int64) a.system_identifier);
	values[6] = Int32GetDatum((int32) a.timeline);
	values[7] = CStringGetTextDatum(a.slot);
	nulls[7] = a.slot[0] ? ' ' : 'n';
	if (SPI_execute_with_args("INSERT INTO raftable.node_state (cluster_id, node_id, node_name, "
							  "self_conninfo, snapshot_conf, system_identifier, timeline, "
							  "identity_slot) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
							  8, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "raftable: could not store the node's identity");
	storage_commit();
}

/*
 * An identity stored by release 0.1 has no anchors: take them now, in the
 * data directory it is found in.
 */
void
storage_record_anchor(RaftableIdentity *id)
{
	Oid			types[3] = {INT8OID, INT4OID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";

	storage_begin();
	anchor_take(id->node_id, &id->anchor);
	values[0] = Int64GetDatum((int64) id->anchor.system_identifier);
	values[1] = Int32GetDatum((int32) id->anchor.timeline);
	values[2] = CStringGetTextDatum(id->anchor.slot);
	nulls[2] = id->anchor.slot[0] ? ' ' : 'n';
	if (SPI_execute_with_args("UPDATE raftable.node_state SET system_identifier = $1, "
							  "timeline = $2, identity_slot = $3",
							  3, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "raftable: could not store the node's identity anchors");
	storage_commit();
}

/* the identity slots of identities this node no longer has */
void
storage_drop_stale_slots(uint64 keep_id)
{
	storage_begin();
	anchor_drop_slots(keep_id);
	storage_commit();
}

/*
 * Forget the cluster: this node was removed, or its identity is void.  Its
 * replicated tables become ordinary local tables, with the rows they have
 * (raftable's triggers go, as unreplicate_table does on every node).
 */
void
storage_reset(void)
{
	storage_begin();
	storage_forget_log();
	storage_exec("SELECT raftable._detach(relid) FROM raftable.replicated", 0, NULL, NULL,
				 SPI_OK_SELECT);
	anchor_drop_slots(0);
	storage_commit();
}

/*
 * Make one Ready's state durable (raft.h's four steps) in one transaction;
 * the hard state only when hs says so (the worker skips it when only the
 * commit index moved).  The applied index is the apply worker's (apply.c).
 */
void
storage_persist(const raft_ready *rd, bool hs)
{
	Oid			t1[1] = {INT8OID};
	Datum		v1[1];

	storage_begin();
	if (rd->truncate_from)
	{
		v1[0] = Int64GetDatum(rd->truncate_from);
		storage_exec_kept(&storage_truncate_plan,
						  "DELETE FROM raftable.log WHERE idx >= $1", 1, t1, v1,
						  SPI_OK_DELETE);
		storage_log_last = Min(storage_log_last, rd->truncate_from - 1);
	}
	if (rd->snapshot_changed)
	{
		Oid			t3[3] = {INT8OID, INT8OID, BYTEAOID};
		Datum		v3[3];
		size_t		len = raft_conf_encoded_size(&rd->snapshot->conf);
		uint8	   *buf = palloc(len);

		raft_conf_encode(&rd->snapshot->conf, buf);
		v3[0] = Int64GetDatum(rd->snapshot->index);
		v3[1] = Int64GetDatum(rd->snapshot->term);
		v3[2] = PointerGetDatum(bytes_to_bytea(buf, len));
		storage_exec("UPDATE raftable.node_state SET snapshot_index = $1, "
					 "snapshot_term = $2, snapshot_conf = $3",
					 3, t3, v3, SPI_OK_UPDATE);
		v1[0] = Int64GetDatum(rd->snapshot->index);
		storage_exec("DELETE FROM raftable.log WHERE idx <= $1", 1, t1, v1,
					 SPI_OK_DELETE);
	}
	if (rd->n_entries > 0)
	{
		Oid			t4[4] = {INT8OID, INT8OID, INT2OID, BYTEAOID};
		Datum		v4[4];

		/* an append always follows the persisted log: drop any overlap */
		if (rd->entries[0].index <= storage_log_last)
		{
			v1[0] = Int64GetDatum(rd->entries[0].index);
			storage_exec_kept(&storage_truncate_plan,
							  "DELETE FROM raftable.log WHERE idx >= $1", 1, t1, v1,
							  SPI_OK_DELETE);
		}
		/* prepared once; the plan cache redoes it if the table is renewed */
		if (storage_insert_plan == NULL)
			storage_insert_plan = raftable_spi_prepare("INSERT INTO raftable.log (idx, term, kind, data) "
													   "VALUES ($1, $2, $3, $4)", 4, t4);
		for (size_t i = 0; i < rd->n_entries; i++)
		{
			const raft_entry *e = &rd->entries[i];
			char		nulls[4] = {' ', ' ', ' ', e->len ? ' ' : 'n'};
			int			rc;

			v4[0] = Int64GetDatum(e->index);
			v4[1] = Int64GetDatum(e->term);
			v4[2] = Int16GetDatum(e->type);
			v4[3] = e->len ? PointerGetDatum(bytes_to_bytea(e->data, e->len)) : (Datum) 0;
			rc = SPI_execute_plan(storage_insert_plan, v4, nulls, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "raftable storage: log insert failed: %s",
					 SPI_result_code_string(rc));
		}
		storage_log_last = rd->entries[rd->n_entries - 1].index;
	}
	if (hs)
	{
		Oid			t3[3] = {INT8OID, INT8OID, INT8OID};
		Datum		v3[3];

		v3[0] = Int64GetDatum(rd->hs.term);
		v3[1] = Int64GetDatum(rd->hs.vote);
		v3[2] = Int64GetDatum(rd->hs.commit);
		storage_exec_kept(&storage_hs_plan,
						  "UPDATE raftable.node_state SET term = $1, vote = $2, "
						  "commit_index = $3", 3, t3, v3, SPI_OK_UPDATE);
	}
	storage_commit();
}
