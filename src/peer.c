/*-------------------------------------------------------------------------
 *
 * peer.c
 *	  Who a peer is.  Every member of a cluster is bound to one role: the
 *	  user keyword of the conninfo recorded for it in the membership (the
 *	  conninfo given to create_cluster or add_node).  This file owns that
 *	  binding: the conninfo this node uses to reach a peer, the roles the
 *	  worker publishes in shared memory for the backends, and the checks
 *	  the peer entry points make of their caller.
 *
 * A node reaches a peer with the peer's conninfo, its user replaced by
 * this node's own role (the user of this node's own conninfo), so every
 * peer sees each node connect as that node's role.  Each node therefore
 * has one role per member (raftable_db1, raftable_db2, ...), and a
 * node's credentials speak for that node only:
 *
 * - raftable._deliver takes a message from member M only from M's role;
 *   from a node that is no member (see deliver_sender_allowed in deliver.c
 *   for when those are heard at all) only from a role bound to no known
 *   member, so that no member's role can pose as a stranger either.
 * - raftable._leave is taken only from another member's role, and only
 *   for a removal this node can confirm (peer_check_leave).
 *
 * A superuser session may act as any member: a superuser of the node can
 * do anything to it anyway, and the tests and the demo connect as one.  A
 * member whose conninfo names no user is bound to no role: it connects to
 * its peers as libpq's default user, which they cannot tell apart from
 * anyone else's, so only a superuser session speaks for it.
 *
 * IDENTIFICATION
 *	  src/peer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq-fe.h"
#include "miscadmin.h"
#include "peer.h"
#include "raftable.h"
#include "shmem.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

/* at most one LOG line per backend about dropped messages in this period */
#define PEER_LOG_INTERVAL_MS	10000

/* what the worker publishes, under raftable_shared->lock */
typedef struct PeerShared
{
	char		self_role[NAMEDATALEN]; /* "": this node's conninfo names no
										 * user */
	char		roles[RAFT_MAX_MEMBERS][NAMEDATALEN];	/* of status.members[i] */
	uint64		last_leader;	/* the leader this node last heard of, kept
								 * while it hears of none; 0: none yet */
	bool		removed;		/* a committed configuration without it */
} PeerShared;

static PeerShared *peer_shared = NULL;

/* the last LOG line about a dropped message, in this backend */
static TimestampTz peer_log_last = 0;
static uint64 peer_log_suppressed = 0;

Size
peer_shmem_size(void)
{
	return MAXALIGN(sizeof(PeerShared));
}

/* in the shmem startup hook, holding AddinShmemInitLock */
void
peer_shmem_init(void)
{
	bool		found;

	peer_shared = ShmemInitStruct("raftable peers", sizeof(PeerShared), &found);
	if (!found)
		memset(peer_shared, 0, sizeof(PeerShared));
}

/* ---------- conninfo ---------- */

void
peer_append_option(StringInfo buf, const char *keyword, const char *val)
{
	if (buf->len)
		appendStringInfoChar(buf, ' ');
	appendStringInfo(buf, "%s='", keyword);
	for (const char *c = val; *c; c++)
	{
		if (*c == '\'' || *c == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * The role a conninfo names.  The server cuts a longer user name to
 * NAMEDATALEN - 1 bytes at login, and so does this.
 */
void
peer_role_of(const char *conninfo, char role[NAMEDATALEN])
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);

	role[0] = '\0';
	if (opts == NULL)
		return;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "user") == 0 && o->val != NULL)
			strlcpy(role, o->val, NAMEDATALEN);
	PQconninfoFree(opts);
}

/*
 * Rebuilt rather than overridden with a later "user" keyword: libpq skips
 * empty values, so only rebuilding can remove a user.  A conninfo libpq
 * cannot parse is returned as it is, for the connection to fail on.
 */
char *
peer_conninfo_as(const char *conninfo, const char *role)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	StringInfoData buf;

	if (opts == NULL)
		return pstrdup(conninfo);
	initStringInfo(&buf);
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		const char *val = strcmp(o->keyword, "user") == 0 ? role : o->val;

		if (val != NULL && val[0] != '\0')
			peer_append_option(&buf, o->keyword, val);
	}
	PQconninfoFree(opts);
	return buf.data;
}

