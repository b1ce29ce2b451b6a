/* sql/raftable--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION raftable" to load this file. \quit

-- The schema raftable is created by CREATE EXTENSION (raftable.control).

-- Version of the loaded library; equal to the extension's version when the
-- installed raftable.so and SQL script belong together.
CREATE FUNCTION raftable.version()
RETURNS text
AS 'MODULE_PATHNAME', 'raftable_version'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION raftable.version() IS
'version of the loaded raftable library';
