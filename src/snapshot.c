/*-------------------------------------------------------------------------
 *
 * snapshot.c
 *	  Installing a snapshot: copying every replicated table from an
 *	  up-to-date peer, consistently, into this node.
 *
 * A Raft snapshot here is the replicated tables themselves.  When the
 * leader offers one (this node's next entries were compacted away), the
 * Raft worker asks the apply worker, which runs snapshot_install():
 *
 *	 on the source, one REPEATABLE READ READ ONLY transaction reads its
 *	 applied index A, the marks of entries above A that its own committed
 *	 transactions applied (apply.c), the replicated tables with their
 *	 definitions (raftable._table_ddl) in foreign-key order, the owned
 *	 sequences' values, and then streams each table with COPY TO STDOUT;
 *
 *	 here, one transaction drops the replicated tables, creates them from
 *	 the definitions, fills them with COPY FROM fed straight from the
 *	 source's stream (no file, no full copy in memory), sets the
 *	 sequences, and records A and the marks in raftable.apply_state and
 *	 raftable.applied_marks.
 *
 * So the tables and the applied index change together or not at all: a
 * crash mid-snapshot leaves the node as it was, and the leader's next
 * offer starts over.  The source's writers are never blocked: a
 * REPEATABLE READ reader takes no locks that writers wait for.  A >= the
 * offered index, so the Raft worker then reports the offered snapshot as
 * installed; the entries between it and A are received but not applied
 * again (apply starts after A).
 *
 * Progress is published in shared memory for raftable.snapshot_progress.
 *
 * IDENTIFICATION
 *	  src/snapshot.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "ddl.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "raftable.h"
#include "remote.h"
#include "shmem.h"
#include "snapshot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

RAFTABLE_FUNCTION(raftable_snapshot_progress);

/* how long a stalled COPY stream may stay silent */
#define SNAPSHOT_IDLE_MS (60 * 1000)

/* the source's tables, in the order they can be created */

TransactionId snapshot_install_xid = InvalidTransactionId;
static const char *snapshot_tables_sql =
"WITH RECURSIVE t AS (SELECT relid FROM raftable.replicated), "
"fk AS (SELECT conrelid AS child, confrelid AS parent FROM pg_catalog.pg_constraint "
"       WHERE contype = 'f' AND conrelid <> confrelid "
"         AND conrelid IN (SELECT relid FROM t) AND confrelid IN (SELECT relid FROM t)), "
"depth(relid, d) AS (SELECT relid, 0 FROM t "
"       UNION ALL SELECT fk.child, depth.d + 1 FROM depth JOIN fk ON fk.parent = depth.relid "
"       WHERE depth.d < 64) "
"SELECT n.nspname, c.relname, raftable._table_ddl(c.oid), r.since_index, "
"       pg_catalog.pg_get_userbyid(c.relowner) "
"  FROM (SELECT relid, max(d) AS d FROM depth GROUP BY relid) o "
"  JOIN pg_catalog.pg_class c ON c.oid = o.relid "
"  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
"  JOIN raftable.replicated r ON r.relid = o.relid "
" ORDER BY o.d, n.nspname, c.relname";

static const char *snapshot_sequences_sql =
"SELECT n.nspname, s.relname, pg_catalog.pg_sequence_last_value(s.oid) "
"  FROM pg_catalog.pg_depend d "
"  JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
"  JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace "
" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
"   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass "
"   AND d.deptype IN ('a', 'i') "
"   AND d.refobjid IN (SELECT relid FROM raftable.replicated)";

/* the COPY stream being read, for the data source callback */
static PGconn *snapshot_conn;
static char *snapshot_buf;		/* PQgetCopyData's current row */
static int	snapshot_buf_len;
static int	snapshot_buf_pos;
static bool snapshot_eof;
static uint64 snapshot_rows;
static uint64 snapshot_bytes;

