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
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "apply.h"
#include "capture.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "ddl.h"
#include "executor/spi.h"
#include "member.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "raftable.h"
#include "rewrite/prs2lock.h"
#include "rewrite/rewriteDefine.h"
#include "status.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

RAFTABLE_FUNCTION(raftable_replicate_table);
RAFTABLE_FUNCTION(raftable_unreplicate_table);
RAFTABLE_FUNCTION(raftable_check_dropped);

static ProcessUtility_hook_type ddl_prev_utility = NULL;

/* is raftable's extension in this database (and not being created)? */
static bool
ddl_extension_here(void)
{
	return !creating_extension && OidIsValid(get_extension_oid("raftable", true));
}

/* the cluster is the one of raftable.database's extension */
static bool
ddl_serves_this_database(void)
{
	char	   *db = get_database_name(MyDatabaseId);

	return db != NULL && strcmp(db, raftable_database) == 0;
}

/*
 * Is relid a replicated table?  Asked for DDL and by the functions below,
 * never on the write path.  An index scan of raftable.replicated, not SQL:
 * it runs inside the caller's statement, and no name in it may resolve to
 * an object the caller chose.  What this transaction replicated so far
 * counts (a fresh snapshot sees our own earlier commands).
 */
bool
raftable_table_is_replicated(Oid relid)
{
	Oid			ext;
	Oid			nsp;
	Oid			tbl;
	Oid			idx;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	Snapshot	snap;
	bool		found;

	if (!OidIsValid(relid) || creating_extension ||
		!OidIsValid(ext = get_extension_oid("raftable", true)))
		return false;
	nsp = get_namespace_oid("raftable", true);	/* raftable.control: fixed */
	tbl = get_relname_relid("replicated", nsp);
	idx = get_relname_relid("replicated_pkey", nsp);
	if (!OidIsValid(tbl) || !OidIsValid(idx))
		return false;			/* the extension is being dropped */
	rel = table_open(tbl, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, idx, true, snap, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Is any table replicated in this database?  The same scan, unkeyed: a
 * REPEATABLE READ transaction waits for a read index at its start only if
 * it could read one (reads.c caches the answer).
 */
bool
raftable_any_replicated(void)
{
	Oid			nsp;
	Oid			tbl;
	Relation	rel;
	SysScanDesc scan;
	Snapshot	snap;
	bool		found;

	if (creating_extension || !OidIsValid(get_extension_oid("raftable", true)))
		return false;
	nsp = get_namespace_oid("raftable", true);
	tbl = get_relname_relid("replicated", nsp);
	if (!OidIsValid(tbl))
		return false;
	rel = table_open(tbl, AccessShareLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Types whose text differs between nodes: money by lc_monetary, oid and
 * the reg* types by each node's own catalogs.
 */
static bool
ddl_type_is_local(Oid type)
{
	Oid			elem;

	type = getBaseType(type);
	if (OidIsValid(elem = get_element_type(type)))
		type = getBaseType(elem);
	switch (type)
	{
		case MONEYOID:
		case OIDOID:
		case REGCLASSOID:
		case REGCOLLATIONOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGNAMESPACEOID:
		case REGOPERATOROID:
		case REGOPEROID:
		case REGPROCEDUREOID:
		case REGPROCOID:
		case REGROLEOID:
		case REGTYPEOID:
			return true;
		default:
			return false;
	}
}

/*
 * raftable's own triggers are the ones that run raftable._capture(), not
 * the ones named raftable_*: a table owner may name a trigger anything.
 */
static Oid
ddl_capture_function(void)
{
	return LookupFuncName(list_make2(makeString("raftable"), makeString("_capture")),
						  0, NULL, true);
}

static bool
ddl_trigger_is_ours(Relation rel, const char *name)
{
	Oid			capture = ddl_capture_function();

	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (strcmp(tg->tgname, name) == 0)
			return OidIsValid(capture) && tg->tgfoid == capture;
	}
	return false;
}

/*
 * Apply goes by primary key: a replicated table needs one, not deferrable,
 * from replicate_table on and after every statement that changes it.
 */
static void
ddl_check_primary_key(Relation rel)
{
	List	   *indexes;
	ListCell   *lc;

	if (OidIsValid(RelationGetPrimaryKeyIndex(rel)))
		return;
	/* the relcache knows only a primary key that is not deferrable */
	indexes = RelationGetIndexList(rel);
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
			 errhint("A replicated table keeps its primary key; add one before replicating a table.")));
}

/*
 * A column default may use only sequences the table owns: those travel
 * with it (_table_ddl) and are kept in step (capture.c); another node would
 * not have any other, or not at the same value.
 */
static void
ddl_check_default_sequences(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	List	   *owned = getOwnedSequences(relid);
	Relation	attrdef = table_open(AttrDefaultRelationId, AccessShareLock);
	Relation	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_attrdef_adrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(attrdef, AttrDefaultIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_attrdef def = (Form_pg_attrdef) GETSTRUCT(tup);
		ScanKeyData dkey[2];
		SysScanDesc dscan;
		HeapTuple	dtup;

		ScanKeyInit(&dkey[0], Anum_pg_depend_classid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(AttrDefaultRelationId));
		ScanKeyInit(&dkey[1], Anum_pg_depend_objid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(def->oid));
		dscan = systable_beginscan(depend, DependDependerIndexId, true, NULL, 2, dkey);
		while (HeapTupleIsValid(dtup = systable_getnext(dscan)))
		{
			Form_pg_depend d = (Form_pg_depend) GETSTRUCT(dtup);

			if (d->refclassid == RelationRelationId &&
				get_rel_relkind(d->refobjid) == RELKIND_SEQUENCE &&
				!list_member_oid(owned, d->refobjid))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("default of column \"%s\" of replicated table \"%s\" uses sequence \"%s\", which the table does not own",
								get_attname(relid, def->adnum, false),
								RelationGetRelationName(rel), get_rel_name(d->refobjid)),
						 errdetail("Only sequences owned by the table's columns are carried with it."),
						 errhint("Make the table own it: ALTER SEQUENCE %s OWNED BY %s.%s.",
								 quote_identifier(get_rel_name(d->refobjid)),
								 quote_identifier(RelationGetRelationName(rel)),
								 quote_identifier(get_attname(relid, def->adnum, false)))));
		}
		systable_endscan(dscan);
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);
	table_close(attrdef, AccessShareLock);
}

