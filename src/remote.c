/*-------------------------------------------------------------------------
 *
 * remote.c
 *	  libpq calls from a backend or the apply worker to another node:
 *	  blocking for the caller, but never inside libpq, so that cancel and
 *	  terminate are served while waiting (PostgreSQL 15 has no
 *	  libpqsrv_* helpers; this is what walreceiver does by hand).
 *
 * The Raft worker does not use these: its transport (transport.c) never
 * waits for one peer.
 *
 * IDENTIFICATION
 *	  src/remote.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "peer.h"
#include "raftable.h"
#include "remote.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"


/*
 * Wait until conn's socket is ready for events, or the latch is set, for
 * at most until deadline; interrupts (cancel, terminate) are served.
 * Returns 0 once the deadline has passed, else what woke us
 * (WaitLatchOrSocket's bits: the socket may not be ready).
 */
int
remote_wait_socket(PGconn *conn, int events, TimestampTz deadline)
{
	long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
	int			rc;

	if (ms <= 0)
		return 0;
	rc = WaitLatchOrSocket(MyLatch,
						   WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | WL_TIMEOUT | events,
						   PQsocket(conn), ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return rc;
}

/*
 * Finish a connection started with PQconnectStartParams without blocking
 * in libpq (as PostgreSQL's walreceiver does), so that a cancel works.
 * Returns the connection, good or bad; the caller checks PQstatus.
 */
static PGconn *
remote_connect_wait(PGconn *conn, int wait_ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   wait_ms);
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return conn;
	PG_TRY();
	{
		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			int			want = status == PGRES_POLLING_READING ?
				WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			int			rc = remote_wait_socket(conn, want, deadline);

			if (rc == 0)
				break;			/* PQstatus stays not OK: the caller reports */

			/*
			 * Only a ready socket may advance libpq: woken by the latch while
			 * the TCP handshake is still going, PQconnectPoll would take the
			 * connection as made, and then block inside libpq sending the
			 * startup packet until the kernel gives up (minutes, deaf to
			 * cancel) when the peer's SYNs are being dropped.
			 */
			if (rc & want)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return conn;
}

/*
 * Run one query there and return its last result, waiting interruptibly;
 * NULL if the connection failed or the wait timed out.
 */
PGresult *
remote_exec_wait(PGconn *conn, const char *sql, int nparams,
				 const char *const *values, const int *lengths, const int *formats)
{
	PGresult   *last = NULL;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, values, lengths, formats, 0))
		return NULL;
	PG_TRY();
	{
		last = remote_collect(conn, REMOTE_WAIT_MS);
	}
	PG_CATCH();
	{
		PQfinish(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return last;					/* NULL: the caller finishes conn */
}

/*
 * Wait for the query sent on conn to finish, with at most idle_ms of
 * silence, and return its last result; NULL if the connection was lost or
 * went silent.  Interrupts are served; conn is left to the caller.
 */
PGresult *
remote_collect(PGconn *conn, int idle_ms)
{
	PGresult   *last = NULL;
	PGresult   *res;

	while (PQisBusy(conn))
	{
		if (!remote_wait_socket(conn, WL_SOCKET_READABLE,
								TimestampTzPlusMilliseconds(GetCurrentTimestamp(), idle_ms)) ||
			!PQconsumeInput(conn))
			break;
	}
	if (PQisBusy(conn))
		return NULL;
	while ((res = PQgetResult(conn)) != NULL)
	{
		PQclear(last);
		last = res;
	}
	return last;
}

/*
 * Connect from this backend to another node, waiting interruptibly and at
 * most wait_ms (keepalives on; statements there time out too).
 * conninfo is the node's, as the membership records it: we connect as
 * this node's own role (peer.c), and without dbname to raftable.database,
 * as the worker does.
 */
PGconn *
remote_connect_nothrow(const char *conninfo, bool long_running, int wait_ms)
{
	char		self_role[NAMEDATALEN];

	peer_self_role(self_role);
	return remote_connect_as(conninfo, self_role, long_running, wait_ms);
}

/* the same, as role ("": libpq's default user) */
PGconn *
remote_connect_as(const char *conninfo, const char *role, bool long_running,
				  int wait_ms)
{
	char	   *ours;
	const char *keys[] = {"dbname", "connect_timeout", "application_name",
		"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
	"options", NULL, NULL};
	const char *vals[] = {NULL, "10", "raftable", "1", "5", "2", "3",
		long_running ? "-c statement_timeout=0" : "-c statement_timeout=30s", NULL, NULL};
	PQconninfoOption *opts;
	PGconn	   *conn;

	ours = peer_conninfo_as(conninfo, role);
	vals[0] = ours;
	opts = PQconninfoParse(ours, NULL);

	if (opts)
	{
		bool		has_db = false;

		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (strcmp(o->keyword, "dbname") == 0 && o->val && o->val[0])
				has_db = true;
		PQconninfoFree(opts);
		if (!has_db)
		{
			keys[8] = "dbname";
			vals[8] = raftable_database;
		}
	}
	conn = remote_connect_wait(PQconnectStartParams(keys, vals, true), wait_ms);
	pfree(ours);
	return conn;
}

PGconn *
remote_connect(const char *conninfo, bool long_running)
{
	PGconn	   *conn = remote_connect_nothrow(conninfo, long_running,
												 REMOTE_WAIT_MS);

	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pchomp(PQerrorMessage(conn)) : "out of memory";

		PQfinish(conn);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to the node"),
				 errdetail_internal("%s", msg)));
	}
	return conn;
}

/*
 * Run a query there; on error, finish conn and raise ours, with failure
 * (a whole message, marked with gettext_noop) as its text.
 */
PGresult *
remote_exec(PGconn *conn, const char *sql, int nparams, const char *const *values,
		   const int *lengths, const int *formats, const char *failure)
{
	PGresult   *res = remote_exec_wait(conn, sql, nparams, values, lengths, formats);
	ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
	{
		char	   *msg = pchomp(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		char	   *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		int			code = ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;

		if (state && strcmp(state, "42883") != 0 && strcmp(state, "42P01") != 0 &&
			strcmp(state, "3F000") != 0)
			code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
		PQclear(res);
		PQfinish(conn);
		ereport(ERROR,
				(errhidestmt(true), errcode(code),
				 errmsg_internal("%s", _(failure)),
				 errdetail_internal("%s", msg)));
	}
	return res;
}

