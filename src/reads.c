/*-------------------------------------------------------------------------
 *
 * reads.c
 *	  The read path: every query that reads a replicated table obeys the
 *	  session's raftable.read_consistency (and raftable.read_after_index)
 *	  before it reads, whatever way it arrives.
 *
 * What a read needs is an index this node must have applied, and a
 * snapshot that sees it:
 *
 *	eventual  nothing (this node's applied state, a prefix of the log);
 *	strong    a read index from a quorum round started after the read
 *			  began (readindex.c), so every write acknowledged before it;
 *	bounded   the last round's index, while that round started no longer
 *			  than max_staleness ago on this node's clock; else a round;
 *	and with read_after_index set, that index too, at every level.
 *
 * Where: ExecutorStart, which every query reaches (simple and extended
 * protocol, cached plans, SPI and so PL/pgSQL and SQL functions, cursors,
 * COPY (SELECT ...)); COPY table TO in the utility hook.  The snapshot is
 * taken before either, so after the wait we check that it sees the
 * transaction that applied the index (raftable_applied_visible).  If not:
 * READ COMMITTED takes a fresh snapshot for the query; REPEATABLE READ and
 * SERIALIZABLE cannot, so they wait at BEGIN / SET TRANSACTION, before the
 * transaction's snapshot exists, and a transaction that arrives with a
 * snapshot too old (an implicit single-statement transaction, a level set
 * inside the transaction) fails with 40001 and a hint.
 *
 * Queries that read no replicated table pay a walk over their range table
 * and a lookup in a backend-local cache, nothing more.
 *
 * IDENTIFICATION
 *	  src/reads.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "apply.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/copy.h"
#include "commands/dbcommands.h"
#include "ddl.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "raftable.h"
#include "readindex.h"
#include "reads.h"
#include "status.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
#include "waits.h"

RAFTABLE_FUNCTION(raftable_set_read_consistency);
RAFTABLE_FUNCTION(raftable_read_barrier);
RAFTABLE_FUNCTION(raftable_wait_for_index);

/* settings of this module */
static char *reads_after_index_string = NULL;
static uint64 reads_after_index = 0;	/* parsed; 0: off */
static char *reads_last_write_string = NULL;

static ExecutorStart_hook_type reads_prev_executor_start = NULL;
static ProcessUtility_hook_type reads_prev_utility = NULL;

/* replicated or not, per relation, until its relcache entry is invalidated */
typedef struct ReadsRel
{
	Oid			relid;
	bool		replicated;
} ReadsRel;

static HTAB *reads_rels = NULL;

/* -1: not known; else whether any table is replicated in this database */
static int	reads_any = -1;

/* -1: not known yet; this backend's database is raftable.database? */
static int	reads_db_served = -1;

/*
 * The index this REPEATABLE READ / SERIALIZABLE transaction's snapshot is
 * known to see, because we waited for it before the snapshot was taken.
 */
static bool reads_xact_known = false;
static uint64 reads_xact_covered = 0;
static int	reads_xact_level = -1;	/* ... at the level in force then */

/* ---------- settings ---------- */

static bool
reads_check_after_index(char **newval, void **extra, GucSource source)
{
	char	   *end;
	uint64		v;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	errno = 0;
	v = strtou64(*newval, &end, 10);
	if (errno != 0 || *end != '\0' || (*newval)[0] == '-' || v > PG_INT64_MAX)
	{
		GUC_check_errdetail("raftable.read_after_index must be a log index (a non-negative integer) or empty.");
		return false;
	}
	return true;
}

static void
reads_assign_after_index(const char *newval, void *extra)
{
	reads_after_index = (newval && newval[0]) ? strtou64(newval, NULL, 10) : 0;
}

void
reads_define_settings(void)
{
	DefineCustomStringVariable("raftable.read_after_index",
							   "Log index every read of a replicated table waits for on this node; empty: none.",
							   "A causal token: raftable.last_write_index of a session, on any node.",
							   &reads_after_index_string,
							   "",
							   PGC_USERSET,
							   0,
							   reads_check_after_index, reads_assign_after_index, NULL);
	DefineCustomStringVariable("raftable.last_write_index",
							   "Log index of this session's last replicated write, reported to the client.",
							   NULL,
							   &reads_last_write_string,
							   "0",
							   PGC_INTERNAL,
							   GUC_REPORT | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE,
							   NULL, NULL, NULL);
}

