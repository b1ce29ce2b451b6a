/*-------------------------------------------------------------------------
 *
 * ddl.c
 *	  Which tables are replicated, and DDL on them: replicate_table and
 *	  unreplicate_table, and the ProcessUtility hook that replicates DDL on
 *	  a replicated table in log order (leader) or refuses it (elsewhere).
 *
 * The set of replicated tables is raftable.replicated, changed only
 * through the log: on the leader by these functions, inside the user's
 * transaction, and on the other nodes by the apply worker at the same
 * entry.  Triggers (capture.c) are attached by raftable._attach(), on
 * every node, so that a follower that becomes leader captures too.
 *
 * DDL is replicated as its statement text and the search_path it ran
 * with, captured after it ran, as an op of the transaction's change set:
 * it reaches the other nodes in the same entry as the row changes around
 * it, in order.  What would make nodes differ is refused: renaming a
 * replicated table or moving it to another schema (entries name tables),
 * and adding a column whose default is not a constant (each node would
 * compute its own values).
 *
 * IDENTIFICATION
 *	  src/ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "raftable.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(raftable_replicate_table);
PG_FUNCTION_INFO_V1(raftable_unreplicate_table);

static ProcessUtility_hook_type ddl_prev_utility = NULL;

/*
 * Is relid a replicated table?  Only asked for DDL and by the functions
 * below, never on the write path.
 */
bool
raftable_table_is_replicated(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	bool		found;
	RaftableSavedUser saved;

	if (!OidIsValid(relid) || creating_extension ||
		!OidIsValid(get_extension_oid("raftable", true)))
		return false;
	raftable_become_superuser(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* not read-only: what this transaction replicated so far counts */
	if (SPI_execute_with_args("SELECT 1 FROM raftable.replicated WHERE relid = $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read raftable.replicated");
	found = SPI_processed > 0;
	SPI_finish();
	raftable_restore_user(&saved);
	return found;
}

static Oid
ddl_check_table(Oid relid, bool want_replicated)
{
	Relation	rel;

	LockRelationOid(relid, ExclusiveLock);	/* no writes until we commit */
	rel = table_open(relid, NoLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Only ordinary tables can be replicated.")));
	if (rel->rd_rel->relpersistence != RELPERSISTENCE_PERMANENT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" is not a permanent table", RelationGetRelationName(rel)),
				 errdetail("Temporary and unlogged tables cannot be replicated.")));
	if (raftable_table_is_replicated(relid) != want_replicated)
		ereport(ERROR,
				(errcode(want_replicated ? ERRCODE_UNDEFINED_OBJECT : ERRCODE_DUPLICATE_OBJECT),
				 errmsg(want_replicated ? "table \"%s\" is not replicated" :
						"table \"%s\" is already replicated",
						RelationGetRelationName(rel))));
	if (!want_replicated && !OidIsValid(RelationGetPrimaryKeyIndex(rel)))
	{
		/* the relcache knows only a primary key that is not deferrable */
		List	   *indexes = RelationGetIndexList(rel);
		ListCell   *lc;

		foreach(lc, indexes)
		{
			Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
			bool		primary = idx->rd_index->indisprimary;

			index_close(idx, AccessShareLock);
			if (primary)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("table \"%s\" has a deferrable primary key",
								RelationGetRelationName(rel)),
						 errdetail("Its rows may share a key within a statement, which apply by key cannot follow."),
						 errhint("Make the primary key NOT DEFERRABLE.")));
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no primary key", RelationGetRelationName(rel)),
				 errdetail("raftable applies changes by primary key."),
				 errhint("Add a primary key, then replicate the table.")));
	}
	table_close(rel, NoLock);
	return relid;
}

