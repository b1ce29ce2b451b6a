/*-------------------------------------------------------------------------
 *
 * member.c
 *	  A member's name and conninfo: the checks a given one must pass, the
 *	  default name, the copy without secrets that views and messages show,
 *	  and the opaque address the Raft core carries for each member.
 *
 * IDENTIFICATION
 *	  src/member.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "member.h"
#include "peer.h"
#include "raftable.h"
#include "status.h"

/*
 * Rebuild a conninfo without its secrets, for the views and messages.
 * Unparseable input gives an empty string rather than echoing it.
 */
void
raftable_strip_password(const char *conninfo, char *out, size_t outlen)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	StringInfoData buf;

	out[0] = '\0';
	if (opts == NULL)
		return;
	initStringInfo(&buf);
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		/* '*' marks secrets: password, sslpassword */
		if (o->val == NULL || o->val[0] == '\0' || o->dispchar[0] == '*')
			continue;
		peer_append_option(&buf, o->keyword, o->val);
	}
	PQconninfoFree(opts);
	strlcpy(out, buf.data, outlen);
	pfree(buf.data);
}

/* a member's opaque core address: name, NUL, full conninfo */
void
raftable_member_addr_encode(const char *name, const char *conninfo,
							char *addr, uint16 *addr_len)
{
	size_t		nl = strnlen(name, RAFTABLE_NAME_LEN - 1);
	size_t		cl = strnlen(conninfo, RAFT_MAX_ADDR - nl - 1);

	memcpy(addr, name, nl);
	addr[nl] = '\0';
	memcpy(addr + nl + 1, conninfo, cl);
	*addr_len = (uint16) (nl + 1 + cl);
}

/* ---------- conninfo and member addresses ---------- */

void
raftable_member_addr_decode(const char *addr, uint16 addr_len,
							char *name, size_t namelen,
							char *conninfo, size_t conninfolen)
{
	size_t		nl = strnlen(addr, addr_len);
	size_t		cl = addr_len > nl ? addr_len - nl - 1 : 0;

	snprintf(name, namelen, "%.*s", (int) nl, addr);
	snprintf(conninfo, conninfolen, "%.*s", (int) cl, addr + nl + 1);
}

/* a random nonzero 63-bit id: node and cluster ids are never reused */
uint64
raftable_random_id(void)
{
	uint64		id = 0;

	while (id == 0)
	{
		if (!pg_strong_random(&id, sizeof(id)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random id")));
		id &= INT64CONST(0x7FFFFFFFFFFFFFFF);
	}
	return id;
}

/*
 * A conninfo given for a member: it must parse, fit, and hold no secret.
 * It goes into the Raft log and every node's raftable.node_state, and its
 * user is the role the member is bound to (peer.c); each node finds its
 * own password (.pgpass, passfile) or uses a client certificate.
 */
void
member_check_conninfo(const char *conninfo)
{
	char	   *err = NULL;
	PQconninfoOption *opts;
	const char *secret = NULL;

	if (conninfo == NULL)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("conninfo must not be null")));
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		/* libpq's message may quote pieces of it, a password among them */
		if (err)
			PQfreemem(err);
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid connection string"),
				 errhint("Use key=value pairs or a postgresql:// URI.")));
	}
	/* '*' marks secrets: password, sslpassword */
	for (PQconninfoOption *o = opts; o->keyword && secret == NULL; o++)
		if (o->dispchar[0] == '*' && o->val != NULL && o->val[0] != '\0')
			secret = pstrdup(o->keyword);
	/* one member is one server: libpq would try the next host of a list */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if ((strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0 ||
			 strcmp(o->keyword, "port") == 0) &&
			o->val != NULL && strchr(o->val, ',') != NULL)
		{
			PQconninfoFree(opts);
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("connection string must name one server"),
					 errdetail("Its \"%s\" lists several; a peer that tried the next one would reach another server than the member.",
							   o->keyword),
					 errhint("Give each member its own host and port.")));
		}
	PQconninfoFree(opts);
	if (secret)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connection string must not contain a password"),
				 errdetail("It holds option \"%s\". A member's connection string is kept in the Raft log and on every node.",
						   secret),
				 errhint("Give each node its password in its own ~/.pgpass or passfile, or use client certificates.")));
	if (strlen(conninfo) >= RAFTABLE_CONNINFO_LEN - RAFTABLE_NAME_LEN)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("connection string is too long"),
				 errdetail("At most %d bytes are allowed.",
						   RAFTABLE_CONNINFO_LEN - RAFTABLE_NAME_LEN - 1)));
}

void
member_check_name(const char *name)
{
	if (name && strlen(name) >= RAFTABLE_NAME_LEN)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name is too long"),
				 errdetail("At most %d bytes are allowed.", RAFTABLE_NAME_LEN - 1)));
}

/*
 * A node's default name: the host and port its conninfo reaches it at
 * ("db2.example.net:5432"), unique in a cluster whose nodes are reached at
 * different places.
 */
char *
member_default_name(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char *host = NULL;
	const char *port = NULL;
	char	   *name;

	for (PQconninfoOption *o = opts; o && o->keyword; o++)
	{
		if (strcmp(o->keyword, "host") == 0 && o->val && o->val[0])
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && o->val && o->val[0] && host == NULL)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0 && o->val && o->val[0])
			port = o->val;
	}
	name = psprintf("%.*s:%s", (int) strcspn(host ? host : "localhost", ","),
					host ? host : "localhost",
					port ? port : psprintf("%d", DEF_PGPORT));
	if (opts)
		PQconninfoFree(opts);
	if (strlen(name) >= RAFTABLE_NAME_LEN)
		name[RAFTABLE_NAME_LEN - 1] = '\0';
	return name;
}