/*
 * What a replicated table must have and may not have, checked by
 * replicate_table and after every replicated statement that changes the
 * table: a primary key, defaults on its own sequences only; columns of a
 * type whose values are node-local, row-level security (a snapshot must
 * copy every row), and user triggers or rules enabled ALWAYS or REPLICA
 * (they would run when apply writes the table on every node).
 */
static void
ddl_check_definition(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const char *name = RelationGetRelationName(rel);

	ddl_check_primary_key(rel);
	ddl_check_default_sequences(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && ddl_type_is_local(att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of replicated table \"%s\" has type %s",
							NameStr(att->attname), name, format_type_be(att->atttypid)),
					 errdetail("Values of this type mean different things on different nodes."),
					 errhint("Use numeric for money, and names (text) for catalog references.")));
	}
	if (rel->rd_rel->relrowsecurity || rel->rd_rel->relforcerowsecurity)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" has row-level security enabled", name),
				 errdetail("Snapshots copy every row of a replicated table; a policy would filter the copy."),
				 errhint("ALTER TABLE %s DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY.",
						 quote_identifier(name))));
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (!tg->tgisinternal && !ddl_trigger_is_ours(rel, tg->tgname) &&
			(tg->tgenabled == TRIGGER_FIRES_ALWAYS ||
			 tg->tgenabled == TRIGGER_FIRES_ON_REPLICA))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("trigger \"%s\" of table \"%s\" is enabled ALWAYS or REPLICA",
							tg->tgname, name),
					 errdetail("It would fire when raftable applies the table's changes on every node."),
					 errhint("ALTER TABLE %s ENABLE TRIGGER %s.", quote_identifier(name),
							 quote_identifier(tg->tgname))));
	}
	for (int i = 0; rel->rd_rules && i < rel->rd_rules->numLocks; i++)
	{
		RewriteRule *rule = rel->rd_rules->rules[i];

		if (rule->enabled == RULE_FIRES_ALWAYS || rule->enabled == RULE_FIRES_ON_REPLICA)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table \"%s\" has a rule enabled ALWAYS or REPLICA", name),
					 errdetail("It would rewrite the changes raftable applies on every node.")));
	}
}

/*
 * Why a table is each node's own, or NULL: raftable's own tables (their
 * rows are each node's Raft state), the system catalogs, and tables that
 * belong to an extension (each node's CREATE EXTENSION makes them).
 */
static const char *
ddl_is_local_by_nature(Oid relid)
{
	Oid			ext;

	if (get_rel_namespace(relid) == get_namespace_oid("raftable", true))
		return "It is one of raftable's own tables, which hold each node's Raft state.";
	if (IsCatalogRelationOid(relid) || IsCatalogNamespace(get_rel_namespace(relid)) ||
		IsToastNamespace(get_rel_namespace(relid)) ||
		strcmp(get_namespace_name(get_rel_namespace(relid)), "information_schema") == 0)
		return "It is a system catalog.";
	if (OidIsValid(ext = getExtensionOfObject(RelationRelationId, relid)))
		return psprintf("It belongs to extension \"%s\", which each node creates itself.",
						get_extension_name(ext));
	return NULL;
}

static Oid
ddl_check_table(Oid relid, bool want_replicated)
{
	Relation	rel;

	const char *local = want_replicated ? NULL : ddl_is_local_by_nature(relid);

	if (local)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" cannot be replicated", get_rel_name(relid)),
				 errdetail("%s", local)));
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
	if (!want_replicated)
		ddl_check_definition(rel);
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

static Oid
ddl_rel_owner(Oid relid)
{
	Relation	rel = table_open(relid, NoLock);	/* ddl_check_table locked it */
	Oid			owner = rel->rd_rel->relowner;

	table_close(rel, NoLock);
	return owner;
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
	raftable_spi_connect();
	ddl_check_foreign_keys(relid);
	SPI_finish();
	raftable_restore_user(&saved);
	/* every node creates the table as its owner, from objects it must have */
	raftable_require_everywhere(list_make1(GetUserNameFromId(ddl_rel_owner(relid), false)), relid);
	raftable_become_superuser(&saved);
	raftable_spi_connect();
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
	raftable_spi_connect();
	raftable_spi("SELECT raftable._detach($1)", 1, types, values);
	SPI_finish();
	raftable_restore_user(&saved);
	PG_RETURN_VOID();
}

/* ---------- the ProcessUtility hook ---------- */

/*
 * The table a statement names, by the relation's real kind and not the
 * statement's word for it: ALTER INDEX may name a table, ALTER TABLE an
 * index.  An index, and a sequence the table owns, stand for the table.
 */
static Oid
ddl_relid(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	Oid			table;
	int32		column;

	if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_INDEX)
		relid = IndexGetRelation(relid, true);
	else if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_SEQUENCE &&
			 (sequenceIsOwned(relid, DEPENDENCY_AUTO, &table, &column) ||
			  sequenceIsOwned(relid, DEPENDENCY_INTERNAL, &table, &column)))
		relid = table;			/* an owned sequence goes with its table */
	return relid;
}

/* does the statement name the table itself (not one of its indexes)? */
static bool
ddl_names_table(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);

	return OidIsValid(relid) && get_rel_relkind(relid) != RELKIND_INDEX;
}

