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
ALTER FUNCTION raftable._table_ddl(regclass) SET search_path = pg_catalog, pg_temp;
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
