/*
 * raftable.h
 *	  What every PostgreSQL-side module of raftable needs: the version, the
 *	  SQLSTATEs, the settings, the session helpers and the workers' entry
 *	  points.  Each module below declares what it exports in its own
 *	  header (reads.h for reads.c, ...); the shared-memory layout is in
 *	  shmem.h, included only by the modules that own a part of it, and
 *	  the others reach it through status.h.
 *
 *	  raftable.c   _PG_init: settings, shared memory hooks, the worker
 *	  shmem.c      shared state: status for the views, inbox, requests
 *	  worker.c     the Raft background worker: event loop around the core
 *	  storage.c    durable log, hard state and snapshot in raftable tables
 *	  anchor.c     the identity's ties to its data directory
 *	  transport.c  outbound libpq connections to the peers
 *	  membership.c create_cluster, add_node, remove_node, ...: membership
 *	  member.c     a member's name, conninfo and core address
 *	  deliver.c    raftable._deliver: the receiving half of the transport
 *	  views.c      the functions behind raftable.status, .nodes, .stats
 *	  changeset.c  what a log entry of table changes holds, and its format
 *	  capture.c    the leader's write path: capture, propose, wait, guard
 *	  ddl.c        DDL on replicated tables: replicated, or refused
 *	  apply.c      the apply worker: committed entries into the tables
 *	  readindex.c  read index rounds: the backends' and the worker's sides
 *	  reads.c      the read path: every read obeys its consistency level
 *	  waits.c      what each backend waits on raftable for (raftable.waits)
 *
 * The pure Raft core (src/core/) knows nothing of PostgreSQL; only the
 * worker drives it.  Backends never touch the core: they read what the
 * worker publishes in shared memory and hand it requests.
 */
#ifndef RAFTABLE_H
#define RAFTABLE_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"

#define RAFTABLE_VERSION "0.2"

/* SQLSTATEs of SPEC.md */
#define ERRCODE_RAFTABLE_UNAVAILABLE	MAKE_SQLSTATE('R','A','0','0','1')
#define ERRCODE_RAFTABLE_NOT_LEADER		MAKE_SQLSTATE('R','A','0','0','2')

/*
 * The largest change set one transaction may propose (its encoded row
 * images): an entry travels whole in one message through the peers'
 * inboxes, so it must stay well below RAFTABLE_INBOX_BYTES.
 */
#define RAFTABLE_MAX_CHANGE_BYTES (4 * 1024 * 1024)

/*
 * Symbols.  raftable.so is built with -fvisibility=hidden (Makefile), so
 * that none of its internal names (storage_load, raft_new, ...) can
 * collide with another library's in a backend: PostgreSQL 15 loads
 * libraries with their symbols global, and its PGDLLEXPORT is empty on
 * Linux.  Exported are only what PostgreSQL looks up by name: the magic
 * block, _PG_init, the background workers' entry points, and the SQL
 * functions with their info records, all named raftable_* (test/symbols.sh
 * checks it).  An SQL function is declared with RAFTABLE_FUNCTION(name)
 * instead of PG_FUNCTION_INFO_V1(name).
 */
#define RAFTABLE_EXPORT __attribute__((visibility("default")))

#define RAFTABLE_FUNCTION(name) \
extern RAFTABLE_EXPORT Datum name(PG_FUNCTION_ARGS); \
extern RAFTABLE_EXPORT const Pg_finfo_record *CppConcat(pg_finfo_,name)(void); \
PG_FUNCTION_INFO_V1(name)

/* ---------- settings (raftable.c) ---------- */
extern char *raftable_database;
extern int	raftable_election_timeout;	/* ms */
extern int	raftable_heartbeat_interval;	/* ms */
extern int	raftable_log_keep;	/* entries kept behind the applied index */
extern int	raftable_read_consistency;
extern int	raftable_max_staleness; /* ms */
extern int	raftable_read_timeout;	/* ms */
extern int	raftable_write_ack;
extern int	raftable_write_timeout; /* ms */

extern void raftable_check_preloaded(void);

/*
 * Running code with rights other than the caller's (privilege.c): a
 * security-restricted operation with search_path pinned to "pg_catalog,
 * pg_temp" and its own GUC nest level.  An error in between needs no
 * cleanup: transaction abort restores the user and the settings.
 */
typedef struct RaftableSavedUser
{
	Oid			userid;
	int			sec_context;
	int			nestlevel;
} RaftableSavedUser;

extern void raftable_switch_user(Oid role, RaftableSavedUser *saved);
extern void raftable_become_superuser(RaftableSavedUser *saved);
extern void raftable_restore_user(const RaftableSavedUser *saved);
extern void raftable_set_option(const char *name, const char *value);

extern void raftable_spi_connect(void);
extern void raftable_worker_xact_begin(const char *activity);
extern TransactionId raftable_worker_xact_commit(bool sync);
extern void raftable_spi(const char *sql, int nargs, Oid *types, Datum *values);
extern SPIPlanPtr raftable_spi_prepare(const char *sql, int nargs, Oid *types);
extern int	raftable_spi_kept(SPIPlanPtr *plan, const char *sql, int nargs,
							  Oid *types, Datum *values);
extern void raftable_worker_session(void);

typedef enum RaftableReadConsistency
{
	RAFTABLE_READ_STRONG,
	RAFTABLE_READ_EVENTUAL,
	RAFTABLE_READ_BOUNDED,
} RaftableReadConsistency;

typedef enum RaftableWriteAck
{
	RAFTABLE_ACK_MAJORITY,
	RAFTABLE_ACK_ALL,
} RaftableWriteAck;

/* ---------- the background workers' entry points ---------- */
extern RAFTABLE_EXPORT void raftable_worker_main(Datum arg);	/* worker.c */
extern RAFTABLE_EXPORT void raftable_apply_main(Datum arg); /* apply.c */

#endif							/* RAFTABLE_H */