/* ---------- what the worker publishes ---------- */

void
peer_publish(const char *self_role, const char (*roles)[NAMEDATALEN], int n,
			 uint64 leader, bool removed)
{
	Assert(LWLockHeldByMeInMode(raftable_shared->lock, LW_EXCLUSIVE));
	Assert(n >= 0 && n <= RAFT_MAX_MEMBERS);
	strlcpy(peer_shared->self_role, self_role, NAMEDATALEN);
	if (n > 0)
		memcpy(peer_shared->roles, roles, n * NAMEDATALEN);
	if (leader != 0)
		peer_shared->last_leader = leader;
	peer_shared->removed = removed;
}

/* not in a cluster (any more): nothing to publish, no leader to recall */
void
peer_publish_none(void)
{
	Assert(LWLockHeldByMeInMode(raftable_shared->lock, LW_EXCLUSIVE));
	peer_shared->self_role[0] = '\0';
	peer_shared->last_leader = 0;
	peer_shared->removed = false;
}

void
peer_self_role(char role[NAMEDATALEN])
{
	raftable_check_preloaded();
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	strlcpy(role, peer_shared->self_role, NAMEDATALEN);
	LWLockRelease(raftable_shared->lock);
}

/* ---------- checks of the caller ---------- */

/*
 * The index of member id in the published status, or -1.  The caller
 * holds raftable_shared->lock.
 */
static int
peer_member_index(uint64 id)
{
	const RaftableStatus *st = &raftable_shared->status;

	for (int i = 0; i < st->n_members; i++)
		if (st->members[i].id == id)
			return i;
	return -1;
}

/*
 * The session user, not the current user: a SECURITY DEFINER function
 * calling _deliver must not lend its owner's name.  One lookup under the
 * shared lock, per sender and batch: _deliver runs for every batch.
 */
bool
peer_sender_ok(uint64 from, bool *is_member)
{
	Oid			user = GetSessionUserId();
	bool		super = superuser_arg(user);
	char	   *name = super ? NULL : GetUserNameFromId(user, false);
	bool		ok;
	int			i;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	i = peer_member_index(from);
	*is_member = i >= 0;
	if (super)
		ok = true;
	else if (i >= 0)
		ok = strcmp(peer_shared->roles[i], name) == 0;
	else
	{
		/* a stranger: any role but one a known member is bound to */
		ok = true;
		for (int j = 0; j < raftable_shared->status.n_members && ok; j++)
			ok = strcmp(peer_shared->roles[j], name) != 0;
	}
	LWLockRelease(raftable_shared->lock);
	if (name)
		pfree(name);
	return ok;
}

/*
 * The NOTICE goes back to the sender (a misconfigured peer's transport
 * logs it); the LOG line is for this node's administrator, since a
 * forged message is an attack, at most one per PEER_LOG_INTERVAL_MS per
 * connection.  Neither is an ERROR: that would drop the whole batch.
 */
void
peer_report_dropped(uint64 from, int level)
{
	char	   *name = GetUserNameFromId(GetSessionUserId(), false);
	TimestampTz now = GetCurrentTimestamp();
	char		bound[NAMEDATALEN] = "";
	bool		is_member;
	char	   *why;

	ereport(level,
			(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("raftable message from node %llu dropped",
					(unsigned long long) from),
			 errdetail("Role \"%s\" may not send messages as that node.", name),
			 errhint("Each node connects to its peers as the role named in its own conninfo.")));
	if (peer_log_last != 0 &&
		!TimestampDifferenceExceeds(peer_log_last, now, PEER_LOG_INTERVAL_MS))
	{
		peer_log_suppressed++;
		return;
	}
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	{
		int			i = peer_member_index(from);

		is_member = i >= 0;
		if (is_member)
			strlcpy(bound, peer_shared->roles[i], NAMEDATALEN);
	}
	LWLockRelease(raftable_shared->lock);
	if (!is_member)
		why = psprintf(_("Node %llu is not a member, and role \"%s\" is bound to one."),
					   (unsigned long long) from, name);
	else if (bound[0])
		why = psprintf(_("Node %llu is bound to role \"%s\"."),
					   (unsigned long long) from, bound);
	else
		why = psprintf(_("Node %llu names no role in its conninfo: only a superuser may send as it."),
					   (unsigned long long) from);
	if (peer_log_suppressed > 0)
		why = psprintf(_("%s %llu more were dropped on this connection since the last report."),
					   why, (unsigned long long) peer_log_suppressed);
	ereport(LOG,
			(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("raftable: dropped a message from role \"%s\" claiming to be node %llu",
					name, (unsigned long long) from),
			 errdetail_internal("%s", why)));
	peer_log_last = now;
	peer_log_suppressed = 0;
	pfree(name);
}