/*
 * A default every node computes alike: a constant, perhaps cast, but not
 * one of the date and time words that read the clock ('now', 'today', ...).
 */
static bool
ddl_constant(Node *n)
{
	static const char *const clock_words[] = {"now", "today", "tomorrow", "yesterday"};

	if (n == NULL)
		return true;
	if (IsA(n, TypeCast))
		return ddl_constant(((TypeCast *) n)->arg);
	if (!IsA(n, A_Const))
		return false;
	if (!((A_Const *) n)->isnull && IsA(&((A_Const *) n)->val, String))
	{
		char	   *v = str_tolower(strVal(&((A_Const *) n)->val),
									strlen(strVal(&((A_Const *) n)->val)), DEFAULT_COLLATION_OID);

		/* any whitespace-separated word of it: 'tomorrow 10:00' reads the clock */
		for (char *w = strtok(v, " \t\n\r"); w; w = strtok(NULL, " \t\n\r"))
			for (int i = 0; i < lengthof(clock_words); i++)
				if (strcmp(w, clock_words[i]) == 0)
					return false;
	}
	return true;
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
 * An ALTER TABLE subcommand that is refused on a replicated table: message,
 * detail and hint are whole sentences marked with gettext_noop (hint may
 * be NULL).
 */
static void
ddl_refuse_subcommand(const char *message, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg_internal("%s", _(message)),
			 errdetail("%s", _(detail)),
			 hint ? errhint("%s", _(hint)) : 0));
}

/*
 * Subcommands that would let a table's writes escape capture, let its
 * owner's code run in apply with rights it does not have, or make one
 * node's copy differ from the others'.
 */
static void
ddl_check_subcommand(Relation rel, AlterTableCmd *cmd)
{
	bool		ours = cmd->name && ddl_trigger_is_ours(rel, cmd->name);

	switch (cmd->subtype)
	{
		case AT_DisableTrigAll:
		case AT_DisableTrigUser:
		case AT_EnableTrigAll:
		case AT_EnableTrigUser:
			/* these reach raftable's triggers too: ENABLE makes them ORIGIN */
			ddl_refuse_subcommand(gettext_noop("cannot enable or disable all triggers of a replicated table at once"),
								  gettext_noop("raftable's triggers must stay ENABLE ALWAYS, or writes would not reach the other nodes."),
								  gettext_noop("Name the triggers one by one."));
			break;
		case AT_DisableTrig:
		case AT_EnableTrig:
		case AT_EnableReplicaTrig:
			if (ours)
				ddl_refuse_subcommand(gettext_noop("cannot change raftable's triggers on a replicated table"),
									  gettext_noop("Without them, writes would not reach the other nodes."),
									  gettext_noop("Unreplicate the table first."));
			if (cmd->subtype == AT_EnableReplicaTrig)
				ddl_refuse_subcommand(gettext_noop("cannot make a trigger ENABLE REPLICA on a replicated table"),
									  gettext_noop("It would fire when raftable applies the table's changes on every node."),
									  gettext_noop("Keep the trigger ENABLE (origin only): it fires on the leader, where the write is made."));
			break;
		case AT_EnableAlwaysTrig:
			if (!ours)
				ddl_refuse_subcommand(gettext_noop("cannot make a trigger ENABLE ALWAYS on a replicated table"),
									  gettext_noop("It would fire when raftable applies the table's changes on every node."),
									  gettext_noop("Keep the trigger ENABLE (origin only): it fires on the leader, where the write is made."));
			break;
		case AT_EnableAlwaysRule:
		case AT_EnableReplicaRule:
			ddl_refuse_subcommand(gettext_noop("cannot make a rule ENABLE ALWAYS or ENABLE REPLICA on a replicated table"),
								  gettext_noop("It would rewrite the changes raftable applies on every node."),
								  NULL);
			break;
		case AT_EnableRowSecurity:
		case AT_ForceRowSecurity:
			ddl_refuse_subcommand(gettext_noop("cannot enable row-level security on a replicated table"),
								  gettext_noop("Snapshots copy every row of a replicated table; a policy would filter the copy."),
								  gettext_noop("Guard the rows with privileges and views instead, or unreplicate the table."));
			break;
		case AT_SetUnLogged:
			ddl_refuse_subcommand(gettext_noop("cannot make a replicated table unlogged"),
								  gettext_noop("A crash would empty it on one node only."),
								  NULL);
			break;
		case AT_AddInherit:
		case AT_DropInherit:
		case AT_AttachPartition:
		case AT_DetachPartition:
		case AT_DetachPartitionFinalize:
		case AT_AddOf:
			ddl_refuse_subcommand(gettext_noop("cannot change the inheritance, partitioning or type of a replicated table"),
								  gettext_noop("Replicated tables are plain tables, alike on every node."),
								  gettext_noop("Unreplicate the table first."));
			break;
		default:
			break;
	}
}

static Oid	ddl_type_user(Oid typid, int depth);

/*
 * ALTER TABLE on a table whose row type a replicated table uses as a
 * column type would change that column on this node only.
 */
static void
ddl_check_row_type_user(RangeVar *rv)
{
	Oid			relid = rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
	Oid			user;

	if (!OidIsValid(relid) || raftable_table_is_replicated(relid) ||
		!OidIsValid(get_rel_type_id(relid)) ||
		!OidIsValid(user = ddl_type_user(get_rel_type_id(relid), 0)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot alter table \"%s\": replicated table \"%s\" uses its row type",
					get_rel_name(relid), get_rel_name(user)),
			 errdetail("The change would reach that table's column on this node only."),
			 errhint("Unreplicate the table, change the type on every node, then replicate the table again.")));
}

/*
 * Statements on another table that would tie a replicated one to it: a
 * partition attached to or detached from a parent, a new table inheriting
 * from or partitioning a replicated one.  Replicated tables stand alone.
 */
