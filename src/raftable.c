/*-------------------------------------------------------------------------
 *
 * raftable.c
 *	  Entry point of the raftable extension: the module magic block and
 *	  _PG_init, which defines the raftable.* settings, asks for shared
 *	  memory and registers the Raft background worker.
 *
 * All of that can only happen at postmaster start, which is why the
 * library belongs in shared_preload_libraries; loaded any other way it
 * refuses to work (raftable_check_preloaded).
 *
 * IDENTIFICATION
 *	  src/raftable.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "capture.h"
#include "ddl.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "raftable.h"
#include "reads.h"
#include "status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

/* exported, like everything PostgreSQL looks up by name (raftable.h) */
extern RAFTABLE_EXPORT const Pg_magic_struct *PG_MAGIC_FUNCTION_NAME(void);
extern RAFTABLE_EXPORT void _PG_init(void);

PG_MODULE_MAGIC;

char	   *raftable_database = NULL;
int			raftable_election_timeout = 1000;
int			raftable_heartbeat_interval = 100;
int			raftable_log_keep = 10000;
int			raftable_read_consistency = RAFTABLE_READ_STRONG;
int			raftable_max_staleness = 5000;
int			raftable_read_timeout = 5000;
int			raftable_write_ack = RAFTABLE_ACK_MAJORITY;
int			raftable_write_timeout = 10000;

static bool raftable_preloaded = false;

static const struct config_enum_entry raftable_read_consistency_options[] = {
	{"strong", RAFTABLE_READ_STRONG, false},
	{"eventual", RAFTABLE_READ_EVENTUAL, false},
	{"bounded", RAFTABLE_READ_BOUNDED, false},
	{NULL, 0, false}
};

static const struct config_enum_entry raftable_write_ack_options[] = {
	{"majority", RAFTABLE_ACK_MAJORITY, false},
	{"all", RAFTABLE_ACK_ALL, false},
	{NULL, 0, false}
};

static void
raftable_define_settings(void)
{
	DefineCustomStringVariable("raftable.database",
							   "Database whose tables the raftable worker serves.",
							   NULL,
							   &raftable_database,
							   "postgres",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.election_timeout",
							"Base Raft election timeout (randomized in [t, 2t)).",
							NULL,
							&raftable_election_timeout,
							1000, 50, 60 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.heartbeat_interval",
							"Period of the leader's heartbeats.",
							"Used as at most half of raftable.election_timeout.",
							&raftable_heartbeat_interval,
							100, 10, 30 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.log_keep",
							"Number of applied log entries kept before compaction.",
							"Followers further behind catch up by snapshot.",
							&raftable_log_keep,
							10000, 0, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("raftable.read_consistency",
							 "Consistency of reads of replicated tables: strong, eventual or bounded.",
							 NULL,
							 &raftable_read_consistency,
							 RAFTABLE_READ_STRONG,
							 raftable_read_consistency_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.max_staleness",
							"Staleness bound for bounded reads.",
							NULL,
							&raftable_max_staleness,
							5000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.read_timeout",
							"How long a strong or bounded read waits before it fails.",
							NULL,
							&raftable_read_timeout,
							5000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("raftable.write_ack",
							 "When a write to a replicated table is acknowledged: majority or all.",
							 NULL,
							 &raftable_write_ack,
							 RAFTABLE_ACK_MAJORITY,
							 raftable_write_ack_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("raftable.write_timeout",
							"How long a write waits for commitment before it fails.",
							NULL,
							&raftable_write_timeout,
							10000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	reads_define_settings();
	MarkGUCPrefixReserved("raftable");
}

/*
 * A background worker of this library, connected to raftable.database once
 * recovery is over, restarted a second after it exits.
 */
static void
raftable_register_bgworker(const char *function, const char *name)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 1;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "raftable");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(bgw.bgw_name, BGW_MAXLEN, "%s", name);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "%s", name);
	RegisterBackgroundWorker(&bgw);
}

/*
 * Module load callback.  Everything but the settings needs the postmaster:
 * a library loaded later (LOAD, or CREATE EXTENSION without preloading)
 * only defines the settings, and the SQL functions refuse to run.
 */
void
_PG_init(void)
{
	raftable_define_settings();
	if (!process_shared_preload_libraries_in_progress)
		return;
	raftable_preloaded = true;
	raftable_shmem_request();
	raftable_register_bgworker("raftable_worker_main", "raftable worker");
	raftable_register_bgworker("raftable_apply_main", "raftable apply worker");
	raftable_capture_init();
	raftable_ddl_init();
	reads_init();
}

/* SPI_connect, or ERROR */
void
raftable_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * A transaction of a background worker's own, as logical replication's
 * worker.c runs around each change: started, SPI connected, a snapshot
 * pushed, and `activity` shown in pg_stat_activity (NULL: leave it).
 */
void
raftable_worker_xact_begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	raftable_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity)
		pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * Commit it; with sync, flush it before its changes become visible,
 * whatever synchronous_commit says.  Returns its xid (invalid if it wrote
 * nothing).
 */
TransactionId
raftable_worker_xact_commit(bool sync)
{
	TransactionId xid;

	SPI_finish();
	PopActiveSnapshot();
	xid = GetTopTransactionIdIfAny();
	if (sync)
		ForceSyncCommit();
	CommitTransactionCommand();
	return xid;
}

/* run one statement through SPI (connected by the caller); ERROR if it fails */
void
raftable_spi(const char *sql, int nargs, Oid *types, Datum *values)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (rc < 0)
		elog(ERROR, "raftable: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

/* prepare a statement and keep its plan for the life of the process */
SPIPlanPtr
raftable_spi_prepare(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL || SPI_keepplan(plan) != 0)
		elog(ERROR, "raftable: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * Run a statement through the plan kept in *plan, prepared the first time
 * (the plan cache redoes it if a table it uses is renewed, as by DROP and
 * CREATE EXTENSION).  ERROR if it fails; else SPI's result code.
 */
int
raftable_spi_kept(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
				  Datum *values)
{
	int			rc;

	if (*plan == NULL)
		*plan = raftable_spi_prepare(sql, nargs, types);
	rc = SPI_execute_plan(*plan, values, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "raftable: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
	return rc;
}

/*
 * What both workers' transactions need whatever the server's defaults for
 * sessions are: they write, and read committed (apply reads the marks of
 * writers it has just waited for).
 */
void
raftable_worker_session(void)
{
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET,
					PGC_S_OVERRIDE);

	/*
	 * The workers run as the bootstrap superuser: nothing the database's
	 * owner sets for its sessions (ALTER DATABASE ... SET) may resolve a
	 * name or time out a statement in them.  How values are read back
	 * (array_nulls, xmloption) is fixed too.  At session level, which
	 * outranks the database's settings and lets privilege.c's switches
	 * set their own on top.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("lock_timeout", "0", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("array_nulls", "on", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("xmloption", "content", PGC_SUSET, PGC_S_SESSION);
	SetConfigOption("standard_conforming_strings", "on", PGC_SUSET, PGC_S_SESSION);
}

/*
 * Fail clearly when the library was not preloaded: there is no worker and
 * no shared memory to talk to.
 */
void
raftable_check_preloaded(void)
{
	if (!raftable_preloaded || !raftable_shmem_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("raftable is not loaded through shared_preload_libraries"),
				 errhint("Add raftable to shared_preload_libraries in postgresql.conf and restart the server.")));
}