static void
snapshot_progress(const char *phase, const char *table, int tables_done)
{
	RaftableSnapshotProgress *p = &raftable_shared->snapshot;

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	if (phase)
		strlcpy(p->phase, phase, sizeof(p->phase));
	if (table)
		strlcpy(p->current_table, table, sizeof(p->current_table));
	if (tables_done >= 0)
		p->tables_done = tables_done;
	p->rows_copied = snapshot_rows;
	p->bytes_copied = snapshot_bytes;
	LWLockRelease(raftable_shared->lock);
}

/* COPY FROM's data source: the source's COPY TO STDOUT stream */
static int
snapshot_read(void *outbuf, int minread, int maxread)
{
	int			n = 0;

	while (n < maxread && !snapshot_eof)
	{
		if (snapshot_buf_pos < snapshot_buf_len)
		{
			int			k = Min(maxread - n, snapshot_buf_len - snapshot_buf_pos);

			memcpy((char *) outbuf + n, snapshot_buf + snapshot_buf_pos, k);
			snapshot_buf_pos += k;
			n += k;
			continue;
		}
		if (snapshot_buf)
			PQfreemem(snapshot_buf);
		snapshot_buf = NULL;
		snapshot_buf_len = snapshot_buf_pos = 0;
		if (n >= minread)
			break;				/* enough for now; don't wait for more */
		for (;;)
		{
			int			len = PQgetCopyData(snapshot_conn, &snapshot_buf, 1);

			if (len > 0)
			{
				snapshot_buf_len = len;
				snapshot_rows++;
				snapshot_bytes += len;
				if (snapshot_rows % 10000 == 0)
					snapshot_progress(NULL, NULL, -1);
				break;
			}
			if (len == -1)
			{
				snapshot_eof = true;
				break;
			}
			if (len < -1)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("snapshot stream from the source node failed"),
						 errdetail_internal("%s", pchomp(PQerrorMessage(snapshot_conn)))));
			if (!remote_wait_socket(snapshot_conn, WL_SOCKET_READABLE,
									TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																SNAPSHOT_IDLE_MS)) ||
				!PQconsumeInput(snapshot_conn))
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("snapshot stream from the source node stalled or broke")));
		}
	}
	return n;
}

/*
 * Stream one table from the source into the local table of that name, as
 * the table's owner (COPY FROM runs its CHECKs, defaults and index
 * expressions: the owner's code, with the owner's rights).
 */
static void
snapshot_copy_table(PGconn *conn, const char *schema, const char *name)
{
	RaftableSavedUser saved;
	char	   *q = quote_qualified_identifier(schema, name);
	Relation	rel;
	ParseState *pstate;
	CopyFromState cstate;
	PGresult   *res;

	if (!PQsendQuery(conn, psprintf("COPY %s TO STDOUT", q)))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not start copying table %s from the source node", q)));
	snapshot_conn = conn;
	snapshot_buf = NULL;
	snapshot_buf_len = snapshot_buf_pos = 0;
	snapshot_eof = false;

	/* wait for the COPY OUT to start (or an error) */
	for (;;)
	{
		if (!PQisBusy(conn))
			break;
		if (!remote_wait_socket(conn, WL_SOCKET_READABLE,
								TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															SNAPSHOT_IDLE_MS)) ||
			!PQconsumeInput(conn))
			break;
	}
	res = PQgetResult(conn);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_OUT)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not copy table %s from the source node", q),
				 errdetail_internal("%s", pchomp(res ? PQresultErrorMessage(res) :
												 PQerrorMessage(conn)))));
	PQclear(res);

	rel = table_open(RangeVarGetRelid(makeRangeVar((char *) schema, (char *) name, -1),
									  RowExclusiveLock, false), NoLock);
	raftable_switch_user(rel->rd_rel->relowner, &saved);
	/* CopyFrom finds the relation through the range table, as for COPY */
	pstate = make_parsestate(NULL);
	(void) addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, NULL,
										 false, false);
	cstate = BeginCopyFrom(pstate, rel, NULL, NULL, false, snapshot_read, NIL, NIL);
	(void) CopyFrom(cstate);
	EndCopyFrom(cstate);
	free_parsestate(pstate);
	raftable_restore_user(&saved);
	table_close(rel, NoLock);

	if (snapshot_buf)
		PQfreemem(snapshot_buf);
	snapshot_buf = NULL;
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("copying table %s from the source node failed", q),
					 errdetail_internal("%s", pchomp(PQresultErrorMessage(res)))));
		PQclear(res);
	}
}

