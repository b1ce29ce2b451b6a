/*-------------------------------------------------------------------------
 *
 * membership.c
 *	  raftable's membership functions: create_cluster, add_node (with the
 *	  checks a new member must pass), remove_node, transfer_leadership,
 *	  and the peer entry points _join and _leave.
 *
 * Backends never drive the Raft core.  A membership function checks what
 * it can from the status the worker publishes (are we in a cluster, are we
 * the leader), hands the worker a request through shared memory, and
 * waits on a condition variable for the answer and then for the change to
 * be committed.  Talking to another node (add_node, and the hand-over in
 * remove_node) is done here over libpq, in the calling backend, so that
 * the worker never waits for anyone.
 *
 * IDENTIFICATION
 *	  src/membership.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "member.h"
#include "miscadmin.h"
#include "peer.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "raftable.h"
#include "readindex.h"
#include "remote.h"
#include "request.h"
#include "status.h"
#include "storage/latch.h"
#include "storage.h"
#include "transport.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

RAFTABLE_FUNCTION(raftable_create_cluster);
RAFTABLE_FUNCTION(raftable_add_node);
RAFTABLE_FUNCTION(raftable_remove_node);
RAFTABLE_FUNCTION(raftable_transfer_leadership);
RAFTABLE_FUNCTION(raftable_join);
RAFTABLE_FUNCTION(raftable_leave);


/* how long to wait for the cluster to commit a membership change */
#define SQL_COMMIT_WAIT_MS	(raftable_write_timeout)
/* how long a new learner may take to catch up before add_node gives up */
#define SQL_CATCH_UP_WAIT_MS (6 * raftable_write_timeout)

/* ---------- status snapshot and waiting ---------- */

/* how long a membership call waits for a starting worker */
#define SQL_WORKER_START_MS 5000

/* the voters besides this node */
static int
sql_other_voters(const RaftableStatus *st)
{
	int			n = 0;

	for (int i = 0; i < st->n_members; i++)
		if (st->members[i].voter && !st->members[i].is_self)
			n++;
	return n;
}

typedef bool (*sql_status_pred) (const RaftableStatus *st, uint64 arg);

/* wait until pred(status) holds; false on timeout (timeout_ms < 0: none) */
static bool
sql_wait_status(sql_status_pred pred, uint64 arg, int timeout_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	bool		ok;

	for (;;)
	{
		RaftableStatus *st = raftable_status_get(true, 0);

		ok = pred(st, arg);
		pfree(st);
		if (ok)
			break;
		if (timeout_ms >= 0 &&
			TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			break;
		ConditionVariableTimedSleep(raftable_status_cv(), 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	return ok;
}

static bool
pred_committed(const RaftableStatus *st, uint64 index)
{
	return st->role == RAFT_LEADER && st->commit_index >= index;
}

static bool
pred_leader_is(const RaftableStatus *st, uint64 id)
{
	return st->leader_id == id && st->leader_id != 0;
}

static bool
pred_self_leader(const RaftableStatus *st, uint64 unused)
{
	return st->role == RAFT_LEADER;
}

static bool
pred_voter(const RaftableStatus *st, uint64 id)
{
	const RaftableMemberInfo *m = raftable_status_member(st, id);

	return m != NULL && m->voter;
}

/* failure: the whole message (gettext_noop), "could not ..." */
static void
sql_fail_request(const RaftableRequest *r, const char *failure)
{
	/* the status may still say we lead: the worker answered first */
	if (r->rc == RAFT_ENOTLEADER || r->rc == RAFT_ENOLEADER)
		raftable_error_not_leader(ERRCODE_RAFTABLE_NOT_LEADER,
								  "this node is not the raftable leader");
	ereport(ERROR,
			(errhidestmt(true), errcode(r->rc == RAFT_EBUSY || r->rc == RAFT_ETRANSFER ?
					 ERRCODE_OBJECT_IN_USE : ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg_internal("%s", _(failure)),
			 errdetail("%s", r->error[0] ? r->error : raft_strerror(r->rc))));
}

static void
sql_wait_committed(uint64 index, const char *failure)
{
	if (!sql_wait_status(pred_committed, index, SQL_COMMIT_WAIT_MS))
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg_internal("%s", _(failure)),
				 errdetail("The change was proposed at log index %llu and not committed within raftable.write_timeout; it may still be committed.",
						   (unsigned long long) index)));
}

/* propose a change through the worker and wait until it is committed */
static uint64
sql_change(int type, uint64 node_id, const char *name, const char *conninfo,
		   const char *failure)
{
	RaftableRequest *req = palloc0(sizeof(RaftableRequest));
	RaftableRequest *ans;

	req->type = type;
	req->node_id = node_id;
	if (name)
		strlcpy(req->name, name, RAFTABLE_NAME_LEN);
	if (conninfo)
		strlcpy(req->conninfo, conninfo, RAFTABLE_CONNINFO_LEN);
	ans = request_submit(req);
	if (ans->rc != RAFT_OK)
		sql_fail_request(ans, failure);
	sql_wait_committed(ans->result, failure);
	return ans->result;
}

/* the members with their full conninfo, from the worker */
static raft_conf *
sql_full_conf(void)
{
	RaftableRequest *req = palloc0(sizeof(RaftableRequest));
	RaftableRequest *ans;
	raft_conf  *conf = palloc(sizeof(raft_conf));

	req->type = RAFTABLE_REQ_GET_CONF;
	ans = request_submit(req);
	if (ans->rc != RAFT_OK ||
		raft_conf_decode(ans->members, ans->members_len, conf) != 0)
		sql_fail_request(ans, gettext_noop("could not read the membership"));
	return conf;
}

static bool
sql_full_conninfo(const raft_conf *conf, uint64 id, char *conninfo)
{
	const raft_member *m = raft_conf_find(conf, id);
	char		name[RAFTABLE_NAME_LEN];

	if (m == NULL)
		return false;
	raftable_member_addr_decode(m->addr, m->addr_len, name, sizeof(name),
								conninfo, RAFTABLE_CONNINFO_LEN);
	return true;
}

/* best effort: tell a node it no longer belongs to the cluster */
static void
sql_tell_leave(const char *conninfo, uint64 cluster_id, uint64 node_id)
{
	PGconn	   *conn = remote_connect_nothrow(conninfo, false, REMOTE_BRIEF_MS);

	if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
	{
		char		c[32],
					n[32];
		const char *params[2] = {c, n};
		PGresult   *res;

		snprintf(c, sizeof(c), "%lld", (long long) cluster_id);
		snprintf(n, sizeof(n), "%lld", (long long) node_id);
		res = remote_exec_wait(conn, "SELECT raftable._leave($1, $2)", 2, params,
							NULL, NULL);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not tell node %llu that it left the cluster",
							(unsigned long long) node_id),
					 errdetail_internal("%s", pchomp(res ? PQresultErrorMessage(res) :
													 PQerrorMessage(conn)))));
		PQclear(res);
	}
	else
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not tell node %llu that it left the cluster",
						(unsigned long long) node_id),
				 errdetail_internal("%s", conn ? pchomp(PQerrorMessage(conn)) : "out of memory")));
	PQfinish(conn);
}

