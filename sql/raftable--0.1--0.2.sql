/* sql/raftable--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION raftable UPDATE TO '0.2'" to load this file. \quit

/*
 * 0.2: raftable's SQL code that runs with more rights than its caller
 * resolves no name in a schema its caller chose: search_path pinned to
 * "pg_catalog, pg_temp" (pg_temp last), types and operators qualified; and
 * statements raftable does not replicate may not drop part of a
 * replicated table (raftable._check_dropped).
 */
ALTER FUNCTION raftable._attach(regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION raftable._detach(regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION raftable.table_checksum(regclass) SET search_path = pg_catalog, pg_temp;

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
CREATE OR REPLACE FUNCTION raftable._on_sql_drop()
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

/* storage parameter and option names quoted as identifiers */
CREATE OR REPLACE FUNCTION raftable._table_ddl(tbl regclass)
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

/* raftable.nodes shows which member's apply is stuck, and why */
DROP VIEW raftable.nodes;
DROP FUNCTION raftable._nodes();
CREATE FUNCTION raftable._nodes(
	OUT node_id bigint, OUT node_name text, OUT conninfo text,
	OUT voter boolean, OUT role text, OUT is_self boolean,
	OUT reachable boolean, OUT match_index bigint, OUT lag_entries bigint,
	OUT last_contact_ms bigint, OUT applied_index bigint, OUT apply_error text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_nodes'
LANGUAGE C STRICT VOLATILE;
CREATE VIEW raftable.nodes AS SELECT * FROM raftable._nodes();
GRANT SELECT ON raftable.nodes TO PUBLIC;

/*
 * _deliver answers a sender that is not in this node's committed
 * configuration with that configuration's index, and a leader's answers
 * to read-index requests go back in its result.  Its return type changes,
 * so it is created anew, with the EXECUTE grants it had.
 */
DO $upgrade$
DECLARE
	grantees text[];
	g			text;
BEGIN
	SELECT coalesce(array_agg(a.grantee::pg_catalog.regrole::pg_catalog.text), '{}')
	  INTO grantees
	  FROM pg_catalog.pg_proc p,
		   LATERAL pg_catalog.aclexplode(p.proacl) a
	 WHERE p.oid = 'raftable._deliver(bytea)'::pg_catalog.regprocedure
	   AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0
	   AND a.grantee <> p.proowner;
	DROP FUNCTION raftable._deliver(bytea);
	CREATE FUNCTION raftable._deliver(batch bytea)
	RETURNS bytea
	AS 'MODULE_PATHNAME', 'raftable_deliver'
	LANGUAGE C STRICT VOLATILE;
	REVOKE ALL ON FUNCTION raftable._deliver(bytea) FROM PUBLIC;
	FOREACH g IN ARRAY grantees
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION raftable._deliver(bytea) TO %s', g);
	END LOOP;
END
$upgrade$;

/* the data directory an identity was given in (anchor.c) */
ALTER TABLE raftable.node_state
	ADD COLUMN system_identifier bigint,
	ADD COLUMN timeline integer,
	ADD COLUMN identity_slot text;


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

/* raftable.stats: the time reads waited */
DROP VIEW raftable.stats;
DROP FUNCTION raftable._stats();
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
CREATE VIEW raftable.stats AS SELECT * FROM raftable._stats();
GRANT SELECT ON raftable.stats TO PUBLIC;