/*
 * A query on the source.  Unlike remote_exec() it leaves the connection
 * open on failure: snapshot_install() closes it, whatever failed.
 */
static PGresult *
snapshot_remote(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	PGresult   *res = NULL;
	ExecStatusType st;

	if (PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0))
		res = remote_collect(conn, SNAPSHOT_IDLE_MS);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		char	   *msg = pchomp(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("snapshot query on the source node failed"),
				 errdetail_internal("%s", msg)));
	}
	return res;
}

/* what a snapshot copies besides the rows: the source's lists, in libpq */
typedef struct SnapshotSource
{
	uint64		applied;		/* the index the copy stands at */
	PGresult   *marks;			/* idx of the marks above it */
	PGresult   *tables;			/* schema, name, definition, since, owner */
	PGresult   *seqs;			/* schema, name, last value */
} SnapshotSource;

/* publish a new phase of raftable.snapshot_progress */
static void
snapshot_phase(const char *phase, uint64 source_index, int tables_total)
{
	RaftableSnapshotProgress *p = &raftable_shared->snapshot;

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	strlcpy(p->phase, phase, sizeof(p->phase));
	p->source_index = source_index;
	p->tables_total = tables_total;
	LWLockRelease(raftable_shared->lock);
}

/*
 * Phase 1, on the source: fix the session, open a REPEATABLE READ
 * transaction, and read what the copy will stand at (at least min_index)
 * and the lists of tables, sequences and marks, all in that snapshot.
 *
 * No name in the queries resolves in a schema of anyone's choosing (the
 * peer role may be a superuser there); COPY's text as the apply worker
 * reads it (changeset.h); and every row or an error, never a copy
 * filtered by a row-level security policy (replicated tables have none:
 * ddl.c refuses them).  The source's own applied state is what is copied,
 * with its index: no read index round (reads.c), which would only delay
 * the copy.
 */
static void
snapshot_read_source(PGconn *conn, uint64 min_index, SnapshotSource *src)
{
	PGresult   *res;
	char		buf[32];
	const char *params[1] = {buf};

	PQclear(snapshot_remote(conn, "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false), "
							"pg_catalog.set_config('raftable.read_consistency', 'eventual', false), "
							"pg_catalog.set_config('datestyle', 'ISO, YMD', false), "
							"pg_catalog.set_config('row_security', 'off', false), "
							"pg_catalog.set_config('intervalstyle', 'postgres', false), "
							"pg_catalog.set_config('timezone', 'UTC', false), "
							"pg_catalog.set_config('extra_float_digits', '3', false), "
							"pg_catalog.set_config('bytea_output', 'hex', false)", 0, NULL));
	PQclear(snapshot_remote(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
							0, NULL));
	res = snapshot_remote(conn, "SELECT applied_index FROM raftable.apply_state",
						  0, NULL);
	src->applied = PQntuples(res) == 1 ? strtou64(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	if (src->applied < min_index)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the snapshot source has applied only up to log index %llu, not %llu yet",
						(unsigned long long) src->applied, (unsigned long long) min_index)));
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long) src->applied);
	src->marks = snapshot_remote(conn, "SELECT idx FROM raftable.applied_marks WHERE idx > $1",
								 1, params);
	src->tables = snapshot_remote(conn, snapshot_tables_sql, 0, NULL);
	src->seqs = snapshot_remote(conn, snapshot_sequences_sql, 0, NULL);
}