/* ---------- membership functions ---------- */

/*
 * Run a function whose arguments hold a conninfo so that any error it
 * raises, ours or not (a cancel, a statement timeout, out of memory),
 * leaves the statement out of the server log: it may hold a password.
 */
static Datum
sql_hiding_statement(Datum (*fn) (FunctionCallInfo), FunctionCallInfo fcinfo)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		result = fn(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		edata->hide_stmt = true;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}

/*
 * What must be the same on every node for apply and indexes to agree: the
 * major version, the server encoding, the database's collation and
 * character classification, and its collation's version.  The same query
 * here and on the node that is to join; a difference names the setting.
 */
static const char *sql_compat_sql =
"SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4 "
"       OPERATOR(pg_catalog./) 10000, "
"       pg_catalog.pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, "
"       pg_catalog.pg_database_collation_actual_version(d.oid) "
"  FROM pg_catalog.pg_database d "
" WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()";

static void
sql_check_compatible(PGconn *conn)
{
	static const char *const what[5] = {
		"PostgreSQL major version", "server encoding", "LC_COLLATE", "LC_CTYPE",
		"collation version"
	};
	PGresult   *res = remote_exec(conn, sql_compat_sql, 0, NULL, NULL, NULL,
								  gettext_noop("could not check the node's settings"));

	raftable_spi_connect();
	raftable_spi(sql_compat_sql, 0, NULL, NULL);
	for (int i = 0; i < 5 && PQntuples(res) == 1 && SPI_processed == 1; i++)
	{
		char	   *ours = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		char	   *theirs = PQgetisnull(res, 0, i) ? NULL : PQgetvalue(res, 0, i);

		if ((ours == NULL) != (theirs == NULL) ||
			(ours && strcmp(ours, theirs) != 0))
		{
			char	   *detail = psprintf("It has %s \"%s\"; this node has \"%s\".",
										  what[i], theirs ? theirs : "none",
										  ours ? ours : "none");

			PQclear(res);
			PQfinish(conn);
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("that node cannot join: its %s differs", what[i]),
					 errdetail("%s", detail),
					 errhint("Nodes must agree on what orders and compares text; create its database like this one's.")));
		}
	}
	SPI_finish();
	PQclear(res);
}

/*
 * The roles the replicated tables name here: owners, grantees of the
 * tables and their sequences, and roles of their policies.  Apply creates
 * and writes each table as its owner and replays GRANT and policies, so a
 * node without one of them could not apply.
 */