/*
 * After a replicated write commits (capture.c, at XACT_EVENT_COMMIT: an
 * abort never reaches it), its index becomes the reported setting, which
 * PostgreSQL sends as a ParameterStatus before the next ReadyForQuery.
 */
void
reads_report_last_write(uint64 index)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long) index);
	SetConfigOption("raftable.last_write_index", buf, PGC_INTERNAL, PGC_S_OVERRIDE);
}

/* ---------- which queries read replicated tables ---------- */

static void
reads_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	ReadsRel   *r;

	reads_any = -1;				/* a table may have become replicated */
	if (reads_rels == NULL)
		return;
	hash_seq_init(&seq, reads_rels);
	while ((r = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || r->relid == relid)
			(void) hash_search(reads_rels, &r->relid, HASH_REMOVE, NULL);
}

/* the backend-local caches, and the callback that keeps them true */
static void
reads_cache_init(void)
{
	HASHCTL		ctl;

	if (reads_rels != NULL)
		return;
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(ReadsRel);
	ctl.hcxt = CacheMemoryContext;
	reads_rels = hash_create("raftable replicated relations", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(reads_invalidate, (Datum) 0);
}

static bool
reads_replicated(Oid relid)
{
	ReadsRel   *r;
	bool		found;

	reads_cache_init();
	r = hash_search(reads_rels, &relid, HASH_FIND, &found);
	if (found)
		return r->replicated;
	{
		bool		replicated = raftable_table_is_replicated(relid);

		r = hash_search(reads_rels, &relid, HASH_ENTER, &found);
		r->replicated = replicated;
		return replicated;
	}
}

/*
 * Whether this node's list of replicated tables can be trusted
 * (raftable_tables_known).  Right after the server started the worker may
 * not have loaded the node's identity yet: wait for it, as membership calls
 * do, rather than guess.
 */
static bool
reads_tables_known(void)
{
	if (raftable_tables_known())
		return true;
	if (raftable_in_cluster())
		return false;			/* a member still catching up */
	pfree(raftable_status_get(false, raftable_read_timeout));
	return raftable_tables_known() || !raftable_in_cluster();
}

/*
 * Whether a read of relid may read replicated rows: it is replicated, or
 * this node cannot tell yet and it is a user's table (reads_tables_known).
 */
static bool
reads_may_be_replicated(Oid relid)
{
	if (reads_replicated(relid))
		return true;
	return relid >= FirstNormalObjectId && !reads_tables_known();
}

/*
 * Could a read in this database need to wait: this node is in a cluster
 * and some table here is replicated?  Asked at the start of REPEATABLE READ
 * and SERIALIZABLE transactions, which cannot know yet what they will read.
 */
static bool
reads_could_wait(void)
{
	bool		in_cluster;

	in_cluster = raftable_in_cluster();
	if (!in_cluster)
		return false;
	if (reads_any < 0)
	{
		reads_cache_init();		/* whose callback resets it */
		reads_any = raftable_any_replicated();
	}
	return reads_any == 1 || !reads_tables_known();
}

static bool
reads_db_is_served(void)
{
	if (reads_db_served < 0)
		reads_db_served = raftable_shmem_ready() && raftable_database != NULL &&
			get_database_oid(raftable_database, true) == MyDatabaseId;
	return reads_db_served == 1;
}

/*
 * Whether a plan reads a replicated table.  Writes to one (its result
 * relation) are the leader's and commit through the log: they take no
 * read index.
 */
static bool
reads_plan_reads_replicated(PlannedStmt *ps)
{
	ListCell   *lc;
	Index		rti = 0;

	foreach(lc, ps->rtable)
	{
		RangeTblEntry *rte = (RangeTblEntry *) lfirst(lc);

		rti++;
		if (rte->rtekind != RTE_RELATION || rte->relkind != RELKIND_RELATION)
			continue;
		if (list_member_int(ps->resultRelations, (int) rti))
			continue;
		if (reads_may_be_replicated(rte->relid))
			return true;
	}
	return false;
}

/*
 * Whether reads in this process obey the levels: not in raftable's own
 * workers, and not inside a parallel operation (its leader waited before
 * it began; a parallel worker may take no snapshot of its own).
 */
static bool
reads_active(void)
{
	return raftable_shmem_ready() && !raftable_applying && !IsInParallelMode() &&
		reads_db_is_served();
}

/* ---------- waiting ---------- */

/* when the current read began to wait (0: it does not), for read_wait_ms */
static int64 reads_wait_start = 0;

static void
reads_count_wait(void)
{
	if (reads_wait_start == 0)
		return;
	readindex_count(RAFTABLE_COUNT_WAIT_US, readindex_now_us() - reads_wait_start);
	reads_wait_start = 0;
}

static void
reads_timeout(const char *what, uint64 index)
{
	reads_count_wait();
	readindex_count(RAFTABLE_COUNT_TIMEOUTS, 1);
	if (index == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg("raftable could not get a read index within raftable.read_timeout (%d ms)",
						raftable_read_timeout),
				 errdetail("A %s read needs the leader to confirm its leadership with a quorum.", what),
				 errhint("Check that a quorum of the cluster is up and reachable (raftable.nodes); SET raftable.read_consistency = 'eventual' reads this node's state as it is.")));
	ereport(ERROR,
			(errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
			 errmsg("this node did not apply log index %llu within raftable.read_timeout (%d ms)",
					(unsigned long long) index, raftable_read_timeout),
			 errhint("Check raftable.status on this node (apply_error, commit_index); a %s read waits until the node has applied the index.",
					 what)));
}