/*
 * raftable.remove_node called by a peer role: a leader that removes itself
 * hands leadership over and then asks the new leader, as its own role, to
 * remove it.  So a role bound to a member may remove that member and no
 * other; otherwise any member's credentials could remove the others.  Any
 * other role granted EXECUTE (an operator's) may remove any member.
 */
void
peer_check_remove(uint64 id)
{
	Oid			user = GetSessionUserId();
	char	   *name;
	const RaftableStatus *st;
	bool		bound = false;
	bool		self = false;

	raftable_check_preloaded();
	if (superuser_arg(user))
		return;
	st = &raftable_shared->status;
	name = GetUserNameFromId(user, false);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	for (int i = 0; i < st->n_members; i++)
	{
		if (strcmp(peer_shared->roles[i], name) != 0)
			continue;
		bound = true;
		self |= st->members[i].id == id;
	}
	LWLockRelease(raftable_shared->lock);
	if (bound && !self)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not remove node %llu", name,
						(unsigned long long) id),
				 errdetail("A role bound to a member may remove only that member.")));
	pfree(name);
}

/*
 * raftable._leave makes this node forget its cluster.  A remover is the
 * leader that committed the removal (remove_node's sql_tell_leave), or
 * the leader that gave a node its identity and then failed to add it
 * (add_node).  So the session must be bound to a member other than this
 * node, and the removal must be one this node can confirm:
 *
 * - its committed configuration does not hold it (it was given an
 *   identity but never added, or a removal reached it and committed): any
 *   other member may say so.  Committed: a removal only appended may
 *   still be undone by the next leader; or
 * - the session is bound to the leader this node last heard of: the
 *   leader can remove it through the log anyway.  Not just the leader it
 *   follows now: a leader stops sending to a member as soon as it
 *   appends the member's removal, which the member may never receive, so
 *   the member's election timer runs out and it follows nobody by the
 *   time it is told.
 *
 * Otherwise a member's role, or any role granted EXECUTE, could make a
 * healthy member forget the cluster: two such calls lose a quorum of
 * three.  A superuser may: it could as well delete raftable.node_state,
 * and a removed node that missed the news needs someone to tell it.
 */
void
peer_check_leave(void)
{
	Oid			user = GetSessionUserId();
	char	   *name;
	const RaftableStatus *st = &raftable_shared->status;
	bool		bound = false;
	bool		bound_leader = false;
	bool		removed;

	if (superuser_arg(user))
		return;
	name = GetUserNameFromId(user, false);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	removed = peer_shared->removed;
	for (int i = 0; i < st->n_members; i++)
	{
		if (st->members[i].id == st->node_id ||
			strcmp(peer_shared->roles[i], name) != 0)
			continue;
		bound = true;
		bound_leader |= st->members[i].id == peer_shared->last_leader;
	}
	LWLockRelease(raftable_shared->lock);
	if (!bound)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to make this node leave its cluster"),
				 errdetail("Role \"%s\" is not the role of another member.", name),
				 errhint("The leader calls raftable._leave as the role named in its own conninfo; a superuser may too.")));
	if (!removed && !bound_leader)
		ereport(ERROR,
				(errhidestmt(true), errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to make this node leave its cluster"),
				 errdetail("This node cannot confirm that it was removed, and role \"%s\" is not the role of the leader it last heard of.",
						   name),
				 errhint("Remove the node with raftable.remove_node() on the leader.")));
	pfree(name);
}