static const char *sql_roles_sql =
"WITH t AS (SELECT relid FROM raftable.replicated "
"           UNION SELECT d.objid FROM pg_catalog.pg_depend d "
"            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
"              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
"              AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[]) "
"              AND d.refobjid IN (SELECT relid FROM raftable.replicated)), "
"r AS (SELECT c.relowner AS role FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT relid FROM t) "
"      UNION SELECT a.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a "
"       WHERE c.oid IN (SELECT relid FROM t) "
"      UNION SELECT a.grantee FROM pg_catalog.pg_attribute att, pg_catalog.aclexplode(att.attacl) a "
"       WHERE att.attrelid IN (SELECT relid FROM t) "
"      UNION SELECT pr FROM pg_catalog.pg_policy p, pg_catalog.unnest(p.polroles) pr "
"       WHERE p.polrelid IN (SELECT relid FROM t)) "
"SELECT pg_catalog.array_agg(a.rolname ORDER BY a.rolname) "
"  FROM r JOIN pg_catalog.pg_authid a ON a.oid OPERATOR(pg_catalog.=) r.role";

/* the first of roles (a text[] literal) that the node at conn lacks, or NULL */
static char *
sql_missing_role(PGconn *conn, const char *roles)
{
	const char *values[1] = {roles};
	PGresult   *res;
	char	   *missing = NULL;

	res = remote_exec(conn,
					  "SELECT r FROM pg_catalog.unnest($1::pg_catalog.text[]) AS r "
					  " WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles p "
					  "                    WHERE p.rolname OPERATOR(pg_catalog.=) r) "
					  " ORDER BY 1 LIMIT 1",
					  1, values, NULL, NULL, gettext_noop("could not check the node's roles"));
	if (PQntuples(res) > 0)
		missing = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return missing;
}

static void
sql_check_roles(PGconn *conn)
{
	RaftableSavedUser saved;
	char	   *roles;
	char	   *missing;

	raftable_become_superuser(&saved);
	raftable_spi_connect();
	raftable_spi(sql_roles_sql, 0, NULL, NULL);
	roles = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	roles = roles ? MemoryContextStrdup(TopTransactionContext, roles) : NULL;
	SPI_finish();
	raftable_restore_user(&saved);
	if (roles == NULL)
		return;
	missing = sql_missing_role(conn, roles);
	if (missing)
	{
		PQfinish(conn);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("that node cannot join: it has no role \"%s\"", missing),
				 errdetail("Replicated tables are owned by, grant to, or have policies for that role, and apply needs it."),
				 errhint("Create the role on that node, then add it.")));
	}
}

/*
 * The objects outside the built-in catalogs that replicated table relid
 * refers to (the types of its columns, the functions, operators,
 * operator classes and collations of its defaults, constraints and
 * indexes), as pg_identify_object_as_address() names them: another node
 * must have each to create or alter the table.  Its own sequences travel
 * with it, and replicated tables (those its foreign keys may point at)
 * reach every node through the log, in order.
 */
static const char *sql_refs_sql =
"WITH parts AS ("
"  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass AS classid, $1::pg_catalog.oid AS objid "
"  UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid "
"    FROM pg_catalog.pg_constraint c WHERE c.conrelid OPERATOR(pg_catalog.=) $1 "
"  UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, d.oid "
"    FROM pg_catalog.pg_attrdef d WHERE d.adrelid OPERATOR(pg_catalog.=) $1 "
"  UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid "
"    FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) $1 "
"  UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, x.oid "
"    FROM pg_catalog.pg_statistic_ext x WHERE x.stxrelid OPERATOR(pg_catalog.=) $1), "
"own AS (SELECT d.objid FROM pg_catalog.pg_depend d "
"   WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
"     AND d.refobjid OPERATOR(pg_catalog.=) $1 "
"     AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[])) "
"SELECT DISTINCT a.type, a.object_names::pg_catalog.text, a.object_args::pg_catalog.text, "
"       pg_catalog.array_to_string(a.object_names, '.') "
"  FROM parts p "
"  JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) p.classid "
"   AND d.objid OPERATOR(pg_catalog.=) p.objid "
"  CROSS JOIN LATERAL pg_catalog.pg_identify_object_as_address(d.refclassid, d.refobjid, 0) a "
" WHERE d.deptype OPERATOR(pg_catalog.=) 'n' "
"   AND d.refobjid OPERATOR(pg_catalog.>=) 16384 "	/* FirstNormalObjectId */
"   AND d.refclassid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_namespace'::pg_catalog.regclass "
"   AND NOT (d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
"            AND (d.refobjid OPERATOR(pg_catalog.=) $1 OR d.refobjid IN (SELECT objid FROM own) "
"                 OR d.refobjid IN (SELECT relid FROM raftable.replicated) "
"                 OR d.refobjid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i "
"                                    WHERE i.indrelid IN (SELECT relid FROM raftable.replicated))))";

