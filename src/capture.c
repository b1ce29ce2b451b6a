/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The leader's write path: row changes on replicated tables are
 *	  captured into the transaction's change set, which at commit becomes
 *	  one log entry; COMMIT returns once that entry is committed.
 *
 * Every replicated table carries three triggers, all ENABLE ALWAYS so that
 * session_replication_role cannot skip them:
 *
 *	 raftable_guard		BEFORE INSERT/UPDATE/DELETE/TRUNCATE, per statement:
 *						refuses writes on a follower (25006, HINT: the
 *						leader), and on a new leader waits until it has
 *						applied the entries of earlier terms;
 *	 raftable_capture	AFTER INSERT/UPDATE/DELETE, per row: encodes the row
 *						(changeset.h) into the change set;
 *	 raftable_truncate	AFTER TRUNCATE, per statement.
 *
 * All three run raftable._capture(); the apply worker sets
 * raftable_applying so that they do nothing while it applies.
 *
 * The change set lives in TopTransactionContext.  A subtransaction that
 * aborts cuts it back to where it started (SubXactCallback), so a rolled
 * back savepoint leaves nothing in the entry.  At XACT_EVENT_PRE_COMMIT
 * the header goes in front, owned sequences' high-water marks at the end,
 * and the whole is proposed through the worker (a proposal slot, see
 * proposal.c).  The transaction then records the entry's
 * index in raftable.applied_marks, so that the apply worker -- which sees
 * the same entry come back committed -- knows, atomically with this
 * transaction's commit, that it is already applied here; and it waits
 * until the entry is committed.  Row locks held meanwhile keep
 * conflicting transactions in log order.  Any failure after the proposal
 * left is reported as 40003: the entry may still commit, and is then
 * applied here by the apply worker like any other.
 *
 * IDENTIFICATION
 *	  src/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "apply.h"
#include "capture.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "changeset.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "proposal.h"
#include "raftable.h"
#include "reads.h"
#include "status.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
#include "waits.h"

RAFTABLE_FUNCTION(raftable_capture);
RAFTABLE_FUNCTION(raftable_last_write_index);

bool		raftable_applying = false;

/* what capture needs to know of a table, cached per backend */
typedef struct CaptureTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	char	   *schema;
	char	   *name;
	int			natts;			/* live, non-generated columns */
	AttrNumber *attnums;
	int			nkeys;			/* primary key columns, index order */
	AttrNumber *keys;
	FmgrInfo   *out;			/* output function per attnum - 1 */
	Oid			owner;			/* the table's, and its sequences' */
	int			nseqs;			/* owned sequences (serial, identity) */
	Oid		   *seqs;
	MemoryContext cxt;			/* holds all of the above */
} CaptureTable;

static HTAB *capture_tables_cache = NULL;

/* a savepoint's starting point in the change set */
typedef struct CaptureLevel
{
	SubTransactionId subid;
	int			len;
	int			ntables;
} CaptureLevel;

/* the current transaction's change set (TopTransactionContext) */
static StringInfo capture_buf = NULL;
static CsTable *capture_dict = NULL;	/* tables its ops name */
static int	capture_ndict = 0;
static int	capture_dict_size = 0;
static CaptureLevel *capture_levels = NULL;
static int	capture_nlevels = 0;
static int	capture_levels_size = 0;
static bool capture_new_tables = false; /* replicate_table ran */

/* this session's last replicated write, for last_write_index() */
static uint64 capture_last_index = 0;
static uint64 capture_pending_index = 0;

static SPIPlanPtr capture_mark_plan = NULL;

/* ---------- table information ---------- */