/* foreign keys may only point at replicated tables (or the table itself) */
static void
ddl_check_foreign_keys(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	if (SPI_execute_with_args("SELECT c.conname::text, c.confrelid::regclass::text "
							  "FROM pg_catalog.pg_constraint c "
							  "WHERE c.conrelid = $1 AND c.contype = 'f' "
							  "AND c.confrelid <> $1 AND c.confrelid NOT IN "
							  "(SELECT relid FROM raftable.replicated) "
							  "ORDER BY 1 LIMIT 1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the foreign keys of table %u", relid);
	if (SPI_processed > 0)
	{
		char	   *con = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *ref = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has a foreign key to table %s, which is not replicated",
						get_rel_name(relid), ref),
				 errdetail("Foreign key constraint \"%s\".", con),
				 errhint("Replicate %s first.", ref)));
	}
}

Datum
raftable_replicate_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	char	   *ddl;
	RaftableSavedUser saved;

	ddl_check_table(relid, false);
	raftable_become_superuser(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ddl_check_foreign_keys(relid);
	capture_require_writable();
	raftable_spi("SELECT raftable._table_ddl($1)", 1, types, values);
	ddl = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	/* SPI_finish would free it: the change set copies it first */
	capture_replicate(relid, ddl);
	raftable_spi("SELECT raftable._attach($1)", 1, types, values);
	SPI_finish();
	raftable_restore_user(&saved);
	PG_RETURN_VOID();
}

Datum
raftable_unreplicate_table(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	RaftableSavedUser saved;

	ddl_check_table(relid, true);
	capture_require_writable();
	capture_unreplicate(relid);
	raftable_become_superuser(&saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	raftable_spi("SELECT raftable._detach($1)", 1, types, values);
	SPI_finish();
	raftable_restore_user(&saved);
	PG_RETURN_VOID();
}

/* ---------- the ProcessUtility hook ---------- */

static Oid
ddl_relid(RangeVar *rv, bool index)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);

	if (OidIsValid(relid) && index && get_rel_relkind(relid) == RELKIND_INDEX)
		relid = IndexGetRelation(relid, true);
	return relid;
}

/* a default every node computes alike: a constant, perhaps cast */
static bool
ddl_constant(Node *n)
{
	if (n == NULL)
		return true;
	if (IsA(n, TypeCast))
		return ddl_constant(((TypeCast *) n)->arg);
	return IsA(n, A_Const);
}

/*
 * Could this expression (a raw parse tree) give different results on
 * different nodes?  Yes if it calls a function that is not immutable (by
 * name: any function of that name and argument count), or reads the clock
 * or the session (CURRENT_TIMESTAMP, CURRENT_USER, ...).  Casts and
 * operators pass: the settings casts depend on travel with the statement.
 */
static bool
ddl_nondeterministic(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SQLValueFunction))
		return true;
	if (IsA(node, FuncCall))
	{
		FuncCall   *fc = (FuncCall *) node;
		FuncCandidateList c = FuncnameGetCandidates(fc->funcname, list_length(fc->args),
													NIL, false, false, false, true);

		if (c == NULL)
			return true;		/* unknown here: the statement will say */
		for (; c; c = c->next)
			if (func_volatile(c->oid) != PROVOLATILE_IMMUTABLE)
				return true;
	}
	return raw_expression_tree_walker(node, ddl_nondeterministic, context);
}

/* a new foreign key may only point at a replicated table */
static void
ddl_check_constraint(Node *n)
{
	Constraint *con = (Constraint *) n;
	Oid			ref;

	if (n == NULL || !IsA(n, Constraint) || con->contype != CONSTR_FOREIGN ||
		con->pktable == NULL)
		return;
	ref = RangeVarGetRelid(con->pktable, NoLock, true);
	if (OidIsValid(ref) && !raftable_table_is_replicated(ref))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("a replicated table cannot have a foreign key to table \"%s\", which is not replicated",
						con->pktable->relname),
				 errhint("Replicate \"%s\" first.", con->pktable->relname)));
}

/*
 * Refuse what would make the nodes differ: ADD COLUMN that fills existing
 * rows with values each node computes itself, and foreign keys to tables
 * the other nodes may not have.
 */
