/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The apply worker: applies committed log entries to the replicated
 *	  tables, in log order, exactly once.
 *
 * A second background worker, so that a large apply never delays the Raft
 * worker's heartbeats.  It reads committed entries from raftable.log (the
 * Raft worker persisted them before they could commit) in batches, and
 * applies each batch in one transaction that also advances
 * raftable.apply_state.applied_index: a crash at any point either keeps
 * the whole batch and its index or neither.
 *
 * A batch that changes replicated tables commits synchronously (its WAL
 * flushed before its rows become visible), or a crash could take back
 * rows that a read on this node has already seen: an eventual read would
 * go backwards.  A batch that only skips this leader's own entries (see
 * below) and advances the index changes nothing a read sees; it commits
 * asynchronously (synchronous_commit = off): a crash may lose it, and
 * apply then does it again, from the log -- still exactly once.  What the
 * log must keep for that is what is applied but not yet flushed, so the
 * worker publishes the flushed part (durable_index) for compaction.
 *
 * Row changes are applied by primary key through SPI plans kept per table,
 * with session_replication_role = replica so that user triggers and
 * foreign-key triggers do not fire a second time; raftable's own triggers
 * are ENABLE ALWAYS and see raftable_applying.
 *
 * An entry this node wrote as leader was applied by the transaction that
 * wrote it, which recorded the entry's index in raftable.applied_marks
 * when it committed; such an entry is skipped, its mark deleted.  Whether
 * that transaction committed is known once it has ended: the worker waits
 * for it (it is waiting for this very entry to commit, so not for long).
 * A snapshot brings the marks of its source along (snapshot.c).
 *
 * An error stops the batch; its message, with the table and the log index
 * from the error context, is published in raftable.status and logged.  The
 * entries before the failing one are then applied at once, in a batch of
 * their own, and the failing entry is retried alone, with a growing
 * pause.  Nothing is skipped, and nothing before a failing entry waits
 * for it.
 *
 * IDENTIFICATION
 *	  src/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "apply.h"
#include "capture.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "changeset.h"
#include "ddl.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "raftable.h"
#include "shmem.h"
#include "snapshot.h"
#include "storage.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#define APPLY_BATCH_ENTRIES 64

/* a table as apply needs it: columns, key, kept plans */
typedef struct ApplyTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	char	   *qname;			/* schema-qualified, quoted */
	int			natts;			/* live, non-generated columns */
	AttrNumber *attnums;
	Oid		   *types;			/* per live column */
	FmgrInfo   *in;
	Oid		   *ioparams;
	int32	   *typmods;
	bool	   *always;			/* GENERATED ALWAYS AS IDENTITY */
	Oid			owner;			/* its rows are applied as this role */
	int			nkeys;			/* primary key columns, index order */
	int		   *keypos;			/* their positions among the live columns */
	char	  **keyeq;			/* their equality operators, qualified:
								 * OPERATOR(schema.=) of the key's opfamily */
	SPIPlanPtr	insert_plan;
	SPIPlanPtr	update_plan;
	SPIPlanPtr	delete_plan;
	MemoryContext cxt;
} ApplyTable;

static HTAB *apply_tables = NULL;

/* batches committed but perhaps not flushed yet: (applied index, commit LSN) */
#define APPLY_UNFLUSHED 64
static struct
{
	uint64		applied;
	XLogRecPtr	lsn;
}			apply_unflushed[APPLY_UNFLUSHED];
static int	apply_unflushed_n = 0;
static bool apply_first_batch = true;

static void apply_committed(uint64 applied, XLogRecPtr lsn);
static MemoryContext apply_cxt;
static MemoryContext apply_batch_cxt;

/* for the error context */
static uint64 apply_cur_index;
static const CsTable *apply_cur_table;

/* the last error as roles without pg_monitor see it (apply_catch) */
static char apply_error_brief[256];

static void
apply_error_callback(void *arg)
{
	if (apply_cur_table)
		errcontext("raftable apply of log index %llu, table %s.%s",
				   (unsigned long long) apply_cur_index,
				   apply_cur_table->schema, apply_cur_table->name);
	else if (apply_cur_index)
		errcontext("raftable apply of log index %llu",
				   (unsigned long long) apply_cur_index);
}

/* ---------- tables ---------- */

static void
apply_forget(ApplyTable *t)
{
	if (t->insert_plan)
		SPI_freeplan(t->insert_plan);
	if (t->update_plan)
		SPI_freeplan(t->update_plan);
	if (t->delete_plan)
		SPI_freeplan(t->delete_plan);
	t->insert_plan = t->update_plan = t->delete_plan = NULL;
	if (t->cxt)
		MemoryContextDelete(t->cxt);
	t->cxt = NULL;
	t->valid = false;
}