static void
ddl_check_relatives(Node *stmt)
{
	List	   *names = NIL;
	ListCell   *lc;

	if (IsA(stmt, AlterTableStmt))
	{
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
		{
			AlterTableCmd *cmd = lfirst(lc);

			if ((cmd->subtype == AT_AttachPartition || cmd->subtype == AT_DetachPartition ||
				 cmd->subtype == AT_DetachPartitionFinalize) &&
				cmd->def && IsA(cmd->def, PartitionCmd))
				names = lappend(names, ((PartitionCmd *) cmd->def)->name);
			else if ((cmd->subtype == AT_AddInherit || cmd->subtype == AT_DropInherit) &&
					 cmd->def && IsA(cmd->def, RangeVar))
				names = lappend(names, cmd->def);	/* the parent */
		}
		ddl_check_row_type_user(((AlterTableStmt *) stmt)->relation);
	}
	else if (IsA(stmt, CreateStmt) || IsA(stmt, CreateForeignTableStmt))
		names = ((CreateStmt *) stmt)->inhRelations;	/* the base of both */
	foreach(lc, names)
	{
		Oid			relid = RangeVarGetRelid(lfirst(lc), NoLock, true);

		if (raftable_table_is_replicated(relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("replicated table \"%s\" cannot be a partition, a parent or a child",
							get_rel_name(relid)),
					 errdetail("Replicated tables are plain tables, alike on every node."),
					 errhint("Unreplicate the table first.")));
	}
}

/*
 * A new CHECK is validated against the existing rows on every node: one
 * that calls a function that is not immutable could pass on one node and
 * fail on another, and stop apply there.
 */
static void
ddl_check_check(Constraint *con)
{
	if (con->contype == CONSTR_CHECK && ddl_nondeterministic(con->raw_expr, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot add a CHECK constraint that is not immutable to a replicated table"),
				 errdetail("Each node validates its rows itself; the result must be the same everywhere."),
				 errhint("Use only immutable functions in the constraint.")));
}

/*
 * Refuse what would make the nodes differ: ADD COLUMN that fills existing
 * rows with values each node computes itself, and foreign keys to tables
 * the other nodes may not have.
 */
static void
ddl_check_alter(Oid relid, AlterTableStmt *stmt)
{
	ListCell   *lc;
	Relation	rel = table_open(relid, AccessShareLock);

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		ColumnDef  *def;
		ListCell   *c;
		bool		ok = true;

		ddl_check_subcommand(rel, cmd);
		if (cmd->subtype == AT_AddConstraint)
			ddl_check_constraint(cmd->def);
		if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint))
			ddl_check_check((Constraint *) cmd->def);
		if (cmd->subtype == AT_AddColumn && IsA(cmd->def, ColumnDef))
		{
			foreach(c, ((ColumnDef *) cmd->def)->constraints)
				ddl_check_check(lfirst(c));
		}
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
	table_close(rel, AccessShareLock);
}

/*
 * The replicated table a statement changes, or InvalidOid.  *refuse is
 * set for what cannot be replicated at all.
 */
/* statements ddl_target knows */
static bool
ddl_may_be_replicated(Node *stmt)
{
	return IsA(stmt, AlterTableStmt) || IsA(stmt, IndexStmt) || IsA(stmt, DropStmt) ||
		IsA(stmt, RenameStmt) || IsA(stmt, AlterObjectSchemaStmt) ||
		IsA(stmt, GrantStmt) || IsA(stmt, CreatePolicyStmt) ||
		IsA(stmt, AlterPolicyStmt) || IsA(stmt, AlterSeqStmt);
}

/*
 * ALTER SEQUENCE on a replicated table's sequence is replicated; OWNED BY
 * would take the sequence away from the table (or give it to another),
 * and is refused.
 */