static void
capture_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	CaptureTable *t;

	if (capture_tables_cache == NULL)
		return;
	hash_seq_init(&seq, capture_tables_cache);
	while ((t = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
}

static CaptureTable *
capture_table(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	CaptureTable *t;
	bool		found;
	MemoryContext old;
	Oid			pk;
	List	   *seqs;
	ListCell   *lc;

	if (capture_tables_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CaptureTable);
		ctl.hcxt = CacheMemoryContext;
		capture_tables_cache = hash_create("raftable capture tables", 64, &ctl,
										   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(capture_invalidate, (Datum) 0);
	}
	t = hash_search(capture_tables_cache, &relid, HASH_ENTER, &found);
	if (found && t->valid)
		return t;
	if (found && t->cxt)
		MemoryContextDelete(t->cxt);
	t->valid = false;
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "raftable capture table",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	t->schema = get_namespace_name(RelationGetNamespace(rel));
	t->name = pstrdup(RelationGetRelationName(rel));
	t->owner = rel->rd_rel->relowner;
	t->attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	t->out = palloc0(sizeof(FmgrInfo) * Max(desc->natts, 1));
	t->natts = 0;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			typout;
		bool		isvarlena;

		if (att->attisdropped || att->attgenerated)
			continue;
		t->attnums[t->natts++] = att->attnum;
		getTypeOutputInfo(att->atttypid, &typout, &isvarlena);
		fmgr_info_cxt(typout, &t->out[i], t->cxt);
	}
	pk = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pk))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("replicated table \"%s\" has no primary key", t->name),
				 errhint("Add the primary key again; raftable applies changes by primary key.")));
	{
		Relation	idx = index_open(pk, AccessShareLock);

		t->nkeys = idx->rd_index->indnkeyatts;
		t->keys = palloc(sizeof(AttrNumber) * t->nkeys);
		for (int i = 0; i < t->nkeys; i++)
			t->keys[i] = idx->rd_index->indkey.values[i];
		index_close(idx, AccessShareLock);
	}
	seqs = getOwnedSequences(relid);
	t->nseqs = list_length(seqs);
	t->seqs = palloc(sizeof(Oid) * Max(t->nseqs, 1));
	t->nseqs = 0;
	foreach(lc, seqs)
		t->seqs[t->nseqs++] = lfirst_oid(lc);
	MemoryContextSwitchTo(old);
	t->valid = true;
	return t;
}

/* ---------- the change set ---------- */

static void
capture_start(void)
{
	MemoryContext old;

	if (capture_buf != NULL)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);

	capture_buf = makeStringInfo();
	MemoryContextSwitchTo(old);
	capture_dict_size = 8;
	capture_dict = MemoryContextAlloc(TopTransactionContext,
									  sizeof(CsTable) * capture_dict_size);
	capture_ndict = 0;
}

/* a table's oid as the ops name it, with its name in the header */
static void
capture_note_table(Oid relid, const char *schema, const char *name)
{
	for (int i = 0; i < capture_ndict; i++)
		if (capture_dict[i].oid == relid)
			return;
	if (capture_ndict == capture_dict_size)
	{
		capture_dict_size *= 2;
		capture_dict = repalloc(capture_dict, sizeof(CsTable) * capture_dict_size);
	}
	capture_dict[capture_ndict].oid = relid;
	capture_dict[capture_ndict].schema = MemoryContextStrdup(TopTransactionContext, schema);
	capture_dict[capture_ndict].name = MemoryContextStrdup(TopTransactionContext, name);
	capture_ndict++;
}

static void
capture_check_size(void)
{
	if (capture_buf->len > RAFTABLE_MAX_CHANGE_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("transaction changes too much of the replicated tables"),
				 errdetail("A transaction's changes to replicated tables are limited to %d MB, encoded as text.",
						   RAFTABLE_MAX_CHANGE_BYTES / (1024 * 1024)),
				 errhint("Split the work into several transactions.")));
}

static void
capture_put_row(CaptureTable *t, TupleDesc desc, HeapTuple tup, bool key)
{
	int			n = key ? t->nkeys : t->natts;
	AttrNumber *atts = key ? t->keys : t->attnums;

	pq_sendint16(capture_buf, (uint16) n);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, atts[i], desc, &isnull);

		if (isnull)
			pq_sendbyte(capture_buf, 'n');
		else
		{
			char	   *s = OutputFunctionCall(&t->out[atts[i] - 1], d);

			pq_sendbyte(capture_buf, 't');
			cs_put_string(capture_buf, s);
			pfree(s);
		}
	}
}

/*
 * Append an op for a row change.  Called from the trigger, and by
 * replicate_table for the table's existing rows.
 */
