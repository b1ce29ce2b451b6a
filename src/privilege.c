/*-------------------------------------------------------------------------
 *
 * privilege.c
 *	  Running code with rights other than the caller's: raftable's own
 *	  bookkeeping as the bootstrap superuser, and apply as the role that
 *	  owns a table or ran a statement on the leader.
 *
 * Every switch goes through raftable_switch_user(), which does what
 * PostgreSQL does around code that runs with other rights than its
 * caller's (index builds, VACUUM, security definer functions):
 *
 *	 - the user changes for this backend only (SECURITY_LOCAL_USERID_CHANGE)
 *	   and the operation is security restricted (no SET ROLE, no temporary
 *	   objects, no cursors outliving it);
 *	 - a GUC nest level is opened, so that any setting changed in between,
 *	   by raftable or by the code it runs, is undone when the switch ends;
 *	 - search_path is pinned to "pg_catalog, pg_temp" (pg_temp explicitly
 *	   last), so that no unqualified name -- an operator, a function, a
 *	   type such as regclass -- resolves to an object the caller planted in
 *	   a schema of its own or in its temporary schema.
 *
 * raftable_restore_user() undoes all of it.  An error in between needs no
 * cleanup: transaction (or subtransaction) abort restores the user and the
 * settings.
 *
 * IDENTIFICATION
 *	  src/privilege.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "raftable.h"
#include "utils/guc.h"

/* the search_path of every privileged operation (PostgreSQL 17's, too) */
#define RAFTABLE_SAFE_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Become role, in a security-restricted operation with search_path
 * pinned; saved remembers what to restore.
 */
void
raftable_switch_user(Oid role, RaftableSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(role,
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	saved->nestlevel = NewGUCNestLevel();
	raftable_set_option("search_path", RAFTABLE_SAFE_SEARCH_PATH);
}

/* raftable's own bookkeeping: tables revoked from PUBLIC */
void
raftable_become_superuser(RaftableSavedUser *saved)
{
	raftable_switch_user(BOOTSTRAP_SUPERUSERID, saved);
}

void
raftable_restore_user(const RaftableSavedUser *saved)
{
	/* false: a SET made in between is undone too, not only ours */
	AtEOXact_GUC(false, saved->nestlevel);
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * Set a setting until the current switch ends (as a function's SET clause
 * does); only between raftable_switch_user() and raftable_restore_user().
 */
void
raftable_set_option(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, ERROR, false);
}