static void
apply_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	ApplyTable *t;

	hash_seq_init(&seq, apply_tables);
	while ((t = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;	/* plans are freed at the next use */
}

/* OPERATOR(schema.name), as SQL names op whatever the search_path */
static char *
apply_operator_name(Oid op)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(op));
	Form_pg_operator form;
	char	   *name;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", op);
	form = (Form_pg_operator) GETSTRUCT(tup);
	name = psprintf("OPERATOR(%s.%s)",
					quote_identifier(get_namespace_name(form->oprnamespace)),
					NameStr(form->oprname));
	ReleaseSysCache(tup);
	return name;
}

static ApplyTable *
apply_table(const CsTable *ct)
{
	Oid			relid;
	ApplyTable *t;
	bool		found;
	Relation	rel;
	TupleDesc	desc;
	Oid			pk;
	MemoryContext old;

	relid = RangeVarGetRelid(makeRangeVar(ct->schema, ct->name, -1),
							 RowExclusiveLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("replicated table %s.%s does not exist on this node",
						ct->schema, ct->name)));
	t = hash_search(apply_tables, &relid, HASH_ENTER, &found);
	if (found && t->valid)
		return t;
	if (!found)
	{
		t->insert_plan = t->update_plan = t->delete_plan = NULL;
		t->cxt = NULL;
	}
	apply_forget(t);
	t->cxt = AllocSetContextCreate(apply_cxt, "raftable apply table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	rel = table_open(relid, NoLock);
	desc = RelationGetDescr(rel);
	t->qname = quote_qualified_identifier(ct->schema, ct->name);
	t->owner = rel->rd_rel->relowner;
	t->attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	t->types = palloc(sizeof(Oid) * Max(desc->natts, 1));
	t->in = palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	t->ioparams = palloc(sizeof(Oid) * Max(desc->natts, 1));
	t->typmods = palloc(sizeof(int32) * Max(desc->natts, 1));
	t->always = palloc(sizeof(bool) * Max(desc->natts, 1));
	t->natts = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			typin;

		if (att->attisdropped || att->attgenerated)
			continue;
		t->attnums[t->natts] = att->attnum;
		t->types[t->natts] = att->atttypid;
		t->typmods[t->natts] = att->atttypmod;
		t->always[t->natts] = att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS;
		getTypeInputInfo(att->atttypid, &typin, &t->ioparams[t->natts]);
		fmgr_info_cxt(typin, &t->in[t->natts], t->cxt);
		t->natts++;
	}
	pk = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("replicated table %s has no primary key on this node", t->qname)));
	{
		Relation	idx = index_open(pk, AccessShareLock);

		t->nkeys = idx->rd_index->indnkeyatts;
		t->keypos = palloc(sizeof(int) * t->nkeys);
		for (int k = 0; k < t->nkeys; k++)
		{
			t->keypos[k] = -1;
			for (int i = 0; i < t->natts; i++)
				if (t->attnums[i] == idx->rd_index->indkey.values[k])
					t->keypos[k] = i;
			if (t->keypos[k] < 0)
				elog(ERROR, "primary key column of %s is generated", t->qname);
		}
		t->keyeq = palloc(sizeof(char *) * t->nkeys);
		for (int k = 0; k < t->nkeys; k++)
		{
			/*
			 * The key's own equality, by its index's operator family: a
			 * bare "=" under apply's search_path finds no operator of a
			 * type that an extension defines elsewhere (ltree, isn, ...).
			 */
			Oid			op = get_opfamily_member(idx->rd_opfamily[k], idx->rd_opcintype[k],
												 idx->rd_opcintype[k], BTEqualStrategyNumber);

			if (!OidIsValid(op))
				elog(ERROR, "no equality operator for the primary key of %s", t->qname);
			t->keyeq[k] = apply_operator_name(op);
		}
		index_close(idx, AccessShareLock);
	}
	table_close(rel, NoLock);
	MemoryContextSwitchTo(old);
	t->relid = relid;
	t->valid = true;
	return t;
}

static char *
apply_colname(ApplyTable *t, int i)
{
	return (char *) quote_identifier(get_attname(t->relid, t->attnums[i], false));
}