typedef struct SqlRef
{
	char	   *type;
	char	   *names;			/* text[] literal */
	char	   *args;			/* text[] literal */
	char	   *display;		/* the names, dotted, for messages */
} SqlRef;

static List *
sql_table_refs(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	RaftableSavedUser saved;
	List	   *refs = NIL;
	MemoryContext cxt = CurrentMemoryContext;

	raftable_become_superuser(&saved);
	raftable_spi_connect();
	raftable_spi(sql_refs_sql, 1, types, values);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SqlRef	   *r = palloc(sizeof(SqlRef));

		r->type = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		r->names = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		r->args = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		r->display = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
		refs = lappend(refs, r);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	raftable_restore_user(&saved);
	return refs;
}

/* the first of refs the node at conn does not have, or NULL */
static SqlRef *
sql_missing_ref(PGconn *conn, List *refs)
{
	ListCell   *lc;

	foreach(lc, refs)
	{
		SqlRef	   *r = lfirst(lc);
		const char *values[3] = {r->type, r->names, r->args};
		PGresult   *res = remote_exec_wait(conn,
										   "SELECT pg_catalog.pg_get_object_address($1, "
										   "$2::pg_catalog.text[], $3::pg_catalog.text[])",
										   3, values, NULL, NULL);
		bool		found = res && PQresultStatus(res) == PGRES_TUPLES_OK;

		PQclear(res);
		if (!found)
			return r;
	}
	return NULL;
}

/*
 * add_node: the node to join must have every object the replicated tables'
 * definitions refer to, or it could not create them.
 */
static void
sql_check_refs(PGconn *conn)
{
	RaftableSavedUser saved;
	List	   *relids = NIL;
	ListCell   *lc;

	raftable_become_superuser(&saved);
	raftable_spi_connect();
	raftable_spi("SELECT relid FROM raftable.replicated", 0, NULL, NULL);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		relids = lappend_oid(relids, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																	SPI_tuptable->tupdesc,
																	1, &isnull)));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	raftable_restore_user(&saved);
	foreach(lc, relids)
	{
		SqlRef	   *lacks = sql_missing_ref(conn, sql_table_refs(lfirst_oid(lc)));

		if (lacks)
		{
			PQfinish(conn);
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("that node cannot join: it has no %s %s", lacks->type, lacks->display),
					 errdetail("Replicated table \"%s\" refers to it.", get_rel_name(lfirst_oid(lc))),
					 errhint("Create it on that node (objects outside the tables are each node's own), then add it.")));
		}
	}
}

/*
 * Before a statement that names roles (GRANT, OWNER TO, a policy's roles,
 * a replicated table's owner) or that gives replicated table relid a
 * definition is replicated: every other member that can be asked must
 * have those roles and every object the table's definition refers to, or
 * the statement fails naming the node and what it lacks.  A member that
 * cannot be reached gets a WARNING instead: refusing would make a
 * minority that is down block what the majority can commit.
 */
void
raftable_require_everywhere(List *roles, Oid relid)
{
	RaftableStatus *st;
	StringInfoData arr;
	ListCell   *lc;
	List	   *refs = OidIsValid(relid) ? sql_table_refs(relid) : NIL;

	if (roles == NIL && refs == NIL)
		return;
	initStringInfo(&arr);
	appendStringInfoChar(&arr, '{');
	foreach(lc, roles)
	{
		if (arr.len > 1)
			appendStringInfoChar(&arr, ',');
		appendStringInfoChar(&arr, '"');
		for (const char *c = lfirst(lc); *c; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(&arr, '\\');
			appendStringInfoChar(&arr, *c);
		}
		appendStringInfoChar(&arr, '"');
	}
	appendStringInfoChar(&arr, '}');
	st = raftable_status_copy(true);
	for (int i = 0; i < st->n_members; i++)
	{
		const RaftableMemberInfo *m = &st->members[i];
		PGconn	   *conn;
		char	   *missing = NULL;
		SqlRef	   *lacks = NULL;

		if (m->is_self)
			continue;
		conn = remote_connect_nothrow(m->conninfo, false, REMOTE_BRIEF_MS);
		if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		{
			/*
			 * A member that is down does not make the cluster refuse what
			 * a majority can commit; it is told, and its apply stops at
			 * this entry, visibly, if it lacks something when it returns.
			 */
			PQfinish(conn);
			ereport(WARNING,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not check that node \"%s\" has what this statement needs", m->name),
					 errdetail("The node cannot be reached."),
					 errhint("Make sure it has the roles and objects the statement uses before it returns, or its apply stops at this statement until they are created there.")));
			continue;
		}
		if (roles != NIL)
			missing = sql_missing_role(conn, arr.data);
		if (missing == NULL)
			lacks = sql_missing_ref(conn, refs);
		PQfinish(conn);
		if (missing)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role \"%s\" does not exist on node \"%s\"", missing, m->name),
					 errdetail("Roles are each node's own; the statement would stop apply there."),
					 errhint("Create the role on every node first.")));
		if (lacks)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("%s %s does not exist on node \"%s\"", lacks->type,
							lacks->display, m->name),
					 lacks->args && strcmp(lacks->args, "{}") != 0 ?
					 errdetail("With arguments %s.  The replicated table refers to it, and that node could not apply the statement.", lacks->args) :
					 errdetail("The replicated table refers to it, and that node could not apply the statement."),
					 errhint("Create it on every node first (objects outside the tables are each node's own).")));
	}
	pfree(st);
}

