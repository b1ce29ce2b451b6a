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
