--
-- raftable_basic: the extension installs, and the library matches its SQL.
--
CREATE EXTENSION raftable;

-- the extension, its schema and its version
SELECT extname, extversion, extnamespace::regnamespace AS schema,
       extrelocatable
  FROM pg_extension
 WHERE extname = 'raftable';

-- every object that belongs to the extension
SELECT pg_describe_object(classid, objid, objsubid) AS member
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'raftable')
   AND deptype = 'e'
 ORDER BY 1;

-- raftable.version(): signature, result type, language
SELECT p.oid::regprocedure AS function,
       pg_get_function_result(p.oid) AS result,
       l.lanname AS language,
       p.provolatile AS volatility
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'raftable'::regnamespace
 ORDER BY 1;

-- the loaded library reports the version of the installed SQL script
SELECT raftable.version();
SELECT raftable.version() = extversion AS library_matches_script
  FROM pg_extension
 WHERE extname = 'raftable';

-- the library is loaded now, so the raftable. GUC prefix is reserved
SET raftable.nonexistent = 1;
SHOW raftable.nonexistent;

-- a second CREATE fails
CREATE EXTENSION raftable;

-- replicate_table checks its input first, then that there is a cluster
CREATE TABLE rt_nopk (a int);
CREATE TABLE rt_parent (id int PRIMARY KEY);
CREATE TABLE rt_child (id int PRIMARY KEY, p int REFERENCES rt_parent);
CREATE UNLOGGED TABLE rt_unlogged (id int PRIMARY KEY);
CREATE VIEW rt_view AS SELECT 1 AS id;
CREATE TABLE rt_ok (id int PRIMARY KEY);
\set VERBOSITY sqlstate
SELECT raftable.replicate_table('rt_nopk');
SELECT raftable.replicate_table('rt_child');
SELECT raftable.replicate_table('rt_unlogged');
SELECT raftable.replicate_table('rt_view');
SELECT raftable.unreplicate_table('rt_ok');
\set VERBOSITY default
SELECT raftable.replicate_table('rt_ok');
SELECT * FROM raftable.tables;
-- the capture trigger function is for triggers only
SELECT raftable._capture();
DROP TABLE rt_nopk, rt_child, rt_parent, rt_unlogged, rt_ok;
DROP VIEW rt_view;

-- DROP removes the function.  The schema, which CREATE EXTENSION made because
-- raftable.control names it, is not a member of the extension and stays,
-- empty; CREATE EXTENSION reuses it.
DROP EXTENSION raftable;
SELECT n.nspname,
       (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid) AS functions
  FROM pg_namespace n
 WHERE n.nspname = 'raftable';
CREATE EXTENSION raftable;
SELECT raftable.version();
DROP EXTENSION raftable;
DROP SCHEMA raftable;