/*
 * A read index from a round that starts after now; rounds that fail (no
 * leader known, leadership lost) are retried until the deadline.
 */
static uint64
reads_round(int64 deadline_us, const char *what)
{
	for (;;)
	{
		uint64		index = 0;
		int			rc = readindex_round(deadline_us, &index);
		int64		left;

		if (rc == 0)
			return index;
		left = deadline_us - readindex_now_us();
		if (rc == READINDEX_TIMED_OUT || left <= 0)
			reads_timeout(what, 0);
		/* no leader right now: wait for news of one, briefly, and ask again */
		raftable_report_wait(RAFTABLE_WAIT_READ_INDEX, 0);
		ConditionVariableTimedSleep(raftable_status_cv(),
									Max(Min(left / 1000, 20), 1), PG_WAIT_EXTENSION);
		ConditionVariableCancelSleep();
		CHECK_FOR_INTERRUPTS();
	}
}

/* has this node applied index? */
static bool
reads_applied(uint64 index)
{
	return raftable_applied_index() >= index;
}

/* wait until this node has applied index; false if the deadline came first */
static bool
reads_applied_by(uint64 index, int64 deadline_us, int wait_kind)
{
	bool		reached = false;

	/* most often it has: no need to join the condition variable's queue */
	if (reads_applied(index))
		return true;
	raftable_report_wait(wait_kind, index);
	ConditionVariablePrepareToSleep(raftable_status_cv());
	for (;;)
	{
		int64		left;

		if (reads_applied(index))
		{
			reached = true;
			break;
		}
		left = deadline_us - readindex_now_us();
		if (left <= 0)
			break;
		(void) ConditionVariableTimedSleep(raftable_status_cv(),
										   Max(left / 1000, 1), PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	raftable_report_wait(RAFTABLE_WAIT_NONE, 0);
	return reached;
}

static void
reads_wait_applied(uint64 index, int64 deadline_us, const char *what, int wait_kind)
{
	if (index != 0 && !reads_applied_by(index, deadline_us, wait_kind))
		reads_timeout(what, index);
}

static const char *
reads_level_name(int level)
{
	switch (level)
	{
		case RAFTABLE_READ_STRONG:
			return "strong";
		case RAFTABLE_READ_BOUNDED:
			return "bounded";
		default:
			return "eventual";
	}
}

/* count a read of the session's level in raftable.stats */
static void
reads_count_level(int level)
{
	readindex_count(level == RAFTABLE_READ_STRONG ? RAFTABLE_COUNT_STRONG :
					level == RAFTABLE_READ_BOUNDED ? RAFTABLE_COUNT_BOUNDED :
					RAFTABLE_COUNT_EVENTUAL, 1);
}

/*
 * The index this node must have applied before a read at the session's
 * level, counted in raftable.stats; takes a read-index round when the
 * level needs one.
 */
static uint64
reads_target(int64 deadline_us)
{
	int			level = raftable_read_consistency;
	uint64		target = 0;
	uint64		proof;
	int64		age_us;

	reads_count_level(level);
	if (level == RAFTABLE_READ_STRONG)
	{
		raftable_report_wait(RAFTABLE_WAIT_READ_INDEX, 0);
		target = reads_round(deadline_us, "strong");
		raftable_report_wait(RAFTABLE_WAIT_NONE, 0);
	}
	else if (level == RAFTABLE_READ_BOUNDED)
	{
		if (readindex_proof(&proof, &age_us) &&
			age_us <= (int64) raftable_max_staleness * 1000)
			target = proof;
		else
		{
			raftable_report_wait(RAFTABLE_WAIT_READ_INDEX, 0);
			target = reads_round(deadline_us, "bounded");
			raftable_report_wait(RAFTABLE_WAIT_NONE, 0);
		}
	}
	return target;
}

/*
 * Wait until this node has applied what a read at the session's level
 * (and read_after_index) needs.  Returns that index (0: nothing).
 */
static uint64
reads_prepare(void)
{
	int64		deadline;
	uint64		target;
	int			kind = RAFTABLE_WAIT_READ_INDEX;

	reads_wait_start = readindex_now_us();
	deadline = reads_wait_start + (int64) raftable_read_timeout * 1000;
	target = reads_target(deadline);
	if (reads_after_index > target)
	{
		target = reads_after_index;
		kind = RAFTABLE_WAIT_READ_AFTER_INDEX;
	}
	reads_wait_applied(target, deadline, reads_level_name(raftable_read_consistency), kind);
	reads_count_wait();
	return target;
}

static void
reads_snapshot_too_old(uint64 target)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the transaction's snapshot was taken before the read index raftable waited for was applied"),
			 errdetail("A %s read needs log index %llu; this transaction's snapshot does not see it.",
					   reads_level_name(raftable_read_consistency),
					   (unsigned long long) target),
			 errhint("Retry the transaction. Start it with BEGIN ISOLATION LEVEL REPEATABLE READ (or SERIALIZABLE) and set the read level before that: raftable then waits before the snapshot is taken.")));
}