/*
 * create_cluster's self_conninfo is how every peer will reach this node:
 * it must reach this very server (same postmaster start, to the
 * microsecond), as the role it names, or every add_node would wait and
 * fail later.
 */
static const char *sql_self_sql =
"SELECT pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time())::pg_catalog.text "
"       OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) "
"       pg_catalog.current_setting('port')";

static void
sql_check_reaches_self(const char *conninfo)
{
	char		role[NAMEDATALEN];
	PGconn	   *conn;
	PGresult   *res;
	char	   *theirs;
	char	   *ours;

	peer_role_of(conninfo, role);
	conn = remote_connect_as(conninfo, role, false, REMOTE_WAIT_MS);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pchomp(PQerrorMessage(conn)) : "out of memory";

		PQfinish(conn);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("self_conninfo does not reach this node"),
				 errdetail_internal("%s", msg),
				 errhint("Give the host, port and role the other nodes will use to reach this one.")));
	}
	res = remote_exec(conn, sql_self_sql, 0, NULL, NULL, NULL, gettext_noop("could not check self_conninfo on the node"));
	theirs = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	raftable_spi_connect();
	raftable_spi(sql_self_sql, 0, NULL, NULL);
	ours = MemoryContextStrdup(TopTransactionContext,
							   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	if (strcmp(ours, theirs) != 0)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("self_conninfo reaches another server, not this node"),
				 errhint("Give the host and port the other nodes will use to reach this one.")));
}

static Datum
raftable_create_cluster_impl(FunctionCallInfo fcinfo)
{
	char	   *conninfo = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name;
	RaftableStatus *st;
	RaftableRequest *req;
	RaftableRequest *ans;

	member_check_conninfo(conninfo);
	raftable_require_served_database();
	name = PG_ARGISNULL(1) ? member_default_name(conninfo) :
		text_to_cstring(PG_GETARG_TEXT_PP(1));
	member_check_name(name);
	st = raftable_status_get(true, SQL_WORKER_START_MS);
	if (st->in_cluster)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is already in a raftable cluster"),
				 errdetail("It is node %llu of cluster %llu.",
						   (unsigned long long) st->node_id,
						   (unsigned long long) st->cluster_id)));
	sql_check_reaches_self(conninfo);
	req = palloc0(sizeof(RaftableRequest));
	req->type = RAFTABLE_REQ_CREATE_CLUSTER;
	strlcpy(req->name, name, RAFTABLE_NAME_LEN);
	strlcpy(req->conninfo, conninfo, RAFTABLE_CONNINFO_LEN);
	ans = request_submit(req);
	if (ans->rc == RAFT_EBUSY)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is already in a raftable cluster")));
	if (ans->rc != RAFT_OK)
		sql_fail_request(ans, gettext_noop("could not create the cluster"));
	/* a lone voter elects itself within an election timeout or two */
	if (!sql_wait_status(pred_self_leader, 0, 10 * raftable_election_timeout))
		ereport(WARNING,
				(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg("the new cluster has no leader yet"),
				 errhint("Check raftable.status and the server log.")));
	PG_RETURN_INT64((int64) ans->result);
}

/*
 * After the join, a new connection with the same conninfo, as peers will
 * make it, must reach the node that took the identity (not, say, another
 * server behind a proxy or a name that resolves elsewhere); if not, the
 * node is told to forget the identity and add_node fails.
 */
static void
sql_check_reaches_joined(const char *conninfo, uint64 cluster_id, uint64 id)
{
	PGconn	   *conn = remote_connect(conninfo, false);
	TimestampTz start = GetCurrentTimestamp();
	bool		same = false;

	/*
	 * The node's worker publishes its new identity right after it answers
	 * _join: a moment of NULL is the node starting, not another server.
	 */
	for (;;)
	{
		PGresult   *res = remote_exec(conn, "SELECT node_id FROM raftable.status", 0, NULL,
									  NULL, NULL, gettext_noop("could not check the joined node"));
		bool		known = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);

		same = known && strtou64(PQgetvalue(res, 0, 0), NULL, 10) == id;
		PQclear(res);
		if (known || TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
												SQL_WORKER_START_MS))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PQfinish(conn);
	if (!same)
	{
		sql_tell_leave(conninfo, cluster_id, id);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the conninfo reaches another server than the node it joined"),
				 errdetail("A second connection with it did not reach node %llu.",
						   (unsigned long long) id),
				 errhint("Give a conninfo that always reaches the same server.")));
	}
}