static void
apply_make_plans(ApplyTable *t)
{
	StringInfoData sql;
	Oid		   *types;
	int			n = 0;
	MemoryContext old;

	if (t->insert_plan)
		return;
	old = MemoryContextSwitchTo(t->cxt);
	types = palloc(sizeof(Oid) * (t->natts + t->nkeys));
	initStringInfo(&sql);

	appendStringInfo(&sql, "INSERT INTO %s (", t->qname);
	for (int i = 0; i < t->natts; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", apply_colname(t, i));
	appendStringInfoString(&sql, ") OVERRIDING SYSTEM VALUE VALUES (");
	for (int i = 0; i < t->natts; i++)
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoChar(&sql, ')');
	t->insert_plan = raftable_spi_prepare(sql.data, t->natts, t->types);

	/* UPDATE: every column but identity ALWAYS ones, which can't be set */
	resetStringInfo(&sql);
	appendStringInfo(&sql, "UPDATE %s SET ", t->qname);
	for (int i = 0; i < t->natts; i++)
	{
		if (t->always[i])
			continue;
		appendStringInfo(&sql, "%s%s = $%d", n ? ", " : "", apply_colname(t, i), i + 1);
		n++;
	}
	if (n == 0)					/* only the key: set it to itself */
		appendStringInfo(&sql, "%s = %s", apply_colname(t, t->keypos[0]),
						 apply_colname(t, t->keypos[0]));
	appendStringInfoString(&sql, " WHERE ");
	for (int k = 0; k < t->nkeys; k++)
	{
		appendStringInfo(&sql, "%s%s %s $%d", k ? " AND " : "",
						 apply_colname(t, t->keypos[k]), t->keyeq[k], t->natts + k + 1);
	}
	memcpy(types, t->types, sizeof(Oid) * t->natts);
	for (int k = 0; k < t->nkeys; k++)
		types[t->natts + k] = t->types[t->keypos[k]];
	t->update_plan = raftable_spi_prepare(sql.data, t->natts + t->nkeys, types);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s WHERE ", t->qname);
	for (int k = 0; k < t->nkeys; k++)
	{
		appendStringInfo(&sql, "%s%s %s $%d", k ? " AND " : "",
						 apply_colname(t, t->keypos[k]), t->keyeq[k], k + 1);
		types[k] = t->types[t->keypos[k]];
	}
	t->delete_plan = raftable_spi_prepare(sql.data, t->nkeys, types);
	MemoryContextSwitchTo(old);
}

/* text values of a row (or key) into datums; positions: live columns */
static void
apply_datums(ApplyTable *t, const CsRow *row, bool key, Datum *values,
			 char *nulls)
{
	int			n = key ? t->nkeys : t->natts;

	if (row->natts != n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the leader sent %d %s for table %s, which has %d here",
						row->natts, key ? "key columns" : "columns", t->qname, n)));
	for (int i = 0; i < n; i++)
	{
		int			c = key ? t->keypos[i] : i;

		nulls[i] = row->values[i] ? ' ' : 'n';
		values[i] = InputFunctionCall(&t->in[c], row->values[i], t->ioparams[c],
									  t->typmods[c]);
	}
}

static void
apply_row(ApplyTable *t, const CsOp *op)
{
	Datum	   *values = palloc(sizeof(Datum) * (t->natts + t->nkeys));
	char	   *nulls = palloc(t->natts + t->nkeys + 1);
	int			rc;

	apply_make_plans(t);
	switch (op->type)
	{
		case CS_INSERT:
			apply_datums(t, &op->row, false, values, nulls);
			rc = SPI_execute_plan(t->insert_plan, values, nulls, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "insert into %s failed: %s", t->qname, SPI_result_code_string(rc));
			return;
		case CS_UPDATE:
			apply_datums(t, &op->row, false, values, nulls);
			apply_datums(t, &op->key, true, values + t->natts, nulls + t->natts);
			rc = SPI_execute_plan(t->update_plan, values, nulls, false, 0);
			break;
		default:
			apply_datums(t, &op->key, true, values, nulls);
			rc = SPI_execute_plan(t->delete_plan, values, nulls, false, 0);
			break;
	}
	if (rc < 0)
		elog(ERROR, "change of %s failed: %s", t->qname, SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("row to %s in %s not found on this node",
						op->type == CS_UPDATE ? "update" : "delete", t->qname),
				 errdetail("This node's copy of the table differs from the leader's.")));
}

/* ---------- ops other than rows ---------- */

/* the statements of every batch: prepared on first use and kept */
static SPIPlanPtr apply_state_plan;
static SPIPlanPtr apply_log_plan;
static SPIPlanPtr apply_mark_plan;
static SPIPlanPtr apply_advance_plan;

/*
 * replicate_table: any table of that name here goes, and the leader's
 * definition is created, owned by the leader's owner and created as that
 * role (ddl_create_table); raftable's triggers and bookkeeping follow.
 */
static void
apply_replicate(const CsOp *op, uint64 index)
{
	char	   *q = quote_qualified_identifier(op->table->schema, op->table->name);
	Oid			types[2] = {REGCLASSOID, INT8OID};
	Datum		values[2];
	Oid			relid;

	raftable_spi(psprintf("DROP TABLE IF EXISTS %s", q), 0, NULL, NULL);
	/* version 1 carries no owner: such tables were the superuser's */
	ddl_create_table(op->table->schema, op->table->name,
					 op->role ? op->role : GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false),
					 op->str1);
	relid = RangeVarGetRelid(makeRangeVar(op->table->schema, op->table->name, -1),
							 NoLock, false);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int64GetDatum(index);
	raftable_spi("SELECT raftable._attach($1)", 1, types, values);
	raftable_spi("UPDATE raftable.replicated SET since_index = $2 WHERE relid = $1",
				 2, types, values);
}