/* ---------- hooks ---------- */

static void
reads_executor_start(QueryDesc *qd, int eflags)
{
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && qd->snapshot != InvalidSnapshot &&
		reads_active() && reads_plan_reads_replicated(qd->plannedstmt))
	{
		bool		xact_snapshot = IsolationUsesXactSnapshot();

		if (xact_snapshot && reads_xact_known &&
			reads_after_index <= reads_xact_covered &&
			raftable_read_consistency == reads_xact_level)
			reads_count_level(raftable_read_consistency);	/* waited at BEGIN */
		else
		{
			uint64		target = reads_prepare();

			if (target != 0 && !raftable_applied_visible(target, qd->snapshot))
			{
				if (xact_snapshot)
					reads_snapshot_too_old(target);
				/* READ COMMITTED: a snapshot taken from now on sees it */
				UnregisterSnapshot(qd->snapshot);
				qd->snapshot = RegisterSnapshot(GetTransactionSnapshot());
			}
		}
	}
	if (reads_prev_executor_start)
		reads_prev_executor_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
}

static bool
reads_starts_transaction(Node *stmt)
{
	if (IsA(stmt, TransactionStmt))
	{
		TransactionStmtKind kind = ((TransactionStmt *) stmt)->kind;

		return kind == TRANS_STMT_BEGIN || kind == TRANS_STMT_START;
	}
	if (IsA(stmt, VariableSetStmt))
	{
		VariableSetStmt *v = (VariableSetStmt *) stmt;

		return v->kind == VAR_SET_MULTI && strcmp(v->name, "TRANSACTION") == 0;
	}
	return false;
}

/* COPY table TO reads the table outside the executor */
static bool
reads_copy_to_replicated(Node *stmt)
{
	CopyStmt   *c;
	Oid			relid;

	if (!IsA(stmt, CopyStmt))
		return false;
	c = (CopyStmt *) stmt;
	if (c->is_from || c->relation == NULL)
		return false;
	relid = RangeVarGetRelid(c->relation, NoLock, true);
	return OidIsValid(relid) && reads_may_be_replicated(relid);
}

