/* sql/raftable--0.2.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION raftable" to load this file. \quit

CREATE FUNCTION raftable.version()
RETURNS text
AS 'MODULE_PATHNAME', 'raftable_version'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

/*
 * Durable Raft state, written only by raftable's worker.  The log and the
 * hard state live here so that they share the database's WAL: a commit of
 * the worker's transaction is what "persisted" means.
 */
CREATE TABLE raftable.node_state (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	cluster_id		bigint NOT NULL,
	node_id			bigint NOT NULL,
	node_name		text NOT NULL,
	self_conninfo	text NOT NULL,
	term			bigint NOT NULL DEFAULT 0,
	vote			bigint NOT NULL DEFAULT 0,
	commit_index	bigint NOT NULL DEFAULT 0,
	snapshot_index	bigint NOT NULL DEFAULT 0,
	snapshot_term	bigint NOT NULL DEFAULT 0,
	snapshot_conf	bytea,					-- raft_conf_encode(), NULL: none
	-- where the identity was given (anchor.c); NULL: by release 0.1
	system_identifier bigint,
	timeline		integer,
	identity_slot	text					-- NULL: no slot anchors it
);

CREATE TABLE raftable.log (
	idx				bigint PRIMARY KEY,
	term			bigint NOT NULL,
	kind			smallint NOT NULL,		-- raft_entry_type
	data			bytea
);

/*
 * Written only by the apply worker, in the transaction that applies the
 * entries up to applied_index: apply is exactly once across crashes.
 */
CREATE TABLE raftable.apply_state (
	singleton		boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	applied_index	bigint NOT NULL
);
INSERT INTO raftable.apply_state VALUES (true, 0);

/*
 * Entries already applied on this node by the transaction that wrote them
 * (on the leader), or on a snapshot's source: the apply worker skips them.
 */
CREATE TABLE raftable.applied_marks (
	idx				bigint PRIMARY KEY
);

/* the replicated tables, changed only through the log */
CREATE TABLE raftable.replicated (
	relid			oid PRIMARY KEY,
	since_index		bigint NOT NULL DEFAULT 0	-- 0 until its entry is appended
);

REVOKE ALL ON raftable.node_state, raftable.log, raftable.apply_state,
	raftable.applied_marks, raftable.replicated FROM PUBLIC;

/* ---------- membership (leader only, except create_cluster) ---------- */