static void
ddl_check_alter(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		ColumnDef  *def;
		ListCell   *c;
		bool		ok = true;

		if (cmd->subtype == AT_DisableTrigAll || cmd->subtype == AT_DisableTrigUser ||
			((cmd->subtype == AT_DisableTrig || cmd->subtype == AT_EnableTrig ||
			  cmd->subtype == AT_EnableReplicaTrig) &&
			 cmd->name && strncmp(cmd->name, "raftable_", 9) == 0))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change raftable's triggers on a replicated table"),
					 errdetail("Without them, writes would not reach the other nodes."),
					 errhint("Name the triggers to disable one by one, or unreplicate the table.")));
		if (cmd->subtype == AT_AddConstraint)
			ddl_check_constraint(cmd->def);
		if (cmd->subtype == AT_AlterColumnType && cmd->def && IsA(cmd->def, ColumnDef) &&
			ddl_nondeterministic(((ColumnDef *) cmd->def)->raw_default, NULL))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change the type of column \"%s\" of a replicated table with a USING expression that is not immutable",
							cmd->name),
					 errdetail("Each node would compute its own values."),
					 errhint("Add a new column, fill it with UPDATE, then drop the old one.")));
		if (cmd->subtype != AT_AddColumn || !IsA(cmd->def, ColumnDef))
			continue;
		def = (ColumnDef *) cmd->def;
		ok = ddl_constant(def->raw_default) && !def->identity;
		foreach(c, def->constraints)
		{
			Constraint *con = lfirst(c);

			if ((con->contype == CONSTR_DEFAULT && !ddl_constant(con->raw_expr)) ||
				con->contype == CONSTR_IDENTITY)
				ok = false;
			ddl_check_constraint((Node *) con);
		}
		if (def->typeName && list_length(def->typeName->names) == 1)
		{
			const char *t = strVal(linitial(def->typeName->names));

			if (strcmp(t, "serial") == 0 || strcmp(t, "bigserial") == 0 ||
				strcmp(t, "smallserial") == 0 || strcmp(t, "serial4") == 0 ||
				strcmp(t, "serial8") == 0 || strcmp(t, "serial2") == 0)
				ok = false;
		}
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot add column \"%s\" with a non-constant default to a replicated table",
							def->colname),
					 errdetail("Each node would compute its own values for the existing rows."),
					 errhint("Add the column without a default, fill it with UPDATE, then set the default.")));
	}
}

/*
 * The replicated table a statement changes, or InvalidOid.  *refuse is
 * set for what cannot be replicated at all.
 */
static Oid
ddl_target(Node *stmt, const char **refuse)
{
	Oid			relid = InvalidOid;

	*refuse = NULL;
	switch (nodeTag(stmt))
	{
		case T_AlterTableStmt:
			{
				AlterTableStmt *s = (AlterTableStmt *) stmt;

				if (s->objtype == OBJECT_TABLE || s->objtype == OBJECT_INDEX)
					relid = ddl_relid(s->relation, s->objtype == OBJECT_INDEX);
				break;
			}
		case T_IndexStmt:
			relid = ddl_relid(((IndexStmt *) stmt)->relation, false);
			if (((IndexStmt *) stmt)->concurrent)
				*refuse = "build an index CONCURRENTLY on";
			break;
		case T_DropStmt:
			{
				DropStmt   *s = (DropStmt *) stmt;
				ListCell   *lc;
				int			n = 0;

				if (s->removeType != OBJECT_TABLE && s->removeType != OBJECT_INDEX)
					break;
				foreach(lc, s->objects)
				{
					Oid			r = ddl_relid(makeRangeVarFromNameList(lfirst(lc)),
											  s->removeType == OBJECT_INDEX);

					if (raftable_table_is_replicated(r))
					{
						relid = r;
						n++;
					}
				}
				/* the other nodes have only the replicated ones */
				if (n > 0 && n < list_length(s->objects))
					*refuse = "drop other objects in the same statement as";
				else if (n > 0 && s->concurrent)
					*refuse = "drop an index CONCURRENTLY on";
				return relid;
			}
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) stmt;

				if (s->relation == NULL)
					break;
				relid = ddl_relid(s->relation, s->renameType == OBJECT_INDEX);
				if (s->renameType == OBJECT_TABLE)
					*refuse = "rename";
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *s = (AlterObjectSchemaStmt *) stmt;

				if (s->relation && s->objectType == OBJECT_TABLE)
				{
					relid = ddl_relid(s->relation, false);
					*refuse = "change the schema of";
				}
				break;
			}
		default:
			break;
	}
	return raftable_table_is_replicated(relid) ? relid : InvalidOid;
}

