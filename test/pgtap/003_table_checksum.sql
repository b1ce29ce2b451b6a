--
-- test/pgtap/003_table_checksum.sql
--	raftable.table_checksum(regclass): an order-independent digest of a
--	table's rows, equal on nodes that hold the same rows whatever their
--	session settings, different when a row differs, counting duplicates.
--	All in one transaction that is rolled back.
--
BEGIN;

CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION raftable;

SELECT plan(12);

SELECT has_function('raftable', 'table_checksum', ARRAY['regclass'],
	'raftable.table_checksum(regclass) exists');
SELECT function_returns('raftable', 'table_checksum', ARRAY['regclass'], 'text',
	'... and returns text');

-- a column named like an alias must not be mistaken for the row
CREATE TABLE ck1 (a int PRIMARY KEY, b text, r timestamptz, f float8, t int[]);
INSERT INTO ck1
	SELECT g, 'x' || g, '2020-01-01 00:00+00'::timestamptz + g * interval '1 hour',
		   g / 3.0, ARRAY[g, g + 1]
	  FROM generate_series(1, 500) g;
CREATE TABLE ck2 (LIKE ck1);
INSERT INTO ck2 SELECT * FROM ck1 ORDER BY a DESC;

SELECT is(raftable.table_checksum('ck1'), raftable.table_checksum('ck2'),
	'same rows inserted in another order: same checksum');
SELECT alike(raftable.table_checksum('ck1'), '500-%',
	'the checksum starts with the row count');

-- session settings that change how values print do not change it
SELECT raftable.table_checksum('ck1') AS before \gset
SET LOCAL datestyle = 'SQL, DMY';
SET LOCAL timezone = 'Asia/Tokyo';
SET LOCAL extra_float_digits = 0;
SET LOCAL bytea_output = 'escape';
SELECT is(raftable.table_checksum('ck1'), :'before',
	'DateStyle, TimeZone, extra_float_digits and bytea_output do not matter');
RESET datestyle;
RESET timezone;
RESET extra_float_digits;
RESET bytea_output;

UPDATE ck2 SET b = 'changed' WHERE a = 250;
SELECT isnt(raftable.table_checksum('ck1'), raftable.table_checksum('ck2'),
	'one changed value changes the checksum');
UPDATE ck2 SET b = 'x250' WHERE a = 250;
SELECT is(raftable.table_checksum('ck1'), raftable.table_checksum('ck2'),
	'changed back: equal again');

UPDATE ck2 SET r = r + interval '1 microsecond' WHERE a = 1;
SELECT isnt(raftable.table_checksum('ck1'), raftable.table_checksum('ck2'),
	'a one-microsecond difference in a timestamp counts');
UPDATE ck2 SET r = r - interval '1 microsecond' WHERE a = 1;

-- duplicates count (sums, not XOR)
CREATE TABLE dup1 (a int);
CREATE TABLE dup2 (a int);
INSERT INTO dup1 VALUES (1), (2);
INSERT INTO dup2 VALUES (1), (2), (2), (2);
SELECT isnt(raftable.table_checksum('dup1'), raftable.table_checksum('dup2'),
	'a row present three times is not the same as once');

CREATE TABLE empty1 (a int);
SELECT is(raftable.table_checksum('empty1'), '0-0-0', 'an empty table: 0-0-0');

SELECT is(raftable.table_checksum(NULL), NULL, 'NULL in, NULL out');

SELECT throws_ok($$SELECT raftable.table_checksum('no_such_table')$$, '42P01',
	NULL, 'an unknown table is an error (42P01)');

SELECT * FROM finish();
ROLLBACK;