static void
capture_row(CsOpType type, Relation rel, HeapTuple oldtup, HeapTuple newtup)
{
	CaptureTable *t = capture_table(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	CsTextSettings saved;

	capture_start();
	capture_note_table(t->relid, t->schema, t->name);
	pq_sendbyte(capture_buf, type);
	pq_sendint32(capture_buf, t->relid);
	cs_text_settings_push(&saved);
	PG_TRY();
	{
		if (type == CS_UPDATE || type == CS_DELETE)
			capture_put_row(t, desc, oldtup, true);
		if (type == CS_INSERT || type == CS_UPDATE)
			capture_put_row(t, desc, newtup, false);
	}
	PG_FINALLY();
	{
		cs_text_settings_pop(&saved);
	}
	PG_END_TRY();
	capture_check_size();
}

static void
capture_table_op(CsOpType type, Relation rel)
{
	CaptureTable *t = capture_table(rel);

	capture_start();
	capture_note_table(t->relid, t->schema, t->name);
	pq_sendbyte(capture_buf, type);
	pq_sendint32(capture_buf, t->relid);
}

/* replicate_table (ddl.c): the definition, then every current row */
void
capture_replicate(Oid relid, const char *ddl)
{
	Relation	rel = table_open(relid, NoLock);	/* caller holds a lock */
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;

	/* the table is created on every node as its owner (apply.c) */
	capture_table_op(CS_REPLICATE, rel);
	cs_put_string(capture_buf, GetUserNameFromId(rel->rd_rel->relowner, false));
	cs_put_string(capture_buf, ddl);
	capture_check_size();
	capture_new_tables = true;

	/*
	 * Every row committed before the caller's lock, and ours: a snapshot
	 * taken now, not the statement's, which may predate the lock.
	 */
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		capture_row(CS_INSERT, rel, NULL, tup);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
}

void
capture_unreplicate(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);

	capture_table_op(CS_UNREPLICATE, rel);
	table_close(rel, NoLock);
}

/*
 * The schemas this session resolves names in, as a search_path another
 * session can use: "$user" means the apply worker's role elsewhere, and a
 * temporary schema is this session's alone, so neither travels.
 */
static char *
capture_search_path(void)
{
	List	   *path = fetch_search_path(false);
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, path)
	{
		char	   *name;

		if (isAnyTempNamespace(lfirst_oid(lc)) ||
			(name = get_namespace_name(lfirst_oid(lc))) == NULL)
			continue;
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", quote_identifier(name));
	}
	return buf.len ? buf.data : "pg_catalog";
}

/*
 * The settings that change how a statement's text lexes or what its
 * literals mean; the apply worker sets exactly these (apply.c), and only
 * these, when it replays the statement.
 */
const char *const capture_ddl_settings[CAPTURE_DDL_NSETTINGS] = {
	"search_path", "DateStyle", "IntervalStyle", "TimeZone",
	"standard_conforming_strings", "backslash_quote",
};

/*
 * DDL that ran on replicated table relid (schema.name before it ran), as
 * its text with the role that
 * ran it, its command tag and its settings: the other nodes replay it as
 * that role, under those settings, after checking that the text is that
 * one statement on that table (ddl_check_replay).
 */
void
capture_ddl(Oid relid, const char *schema, const char *name, const char *tag,
			const char *sql)
{
	capture_start();
	capture_note_table(relid, schema, name);
	pq_sendbyte(capture_buf, CS_DDL);
	pq_sendint32(capture_buf, relid);
	cs_put_string(capture_buf, GetUserNameFromId(GetUserId(), false));
	cs_put_string(capture_buf, tag);
	pq_sendint16(capture_buf, CAPTURE_DDL_NSETTINGS);
	for (int i = 0; i < CAPTURE_DDL_NSETTINGS; i++)
	{
		cs_put_string(capture_buf, capture_ddl_settings[i]);
		cs_put_string(capture_buf, i == 0 ? capture_search_path() :
					  GetConfigOption(capture_ddl_settings[i], false, false));
	}
	cs_put_string(capture_buf, sql);
	capture_check_size();
	/* the definitions may change: columns, keys, owned sequences */
	capture_invalidate((Datum) 0, InvalidOid);
}

/* ---------- the guard: writes only on a leader that has caught up ---------- */

/*
 * Writes go to the leader, and only once it has applied every entry of
 * earlier terms (the first entry of its own term), and every entry of a
 * transaction of this term that gave up on knowing its outcome (40003):
 * before that, its tables may lack rows the log holds, and a write could
 * commit here ahead of an earlier entry touching the same rows.
 */