static void
apply_unreplicate(const CsOp *op)
{
	Oid			types[1] = {REGCLASSOID};
	Datum		values[1];

	values[0] = ObjectIdGetDatum(RangeVarGetRelid(makeRangeVar(op->table->schema,
															   op->table->name, -1),
												  NoLock, false));
	raftable_spi("SELECT raftable._detach($1)", 1, types, values);
}

/*
 * DDL runs as the role that ran it on the leader, in a security-restricted
 * operation, with the settings its text depends on as they were there
 * (only those: capture_ddl_settings), after ddl_check_replay has made sure
 * that the text is the one statement on the table the entry says.
 */
static void
apply_ddl(const CsOp *op)
{
	Oid			role;
	Oid			relid;
	const char *tag = op->tag;
	RaftableSavedUser saved;

	if (op->table)
	{
		relid = RangeVarGetRelid(makeRangeVar(op->table->schema, op->table->name, -1),
								 NoLock, false);
		role = get_role_oid(op->role, true);
	}
	else
	{
		/*
		 * Version 1 says neither table nor role: the statement's own
		 * replicated table, replayed as that table's owner.
		 */
		raftable_switch_user(BOOTSTRAP_SUPERUSERID, &saved);
		for (int i = 0; i < op->nsettings; i++)
			raftable_set_option(op->setting_names[i], op->setting_values[i]);
		relid = ddl_replay_target(op->str1, &tag);
		raftable_restore_user(&saved);
		{
			Relation	rel = table_open(relid, AccessShareLock);

			role = rel->rd_rel->relowner;
			table_close(rel, AccessShareLock);
		}
	}

	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", which ran a replicated statement on the leader, does not exist on this node",
						op->role),
				 errhint("Create the role on this node; apply retries.")));
	raftable_switch_user(role, &saved);
	for (int i = 0; i < op->nsettings; i++)
	{
		bool		known = false;

		for (int k = 0; k < CAPTURE_DDL_NSETTINGS; k++)
			known |= strcmp(op->setting_names[i], capture_ddl_settings[k]) == 0;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("replicated statement carries unexpected setting \"%s\"",
							op->setting_names[i])));
		raftable_set_option(op->setting_names[i], op->setting_values[i]);
	}
	ddl_check_replay(op->str1, tag, relid);
	raftable_spi(op->str1, 0, NULL, NULL);
	raftable_restore_user(&saved);
}

/* never below what the leader handed out */
static void
apply_sequence(const CsOp *op)
{
	Oid			seq = RangeVarGetRelid(makeRangeVar(op->str1, op->str2, -1),
									   NoLock, true);
	Datum		cur;
	Oid			table;
	int32		column;

	LOCAL_FCINFO(fcinfo, 1);

	/* only a sequence of a replicated table here: never another's */
	if (!OidIsValid(seq) ||
		!(sequenceIsOwned(seq, DEPENDENCY_AUTO, &table, &column) ||
		  sequenceIsOwned(seq, DEPENDENCY_INTERNAL, &table, &column)) ||
		!raftable_table_is_replicated(table))
		return;					/* dropped since, or not ours here */
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seq);
	fcinfo->args[0].isnull = false;
	cur = pg_sequence_last_value(fcinfo);
	if (fcinfo->isnull || DatumGetInt64(cur) < op->value)
		DirectFunctionCall2(setval_oid, ObjectIdGetDatum(seq), Int64GetDatum(op->value));
}

/* ---------- entries ---------- */

/*
 * An entry this node wrote as leader is applied by the transaction that
 * wrote it, if that committed: wait until it has ended (it is waiting for
 * this very entry to commit, so not for long), so that its mark, if any,
 * is visible.
 */
static void
apply_wait_for_writer(const char *data, int len)
{
	CsReader	r;
	FullTransactionId fxid;
	uint64		self;

	cs_read_header(&r, data, len);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	self = raftable_shared->status.node_id;
	LWLockRelease(raftable_shared->lock);
	if (r.origin != self)
		return;
	fxid = FullTransactionIdFromU64(r.xid);
	if (FullTransactionIdPrecedes(fxid, ReadNextFullTransactionId()) &&
		TransactionIdIsInProgress(XidFromFullTransactionId(fxid)))
		XactLockTableWait(XidFromFullTransactionId(fxid), NULL, NULL, XLTW_None);
}

/*
 * Which entries in (from, to] were applied here already, by the
 * transaction that wrote them (or on a snapshot's source)?  Their marks
 * say so, and go, in the batch's transaction: marked[i] is for from+1+i.
 */
static void
apply_take_marks(uint64 from, uint64 to, bool *marked)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(from), Int64GetDatum(to)};
	bool		isnull;

	raftable_spi_kept(&apply_mark_plan,
					  "DELETE FROM raftable.applied_marks WHERE idx > $1 AND idx <= $2 "
					  "RETURNING idx", 2, types, values);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		uint64		idx = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1, &isnull));

		if (idx > from && idx <= to)
			marked[idx - from - 1] = true;
	}
}