/*
 * Phase 2, here: out with the old.  Every table replicated here stops
 * being so.  One the source no longer has at all was dropped while this
 * node was away, and goes; one it has but does not replicate was
 * unreplicated, and stays, with the rows it has here.  Those the source
 * replicates go too, to be created again from its definitions.
 */
static void
snapshot_drop_ours(PGconn *conn, const SnapshotSource *src)
{
	SPITupleTable *ours;
	uint64		nours;

	raftable_spi("SELECT n.nspname, c.relname FROM raftable.replicated r "
				 "JOIN pg_catalog.pg_class c ON c.oid = r.relid "
				 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
				 0, NULL, NULL);
	ours = SPI_tuptable;
	nours = SPI_processed;
	raftable_spi("SELECT raftable._detach(relid::regclass) FROM raftable.replicated",
				 0, NULL, NULL);
	for (uint64 i = 0; i < nours; i++)
	{
		char	   *q = quote_qualified_identifier(SPI_getvalue(ours->vals[i], ours->tupdesc, 1),
												   SPI_getvalue(ours->vals[i], ours->tupdesc, 2));
		const char *qp[1] = {q};
		PGresult   *res = snapshot_remote(conn, "SELECT pg_catalog.to_regclass($1) IS NULL", 1, qp);
		bool		gone = strcmp(PQgetvalue(res, 0, 0), "t") == 0;

		PQclear(res);
		if (gone)
			raftable_spi(psprintf("DROP TABLE IF EXISTS %s", q), 0, NULL, NULL);
	}
	for (int i = PQntuples(src->tables) - 1; i >= 0; i--)
		raftable_spi(psprintf("DROP TABLE IF EXISTS %s",
							  quote_qualified_identifier(PQgetvalue(src->tables, i, 0),
														 PQgetvalue(src->tables, i, 1))),
					 0, NULL, NULL);
}

/* Phase 3: create each of the source's tables, replicate it, copy its rows */
static void
snapshot_copy_tables(PGconn *conn, const SnapshotSource *src)
{
	for (int i = 0; i < PQntuples(src->tables); i++)
	{
		const char *schema = PQgetvalue(src->tables, i, 0);
		const char *name = PQgetvalue(src->tables, i, 1);
		Oid			types[2] = {REGCLASSOID, INT8OID};
		Datum		values[2];

		snapshot_progress(NULL, psprintf("%s.%s", schema, name), i);
		ddl_create_table(schema, name, PQgetvalue(src->tables, i, 4),
						 PQgetvalue(src->tables, i, 2));
		values[0] = ObjectIdGetDatum(RangeVarGetRelid(makeRangeVar((char *) schema,
																   (char *) name, -1),
													  NoLock, false));
		values[1] = Int64GetDatum(strtoi64(PQgetvalue(src->tables, i, 3), NULL, 10));
		raftable_spi("SELECT raftable._attach($1)", 1, types, values);
		raftable_spi("UPDATE raftable.replicated SET since_index = $2 WHERE relid = $1",
					 2, types, values);
		snapshot_copy_table(conn, schema, name);
	}
}

/*
 * Phase 4: the sequences' values, then the state the copy stands at: the
 * applied index and the marks of the entries above it that the source had
 * already applied (apply.c skips them, as the source does).
 */