static void
ddl_check_alter_sequence(AlterSeqStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
		if (strcmp(lfirst_node(DefElem, lc)->defname, "owned_by") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot change which column owns a sequence of a replicated table"),
					 errdetail("The sequence goes with its table to every node."),
					 errhint("Unreplicate the table first.")));
}

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

				if (s->objtype != OBJECT_TYPE)
					relid = ddl_relid(s->relation);
				break;
			}
		case T_IndexStmt:
			relid = ddl_relid(((IndexStmt *) stmt)->relation);
			if (((IndexStmt *) stmt)->concurrent)
				*refuse = "build an index CONCURRENTLY on";
			break;
		case T_DropStmt:
			{
				DropStmt   *s = (DropStmt *) stmt;
				ListCell   *lc;
				int			n = 0;

				if (s->removeType == OBJECT_POLICY)
				{
					/* one policy: the table's name list, the policy's name last */
					List	   *names = linitial(s->objects);

					relid = ddl_relid(makeRangeVarFromNameList(list_truncate(list_copy(names),
																			 list_length(names) - 1)));
					break;
				}
				if (s->removeType != OBJECT_TABLE && s->removeType != OBJECT_INDEX)
					break;
				foreach(lc, s->objects)
				{
					Oid			r = ddl_relid(makeRangeVarFromNameList(lfirst(lc)));

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
		case T_GrantStmt:
			{
				GrantStmt  *s = (GrantStmt *) stmt;
				ListCell   *lc;
				int			n = 0;

				if (s->targtype != ACL_TARGET_OBJECT ||
					(s->objtype != OBJECT_TABLE && s->objtype != OBJECT_SEQUENCE))
					break;
				foreach(lc, s->objects)
				{
					Oid			r = ddl_relid(lfirst_node(RangeVar, lc));

					if (raftable_table_is_replicated(r))
					{
						relid = r;
						n++;
					}
				}
				if (n > 0 && n < list_length(s->objects))
					*refuse = "grant or revoke on other objects in the same statement as";
				return relid;
			}
		case T_CreatePolicyStmt:
			relid = ddl_relid(((CreatePolicyStmt *) stmt)->table);
			break;
		case T_AlterSeqStmt:
			relid = ddl_relid(((AlterSeqStmt *) stmt)->sequence);
			break;
		case T_AlterPolicyStmt:
			relid = ddl_relid(((AlterPolicyStmt *) stmt)->table);
			break;
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) stmt;

				/* triggers and rules are each node's own */
				if (s->relation == NULL || s->renameType == OBJECT_TRIGGER ||
					s->renameType == OBJECT_RULE)
					break;
				relid = ddl_relid(s->relation);
				/* entries name tables: the table's own name is fixed */
				if ((s->renameType == OBJECT_TABLE || s->renameType == OBJECT_INDEX ||
					 s->renameType == OBJECT_SEQUENCE || s->renameType == OBJECT_VIEW ||
					 s->renameType == OBJECT_MATVIEW ||
					 s->renameType == OBJECT_FOREIGN_TABLE) &&
					ddl_names_table(s->relation))
					*refuse = get_rel_relkind(RangeVarGetRelid(s->relation, NoLock, true)) ==
						RELKIND_SEQUENCE ? "rename a sequence of" : "rename";
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *s = (AlterObjectSchemaStmt *) stmt;

				if (s->relation)
				{
					relid = ddl_relid(s->relation);
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

/* ---------- changes a replicated table must not undergo as a side effect ---------- */

/*
 * The replicated table that uses type typid for a column, directly or
 * through a domain or an array over it, or InvalidOid.
 */
static Oid
ddl_type_user(Oid typid, int depth)
{
	Relation	dep;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			found = InvalidOid;

	if (depth > 8)
		return InvalidOid;
	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(TypeRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(typid));
	scan = systable_beginscan(dep, DependReferenceIndexId, true, NULL, 2, key);
	while (!OidIsValid(found) && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->classid == RelationRelationId && raftable_table_is_replicated(d->objid))
			found = d->objid;
		else if (d->classid == TypeRelationId && d->objid != typid)
			found = ddl_type_user(d->objid, depth + 1);
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
	return found;
}

static Oid
ddl_type_of(List *names)
{
	return LookupTypeNameOid(NULL, makeTypeNameFromNameList(names), true);
}

/*
 * ALTER TYPE and ALTER DOMAIN change the columns of every table that uses
 * the type, on this node only: refused for types a replicated table uses.
 */
static void
ddl_check_type_change(Node *stmt)
{
	Oid			typid = InvalidOid;
	Oid			user;

	switch (nodeTag(stmt))
	{
		case T_AlterDomainStmt:
			typid = ddl_type_of(((AlterDomainStmt *) stmt)->typeName);
			break;
		case T_AlterEnumStmt:
			typid = ddl_type_of(((AlterEnumStmt *) stmt)->typeName);
			break;
		case T_AlterTypeStmt:
			typid = ddl_type_of(((AlterTypeStmt *) stmt)->typeName);
			break;
		case T_AlterTableStmt:
			if (((AlterTableStmt *) stmt)->objtype == OBJECT_TYPE)
			{
				RangeVar   *rv = ((AlterTableStmt *) stmt)->relation;

				typid = ddl_type_of(rv->schemaname ?
									list_make2(makeString(rv->schemaname), makeString(rv->relname)) :
									list_make1(makeString(rv->relname)));
			}
			break;
		case T_RenameStmt:
			{
				RenameStmt *s = (RenameStmt *) stmt;

				if (s->renameType == OBJECT_TYPE || s->renameType == OBJECT_DOMAIN)
					typid = ddl_type_of(castNode(List, s->object));
				else if (s->renameType == OBJECT_ATTRIBUTE && s->relation)
					typid = get_rel_type_id(RangeVarGetRelid(s->relation, NoLock, true));
				break;
			}
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *s = (AlterObjectSchemaStmt *) stmt;

				if (s->objectType == OBJECT_TYPE || s->objectType == OBJECT_DOMAIN)
					typid = ddl_type_of(castNode(List, s->object));
				break;
			}
		default:
			break;
	}
	if (!OidIsValid(typid) || !OidIsValid(user = ddl_type_user(typid, 0)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot alter type %s: replicated table \"%s\" uses it",
					format_type_be(typid), get_rel_name(user)),
			 errdetail("The change would reach that table on this node only."),
			 errhint("Unreplicate the table, change the type on every node, then replicate the table again.")));
}

/*
 * Drops made by a statement that raftable does not replicate (DROP TYPE
 * ... CASCADE, DROP SCHEMA ... CASCADE, DROP OWNED, ...) must not take a
 * replicated table, or part of one, with them: that would change the table
 * on this node only.  The sql_drop event trigger asks
 * raftable._check_dropped() about every dropped object; the catalog rows
 * of a dropped constraint or index are gone by then, so the parts of the
 * replicated tables are listed before such a statement runs.
 */
typedef struct DdlPart
{
	Oid			classid;
	Oid			objid;
	char	   *table;
} DdlPart;

static bool ddl_replicating = false;	/* a replicated statement runs */
static bool ddl_dropping_raftable = false;	/* DROP EXTENSION raftable */
static DdlPart *ddl_parts = NULL;
static int	ddl_nparts = 0;

static const char *ddl_parts_sql =
"WITH t AS (SELECT relid FROM raftable.replicated) "
"SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, oid, conrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_constraint WHERE conrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, oid, adrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_attrdef WHERE adrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, indexrelid, indrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_index WHERE indrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, oid, tgrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_trigger WHERE tgrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, oid, ev_class::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_rewrite WHERE ev_class IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, oid, polrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_policy WHERE polrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, oid, stxrelid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_statistic_ext WHERE stxrelid IN (SELECT relid FROM t) "
"UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, objid, refobjid::pg_catalog.regclass::text "
"  FROM pg_catalog.pg_depend WHERE classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
"   AND refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND deptype IN ('a', 'i') "
"   AND refobjid IN (SELECT relid FROM t)";