/*
 * Row changes are applied as the table's owner, in a security-restricted
 * operation (privilege.c), as PostgreSQL 16's logical replication does
 * with run_as_owner off: CHECK constraints, index and generated-column
 * expressions and domain checks run with the owner's rights, never the
 * apply worker's.  Consecutive rows of one owner share one switch.
 */
typedef struct ApplyAs
{
	Oid			role;			/* InvalidOid: the apply worker's own */
	RaftableSavedUser saved;
} ApplyAs;

static void
apply_as(ApplyAs *as, Oid role)
{
	if (as->role == role)
		return;
	if (OidIsValid(as->role))
		raftable_restore_user(&as->saved);
	as->role = role;
	if (OidIsValid(role))
		raftable_switch_user(role, &as->saved);
}

static void
apply_entry(uint64 index, const char *data, int len)
{
	CsReader	r;
	CsOp		op;
	StringInfoData truncate;	/* consecutive TRUNCATEs: one statement,
								 * as foreign keys between them need */
	ApplyAs		as = {InvalidOid};
	Oid			truncate_owner = InvalidOid;

	cs_read_header(&r, data, len);
	initStringInfo(&truncate);
	while (cs_next_op(&r, &op))
	{
		apply_cur_table = op.table;
		if (truncate.len && op.type != CS_TRUNCATE)
		{
			apply_as(&as, truncate_owner);
			raftable_spi(truncate.data, 0, NULL, NULL);
			resetStringInfo(&truncate);
		}
		switch (op.type)
		{
			case CS_INSERT:
			case CS_UPDATE:
			case CS_DELETE:
				{
					ApplyTable *t = apply_table(op.table);

					apply_as(&as, t->owner);
					apply_row(t, &op);
					break;
				}
			case CS_TRUNCATE:
				{
					/*
					 * As the tables' owner, like rows.  Consecutive TRUNCATEs
					 * of one owner are one statement (foreign keys between
					 * them need that); a TRUNCATE of tables of several owners
					 * runs as the apply worker, which is safe only because
					 * no user trigger or rule of a replicated table can fire
					 * in apply (ddl.c refuses ENABLE ALWAYS and REPLICA).
					 */
					ApplyTable *t = apply_table(op.table);

					if (truncate.len == 0)
						truncate_owner = t->owner;
					else if (truncate_owner != t->owner)
						truncate_owner = InvalidOid;
					appendStringInfo(&truncate, "%s%s", truncate.len ? ", " : "TRUNCATE ",
									 t->qname);
					break;
				}
			case CS_REPLICATE:
				apply_as(&as, InvalidOid);
				apply_replicate(&op, index);
				break;
			case CS_UNREPLICATE:
				apply_as(&as, InvalidOid);
				apply_unreplicate(&op);
				break;
			case CS_DDL:
				apply_as(&as, InvalidOid);
				apply_ddl(&op);
				break;
			case CS_SEQUENCE:
				apply_as(&as, InvalidOid);
				apply_sequence(&op);
				break;
		}
	}
	if (truncate.len)
	{
		apply_as(&as, truncate_owner);
		raftable_spi(truncate.data, 0, NULL, NULL);
	}
	apply_as(&as, InvalidOid);
	apply_cur_table = NULL;
}

/*
 * The entry that failed last, until apply gets past it: the entries before
 * it are applied without it, in a batch of their own, and it is then
 * retried alone, so that one failing entry holds back nothing before it.
 */
static uint64 apply_failed_at = 0;

/* the node id the last batch ran under (none yet: PG_UINT64_MAX) */
static uint64 apply_node = PG_UINT64_MAX;

/* the transaction of the last batch, once committed */
static TransactionId apply_batch_xid = InvalidTransactionId;

static uint64
apply_upper_bound(uint64 applied, uint64 commit)
{
	uint64		upper = Min(commit, applied + APPLY_BATCH_ENTRIES);

	if (apply_failed_at > applied + 1)
		upper = Min(upper, apply_failed_at - 1);
	else if (apply_failed_at == applied + 1)
		upper = Min(upper, apply_failed_at);
	return upper;
}

/*
 * Apply the committed entries after applied, up to commit, in one
 * transaction.  Returns the new applied index; *from is the one it started
 * from.
 */