void
capture_require_writable(void)
{
	TimestampTz start = GetCurrentTimestamp();
	uint64		need;

	for (;;)
	{
		RaftableStatus *st = raftable_status_copy(false);

		if (!st->in_cluster)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("this node is not in a raftable cluster"),
					 errdetail("Replicated tables change only through a cluster's log."),
					 errhint("Start one with raftable.create_cluster().")));
		if (st->role != RAFT_LEADER)
			raftable_error_not_leader(ERRCODE_READ_ONLY_SQL_TRANSACTION,
									  "cannot write to a replicated table on a node that is not the raftable leader");
		if (IsolationIsSerializable())
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("SERIALIZABLE transactions cannot write to replicated tables"),
					 errdetail("raftable commits a transaction through its log before PostgreSQL's serializable check, which could then fail a transaction the log already holds."),
					 errhint("Use REPEATABLE READ or READ COMMITTED for transactions that write replicated tables.")));
		need = proposal_writable_from(st->term, st->term_start_index);
		if (st->applied_index >= need)
		{
			pfree(st);
			break;
		}
		pfree(st);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), raftable_write_timeout))
			ereport(ERROR,
					(errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
					 errmsg("the raftable leader has not applied earlier entries yet"),
					 errdetail("Writes wait until this leader has applied log index %llu (entries of earlier terms, or of a transaction whose outcome was unknown).",
							   (unsigned long long) need),
					 errhint("Retry shortly; check raftable.status for apply errors.")));
		ConditionVariableTimedSleep(raftable_status_cv(), 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/* ---------- the trigger ---------- */

Datum
raftable_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("raftable._capture() is a trigger function")));
	if (raftable_applying)
		return PointerGetDatum(NULL);
	ev = td->tg_event;
	if (TRIGGER_FIRED_FOR_STATEMENT(ev))
	{
		if (TRIGGER_FIRED_BEFORE(ev))
			capture_require_writable();
		else if (TRIGGER_FIRED_BY_TRUNCATE(ev))
			capture_table_op(CS_TRUNCATE, td->tg_relation);
		return PointerGetDatum(NULL);
	}
	if (TRIGGER_FIRED_BY_INSERT(ev))
		capture_row(CS_INSERT, td->tg_relation, NULL, td->tg_trigtuple);
	else if (TRIGGER_FIRED_BY_UPDATE(ev))
		capture_row(CS_UPDATE, td->tg_relation, td->tg_trigtuple, td->tg_newtuple);
	else if (TRIGGER_FIRED_BY_DELETE(ev))
		capture_row(CS_DELETE, td->tg_relation, td->tg_trigtuple, NULL);
	return PointerGetDatum(NULL);
}

/* ---------- proposing through the worker ---------- */

/*
 * Hand the worker an entry to append (proposal.c); returns its index and
 * term, and keeps the slot for capture_wait_committed().  A refusal (not
 * the leader) raises 25006 and means nothing happened; any failure after
 * the worker may have taken it raises 40003.
 */
static void
capture_propose(const char *data, int len, uint64 *index, uint64 *term)
{
	int			rc;

	switch (proposal_append(data, len, &rc, index, term))
	{
		case PROPOSAL_APPENDED:
		case PROPOSAL_COMMITTED:
		case PROPOSAL_LOST:		/* capture_wait_committed says so */
			return;
		case PROPOSAL_WITHDRAWN:
			ereport(ERROR,
					(errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
					 errmsg("the raftable worker did not take the transaction's changes in time"),
					 errdetail("Nothing was written: they waited raftable.write_timeout.")));
			break;
		case PROPOSAL_TIMED_OUT:
			ereport(ERROR,
					(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
					 errmsg("outcome of the transaction is unknown"),
					 errdetail("The raftable worker did not append the change set within raftable.write_timeout.")));
			break;
		case PROPOSAL_REFUSED:
			if (rc == RAFT_ENOTLEADER || rc == RAFT_ENOLEADER || rc == RAFT_ETRANSFER)
				raftable_error_not_leader(ERRCODE_READ_ONLY_SQL_TRANSACTION,
										  "cannot commit changes to replicated tables: this node is no longer the raftable leader");
			ereport(ERROR,
					(errcode(rc == RAFT_ETOOBIG ? ERRCODE_PROGRAM_LIMIT_EXCEEDED :
							 ERRCODE_RAFTABLE_UNAVAILABLE),
					 errmsg("could not append the transaction's changes to the raftable log"),
					 errdetail("%s", raft_strerror(rc))));
			break;
	}
}