static void
ddl_list_parts(void)
{
	RaftableSavedUser saved;

	ddl_nparts = 0;
	if (!ddl_extension_here())
		return;
	raftable_become_superuser(&saved);
	raftable_spi_connect();
	raftable_spi(ddl_parts_sql, 0, NULL, NULL);
	ddl_parts = MemoryContextAlloc(TopTransactionContext,
								   sizeof(DdlPart) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		ddl_parts[i].classid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		ddl_parts[i].objid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		ddl_parts[i].table = MemoryContextStrdup(TopTransactionContext,
												 SPI_getvalue(tup, desc, 3));
		ddl_nparts++;
	}
	SPI_finish();
	raftable_restore_user(&saved);
}

/* may this statement drop objects it does not name? */
static bool
ddl_may_cascade(Node *stmt)
{
	if (IsA(stmt, DropStmt))
		return ((DropStmt *) stmt)->behavior == DROP_CASCADE;
	return IsA(stmt, DropOwnedStmt) && ((DropOwnedStmt *) stmt)->behavior == DROP_CASCADE;
}

static bool
ddl_drops_raftable(Node *stmt)
{
	ListCell   *lc;

	if (!IsA(stmt, DropStmt) || ((DropStmt *) stmt)->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, ((DropStmt *) stmt)->objects)
		if (strcmp(strVal(lfirst(lc)), "raftable") == 0)
			return true;
	return false;
}

/*
 * DROP EXTENSION raftable on a member of a cluster with other members
 * would leave them a voter that answers every message with an error: the
 * node leaves the cluster first.  A node alone in its cluster, or in none,
 * may drop it.
 */
static void
ddl_refuse_drop_member(void)
{
	RaftableStatus *st;
	uint64		id;

	if (!raftable_shmem_ready() || !ddl_serves_this_database())
		return;					/* no cluster here */
	st = raftable_status_copy(true);
	id = st->node_id;
	if (st->in_cluster && st->n_members > 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot drop extension raftable on a member of a raftable cluster"),
				 errdetail("The other members would keep this node as a member that answers nothing."),
				 errhint("Remove this node first: SELECT raftable.remove_node(%llu) on the leader.",
						 (unsigned long long) id)));
	pfree(st);
}

/*
 * raftable._check_dropped(classid, objid, objsubid, identity): called by the
 * sql_drop event trigger for each dropped object.
 */
Datum
raftable_check_dropped(PG_FUNCTION_ARGS)
{
	Oid			classid = PG_GETARG_OID(0);
	Oid			objid = PG_GETARG_OID(1);
	int32		subid = PG_GETARG_INT32(2);
	char	   *identity = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (raftable_applying || ddl_replicating || ddl_dropping_raftable)
		PG_RETURN_VOID();
	if (classid == RelationRelationId && raftable_table_is_replicated(objid))
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 subid == 0 ?
				 errmsg("this statement would drop replicated table %s", identity) :
				 errmsg("this statement would drop column %s of a replicated table", identity),
				 errdetail("It would change the table on this node only."),
				 errhint("Drop or alter the replicated table with DROP TABLE or ALTER TABLE first, or unreplicate it.")));
	for (int i = 0; i < ddl_nparts; i++)
		if (ddl_parts[i].classid == classid && ddl_parts[i].objid == objid)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("this statement would drop %s of replicated table %s",
							identity, ddl_parts[i].table),
					 errdetail("It would change the table on this node only."),
					 errhint("Drop it with ALTER TABLE or DROP INDEX on the replicated table first, or unreplicate the table.")));
	PG_RETURN_VOID();
}

/* ---------- replaying a replicated statement ---------- */

static void
ddl_replay_mismatch(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("replicated statement does not match its log entry"),
			 errdetail("%s", detail)));
}

/*
 * Before the apply worker runs a replicated statement: its text, read
 * under the settings it ran with on the leader (the caller has set them),
 * must be exactly one statement, of the kind the entry says, on the
 * replicated table the entry names.  Text is only a carrier; this is what
 * keeps it from being anything else.
 */
void
ddl_check_replay(const char *sql, const char *tag, Oid relid)
{
	const char *is;

	if (ddl_replay_target(sql, &is) != relid)
		ddl_replay_mismatch("It does not change the table the entry names.");
	if (strcmp(is, tag) != 0)
		ddl_replay_mismatch(psprintf("It is %s, not %s.", is, tag));
}

/*
 * The replicated table that sql, one statement, changes, and its command
 * tag; anything else is an error.
 */
Oid
ddl_replay_target(const char *sql, const char **tag)
{
	List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	Node	   *stmt;
	const char *refuse;
	Oid			relid;

	if (list_length(raw) != 1)
		ddl_replay_mismatch(psprintf("It holds %d statements, not one.", list_length(raw)));
	stmt = linitial_node(RawStmt, raw)->stmt;
	*tag = CreateCommandName(stmt);
	relid = ddl_target(stmt, &refuse);
	if (!OidIsValid(relid) || refuse != NULL)
		ddl_replay_mismatch("It does not change a replicated table.");
	return relid;
}

/*
 * Create a replicated table from its definition (raftable._table_ddl() on
 * the leader or a snapshot's source) as its owner, in a security-restricted
 * operation: the definition is run statement by statement, and each must
 * be one that _table_ddl writes.  Schemas are created first by the
 * bootstrap superuser (the owner may not have CREATE on the database).
 */