static void
reads_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			  ProcessUtilityContext context, ParamListInfo params,
			  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	bool		pushed = false;

	if (reads_active() && reads_copy_to_replicated(stmt))
	{
		uint64		target = reads_prepare();

		if (target != 0 && ActiveSnapshotSet() &&
			!raftable_applied_visible(target, GetActiveSnapshot()))
		{
			if (IsolationUsesXactSnapshot())
				reads_snapshot_too_old(target);
			PushActiveSnapshot(GetTransactionSnapshot());
			pushed = true;
		}
	}
	if (reads_prev_utility)
		reads_prev_utility(pstmt, queryString, readOnlyTree, context, params,
						   queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (pushed)
		PopActiveSnapshot();

	/*
	 * BEGIN ISOLATION LEVEL REPEATABLE READ (or a default one), SET
	 * TRANSACTION: wait now, before the transaction's snapshot exists.
	 */
	if (reads_starts_transaction(stmt) && IsTransactionBlock() &&
		IsolationUsesXactSnapshot() && !FirstSnapshotSet && reads_active() &&
		(raftable_read_consistency != RAFTABLE_READ_EVENTUAL || reads_after_index != 0) &&
		reads_could_wait())
	{
		reads_xact_covered = reads_prepare();
		reads_xact_known = true;
		reads_xact_level = raftable_read_consistency;
	}
}

static void
reads_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		reads_xact_known = false;
		reads_xact_covered = 0;
		reads_xact_level = -1;
		reads_wait_start = 0;
		raftable_report_wait(RAFTABLE_WAIT_NONE, 0);
	}
}

void
reads_init(void)
{
	reads_prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = reads_executor_start;
	reads_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = reads_utility;
	RegisterXactCallback(reads_xact_callback, NULL);
}

/* ---------- SQL functions ---------- */

/* an interval argument in microseconds; NULL: raftable.read_timeout */
static int64
reads_timeout_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *iv;
	int64		us;

	if (PG_ARGISNULL(argno))
		return (int64) raftable_read_timeout * 1000;
	iv = PG_GETARG_INTERVAL_P(argno);
	us = iv->time + (int64) iv->day * USECS_PER_DAY +
		(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
	if (us < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout must not be negative")));
	return us;
}

/*
 * raftable.set_read_consistency(level, max_staleness, is_local): SET (or
 * SET LOCAL) the level, and max_staleness if given; returns the previous
 * level.
 */
Datum
raftable_set_read_consistency(PG_FUNCTION_ARGS)
{
	const char *previous = reads_level_name(raftable_read_consistency);
	bool		is_local = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);
	char	   *level;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("level must not be null")));
	level = text_to_cstring(PG_GETARG_TEXT_PP(0));
	(void) set_config_option("raftable.read_consistency", level, PGC_USERSET,
							 PGC_S_SESSION, is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
	if (!PG_ARGISNULL(1))
	{
		char		ms[32];

		snprintf(ms, sizeof(ms), "%lld", (long long) (reads_timeout_arg(fcinfo, 1) / 1000));
		(void) set_config_option("raftable.max_staleness", ms,
								 PGC_USERSET, PGC_S_SESSION,
								 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
								 true, 0, false);
	}
	PG_RETURN_TEXT_P(cstring_to_text(previous));
}

/*
 * raftable.read_barrier(timeout): a read index (a round started after the
 * call), then wait until this node has applied it; returns it.
 */
Datum
raftable_read_barrier(PG_FUNCTION_ARGS)
{
	int64		deadline;
	uint64		index;

	raftable_check_preloaded();
	raftable_require_cluster(raftable_status_copy(false));
	deadline = readindex_now_us() + reads_timeout_arg(fcinfo, 0);
	raftable_report_wait(RAFTABLE_WAIT_READ_INDEX, 0);
	index = reads_round(deadline, "barrier");
	reads_wait_applied(index, deadline, "barrier", RAFTABLE_WAIT_READ_INDEX);
	PG_RETURN_INT64((int64) index);
}

/*
 * raftable.wait_for_index(idx, timeout): true once this node has applied
 * idx, false if the timeout passes first.
 */
Datum
raftable_wait_for_index(PG_FUNCTION_ARGS)
{
	int64		deadline;
	int64		idx;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("idx must not be null")));
	idx = PG_GETARG_INT64(0);
	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idx must not be negative")));
	raftable_check_preloaded();
	deadline = readindex_now_us() + reads_timeout_arg(fcinfo, 1);
	PG_RETURN_BOOL(reads_applied_by((uint64) idx, deadline, RAFTABLE_WAIT_READ_AFTER_INDEX));
}