static void
snapshot_set_state(const SnapshotSource *src)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	for (int i = 0; i < PQntuples(src->seqs); i++)
	{
		if (PQgetisnull(src->seqs, i, 2))
			continue;
		values[0] = CStringGetTextDatum(quote_qualified_identifier(PQgetvalue(src->seqs, i, 0),
																   PQgetvalue(src->seqs, i, 1)));
		values[1] = Int64GetDatum(strtoi64(PQgetvalue(src->seqs, i, 2), NULL, 10));
		raftable_spi("SELECT pg_catalog.setval($1::regclass, $2)", 2, types, values);
	}
	types[0] = INT8OID;
	values[0] = Int64GetDatum(src->applied);
	raftable_spi("UPDATE raftable.apply_state SET applied_index = $1", 1, types, values);
	raftable_spi("DELETE FROM raftable.applied_marks", 0, NULL, NULL);
	for (int i = 0; i < PQntuples(src->marks); i++)
	{
		values[0] = Int64GetDatum(strtoi64(PQgetvalue(src->marks, i, 0), NULL, 10));
		raftable_spi("INSERT INTO raftable.applied_marks (idx) VALUES ($1)",
					 1, types, values);
	}
}

/*
 * Copy the replicated tables from the node at conninfo, which must have
 * applied at least min_index.  Returns the index the copy stands at.
 * Runs in the apply worker, outside any transaction: phases 2 to 4 are
 * one local transaction, which a failure rolls back.  Whatever fails, the
 * connection and every libpq result are released (the apply worker lives
 * on and tries again).
 */
uint64
snapshot_install(const char *conninfo, uint64 source_id, uint64 min_index)
{
	PGconn	   *conn;
	SnapshotSource *src = palloc0(sizeof(SnapshotSource));	/* set in PG_TRY */
	uint64		applied;
	RaftableSnapshotProgress *p = &raftable_shared->snapshot;

	snapshot_rows = snapshot_bytes = 0;
	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	memset(p, 0, sizeof(*p));
	strlcpy(p->phase, "connecting", sizeof(p->phase));
	p->source_id = source_id;
	p->started_at = GetCurrentTimestamp();
	LWLockRelease(raftable_shared->lock);

	conn = remote_connect(conninfo, true);
	PG_TRY();
	{
		snapshot_read_source(conn, min_index, src);
		snapshot_phase("copying", src->applied, PQntuples(src->tables));

		raftable_worker_xact_begin("installing a raftable snapshot");
		snapshot_drop_ours(conn, src);
		snapshot_copy_tables(conn, src);
		snapshot_progress("installing", "", PQntuples(src->tables));
		snapshot_set_state(src);
		/* as an apply batch: never taken back */
		snapshot_install_xid = raftable_worker_xact_commit(true);
		pgstat_report_activity(STATE_IDLE, NULL);
		applied = src->applied;
	}
	PG_FINALLY();
	{
		if (snapshot_buf)
			PQfreemem(snapshot_buf);
		snapshot_buf = NULL;
		PQclear(src->marks);
		PQclear(src->tables);
		PQclear(src->seqs);
		pfree(src);
		PQfinish(conn);
		snapshot_conn = NULL;
	}
	PG_END_TRY();

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	strlcpy(p->phase, "done", sizeof(p->phase));
	p->current_table[0] = '\0';
	p->rows_copied = snapshot_rows;
	p->bytes_copied = snapshot_bytes;
	p->finished_at = GetCurrentTimestamp();
	LWLockRelease(raftable_shared->lock);
	return applied;
}

/*
 * After a failure: the view says so until the next attempt, with the
 * error's detail, which for a failure on the source is the source's own
 * error (a missing privilege, say).
 */
void
snapshot_failed(const ErrorData *err)
{
	RaftableSnapshotProgress *p = &raftable_shared->snapshot;

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	strlcpy(p->phase, "failed", sizeof(p->phase));
	strlcpy(p->error, err->message ? err->message : "", sizeof(p->error));
	p->error_code = err->sqlerrcode;
	strlcpy(p->error_detail, err->detail ? err->detail : "", sizeof(p->error_detail));
	p->finished_at = GetCurrentTimestamp();
	LWLockRelease(raftable_shared->lock);
}