static uint64
apply_batch(uint64 commit, uint64 *from)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];
	uint64		applied;
	uint64		last;
	SPITupleTable *tt;
	uint64		n;
	uint64		m = 0;
	bool	   *marked;
	bool		changed = false;	/* an entry was applied, not skipped */
	MemoryContext entry_cxt;
	bool		isnull;
	ErrorContextCallback errcb;

	raftable_worker_xact_begin("applying raftable log entries");

	raftable_spi_kept(&apply_state_plan,
					  "SELECT applied_index FROM raftable.apply_state FOR UPDATE",
					  0, NULL, NULL);
	if (SPI_processed != 1)
		elog(ERROR, "raftable.apply_state must hold one row");
	applied = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull));
	*from = applied;
	last = applied;
	if (commit > applied)
	{
		values[0] = Int64GetDatum(applied);
		values[1] = Int64GetDatum(apply_upper_bound(applied, commit));
		raftable_spi_kept(&apply_log_plan,
						  "SELECT idx, kind, data FROM raftable.log "
						  "WHERE idx > $1 AND idx <= $2 ORDER BY idx", 2, types, values);
		tt = SPI_tuptable;
		n = SPI_processed;

		errcb.callback = apply_error_callback;
		errcb.arg = NULL;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;

		/* the run that follows applied: a gap is not persisted yet */
		while (m < n && DatumGetInt64(SPI_getbinval(tt->vals[m], tt->tupdesc, 1, &isnull)) ==
			   applied + 1 + m)
			m++;
		/* each entry's decoded data and values go with it */
		entry_cxt = AllocSetContextCreate(CurrentMemoryContext, "raftable apply entry",
										  ALLOCSET_DEFAULT_SIZES);
		for (uint64 i = 0; i < m; i++)
		{
			Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull);
			MemoryContext old;

			apply_cur_index = applied + 1 + i;
			if (isnull || DatumGetInt16(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull)) !=
				RAFT_ENTRY_NORMAL)
				continue;
			old = MemoryContextSwitchTo(entry_cxt);
			{
				bytea	   *b = DatumGetByteaPP(d);

				apply_wait_for_writer(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(entry_cxt);
		}
		marked = palloc0(sizeof(bool) * Max(m, 1));
		if (m > 0)
			apply_take_marks(applied, applied + m, marked);
		for (uint64 i = 0; i < m; i++)
		{
			int			kind = DatumGetInt16(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
			Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull);

			apply_cur_index = applied + 1 + i;
			if (kind == RAFT_ENTRY_NORMAL && !isnull && !marked[i])
			{
				MemoryContext old = MemoryContextSwitchTo(entry_cxt);
				bytea	   *b = DatumGetByteaPP(d);

				apply_entry(apply_cur_index, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
				MemoryContextSwitchTo(old);
				MemoryContextReset(entry_cxt);
				changed = true;
			}
		}
		last = applied + m;
		error_context_stack = errcb.previous;
		apply_cur_index = 0;
		if (last > applied)
		{
			values[0] = Int64GetDatum(last);
			raftable_spi_kept(&apply_advance_plan,
							  "UPDATE raftable.apply_state SET applied_index = $1",
							  1, types, values);
		}
	}
	/* rows a read may see are durable before it can see them */
	apply_batch_xid = raftable_worker_xact_commit(changed);
	/* the first batch of a process: what it read may not be flushed yet */
	if (last > applied || apply_first_batch)
		apply_committed(last, apply_first_batch ? GetXLogInsertRecPtr() : XactLastCommitEnd);
	apply_first_batch = false;
	MemoryContextSwitchTo(apply_batch_cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
	return last;
}

/* remember a batch's commit until WAL is flushed past it */
static void
apply_committed(uint64 applied, XLogRecPtr lsn)
{
	if (apply_unflushed_n == APPLY_UNFLUSHED)
	{
		/* full: keep the newest, the older become durable with it */
		memmove(&apply_unflushed[0], &apply_unflushed[1],
				sizeof(apply_unflushed[0]) * (APPLY_UNFLUSHED - 1));
		apply_unflushed_n--;
	}
	apply_unflushed[apply_unflushed_n].applied = applied;
	apply_unflushed[apply_unflushed_n].lsn = lsn;
	apply_unflushed_n++;
}

/* the applied index that WAL already holds on disk */
static uint64
apply_durable(void)
{
	XLogRecPtr	flushed = GetFlushRecPtr(NULL);
	uint64		durable = 0;
	int			k = 0;

	while (k < apply_unflushed_n && apply_unflushed[k].lsn <= flushed)
		durable = apply_unflushed[k++].applied;
	if (k > 0)
	{
		memmove(&apply_unflushed[0], &apply_unflushed[k],
				sizeof(apply_unflushed[0]) * (apply_unflushed_n - k));
		apply_unflushed_n -= k;
	}
	return durable;
}

/*
 * Note, under the lock, that transaction xid (committed) brought the
 * applied index from 'before' to 'index'.
 */
static void
apply_note_xid(RaftableApplyStatus *a, uint64 before, uint64 index, TransactionId xid)
{
	if (!a->base_set || index < pg_atomic_read_u64(&a->applied_index))
	{
		/* the first since the server started, or a new identity */
		a->base_index = Min(before, index);
		a->base_set = true;
		memset(a->xids, 0, sizeof(a->xids));
	}
	if (!TransactionIdIsValid(xid))
		return;
	a->xid_index[a->xids_next] = index;
	a->xids[a->xids_next] = xid;
	a->xids_next = (a->xids_next + 1) % RAFTABLE_APPLIED_XIDS;
}

/*
 * Whether a snapshot sees every entry up to 'index' applied (the caller
 * waited until the applied index reached it).  Apply commits in log order,
 * so it does if it sees the transaction that brought the applied index to
 * 'index' or past it; an earlier one would do too, but the ring may have
 * lost it, so the answer may be a false "no", never a false "yes".
 * Indexes applied before the server started are seen by every snapshot.
 */
bool
raftable_applied_visible(uint64 index, Snapshot snapshot)
{
	RaftableApplyStatus *a = &raftable_shared->apply;
	TransactionId xid = InvalidTransactionId;
	uint64		best = PG_UINT64_MAX;
	bool		before_start;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	before_start = !a->base_set || index <= a->base_index;
	for (int i = 0; i < RAFTABLE_APPLIED_XIDS; i++)
		if (TransactionIdIsValid(a->xids[i]) && a->xid_index[i] >= index &&
			a->xid_index[i] < best)
		{
			best = a->xid_index[i];
			xid = a->xids[i];
		}
	LWLockRelease(raftable_shared->lock);
	if (before_start)
		return true;
	if (!TransactionIdIsValid(xid))
		return false;
	return !XidInMVCCSnapshot(xid, snapshot);
}

static void
apply_publish(uint64 applied, uint64 applied_now, const ErrorData *err,
			  uint64 failed_at, TransactionId xid)
{
	RaftableShared *sh = raftable_shared;
	uint64		durable = apply_durable();

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (applied != pg_atomic_read_u64(&sh->apply.applied_index) || !sh->apply.base_set)
		apply_note_xid(&sh->apply, applied - applied_now, applied, xid);
	pg_atomic_write_u64(&sh->apply.applied_index, applied);
	if (durable > pg_atomic_read_u64(&sh->apply.durable_index))
		pg_atomic_write_u64(&sh->apply.durable_index, durable);
	if (pg_atomic_read_u64(&sh->apply.durable_index) > applied)
		pg_atomic_write_u64(&sh->apply.durable_index, applied);	/* a new identity starts over */
	sh->stats.entries_applied += applied_now;
	if (err)
	{
		snprintf(sh->apply.error, sizeof(sh->apply.error), "%s%s%s",
				 err->message ? err->message : "error",
				 err->context ? " (" : "", err->context ? err->context : "");
		if (err->context)
			strlcat(sh->apply.error, ")", sizeof(sh->apply.error));
		strlcpy(sh->apply.error_brief, apply_error_brief, sizeof(sh->apply.error_brief));
		sh->apply.stalled_at = failed_at;
		sh->apply.stall_code = err->sqlerrcode;
	}
	else if (applied_now > 0 && apply_failed_at == 0)
	{
		/* past it */
		sh->apply.error[0] = sh->apply.error_brief[0] = '\0';
		sh->apply.stalled_at = 0;
		sh->apply.stall_code = 0;
	}
	LWLockRelease(sh->lock);
	ConditionVariableBroadcast(&sh->status_cv);
	if (applied_now > 0)
		raftable_wake_worker();	/* to report it to the leader */
}

/*
 * In a PG_CATCH: the error, reported to the log and cleared, and the
 * transaction gone, so that the worker can carry on.
 */
static ErrorData *
apply_catch(void)
{
	ErrorData  *err;

	MemoryContextSwitchTo(apply_cxt);
	err = CopyErrorData();
	/* before the abort frees the entry that apply_cur_table points into */
	snprintf(apply_error_brief, sizeof(apply_error_brief),
			 "SQLSTATE %s at log index %llu%s%s%s%s",
			 unpack_sql_state(err->sqlerrcode), (unsigned long long) apply_cur_index,
			 apply_cur_table ? ", table " : "",
			 apply_cur_table ? apply_cur_table->schema : "",
			 apply_cur_table ? "." : "",
			 apply_cur_table ? apply_cur_table->name : "");
	apply_cur_table = NULL;
	EmitErrorReport();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	return err;
}

/*
 * Install the snapshot the Raft worker asked for, if any (snapshot.c), and
 * answer it.  A failure is logged and shown in raftable.snapshot_progress;
 * the leader offers again.
 */
static void
apply_maybe_snapshot(void)
{
	SnapshotAsk ask;
	uint64		installed = 0;
	bool		ok = false;

	if (!snapshot_asked(&ask))
		return;
	PG_TRY();
	{
		installed = snapshot_install(ask.conninfo, ask.source_id, ask.min_index);
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *err = apply_catch();

		snapshot_failed(err);
		FreeErrorData(err);
	}
	PG_END_TRY();
	if (ok)
	{
		LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
		apply_note_xid(&raftable_shared->apply,
					   pg_atomic_read_u64(&raftable_shared->apply.applied_index),
					   installed, snapshot_install_xid);
		pg_atomic_write_u64(&raftable_shared->apply.applied_index, installed);
		LWLockRelease(raftable_shared->lock);
	}
	snapshot_answer(&ask, ok, installed);
	if (ok)
		ereport(LOG,
				(errmsg("raftable: snapshot installed; this node now stands at log index %llu",
						(unsigned long long) installed)));
	ConditionVariableBroadcast(&raftable_shared->status_cv);
}

static void
apply_on_exit(int code, Datum arg)
{
	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	raftable_shared->apply.latch = NULL;
	LWLockRelease(raftable_shared->lock);
}

void
raftable_apply_main(Datum arg)
{
	HASHCTL		ctl;
	int			pause_ms = 0;
	Oid			ext = InvalidOid;
	TimestampTz last_check = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(raftable_database, NULL, 0);

	raftable_applying = true;
	SetConfigOption("session_replication_role", "replica", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	raftable_worker_session();
	/*
	 * What row values are read under: changeset.h's fixed settings.  The
	 * search_path is privilege.c's (raftable_worker_session), so that kept
	 * plans are the same whoever apply runs as.
	 */

	SetConfigOption("DateStyle", "ISO, YMD", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("IntervalStyle", "postgres", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("TimeZone", "UTC", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("bytea_output", "hex", PGC_SUSET, PGC_S_SESSION);
	/* statements here touch a few rows each: compiling them never pays */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_SESSION);

	apply_cxt = AllocSetContextCreate(TopMemoryContext, "raftable apply",
									  ALLOCSET_DEFAULT_SIZES);
	apply_batch_cxt = AllocSetContextCreate(apply_cxt, "raftable apply batch",
											ALLOCSET_DEFAULT_SIZES);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ApplyTable);
	ctl.hcxt = apply_cxt;
	apply_tables = hash_create("raftable apply tables", 64, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(apply_invalidate, (Datum) 0);

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	raftable_shared->apply.latch = MyLatch;
	LWLockRelease(raftable_shared->lock);
	before_shmem_exit(apply_on_exit, (Datum) 0);

	for (;;)
	{
		uint64		commit;
		uint64		node;
		uint64		applied;
		long		wait_ms = 1000;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextReset(apply_batch_cxt);
		MemoryContextSwitchTo(apply_batch_cxt);

		if (TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), 1000))
		{
			ext = storage_extension_oid();
			last_check = GetCurrentTimestamp();
		}
		LWLockAcquire(raftable_shared->lock, LW_SHARED);
		commit = raftable_shared->status.in_cluster ?
			raftable_shared->status.commit_index : 0;
		node = raftable_shared->status.in_cluster ?
			raftable_shared->status.node_id : 0;
		LWLockRelease(raftable_shared->lock);

		if (OidIsValid(ext))
			apply_maybe_snapshot();
		applied = pg_atomic_read_u64(&raftable_shared->apply.applied_index);

		/*
		 * Nothing committed past what is applied, under the same identity
		 * (a new one starts from the table's index, not the shared one):
		 * no batch, whose transaction would lock apply_state's row for
		 * nothing.  Only the durable index may have to move.
		 */
		if (OidIsValid(ext) && commit <= applied && node == apply_node &&
			apply_failed_at == 0)
		{
			if (apply_unflushed_n > 0)
				apply_publish(applied, 0, NULL, 0, InvalidTransactionId);
		}
		else if (OidIsValid(ext))
		{
			PG_TRY();
			{
				uint64		from;
				uint64		now = apply_batch(commit, &from);

				/* counted from the table's index: the shared one is 0 at start */
				if (now >= apply_failed_at)
					apply_failed_at = 0;
				apply_publish(now, now - from, NULL, 0, apply_batch_xid);
				apply_node = node;
				pause_ms = 0;
				if (now > applied && now < commit)
					wait_ms = 0;	/* more to do */
			}
			PG_CATCH();
			{
				uint64		failed_at = apply_cur_index;
				ErrorData  *err = apply_catch();

				apply_publish(applied, 0, err, failed_at, InvalidTransactionId);
				FreeErrorData(err);
				apply_cur_index = 0;
				if (failed_at > applied + 1)
				{
					/* at once: the entries before it, without it */
					apply_failed_at = failed_at;
					wait_ms = 0;
				}
				else
				{
					apply_failed_at = failed_at;
					pause_ms = Min(Max(pause_ms * 2, 100), 10000);
					wait_ms = pause_ms;
				}
			}
			PG_END_TRY();
		}
		if (apply_unflushed_n > 0 && wait_ms > 200)
			wait_ms = 200;		/* to publish durable_index once flushed */
		if (wait_ms > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 wait_ms, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}