/*
 * Wait until the held slot's entry (at log index `index`, for the
 * messages) is committed.  The worker decides (proposal_settle): on this
 * leader, in the entry's term, a commit index that reaches it commits it;
 * a new term or role first means the outcome cannot be known here.
 */
static void
capture_wait_committed(uint64 index)
{
	ProposalOutcome outcome;

	raftable_report_wait(RAFTABLE_WAIT_COMMIT, index);
	outcome = proposal_wait_committed();
	raftable_report_wait(RAFTABLE_WAIT_NONE, 0);
	if (outcome == PROPOSAL_COMMITTED)
		return;
	if (outcome == PROPOSAL_TIMED_OUT)
	{
		raftable_count_write_timeout();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
				 errmsg("outcome of the transaction is unknown"),
				 errdetail("Log index %llu was not committed within raftable.write_timeout; it may still be.",
						   (unsigned long long) index),
				 errhint("Check that a majority of the nodes is reachable.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
			 errmsg("outcome of the transaction is unknown"),
			 errdetail("This node lost the raftable leadership after sending the change set as log index %llu; it may still be committed.",
					   (unsigned long long) index),
			 errhint("Check on the new leader whether the transaction's changes are there.")));
}

/*
 * write_ack = all: wait until every other voter has applied the entry
 * (the leader applies it by committing, right after).  The entry is
 * committed whatever happens here, so a voter that does not get there
 * within raftable.write_timeout earns a WARNING, not an error.
 */
static void
capture_wait_applied_everywhere(uint64 index)
{
	TimestampTz start = GetCurrentTimestamp();
	StringInfoData behind;

	initStringInfo(&behind);
	for (;;)
	{
		RaftableStatus *st = raftable_status_copy(true);

		resetStringInfo(&behind);
		for (int i = 0; i < st->n_members; i++)
		{
			const RaftableMemberInfo *m = &st->members[i];

			if (m->voter && !m->is_self && m->applied_index < index)
				appendStringInfo(&behind, "%s\"%s\"", behind.len ? ", " : "", m->name);
		}
		pfree(st);
		if (behind.len == 0)
			break;
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), raftable_write_timeout))
		{
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("transaction committed, but not yet applied on every voter"),
					 errdetail("Log index %llu was not applied on node(s) %s within raftable.write_timeout.",
							   (unsigned long long) index, behind.data)));
			break;
		}
		ConditionVariableTimedSleep(raftable_status_cv(), 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/* the owned sequences' high-water marks, so no new leader reuses a value */
static void
capture_sequences(void)
{
	for (int i = 0; i < capture_ndict; i++)
	{
		Relation	rel = RelationIdGetRelation(capture_dict[i].oid);
		CaptureTable *t;

		if (!RelationIsValid(rel))
			continue;			/* dropped in this transaction */
		t = capture_table(rel);
		RelationClose(rel);
		for (int j = 0; j < t->nseqs; j++)
		{
			Datum		d;
			RaftableSavedUser saved;

			LOCAL_FCINFO(fcinfo, 1);

			/* as the owner: a writer need not have rights on the sequence */
			raftable_switch_user(t->owner, &saved);
			InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
			fcinfo->args[0].value = ObjectIdGetDatum(t->seqs[j]);
			fcinfo->args[0].isnull = false;
			d = pg_sequence_last_value(fcinfo);
			raftable_restore_user(&saved);
			if (fcinfo->isnull)
				continue;
			pq_sendbyte(capture_buf, CS_SEQUENCE);
			cs_put_string(capture_buf, get_namespace_name(get_rel_namespace(t->seqs[j])));
			cs_put_string(capture_buf, get_rel_name(t->seqs[j]));
			pq_sendint64(capture_buf, DatumGetInt64(d));
		}
	}
}

/* record, in this transaction, that the entry at index is applied here */
static void
capture_mark(uint64 index)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(index)};
	RaftableSavedUser saved;

	raftable_become_superuser(&saved);
	PushActiveSnapshot(GetTransactionSnapshot());
	raftable_spi_connect();
	if (raftable_spi_kept(&capture_mark_plan,
						  "INSERT INTO raftable.applied_marks (idx) VALUES ($1)",
						  1, types, values) != SPI_OK_INSERT)
		elog(ERROR, "could not record log index %llu as applied",
			 (unsigned long long) index);
	if (capture_new_tables &&
		SPI_execute_with_args("UPDATE raftable.replicated SET since_index = $1 WHERE since_index = 0",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the log index of replicate_table");
	SPI_finish();
	PopActiveSnapshot();
	raftable_restore_user(&saved);
}

/* PRE_COMMIT: the change set becomes one entry, committed before we are */
static void
capture_commit(void)
{
	RaftableStatus *st;
	StringInfoData entry;
	uint64		index;
	uint64		term;

	capture_require_writable();
	capture_sequences();
	st = raftable_status_copy(false);
	initStringInfo(&entry);
	cs_put_header(&entry, st->node_id,
				  U64FromFullTransactionId(GetTopFullTransactionId()),
				  capture_ndict, capture_dict);
	appendBinaryStringInfo(&entry, capture_buf->data, capture_buf->len);
	pfree(st);

	capture_propose(entry.data, entry.len, &index, &term);
	pfree(entry.data);

	/* from here on, a failure leaves the outcome unknown */
	PG_TRY();
	{
		capture_mark(index);
		capture_wait_committed(index);
	}
	PG_CATCH();
	{
		MemoryContext cxt = MemoryContextSwitchTo(TopTransactionContext);
		ErrorData  *ed = CopyErrorData();

		MemoryContextSwitchTo(cxt);
		if (ed->sqlerrcode == ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
				 errmsg("outcome of the transaction is unknown"),
				 errdetail("Waiting for log index %llu to commit failed: %s",
						   (unsigned long long) index, ed->message)));
	}
	PG_END_TRY();
	capture_pending_index = index;

	/* committed: a cancel now could only make the client believe otherwise */
	if (raftable_write_ack == RAFTABLE_ACK_ALL)
	{
		HOLD_CANCEL_INTERRUPTS();
		capture_wait_applied_everywhere(index);
		RESUME_CANCEL_INTERRUPTS();
	}
}