/*
 * A node added starts from a snapshot it copies from this leader, as its
 * own role (the user of its conninfo): that role must be able to read what
 * the copy reads, or the node would never catch up and add_node would wait
 * in vain.  The first object it cannot read, or NULL.
 */
static const char *sql_snapshot_rights_sql =
"SELECT o FROM ("
"  SELECT 'table raftable.apply_state' AS o, "
"         pg_catalog.has_table_privilege($1, 'raftable.apply_state', 'SELECT') AS ok "
"  UNION ALL SELECT 'table raftable.applied_marks', "
"         pg_catalog.has_table_privilege($1, 'raftable.applied_marks', 'SELECT') "
"  UNION ALL SELECT 'table raftable.replicated', "
"         pg_catalog.has_table_privilege($1, 'raftable.replicated', 'SELECT') "
"  UNION ALL SELECT 'function raftable._table_ddl(regclass)', "
"         pg_catalog.has_function_privilege($1, 'raftable._table_ddl(regclass)', 'EXECUTE') "
"  UNION ALL SELECT 'table ' OPERATOR(pg_catalog.||) r.relid::pg_catalog.regclass::pg_catalog.text, "
"         pg_catalog.has_table_privilege($1, r.relid, 'SELECT') "
"    FROM raftable.replicated r "
"  UNION ALL SELECT 'sequence ' OPERATOR(pg_catalog.||) d.objid::pg_catalog.regclass::pg_catalog.text, "
"         pg_catalog.has_sequence_privilege($1, d.objid, 'SELECT') "
"    FROM raftable.replicated r JOIN pg_catalog.pg_depend d "
"      ON d.refobjid OPERATOR(pg_catalog.=) r.relid "
"     AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
"     AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[]) "
"    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid "
"     AND c.relkind OPERATOR(pg_catalog.=) 'S'"
") x WHERE NOT x.ok LIMIT 1";

static void
sql_check_snapshot_rights(const char *conninfo)
{
	char		role[NAMEDATALEN];
	Oid			roleid;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *missing = NULL;

	peer_role_of(conninfo, role);
	if (role[0] == '\0')
		return;					/* libpq's default user: cannot tell here */
	roleid = get_role_oid(role, true);
	if (!OidIsValid(roleid))
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", the new node's, does not exist on this node", role),
				 errdetail("The new node connects to its peers as that role."),
				 errhint("Create the role on every node first (README: one role per node).")));
	if (superuser_arg(roleid))
		return;
	values[0] = CStringGetTextDatum(role);
	raftable_spi_connect();
	raftable_spi(sql_snapshot_rights_sql, 1, types, values);
	if (SPI_processed > 0)
		missing = MemoryContextStrdup(TopTransactionContext,
									  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	if (missing)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" cannot copy the replicated tables from this node", role),
				 errdetail("A node added starts from a snapshot it copies from the leader as its own role, which cannot read %s.",
						   missing),
				 errhint("Grant it what README's setup grants raftable_peers: EXECUTE on raftable._table_ddl, SELECT on raftable's bookkeeping tables and on every replicated table and its sequences.")));
}

