--
-- test/pgtap/004_upgrade.sql
--	ALTER EXTENSION raftable UPDATE from 0.1 (the first release, whose
--	install script ships as sql/raftable--0.1.sql) gives the same SQL
--	objects as a fresh CREATE EXTENSION: every function's definition,
--	settings, security and privileges, every table, view and trigger.
--	In one transaction that is rolled back.
--
BEGIN;

CREATE EXTENSION IF NOT EXISTS pgtap;

SELECT plan(5);

-- what the extension's SQL objects are, as one comparable text per kind
CREATE TEMP TABLE shape (how text, kind text, objects text[]);
SET LOCAL check_function_bodies = off;	-- the schema comes later
CREATE FUNCTION pg_temp.capture(how text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO shape
	SELECT how, 'functions', array_agg(format('%s %s %s %s %s %s %s', p.oid::regprocedure,
			p.prorettype::regtype, p.prosecdef, p.provolatile,
			(SELECT array_agg(c ORDER BY c) FROM unnest(p.proconfig) AS c),	-- in any order
			p.proacl, md5(p.prosrc))
			ORDER BY p.oid::regprocedure::text)
	  FROM pg_proc p WHERE p.pronamespace = 'raftable'::regnamespace
	UNION ALL
	SELECT how, 'relations', array_agg(format('%s %s %s', c.relname, c.relkind, c.relacl)
			ORDER BY c.relname)
	  FROM pg_class c WHERE c.relnamespace = 'raftable'::regnamespace
	UNION ALL
	SELECT how, 'columns', array_agg(format('%s.%s %s', c.relname, a.attname,
			format_type(a.atttypid, a.atttypmod)) ORDER BY c.relname, a.attnum)
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
	 WHERE c.relnamespace = 'raftable'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT how, 'event triggers', array_agg(format('%s %s %s', evtname, evtevent, evtenabled))
	  FROM pg_event_trigger WHERE evtname LIKE 'raftable%';
$$;

CREATE ROLE raftable_upgrade_peer;
CREATE EXTENSION raftable VERSION '0.1';
GRANT EXECUTE ON FUNCTION raftable._deliver(bytea) TO raftable_upgrade_peer;
ALTER EXTENSION raftable UPDATE TO '0.2';
SELECT ok(has_function_privilege('raftable_upgrade_peer', 'raftable._deliver(bytea)', 'EXECUTE'),
	'a peer role granted _deliver keeps it across the update');		-- 1
REVOKE EXECUTE ON FUNCTION raftable._deliver(bytea) FROM raftable_upgrade_peer;
SELECT pg_temp.capture('updated');
DROP EXTENSION raftable;
CREATE EXTENSION raftable;
SELECT pg_temp.capture('fresh');

SELECT is(u.objects, f.objects, format('%s: 0.1 updated to 0.2 = a fresh 0.2', u.kind))
  FROM shape u JOIN shape f ON f.kind = u.kind AND f.how = 'fresh'
 WHERE u.how = 'updated'
 ORDER BY u.kind;													-- 4

SELECT * FROM finish();
ROLLBACK;