void
ddl_create_table(const char *schema, const char *name, const char *owner,
				 const char *script)
{
	Oid			role = get_role_oid(owner, true);
	List	   *raw;
	ListCell   *lc;
	RaftableSavedUser saved;

	if (!OidIsValid(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\", owner of replicated table %s.%s, does not exist on this node",
						owner, schema, name),
				 errhint("Create the role on this node; apply retries.")));
	raw = raw_parser(script, RAW_PARSE_DEFAULT);
	foreach(lc, raw)
	{
		RawStmt    *rs = lfirst_node(RawStmt, lc);
		Node	   *stmt = rs->stmt;
		char	   *sql = pnstrdup(script + rs->stmt_location,
								   rs->stmt_len > 0 ? rs->stmt_len :
								   (int) strlen(script + rs->stmt_location));
		bool		ok;

		switch (nodeTag(stmt))
		{
			case T_CreateSchemaStmt:
				ok = ((CreateSchemaStmt *) stmt)->if_not_exists &&
					((CreateSchemaStmt *) stmt)->schemaElts == NIL &&
					((CreateSchemaStmt *) stmt)->authrole == NULL;
				break;
			case T_CreateStmt:
				{
					RangeVar   *rv = ((CreateStmt *) stmt)->relation;

					ok = rv->schemaname && strcmp(rv->schemaname, schema) == 0 &&
						strcmp(rv->relname, name) == 0;
					break;
				}
			case T_CreateSeqStmt:
			case T_AlterSeqStmt:
			case T_AlterTableStmt:
			case T_IndexStmt:
			case T_CreateStatsStmt:
			case T_AlterStatsStmt:
				ok = true;		/* they run as the owner */
				break;
			default:
				ok = false;
				break;
		}
		if (!ok)
			ddl_replay_mismatch(psprintf("The definition of table %s.%s holds a %s statement.",
										 schema, name, CreateCommandName(stmt)));
		if (IsA(stmt, CreateSchemaStmt))
		{
			/* a schema new here belongs to the table's owner */
			const char *nsp = ((CreateSchemaStmt *) stmt)->schemaname;

			raftable_become_superuser(&saved);
			raftable_spi(psprintf("CREATE SCHEMA IF NOT EXISTS %s AUTHORIZATION %s",
								  quote_identifier(nsp), quote_identifier(owner)),
						 0, NULL, NULL);
		}
		else
		{
			raftable_switch_user(role, &saved);
			raftable_set_option("standard_conforming_strings", "on");
			raftable_spi(sql, 0, NULL, NULL);
		}
		raftable_restore_user(&saved);
		pfree(sql);
	}
}

/*
 * GRANT or REVOKE ... ON ALL TABLES (SEQUENCES) IN SCHEMA reaches this
 * node's tables only: say so when the schema holds replicated tables,
 * whose privileges follow them only when they are named.
 */
static void
ddl_warn_grant_in_schema(GrantStmt *stmt)
{
	ListCell   *lc;
	RaftableSavedUser saved;

	if (stmt->targtype != ACL_TARGET_ALL_IN_SCHEMA ||
		(stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_SEQUENCE) ||
		!ddl_extension_here())
		return;
	foreach(lc, stmt->objects)
	{
		Oid			nsp = get_namespace_oid(strVal(lfirst(lc)), true);
		Oid			types[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(nsp)};
		bool		found;

		if (!OidIsValid(nsp))
			continue;
		raftable_become_superuser(&saved);
		raftable_spi_connect();
		raftable_spi("SELECT 1 FROM raftable.replicated r JOIN pg_catalog.pg_class c "
					 "ON c.oid OPERATOR(pg_catalog.=) r.relid "
					 "WHERE c.relnamespace OPERATOR(pg_catalog.=) $1 LIMIT 1",
					 1, types, values);
		found = SPI_processed > 0;
		SPI_finish();
		raftable_restore_user(&saved);
		if (found)
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("privileges granted or revoked on all tables in schema \"%s\" change its replicated tables on this node only",
							strVal(lfirst(lc))),
					 errhint("GRANT or REVOKE on the replicated tables by name, on the leader, to change them on every node.")));
	}
}

/*
 * ALTER TABLE subcommands that change only objects each node keeps for
 * itself (its triggers and rules, which are not replicated): such a
 * statement is checked but stays local.  Mixed with others, it is refused,
 * since the other nodes do not have those objects.
 */
static bool
ddl_alter_is_local(AlterTableStmt *stmt, bool *mixed)
{
	ListCell   *lc;
	int			local = 0;

	foreach(lc, stmt->cmds)
	{
		switch (((AlterTableCmd *) lfirst(lc))->subtype)
		{
			case AT_EnableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
			case AT_EnableRule:
			case AT_EnableAlwaysRule:
			case AT_EnableReplicaRule:
			case AT_DisableRule:
				local++;
				break;
			default:
				break;
		}
	}
	*mixed = local > 0 && local < list_length(stmt->cmds);
	return local > 0 && !*mixed;
}

/*
 * Trigger names beginning with raftable_ are raftable's: a table owner's
 * trigger of that name would pass for one of raftable's.
 */
static void
ddl_check_trigger_name(CreateTrigStmt *stmt)
{
	Oid			capture;

	if (strncmp(stmt->trigname, "raftable_", 9) != 0 ||
		!OidIsValid(capture = ddl_capture_function()))
		return;					/* no raftable in this database */
	if (LookupFuncName(stmt->funcname, 0, NULL, true) != capture)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("trigger name \"%s\" is reserved", stmt->trigname),
				 errdetail("Trigger names beginning with \"raftable_\" are reserved for raftable."),
				 errhint("Choose another name.")));
}

/*
 * The text of a replicated statement is what the other nodes parse: it
 * must read, under the settings captured with it (the current ones), as
 * the very statement that ran.  It may not: a multi-statement query string
 * is lexed whole before a SET in it takes effect.
 */
static void
ddl_check_text(const char *sql, Node *ran)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *raw = NIL;
	bool		same;

	PG_TRY();
	{
		raw = raw_parser(sql, RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		/* it does not even parse any more: that is a difference too */
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		raw = NIL;
	}
	PG_END_TRY();
	same = list_length(raw) == 1 && equal(linitial_node(RawStmt, raw)->stmt, ran);
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot replicate a statement whose text reads differently under the current settings"),
				 errdetail("A setting that changes how text is read (standard_conforming_strings, backslash_quote) changed after the statement was read."),
				 errhint("Send the SET and the statement as separate queries.")));
}