/*
 * raftable's triggers on a replicated table are what captures and guards
 * its writes: dropping, renaming or replacing one would silently stop
 * replication on this node.  unreplicate_table takes the table out of
 * raftable.replicated first, and may then drop them.
 */
static void
ddl_refuse_trigger(RangeVar *rv, const char *trigname)
{
	Oid			relid;

	if (trigname == NULL || strncmp(trigname, "raftable_", 9) != 0 || rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (raftable_table_is_replicated(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot change trigger \"%s\" of replicated table \"%s\"",
						trigname, get_rel_name(relid)),
				 errdetail("raftable's triggers carry the table's writes to the other nodes."),
				 errhint("Unreplicate the table first.")));
}

static void
ddl_check_raftable_triggers(Node *stmt)
{
	if (IsA(stmt, DropStmt) && ((DropStmt *) stmt)->removeType == OBJECT_TRIGGER)
	{
		ListCell   *lc;

		/* each object is the table's name list with the trigger's last */
		foreach(lc, ((DropStmt *) stmt)->objects)
		{
			List	   *names = lfirst(lc);

			if (list_length(names) < 2)
				continue;
			ddl_refuse_trigger(makeRangeVarFromNameList(list_truncate(list_copy(names),
																	  list_length(names) - 1)),
							   strVal(llast(names)));
		}
	}
	else if (IsA(stmt, RenameStmt) && ((RenameStmt *) stmt)->renameType == OBJECT_TRIGGER)
		ddl_refuse_trigger(((RenameStmt *) stmt)->relation, ((RenameStmt *) stmt)->subname);
	else if (IsA(stmt, CreateTrigStmt) && ((CreateTrigStmt *) stmt)->replace)
		ddl_refuse_trigger(((CreateTrigStmt *) stmt)->relation,
						   ((CreateTrigStmt *) stmt)->trigname);
}

static void
ddl_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			ProcessUtilityContext context, ParamListInfo params,
			QueryEnvironment *queryEnv, DestReceiver *dest,
			QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	Oid			relid = InvalidOid;
	const char *refuse = NULL;

	if (!raftable_applying && IsTransactionState() &&
		(IsA(stmt, DropStmt) || IsA(stmt, RenameStmt) || IsA(stmt, CreateTrigStmt)))
		ddl_check_raftable_triggers(stmt);
	if (!raftable_applying && IsTransactionState() &&
		(IsA(stmt, AlterTableStmt) || IsA(stmt, IndexStmt) || IsA(stmt, DropStmt) ||
		 IsA(stmt, RenameStmt) || IsA(stmt, AlterObjectSchemaStmt)))
		relid = ddl_target(stmt, &refuse);
	if (OidIsValid(relid))
	{
		if (refuse)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot %s replicated table \"%s\"", refuse, get_rel_name(relid)),
					 errhint("%s", IsA(stmt, RenameStmt) || IsA(stmt, AlterObjectSchemaStmt) ?
							 "Unreplicate the table first, then replicate it again." :
							 "Run it as a statement of its own, without CONCURRENTLY.")));
		capture_require_writable();
		if (IsA(stmt, AlterTableStmt))
			ddl_check_alter((AlterTableStmt *) stmt);
	}

	if (ddl_prev_utility)
		ddl_prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	if (OidIsValid(relid))
	{
		int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len :
			(int) strlen(queryString + Max(pstmt->stmt_location, 0));
		char	   *sql = pnstrdup(queryString + Max(pstmt->stmt_location, 0), len);

		capture_ddl(sql);
	}
}

void
raftable_ddl_init(void)
{
	ddl_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = ddl_utility;
}