static Datum
raftable_add_node_impl(FunctionCallInfo fcinfo)
{
	char	   *conninfo = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *name = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		wait = PG_ARGISNULL(2) ? true : PG_GETARG_BOOL(2);
	RaftableStatus *st;
	raft_conf  *conf;
	PGconn	   *conn;
	PGresult   *res;
	uint64		id = raftable_random_id();
	char	   *members;
	size_t		members_len;

	member_check_conninfo(conninfo);
	member_check_name(name);
	raftable_require_served_database();
	st = raftable_status_get(true, SQL_WORKER_START_MS);
	raftable_require_leader(st);
	conf = sql_full_conf();

	if (name == NULL)
		name = member_default_name(conninfo);
	for (int i = 0; i < st->n_members; i++)
		if (strcmp(st->members[i].name, name) == 0)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a member of this cluster is already named \"%s\"", name),
					 errhint("Give the new node another name: raftable.add_node(conninfo, node_name).")));

	sql_check_snapshot_rights(conninfo);
	conn = remote_connect(conninfo, false);
	res = remote_exec(conn, "SELECT role FROM raftable.status", 0, NULL, NULL, NULL,
					 gettext_noop("could not check raftable on the node"));
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "none") != 0)
	{
		PQclear(res);
		PQfinish(conn);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("that node is already in a raftable cluster"),
				 errhint("Remove it from its cluster first.")));
	}
	PQclear(res);
	sql_check_compatible(conn);
	sql_check_roles(conn);
	sql_check_refs(conn);

	/* give it its identity and the current membership, then propose */
	members_len = raft_conf_encoded_size(conf);
	members = palloc(members_len);
	raft_conf_encode(conf, (uint8 *) members);
	{
		char		c[32],
					n[32];
		const char *values[5] = {c, n, name, conninfo, members};
		int			lengths[5] = {0, 0, 0, 0, (int) members_len};
		int			formats[5] = {0, 0, 0, 0, 1};

		snprintf(c, sizeof(c), "%lld", (long long) st->cluster_id);
		snprintf(n, sizeof(n), "%lld", (long long) id);
		res = remote_exec(conn, "SELECT raftable._join($1, $2, $3, $4, $5::bytea)",
						 5, values, lengths, formats, gettext_noop("could not join the node to the cluster"));
		PQclear(res);
	}
	PQfinish(conn);
	sql_check_reaches_joined(conninfo, st->cluster_id, id);

	/*
	 * If the proposal is refused, the node must forget the identity we gave
	 * it.  If it was proposed but not committed in time, it may still be:
	 * then the node keeps its identity (and is promoted if it commits).
	 */
	{
		RaftableRequest *req = palloc0(sizeof(RaftableRequest));
		RaftableRequest *ans;

		req->type = RAFTABLE_REQ_ADD_LEARNER;
		req->node_id = id;
		strlcpy(req->name, name, RAFTABLE_NAME_LEN);
		strlcpy(req->conninfo, conninfo, RAFTABLE_CONNINFO_LEN);
		ans = request_submit(req);
		if (ans->rc != RAFT_OK)
		{
			sql_tell_leave(conninfo, st->cluster_id, id);
			sql_fail_request(ans, gettext_noop("could not add the node"));
		}
		sql_wait_committed(ans->result, gettext_noop("could not add the node"));
	}

	/* the worker promotes the learner once it holds everything committed */
	if (wait && !sql_wait_status(pred_voter, id, SQL_CATCH_UP_WAIT_MS))
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg("node %llu was added as a learner but did not become a voter in time",
						(unsigned long long) id),
				 errdetail("It stays a learner, and is promoted once it catches up."),
				 errhint("Check that it can reach the other nodes and they can reach it; remove it with raftable.remove_node(%llu).",
						 (unsigned long long) id)));
	PG_RETURN_INT64((int64) id);
}

Datum
raftable_remove_node(PG_FUNCTION_ARGS)
{
	uint64		id;
	RaftableStatus *st;
	raft_conf  *conf;
	char		conninfo[RAFTABLE_CONNINFO_LEN];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node_id must not be null")));
	id = (uint64) PG_GETARG_INT64(0);
	raftable_require_served_database();
	peer_check_remove(id);
	st = raftable_status_get(true, SQL_WORKER_START_MS);
	raftable_require_leader(st);
	if (raftable_status_member(st, id) == NULL)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("node %llu is not a member of this cluster",
						(unsigned long long) id)));
	conf = sql_full_conf();
	sql_full_conninfo(conf, id, conninfo);

	if (id == st->node_id && sql_other_voters(st) == 0)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot remove the last voter of a cluster"),
				 errdetail("This node is the only voter of its cluster; without it the cluster could not commit anything."),
				 errhint("To leave the cluster for good, DROP EXTENSION raftable on this node.")));
	if (id == st->node_id)
	{
		/* hand leadership over first, then let the new leader remove us */
		RaftableRequest *req = palloc0(sizeof(RaftableRequest));
		RaftableRequest *ans;
		char		leader_conninfo[RAFTABLE_CONNINFO_LEN];
		char		arg[32];
		const char *values[1] = {arg};
		PGconn	   *conn;

		req->type = RAFTABLE_REQ_TRANSFER;
		ans = request_submit(req);
		if (ans->rc != RAFT_OK)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot remove the leader: no other voter to hand leadership to"),
					 errdetail("%s", ans->error)));
		if (!sql_wait_status(pred_leader_is, ans->result, 5 * raftable_election_timeout) ||
			!sql_full_conninfo(conf, ans->result, leader_conninfo))
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
					 errmsg("cannot remove the leader: leadership was not handed over in time")));
		conn = remote_connect(leader_conninfo, false);
		snprintf(arg, sizeof(arg), "%lld", (long long) id);
		PQclear(remote_exec(conn, "SELECT raftable.remove_node($1)", 1, values,
						   NULL, NULL, gettext_noop("could not remove the node on the new leader")));
		PQfinish(conn);
		PG_RETURN_VOID();
	}
	sql_change(RAFTABLE_REQ_REMOVE, id, NULL, NULL, gettext_noop("could not remove the node"));
	sql_tell_leave(conninfo, st->cluster_id, id);
	PG_RETURN_VOID();
}