CREATE FUNCTION raftable.create_cluster(self_conninfo text, node_name text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'raftable_create_cluster'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

CREATE FUNCTION raftable.add_node(conninfo text, node_name text DEFAULT NULL,
								  wait boolean DEFAULT true)
RETURNS bigint
AS 'MODULE_PATHNAME', 'raftable_add_node'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

CREATE FUNCTION raftable.remove_node(node_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_remove_node'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

CREATE FUNCTION raftable.transfer_leadership(node_id bigint DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'raftable_transfer_leadership'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

REVOKE ALL ON FUNCTION raftable.create_cluster(text, text),
	raftable.add_node(text, text, boolean),
	raftable.remove_node(bigint),
	raftable.transfer_leadership(bigint) FROM PUBLIC;

/*
 * Peer entry points: called by other nodes over libpq, never by PUBLIC.
 * Grant EXECUTE on these three to the role peers connect as (README).
 */
-- NULL, or: a u64, the index of this node's committed configuration when
-- a sender is not in it (how a node removed while it was down learns it),
-- else 0; then answers to READ_INDEX requests a leader gives at once
CREATE FUNCTION raftable._deliver(batch bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'raftable_deliver'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable._join(cluster_id bigint, node_id bigint,
							   node_name text, self_conninfo text,
							   members bytea)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_join'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable._leave(cluster_id bigint, node_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_leave'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION raftable._deliver(bytea),
	raftable._join(bigint, bigint, text, text, bytea),
	raftable._leave(bigint, bigint) FROM PUBLIC;

/* ---------- replicated tables ---------- */

CREATE FUNCTION raftable.replicate_table(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_replicate_table'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable.unreplicate_table(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_unreplicate_table'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION raftable.replicate_table(regclass),
	raftable.unreplicate_table(regclass) FROM PUBLIC;

CREATE FUNCTION raftable.last_write_index()
RETURNS bigint
AS 'MODULE_PATHNAME', 'raftable_last_write_index'
LANGUAGE C VOLATILE;

/* the capture triggers' function (capture.c) */
CREATE FUNCTION raftable._capture()
RETURNS trigger
AS 'MODULE_PATHNAME', 'raftable_capture'
LANGUAGE C;

/*
 * Make tbl a replicated table on this node: the capture triggers, ENABLE
 * ALWAYS so that session_replication_role cannot skip them, and its row in
 * raftable.replicated.  Run on every node, at the same log entry.
 */
CREATE FUNCTION raftable._attach(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	EXECUTE format('CREATE TRIGGER raftable_guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE '
				   'ON %s FOR EACH STATEMENT EXECUTE FUNCTION raftable._capture()', tbl);
	EXECUTE format('CREATE TRIGGER raftable_capture AFTER INSERT OR UPDATE OR DELETE '
				   'ON %s FOR EACH ROW EXECUTE FUNCTION raftable._capture()', tbl);
	EXECUTE format('CREATE TRIGGER raftable_truncate AFTER TRUNCATE '
				   'ON %s FOR EACH STATEMENT EXECUTE FUNCTION raftable._capture()', tbl);
	EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER raftable_guard, '
				   'ENABLE ALWAYS TRIGGER raftable_capture, '
				   'ENABLE ALWAYS TRIGGER raftable_truncate', tbl);
	INSERT INTO raftable.replicated (relid) VALUES (tbl);
END
$fn$;

CREATE FUNCTION raftable._detach(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	-- out of the set first: raftable refuses to drop the triggers of a
	-- replicated table
	DELETE FROM raftable.replicated WHERE relid = tbl;
	EXECUTE format('DROP TRIGGER IF EXISTS raftable_guard ON %s', tbl);
	EXECUTE format('DROP TRIGGER IF EXISTS raftable_capture ON %s', tbl);
	EXECUTE format('DROP TRIGGER IF EXISTS raftable_truncate ON %s', tbl);
END
$fn$;

REVOKE ALL ON FUNCTION raftable._capture(), raftable._attach(regclass),
	raftable._detach(regclass) FROM PUBLIC;

/*
 * raftable._check_dropped(): a statement that raftable does not replicate
 * (DROP TYPE ... CASCADE, DROP SCHEMA ... CASCADE, DROP OWNED ...) may not
 * drop a replicated table or a part of one (ddl.c).
 */
CREATE FUNCTION raftable._check_dropped(classid oid, objid oid, objsubid integer,
										identity text)
RETURNS void
AS 'MODULE_PATHNAME', 'raftable_check_dropped'
LANGUAGE C STRICT VOLATILE;

REVOKE ALL ON FUNCTION raftable._check_dropped(oid, oid, integer, text) FROM PUBLIC;

/*
 * A dropped replicated table leaves the set, on every node alike.  SECURITY
 * DEFINER: whoever drops, raftable.replicated is raftable's.  pg_temp comes
 * last and every type is qualified, so that nothing the dropping role
 * planted (an operator, a regclass domain in its temporary schema) runs
 * with the definer's rights.
 */
CREATE FUNCTION raftable._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	d record;
BEGIN
	FOR d IN SELECT o.classid, o.objid, o.objsubid, o.object_identity
			   FROM pg_catalog.pg_event_trigger_dropped_objects() AS o
	LOOP
		PERFORM raftable._check_dropped(d.classid, d.objid, d.objsubid,
										d.object_identity);
	END LOOP;
	DELETE FROM raftable.replicated
	 WHERE relid OPERATOR(pg_catalog.=) ANY (ARRAY(
			SELECT o.objid FROM pg_catalog.pg_event_trigger_dropped_objects() AS o
			 WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			   AND o.objsubid OPERATOR(pg_catalog.=) 0));
END
$fn$;

REVOKE ALL ON FUNCTION raftable._on_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER raftable_sql_drop ON sql_drop
	EXECUTE FUNCTION raftable._on_sql_drop();
ALTER EVENT TRIGGER raftable_sql_drop ENABLE ALWAYS;

/*
 * raftable._table_ddl(tbl): a SQL script that recreates tbl's definition on
 * another instance where the table does not exist yet.
 *
 * The script is a series of statements, each ending in ';' and a newline
 * (the last one in ';' alone).  Run it as a whole, as one multi-statement
 * string (SPI_execute, PQexec): do not split it, since a literal in a default
 * or a CHECK may hold ';' or a newline, and pg_get_expr() prints a CASE over
 * several lines.  In order:
 *
 *	CREATE SCHEMA IF NOT EXISTS for the table's schema and any other schema
 *		a statistics object on it lives in (owned and identity sequences
 *		are always in the table's schema; PostgreSQL sees to that);
 *	CREATE SEQUENCE for each sequence OWNED BY a column of the table that is
 *		not an identity sequence (serial, bigserial, ...), with its options
 *		(type, increment, bounds, start, cache, cycle) but not its current
 *		value: the caller carries values;
 *	CREATE TABLE with the columns in order: type (format_type), compression,
 *		collation when not the type's, identity with its sequence name and
 *		options, stored generated expression or default (pg_get_expr),
 *		NOT NULL; access method and storage parameters (table and TOAST);
 *	per-column STORAGE, STATISTICS and attribute options that differ from
 *		the defaults (the server-managed "pg_attver" option that this
 *		server build puts on every column is skipped, as pg_dump does);
 *	ALTER SEQUENCE ... OWNED BY for the sequences above;
 *	CHECK, then PRIMARY KEY, UNIQUE and EXCLUDE constraints (by name;
 *		NOT VALID kept), with ALTER INDEX ... SET for the storage parameters
 *		of a primary key's or unique constraint's index;
 *	the other valid indexes (pg_get_indexdef), by name;
 *	REPLICA IDENTITY when not the default, CLUSTER ON;
 *	extended statistics objects (CREATE STATISTICS);
 *	FOREIGN KEY constraints last, so that a self-reference or a reference to
 *		a plain unique index finds its key.  Referenced tables must exist.
 *
 * Not carried: owner, grants, comments, triggers, rules, policies and the
 * row-security flags, tablespaces, security labels, publications, and
 * objects the definition merely uses (types, domains, collations, functions,
 * operator classes, extensions): those must exist on the target.
 *
 * Names are schema-qualified and quoted; the fixed settings below make the
 * output the same whatever the caller's session settings (constants in
 * defaults and CHECKs are printed by their types' output functions).
 *
 * Refused with 0A000: partitioned tables, partitions, tables with
 * inheritance parents or children, typed tables (OF type), temporary and
 * unlogged tables, and defaults that use a sequence not owned by the table
 * (that sequence would not exist, nor be replicated).  Anything but a table:
 * 42809.
 */
CREATE FUNCTION raftable._table_ddl(tbl regclass)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET quote_all_identifiers = off
SET standard_conforming_strings = on
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET timezone = 'UTC'
SET extra_float_digits = 3
SET bytea_output = 'hex'
SET lc_monetary = 'C'
AS $fn$
DECLARE
	rel			record;
	r			record;
	qtbl		text;				-- quoted, schema-qualified table name
	stmts		text[] := '{}';		-- the script, one statement each
	cols		text[] := '{}';		-- column definitions of CREATE TABLE
	relopts		text[];
	coldef		text;
BEGIN
	SELECT c.relname, c.relkind, c.relpersistence, c.relispartition,
		   c.reloftype, c.reloptions, c.relreplident, c.reltoastrelid,
		   n.nspname, am.amname
	  INTO rel
	  FROM pg_class c
	  JOIN pg_namespace n ON n.oid = c.relnamespace
	  LEFT JOIN pg_am am ON am.oid = c.relam
	 WHERE c.oid = tbl;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'relation with OID % does not exist', tbl::oid
			USING ERRCODE = 'undefined_table';
	END IF;
	qtbl := format('%I.%I', rel.nspname, rel.relname);

	/* ---------- what cannot be reproduced ---------- */

	IF rel.relkind = 'p' THEN
		RAISE EXCEPTION 'table % is partitioned', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Partitioned tables are not supported.';
	END IF;
	IF rel.relkind <> 'r' THEN
		RAISE EXCEPTION '% is not a table', qtbl
			USING ERRCODE = 'wrong_object_type';
	END IF;
	IF rel.relispartition THEN
		RAISE EXCEPTION 'table % is a partition', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Partitions are not supported.';
	END IF;
	IF EXISTS (SELECT FROM pg_inherits WHERE inhrelid = tbl) THEN
		RAISE EXCEPTION 'table % inherits from another table', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Table inheritance is not supported.';
	END IF;
	IF EXISTS (SELECT FROM pg_inherits WHERE inhparent = tbl) THEN
		RAISE EXCEPTION 'table % has inheritance children', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Table inheritance is not supported.';
	END IF;
	IF rel.relpersistence = 't' THEN
		RAISE EXCEPTION 'table % is temporary', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Temporary tables are not supported.';
	END IF;
	IF rel.relpersistence = 'u' THEN
		RAISE EXCEPTION 'table % is unlogged', qtbl
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Unlogged tables are not supported.',
				  HINT = format('Make it logged first: ALTER TABLE %s SET LOGGED.', qtbl);
	END IF;
	IF rel.reloftype <> 0 THEN
		RAISE EXCEPTION 'table % is a typed table (OF %)', qtbl,
				format_type(rel.reloftype, NULL)
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Typed tables are not supported.',
				  HINT = format('Detach it from its type first: ALTER TABLE %s NOT OF.', qtbl);
	END IF;

	/* a default may use only sequences that belong to the table */
	FOR r IN
		SELECT DISTINCT a.attname, s.oid::regclass AS seq
		  FROM pg_attrdef d
		  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
		  JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass
							AND dep.objid = d.oid
							AND dep.refclassid = 'pg_class'::regclass
		  JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
		 WHERE d.adrelid = tbl
		   AND NOT EXISTS (SELECT FROM pg_depend o
							WHERE o.classid = 'pg_class'::regclass
							  AND o.objid = s.oid
							  AND o.refclassid = 'pg_class'::regclass
							  AND o.refobjid = tbl
							  AND o.deptype IN ('a', 'i'))
		 ORDER BY 1, 2
	LOOP
		RAISE EXCEPTION 'default of column % of table % uses sequence %, which is not owned by the table',
				quote_ident(r.attname), qtbl, r.seq
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'Only sequences owned by the table''s columns are carried with it.',
				  HINT = format('Make the table own it: ALTER SEQUENCE %s OWNED BY %s.%I.',
								r.seq, qtbl, r.attname);
	END LOOP;

	/* ---------- schemas ---------- */

	FOR r IN
		SELECT nspname FROM (
			SELECT rel.nspname
			UNION
			SELECT n.nspname
			  FROM pg_depend dep
			  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
			  JOIN pg_namespace n ON n.oid = s.relnamespace
			 WHERE dep.classid = 'pg_class'::regclass
			   AND dep.refclassid = 'pg_class'::regclass
			   AND dep.refobjid = tbl
			   AND dep.deptype IN ('a', 'i')
			UNION
			SELECT n.nspname
			  FROM pg_statistic_ext x
			  JOIN pg_namespace n ON n.oid = x.stxnamespace
			 WHERE x.stxrelid = tbl) AS s
		 ORDER BY nspname = rel.nspname DESC, nspname
	LOOP
		stmts := stmts || format('CREATE SCHEMA IF NOT EXISTS %I', r.nspname);
	END LOOP;

	/* ---------- owned sequences (serial), before the table ---------- */

	FOR r IN
		SELECT format('%I.%I', n.nspname, s.relname) AS qseq,
			   s.relpersistence, a.attname, q.*
		  FROM pg_depend dep
		  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
		  JOIN pg_namespace n ON n.oid = s.relnamespace
		  JOIN pg_sequence q ON q.seqrelid = s.oid
		  JOIN pg_attribute a ON a.attrelid = dep.refobjid
							 AND a.attnum = dep.refobjsubid
		 WHERE dep.classid = 'pg_class'::regclass
		   AND dep.refclassid = 'pg_class'::regclass
		   AND dep.refobjid = tbl
		   AND dep.deptype = 'a'
		 ORDER BY a.attnum, n.nspname, s.relname
	LOOP
		stmts := stmts ||
			format('CREATE %sSEQUENCE %s AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %sCYCLE',
				   CASE WHEN r.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
				   r.qseq, format_type(r.seqtypid, NULL), r.seqincrement,
				   r.seqmin, r.seqmax, r.seqstart, r.seqcache,
				   CASE WHEN r.seqcycle THEN '' ELSE 'NO ' END);
	END LOOP;

	/* ---------- the table ---------- */

	FOR r IN
		SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull,
			   a.attidentity, a.attgenerated, a.attcompression,
			   a.attcollation, t.typcollation,
			   pg_get_expr(d.adbin, d.adrelid) AS defexpr,
			   (SELECT format('%I.%I', cn.nspname, co.collname)
				  FROM pg_collation co
				  JOIN pg_namespace cn ON cn.oid = co.collnamespace
				 WHERE co.oid = a.attcollation) AS qcoll,
			   (SELECT format('SEQUENCE NAME %I.%I INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %sCYCLE',
							  sn.nspname, s.relname, q.seqincrement,
							  q.seqmin, q.seqmax, q.seqstart, q.seqcache,
							  CASE WHEN q.seqcycle THEN '' ELSE 'NO ' END)
				  FROM pg_depend dep
				  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
				  JOIN pg_namespace sn ON sn.oid = s.relnamespace
				  JOIN pg_sequence q ON q.seqrelid = s.oid
				 WHERE dep.classid = 'pg_class'::regclass
				   AND dep.refclassid = 'pg_class'::regclass
				   AND dep.refobjid = tbl
				   AND dep.refobjsubid = a.attnum
				   AND dep.deptype = 'i') AS identopts
		  FROM pg_attribute a
		  JOIN pg_type t ON t.oid = a.atttypid
		  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum
	LOOP
		coldef := format('%I %s', r.attname, format_type(r.atttypid, r.atttypmod));
		IF r.attcompression = 'p' THEN
			coldef := coldef || ' COMPRESSION pglz';
		ELSIF r.attcompression = 'l' THEN
			coldef := coldef || ' COMPRESSION lz4';
		END IF;
		IF r.attcollation <> 0 AND r.attcollation <> r.typcollation THEN
			coldef := coldef || ' COLLATE ' || r.qcoll;
		END IF;
		IF r.attidentity IN ('a', 'd') THEN
			coldef := coldef ||
				CASE r.attidentity WHEN 'a' THEN ' GENERATED ALWAYS' ELSE ' GENERATED BY DEFAULT' END ||
				' AS IDENTITY' || coalesce(' (' || r.identopts || ')', '');
		ELSIF r.attgenerated = 's' THEN
			coldef := coldef || ' GENERATED ALWAYS AS (' || r.defexpr || ') STORED';
		ELSIF r.defexpr IS NOT NULL THEN
			coldef := coldef || ' DEFAULT ' || r.defexpr;
		END IF;
		IF r.attnotnull THEN
			coldef := coldef || ' NOT NULL';
		END IF;
		cols := cols || coldef;
	END LOOP;

	/* storage parameters, the TOAST table's prefixed with "toast." */
	SELECT array_agg(format('%s%I=%L', opt.prefix, opt.name, opt.value)
					 ORDER BY opt.src, opt.ord)
	  INTO relopts
	  FROM (SELECT 0, o.ord, '', split_part(o.opt, '=', 1),
				   substr(o.opt, strpos(o.opt, '=') + 1)
			  FROM unnest(rel.reloptions) WITH ORDINALITY AS o(opt, ord)
			UNION ALL
			SELECT 1, o.ord, 'toast.', split_part(o.opt, '=', 1),
				   substr(o.opt, strpos(o.opt, '=') + 1)
			  FROM pg_class tc,
				   unnest(tc.reloptions) WITH ORDINALITY AS o(opt, ord)
			 WHERE tc.oid = rel.reltoastrelid) AS opt(src, ord, prefix, name, value);

	stmts := stmts ||
		(format('CREATE TABLE %s (%s) USING %I', qtbl,
				array_to_string(cols, ', '), rel.amname) ||
		 coalesce(' WITH (' || array_to_string(relopts, ', ') || ')', ''));

	/* per-column settings that CREATE TABLE cannot say */
	FOR r IN
		SELECT a.attname, a.attstorage, t.typstorage, a.attstattarget,
			   (SELECT string_agg(format('%I=%L', split_part(o.opt, '=', 1),
										 substr(o.opt, strpos(o.opt, '=') + 1)),
								  ', ' ORDER BY o.ord)
				  FROM unnest(a.attoptions) WITH ORDINALITY AS o(opt, ord)
				 WHERE split_part(o.opt, '=', 1) <> 'pg_attver') AS attopts
		  FROM pg_attribute a
		  JOIN pg_type t ON t.oid = a.atttypid
		 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum
	LOOP
		IF r.attstorage <> r.typstorage THEN
			stmts := stmts ||
				format('ALTER TABLE %s ALTER COLUMN %I SET STORAGE %s', qtbl, r.attname,
					   CASE r.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
										 WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END);
		END IF;
		IF coalesce(r.attstattarget, -1) >= 0 THEN
			stmts := stmts ||
				format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', qtbl, r.attname,
					   r.attstattarget);
		END IF;
		IF r.attopts IS NOT NULL THEN
			stmts := stmts ||
				format('ALTER TABLE %s ALTER COLUMN %I SET (%s)', qtbl, r.attname,
					   r.attopts);
		END IF;
	END LOOP;

	/* ---------- owned sequences: OWNED BY, once the table exists ---------- */

	FOR r IN
		SELECT format('%I.%I', n.nspname, s.relname) AS qseq, a.attname
		  FROM pg_depend dep
		  JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
		  JOIN pg_namespace n ON n.oid = s.relnamespace
		  JOIN pg_attribute a ON a.attrelid = dep.refobjid
							 AND a.attnum = dep.refobjsubid
		 WHERE dep.classid = 'pg_class'::regclass
		   AND dep.refclassid = 'pg_class'::regclass
		   AND dep.refobjid = tbl
		   AND dep.deptype = 'a'
		 ORDER BY a.attnum, n.nspname, s.relname
	LOOP
		stmts := stmts ||
			format('ALTER SEQUENCE %s OWNED BY %s.%I', r.qseq, qtbl, r.attname);
	END LOOP;

	/* ---------- constraints but foreign keys, then indexes ---------- */

	FOR r IN
		SELECT c.conname, pg_get_constraintdef(c.oid) AS def,
			   (SELECT string_agg(format('%I=%L', split_part(o.opt, '=', 1),
										 substr(o.opt, strpos(o.opt, '=') + 1)),
								  ', ' ORDER BY o.ord)
				  FROM pg_class ic,
					   unnest(ic.reloptions) WITH ORDINALITY AS o(opt, ord)
				 WHERE ic.oid = c.conindid AND c.contype IN ('p', 'u')) AS idxopts
		  FROM pg_constraint c
		 WHERE c.conrelid = tbl AND c.contype IN ('c', 'p', 'u', 'x')
		 ORDER BY CASE c.contype WHEN 'c' THEN 0 WHEN 'p' THEN 1
								 WHEN 'u' THEN 2 ELSE 3 END,
				  c.conname
	LOOP
		stmts := stmts ||
			format('ALTER TABLE %s ADD CONSTRAINT %I %s', qtbl, r.conname, r.def);
		/*
		 * pg_get_constraintdef() leaves out the storage parameters of the
		 * index of a primary key or unique constraint (not of an EXCLUDE's)
		 */
		IF r.idxopts IS NOT NULL THEN
			stmts := stmts ||
				format('ALTER INDEX %I.%I SET (%s)', rel.nspname, r.conname, r.idxopts);
		END IF;
	END LOOP;

	FOR r IN
		SELECT pg_get_indexdef(i.indexrelid) AS def
		  FROM pg_index i
		  JOIN pg_class ic ON ic.oid = i.indexrelid
		 WHERE i.indrelid = tbl AND i.indisvalid
		   AND NOT EXISTS (SELECT FROM pg_constraint c
							WHERE c.conrelid = tbl AND c.conindid = i.indexrelid
							  AND c.contype IN ('p', 'u', 'x'))
		 ORDER BY ic.relname
	LOOP
		stmts := stmts || r.def;
	END LOOP;

	IF rel.relreplident = 'n' THEN
		stmts := stmts || format('ALTER TABLE %s REPLICA IDENTITY NOTHING', qtbl);
	ELSIF rel.relreplident = 'f' THEN
		stmts := stmts || format('ALTER TABLE %s REPLICA IDENTITY FULL', qtbl);
	ELSIF rel.relreplident = 'i' THEN
		FOR r IN
			SELECT ic.relname
			  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
			 WHERE i.indrelid = tbl AND i.indisreplident
		LOOP
			stmts := stmts ||
				format('ALTER TABLE %s REPLICA IDENTITY USING INDEX %I', qtbl, r.relname);
		END LOOP;
	END IF;

	FOR r IN
		SELECT ic.relname
		  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
		 WHERE i.indrelid = tbl AND i.indisclustered
	LOOP
		stmts := stmts || format('ALTER TABLE %s CLUSTER ON %I', qtbl, r.relname);
	END LOOP;

	/* ---------- extended statistics ---------- */

	FOR r IN
		SELECT pg_get_statisticsobjdef(x.oid) AS def,
			   format('%I.%I', n.nspname, x.stxname) AS qname,
			   x.stxstattarget
		  FROM pg_statistic_ext x
		  JOIN pg_namespace n ON n.oid = x.stxnamespace
		 WHERE x.stxrelid = tbl
		 ORDER BY n.nspname, x.stxname
	LOOP
		stmts := stmts || r.def;
		IF coalesce(r.stxstattarget, -1) >= 0 THEN
			stmts := stmts ||
				format('ALTER STATISTICS %s SET STATISTICS %s', r.qname, r.stxstattarget);
		END IF;
	END LOOP;

	/* ---------- foreign keys, last ---------- */

	FOR r IN
		SELECT conname, pg_get_constraintdef(oid) AS def
		  FROM pg_constraint
		 WHERE conrelid = tbl AND contype = 'f'
		 ORDER BY conname
	LOOP
		stmts := stmts ||
			format('ALTER TABLE %s ADD CONSTRAINT %I %s', qtbl, r.conname, r.def);
	END LOOP;

	RETURN array_to_string(stmts, E';\n') || ';';
END
$fn$;

REVOKE ALL ON FUNCTION raftable._table_ddl(regclass) FROM PUBLIC;

/*
 * An order-independent digest of a table's rows, equal on nodes that hold
 * the same rows: the row count and the sums, modulo 2^64, of the two
 * halves of each row's md5 (sums, not XOR, so that duplicate rows count).
 * Rows are rendered with fixed output settings, so that nodes configured
 * differently (DateStyle, TimeZone, ...) still agree.  ROW(r.*) rather than
 * r: a column named like the alias would be taken instead of the row.
 */
CREATE FUNCTION raftable.table_checksum(tbl regclass)
RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'postgres'
SET timezone = 'UTC'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $fn$
DECLARE
	result text;
BEGIN
	EXECUTE format(
		'SELECT count(*) || ''-'' ||
				((coalesce(sum(h1), 0) %% 18446744073709551616 + 18446744073709551616)
				 %% 18446744073709551616) || ''-'' ||
				((coalesce(sum(h2), 0) %% 18446744073709551616 + 18446744073709551616)
				 %% 18446744073709551616)
		   FROM (SELECT (''x'' || substr(m, 1, 16))::bit(64)::bigint::numeric AS h1,
						(''x'' || substr(m, 17, 16))::bit(64)::bigint::numeric AS h2
				   FROM (SELECT md5(ROW(r.*)::text) AS m FROM %s AS r) AS rows) AS hashes',
		tbl)
	INTO result;
	RETURN result;
END
$fn$;

/* ---------- monitoring ---------- */

CREATE FUNCTION raftable._status(
	OUT node_id bigint, OUT node_name text, OUT cluster_id bigint,
	OUT role text, OUT term bigint, OUT leader_id bigint,
	OUT leader_name text, OUT commit_index bigint, OUT applied_index bigint,
	OUT last_log_index bigint, OUT snapshot_index bigint,
	OUT leader_contact_ms bigint, OUT apply_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_status'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable._nodes(
	OUT node_id bigint, OUT node_name text, OUT conninfo text,
	OUT voter boolean, OUT role text, OUT is_self boolean,
	OUT reachable boolean, OUT match_index bigint, OUT lag_entries bigint,
	OUT last_contact_ms bigint, OUT applied_index bigint, OUT apply_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_nodes'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable._stats(
	OUT elections bigint, OUT leader_changes bigint, OUT proposals bigint,
	OUT commits bigint, OUT entries_applied bigint, OUT strong_reads bigint,
	OUT eventual_reads bigint, OUT bounded_reads bigint,
	OUT read_index_rounds bigint, OUT read_timeouts bigint,
	OUT write_timeouts bigint, OUT messages_sent bigint,
	OUT messages_received bigint, OUT snapshots_sent bigint,
	OUT snapshots_received bigint, OUT read_wait_ms bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW raftable.status AS SELECT * FROM raftable._status();
CREATE VIEW raftable.nodes AS SELECT * FROM raftable._nodes();
CREATE VIEW raftable.stats AS SELECT * FROM raftable._stats();
CREATE FUNCTION raftable._snapshot_progress(
	OUT phase text, OUT source_node_id bigint, OUT source_index bigint,
	OUT tables_total integer, OUT tables_done integer, OUT current_table text,
	OUT rows_copied bigint, OUT bytes_copied bigint,
	OUT started_at timestamptz, OUT finished_at timestamptz, OUT error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_snapshot_progress'
LANGUAGE C STRICT VOLATILE;

/* the last snapshot this node installed or is installing since it started */
CREATE VIEW raftable.snapshot_progress AS SELECT * FROM raftable._snapshot_progress();
CREATE VIEW raftable.tables AS
	SELECT r.relid::regclass AS relid, r.relid::regclass::text AS table_name,
		   r.since_index
	  FROM raftable.replicated r;

/* ---------- reads (reads.c) ---------- */

-- same effect as SET (SET LOCAL with is_local); returns the previous level
CREATE FUNCTION raftable.set_read_consistency(level text,
											  max_staleness interval DEFAULT NULL,
											  is_local boolean DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'raftable_set_read_consistency'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- waits until this node has applied everything committed before the call;
-- returns that log index (NULL timeout: raftable.read_timeout)
CREATE FUNCTION raftable.read_barrier(timeout interval DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'raftable_read_barrier'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

-- true once this node has applied idx; false if the timeout passes first
CREATE FUNCTION raftable.wait_for_index(idx bigint, timeout interval DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'raftable_wait_for_index'
LANGUAGE C CALLED ON NULL INPUT VOLATILE;

CREATE FUNCTION raftable._waits(
	OUT pid integer, OUT waiting_for text, OUT log_index bigint, OUT since timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_waits'
LANGUAGE C STRICT VOLATILE;
CREATE VIEW raftable.waits AS SELECT * FROM raftable._waits();
GRANT SELECT ON raftable.waits TO PUBLIC;

GRANT USAGE ON SCHEMA raftable TO PUBLIC;
GRANT SELECT ON raftable.status, raftable.nodes, raftable.stats, raftable.tables,
	raftable.snapshot_progress TO PUBLIC;