Datum
raftable_snapshot_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RaftableSnapshotProgress p;
	Datum		values[11];
	bool		nulls[11] = {0};

	raftable_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	p = raftable_shared->snapshot;
	LWLockRelease(raftable_shared->lock);
	if (p.phase[0] == '\0')
		return (Datum) 0;		/* none since the server started */
	values[0] = CStringGetTextDatum(p.phase);
	values[1] = Int64GetDatum((int64) p.source_id);
	values[2] = Int64GetDatum((int64) p.source_index);
	nulls[2] = p.source_index == 0;
	values[3] = Int32GetDatum(p.tables_total);
	values[4] = Int32GetDatum(p.tables_done);
	values[5] = CStringGetTextDatum(p.current_table);
	nulls[5] = p.current_table[0] == '\0';
	values[6] = Int64GetDatum((int64) p.rows_copied);
	values[7] = Int64GetDatum((int64) p.bytes_copied);
	values[8] = TimestampTzGetDatum(p.started_at);
	values[9] = TimestampTzGetDatum(p.finished_at);
	nulls[9] = p.finished_at == 0;
	/*
	 * The message and its detail may quote the tables' data (a value COPY
	 * could not read): in full for pg_monitor, as its SQLSTATE for others,
	 * as raftable.status.apply_error.
	 */
	if (!has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
		values[10] = CStringGetTextDatum(psprintf("SQLSTATE %s",
												  unpack_sql_state(p.error_code)));
	else if (p.error_detail[0])
		values[10] = CStringGetTextDatum(psprintf("%s: %s", p.error, p.error_detail));
	else
		values[10] = CStringGetTextDatum(p.error);
	nulls[10] = p.error[0] == '\0';
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* ---------- the request: Raft worker -> apply worker ---------- */

/*
 * The Raft worker asks for a snapshot at min_index or later from node
 * source_id (the leader offered it).  Numbered: an answer still on its
 * way from an older ask is never taken for this one's.
 */
void
snapshot_ask(uint64 min_index, uint64 source_id, const char *conninfo)
{
	RaftableSnapshotRequest *req = &raftable_shared->snapshot_req;

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	req->generation = Max(req->generation, req->done_generation) + 1;
	req->min_index = min_index;
	req->source_id = source_id;
	strlcpy(req->conninfo, conninfo, sizeof(req->conninfo));
	LWLockRelease(raftable_shared->lock);
	raftable_wake_apply();
}

/* the Raft worker: is the last ask answered, and how? */
bool
snapshot_answered(bool *ok, uint64 *installed)
{
	RaftableSnapshotRequest *req = &raftable_shared->snapshot_req;
	bool		done;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	done = req->done_generation == req->generation;
	*ok = req->ok;
	*installed = req->installed_index;
	LWLockRelease(raftable_shared->lock);
	return done;
}

/* the apply worker: the ask waiting for an answer, if any */
bool
snapshot_asked(SnapshotAsk *ask)
{
	RaftableSnapshotRequest *req = &raftable_shared->snapshot_req;
	bool		asked;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	asked = req->generation != req->done_generation;
	ask->generation = req->generation;
	ask->min_index = req->min_index;
	ask->source_id = req->source_id;
	strlcpy(ask->conninfo, req->conninfo, sizeof(ask->conninfo));
	LWLockRelease(raftable_shared->lock);
	return asked;
}

/*
 * The apply worker answers ask, unless a newer one replaced it; the
 * applied index it publishes must already show what was installed, since
 * the Raft worker acts on the answer.
 */
void
snapshot_answer(const SnapshotAsk *ask, bool ok, uint64 installed)
{
	RaftableSnapshotRequest *req = &raftable_shared->snapshot_req;

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	if (req->generation == ask->generation)
	{
		req->done_generation = ask->generation;
		req->ok = ok;
		req->installed_index = installed;
	}
	LWLockRelease(raftable_shared->lock);
	raftable_wake_worker();
}
