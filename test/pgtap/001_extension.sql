--
-- test/pgtap/001_extension.sql
--	The extension installs into its schema, and raftable.version() of the
--	loaded library equals the version of the installed SQL script.
--
--	Run by `make pgtap` (pg_prove) in a scratch database; everything happens
--	in one transaction that is rolled back.
--
BEGIN;

CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION raftable;

SELECT plan(9);

SELECT has_extension('raftable', 'extension raftable is installed');
SELECT has_schema('raftable', 'schema raftable exists');
SELECT is(
	(SELECT extnamespace::regnamespace::text FROM pg_extension
	  WHERE extname = 'raftable'),
	'raftable',
	'the extension lives in schema raftable');

SELECT has_function('raftable', 'version', ARRAY[]::name[],
	'raftable.version() exists');
SELECT function_returns('raftable', 'version', ARRAY[]::name[], 'text',
	'raftable.version() returns text');
SELECT function_lang_is('raftable', 'version', ARRAY[]::name[], 'c',
	'raftable.version() is a C function');

SELECT is(raftable.version(), '0.2', 'raftable.version() is 0.2');
SELECT is(raftable.version(),
	(SELECT extversion FROM pg_extension WHERE extname = 'raftable'),
	'the loaded library matches the installed SQL script');

-- The library is loaded, so the raftable. prefix is reserved: unknown
-- settings under it are errors, not placeholders.
SELECT throws_ok('SET raftable.nonexistent = 1', '42602',
	'invalid configuration parameter name "raftable.nonexistent"',
	'SET of an unknown raftable.* parameter fails: the prefix is reserved');

SELECT * FROM finish();
ROLLBACK;
