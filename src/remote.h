/*
 * remote.h
 *	  Interruptible libpq calls to another node (remote.c).
 */
#ifndef RAFTABLE_REMOTE_H
#define RAFTABLE_REMOTE_H

#include "libpq-fe.h"
#include "utils/timestamp.h"

/* how long a connection to, or a query on, another node may take */
#define REMOTE_WAIT_MS	(30 * 1000)

/*
 * How long a best-effort contact with a member that may be down waits to
 * connect (telling a removed node to leave, checking what a DDL statement
 * needs): a node that answers at all connects within milliseconds, and one
 * whose packets are dropped must not hold the caller for REMOTE_WAIT_MS.
 */
#define REMOTE_BRIEF_MS	(3 * 1000)

/*
 * conninfo is the node's, as the membership records it; the connection
 * is made as this node's own role (peer.c).  A conninfo without dbname
 * means raftable.database.  long_running: no statement_timeout there (a
 * snapshot's COPY); otherwise 30 s.  wait_ms bounds the connection attempt.
 */
extern PGconn *remote_connect_nothrow(const char *conninfo, bool long_running,
									  int wait_ms);
extern PGconn *remote_connect_as(const char *conninfo, const char *role,
								 bool long_running, int wait_ms);
extern PGconn *remote_connect(const char *conninfo, bool long_running);

/* the last result, or NULL on a lost connection or after 30 s */
extern PGresult *remote_exec_wait(PGconn *conn, const char *sql, int nparams,
								  const char *const *values, const int *lengths,
								  const int *formats);

/* the last result of the query sent on conn; NULL after idle_ms of silence */
extern PGresult *remote_collect(PGconn *conn, int idle_ms);

/*
 * as remote_exec_wait, but failure finishes conn and raises an ERROR whose
 * message is `failure` (a whole sentence, marked with gettext_noop)
 */
extern PGresult *remote_exec(PGconn *conn, const char *sql, int nparams,
							 const char *const *values, const int *lengths,
							 const int *formats, const char *failure);

/* wait for events on conn's socket until deadline; false on timeout */
extern int	remote_wait_socket(PGconn *conn, int events, TimestampTz deadline);

#endif							/* RAFTABLE_REMOTE_H */