/* the roles a replicated statement names, which every node must have */
static List *
ddl_named_roles(Node *stmt)
{
	List	   *specs = NIL;
	List	   *names = NIL;
	ListCell   *lc;

	if (IsA(stmt, GrantStmt))
		specs = ((GrantStmt *) stmt)->grantees;
	else if (IsA(stmt, CreatePolicyStmt))
		specs = ((CreatePolicyStmt *) stmt)->roles;
	else if (IsA(stmt, AlterPolicyStmt))
		specs = ((AlterPolicyStmt *) stmt)->roles;
	else if (IsA(stmt, AlterTableStmt))
	{
		foreach(lc, ((AlterTableStmt *) stmt)->cmds)
			if (((AlterTableCmd *) lfirst(lc))->subtype == AT_ChangeOwner)
				specs = lappend(specs, ((AlterTableCmd *) lfirst(lc))->newowner);
	}
	foreach(lc, specs)
	{
		RoleSpec   *spec = lfirst(lc);

		if (spec->roletype != ROLESPEC_PUBLIC)
			names = lappend(names, get_rolespec_name(spec));
	}
	return names;
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
	bool		checking = !raftable_applying && IsTransactionState();
	bool		capture = false;
	bool		save_replicating = ddl_replicating;
	bool		save_dropping = ddl_dropping_raftable;
	bool		listed = false;
	char	   *schema = NULL;
	char	   *name = NULL;
	Node	   *ran = NULL;

	if (checking &&
		(IsA(stmt, DropStmt) || IsA(stmt, RenameStmt) || IsA(stmt, CreateTrigStmt)))
		ddl_check_raftable_triggers(stmt);
	if (checking && IsA(stmt, CreateTrigStmt))
		ddl_check_trigger_name((CreateTrigStmt *) stmt);
	if (checking)
	{
		ddl_check_type_change(stmt);
		ddl_check_relatives(stmt);
	}
	if (checking && ddl_may_be_replicated(stmt))
		relid = ddl_target(stmt, &refuse);
	if (checking && !OidIsValid(relid) && IsA(stmt, GrantStmt))
		ddl_warn_grant_in_schema((GrantStmt *) stmt);
	if (OidIsValid(relid))
	{
		bool		mixed = false;

		capture = !(IsA(stmt, AlterTableStmt) &&
					ddl_alter_is_local((AlterTableStmt *) stmt, &mixed));
		if (mixed)
			refuse = "change triggers or rules together with other things of";
		if (refuse)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot %s replicated table \"%s\"", refuse, get_rel_name(relid)),
					 errhint("%s", IsA(stmt, RenameStmt) || IsA(stmt, AlterObjectSchemaStmt) ?
							 "Unreplicate the table first, then replicate it again." :
							 mixed ?
							 "Triggers and rules are each node's own: change them in a statement of their own." :
							 IsA(stmt, GrantStmt) ?
							 "Name the replicated tables in a statement of their own." :
							 IsA(stmt, DropStmt) && !((DropStmt *) stmt)->concurrent ?
							 "Drop the replicated table in a statement of its own." :
							 "Run it without CONCURRENTLY.")));
		if (IsA(stmt, AlterTableStmt))
			ddl_check_alter(relid, (AlterTableStmt *) stmt);
		if (IsA(stmt, AlterSeqStmt))
			ddl_check_alter_sequence((AlterSeqStmt *) stmt);
	}
	if (capture)
	{
		capture_require_writable();
		/* entries name the table as it was: DROP TABLE takes the name with it */
		schema = get_namespace_name(get_rel_namespace(relid));
		name = get_rel_name(relid);
		ran = copyObject(stmt);
	}
	else if (checking && ddl_drops_raftable(stmt))
	{
		ddl_refuse_drop_member();
		ddl_dropping_raftable = true;
	}
	else if (checking && ddl_may_cascade(stmt))
	{
		ddl_list_parts();
		listed = true;
	}

	PG_TRY();
	{
		ddl_replicating = capture;
		if (ddl_prev_utility)
			ddl_prev_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		ddl_replicating = save_replicating;
		ddl_dropping_raftable = save_dropping;
		if (listed)
			ddl_nparts = 0;
	}
	PG_END_TRY();

	/*
	 * The statement now holds its lock on the table: a replicate_table or
	 * unreplicate_table that committed between the check above and that
	 * lock would leave a statement captured for a table the other nodes do
	 * not replicate, or not captured for one they do.
	 */
	if (checking && ddl_may_be_replicated(stmt) &&
		(capture ? !raftable_table_is_replicated(relid) && SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)) :
		 !OidIsValid(relid) && OidIsValid(ddl_target(stmt, &refuse))))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the table was replicated or unreplicated while this statement waited for it"),
				 errhint("Run the statement again.")));

	if (capture)
	{
		int			len = pstmt->stmt_len > 0 ? pstmt->stmt_len :
			(int) strlen(queryString + Max(pstmt->stmt_location, 0));
		char	   *sql = pnstrdup(queryString + Max(pstmt->stmt_location, 0), len);
		Relation	rel = try_relation_open(relid, AccessShareLock);

		ddl_check_text(sql, ran);
		/* what the statement made of the table must still be replicable */
		if (rel != NULL)
		{
			ddl_check_definition(rel);
			relation_close(rel, AccessShareLock);
		}
		/* and every other node must be able to apply it */
		raftable_require_everywhere(ddl_named_roles(ran), rel != NULL ? relid : InvalidOid);
		capture_ddl(relid, schema, name, CreateCommandName(ran), sql);
	}
}

void
raftable_ddl_init(void)
{
	ddl_prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = ddl_utility;
}