Datum
raftable_transfer_leadership(PG_FUNCTION_ARGS)
{
	uint64		id = PG_ARGISNULL(0) ? 0 : (uint64) PG_GETARG_INT64(0);
	RaftableStatus *st;
	RaftableRequest *req;
	RaftableRequest *ans;

	raftable_require_served_database();
	st = raftable_status_get(true, SQL_WORKER_START_MS);
	raftable_require_leader(st);
	if (id != 0)
	{
		const RaftableMemberInfo *m = raftable_status_member(st, id);

		if (m == NULL)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("node %llu is not a member of this cluster",
							(unsigned long long) id)));
		if (!m->voter)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("node %llu is a learner and cannot lead",
							(unsigned long long) id)));
		if (id == st->node_id)
			PG_RETURN_INT64((int64) id);
	}
	if (id == 0 && sql_other_voters(st) == 0)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there is no other voter to transfer leadership to"),
				 errdetail("This node is the only voter of its cluster."),
				 errhint("Add a node with raftable.add_node() first.")));
	req = palloc0(sizeof(RaftableRequest));
	req->type = RAFTABLE_REQ_TRANSFER;
	req->node_id = id;
	ans = request_submit(req);
	if (ans->rc != RAFT_OK)
		sql_fail_request(ans, gettext_noop("could not transfer leadership"));
	if (!sql_wait_status(pred_leader_is, ans->result, 5 * raftable_election_timeout))
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_RAFTABLE_UNAVAILABLE),
				 errmsg("leadership was not transferred to node %llu in time",
						(unsigned long long) ans->result)));
	PG_RETURN_INT64((int64) ans->result);
}

/* ---------- peer entry points ---------- */

static Datum
raftable_join_impl(FunctionCallInfo fcinfo)
{
	RaftableStatus *st;
	RaftableRequest *req = palloc0(sizeof(RaftableRequest));
	RaftableRequest *ans;
	bytea	   *members = PG_GETARG_BYTEA_PP(4);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(3));

	raftable_require_served_database();
	st = raftable_status_get(true, 0);
	if (st->in_cluster)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this node is already in a raftable cluster")));
	member_check_conninfo(conninfo);
	member_check_name(name);
	if (VARSIZE_ANY_EXHDR(members) > RAFTABLE_MAX_CONF_BYTES)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("malformed raftable membership")));
	req->type = RAFTABLE_REQ_JOIN;
	req->cluster_id = (uint64) PG_GETARG_INT64(0);
	req->node_id = (uint64) PG_GETARG_INT64(1);
	strlcpy(req->name, name, RAFTABLE_NAME_LEN);
	strlcpy(req->conninfo, conninfo, RAFTABLE_CONNINFO_LEN);
	req->members_len = VARSIZE_ANY_EXHDR(members);
	memcpy(req->members, VARDATA_ANY(members), req->members_len);
	ans = request_submit(req);
	if (ans->rc == RAFT_EMALFORMED)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("malformed raftable membership")));
	if (ans->rc != RAFT_OK)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not join the cluster"),
				 errdetail("%s", ans->error)));
	PG_RETURN_VOID();
}

/*
 * raftable._leave(cluster_id, node_id): this node was removed (or never
 * added), and forgets its cluster.  Only a caller peer_check_leave()
 * accepts may say so; the worker checks that the ids are this node's.  A
 * node in no cluster has nothing to leave: it may have learnt of its
 * removal on its own (worker_check_removed) before remove_node told it.
 */
Datum
raftable_leave(PG_FUNCTION_ARGS)
{
	RaftableStatus *st;
	RaftableRequest *req = palloc0(sizeof(RaftableRequest));
	RaftableRequest *ans;

	raftable_require_served_database();
	st = raftable_status_get(true, 0);
	if (!st->in_cluster)
		PG_RETURN_VOID();		/* it left already: it learnt it on its own */
	peer_check_leave();
	req->type = RAFTABLE_REQ_LEAVE;
	req->cluster_id = (uint64) PG_GETARG_INT64(0);
	req->node_id = (uint64) PG_GETARG_INT64(1);
	ans = request_submit(req);
	if (ans->rc != RAFT_OK)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not leave the cluster"),
				 errdetail("%s", ans->error)));
	PG_RETURN_VOID();
}

Datum
raftable_create_cluster(PG_FUNCTION_ARGS)
{
	return sql_hiding_statement(raftable_create_cluster_impl, fcinfo);
}

Datum
raftable_add_node(PG_FUNCTION_ARGS)
{
	return sql_hiding_statement(raftable_add_node_impl, fcinfo);
}

Datum
raftable_join(PG_FUNCTION_ARGS)
{
	return sql_hiding_statement(raftable_join_impl, fcinfo);
}