/* ---------- transaction callbacks ---------- */

static void
capture_reset(bool aborted)
{
	proposal_release(aborted);
	capture_buf = NULL;
	capture_dict = NULL;
	capture_ndict = capture_dict_size = 0;
	capture_levels = NULL;
	capture_nlevels = capture_levels_size = 0;
	capture_new_tables = false;
	capture_pending_index = 0;
}

static void
capture_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (capture_buf && capture_buf->len > 0)
				capture_commit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (capture_buf && capture_buf->len > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has changed replicated tables"),
						 errdetail("raftable commits such a transaction through its log, which two-phase commit cannot wait for.")));
			break;
		case XACT_EVENT_COMMIT:
			if (capture_pending_index)
			{
				capture_last_index = capture_pending_index;
				reads_report_last_write(capture_last_index);
			}
			capture_reset(false);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			capture_reset(true);
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
			capture_reset(false);
			break;
		default:
			break;
	}
}

static void
capture_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (capture_nlevels == capture_levels_size)
			{
				capture_levels_size = Max(8, capture_levels_size * 2);
				capture_levels = capture_levels == NULL ?
					MemoryContextAlloc(TopTransactionContext,
									   sizeof(CaptureLevel) * capture_levels_size) :
					repalloc(capture_levels, sizeof(CaptureLevel) * capture_levels_size);
			}
			capture_levels[capture_nlevels].subid = mySubid;
			capture_levels[capture_nlevels].len = capture_buf ? capture_buf->len : 0;
			capture_levels[capture_nlevels].ntables = capture_ndict;
			capture_nlevels++;
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			for (int i = capture_nlevels - 1; i >= 0; i--)
			{
				if (capture_levels[i].subid != mySubid)
					continue;
				if (event == SUBXACT_EVENT_ABORT_SUB && capture_buf)
				{
					capture_buf->len = capture_levels[i].len;
					capture_buf->data[capture_buf->len] = '\0';
					capture_ndict = capture_levels[i].ntables;
				}
				capture_nlevels = i;
				break;
			}
			break;
		default:
			break;
	}
}

void
raftable_capture_init(void)
{
	RegisterXactCallback(capture_xact_callback, NULL);
	RegisterSubXactCallback(capture_subxact_callback, NULL);
}

Datum
raftable_last_write_index(PG_FUNCTION_ARGS)
{
	if (capture_last_index == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64((int64) capture_last_index);
}
