/* sql/raftable--0.1.sql */

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
	applied_index	bigint NOT NULL DEFAULT 0,
	snapshot_index	bigint NOT NULL DEFAULT 0,
	snapshot_term	bigint NOT NULL DEFAULT 0,
	snapshot_conf	bytea					-- raft_conf_encode(), NULL: none
);

CREATE TABLE raftable.log (
	idx				bigint PRIMARY KEY,
	term			bigint NOT NULL,
	kind			smallint NOT NULL,		-- raft_entry_type
	data			bytea
);

REVOKE ALL ON raftable.node_state, raftable.log FROM PUBLIC;

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
CREATE FUNCTION raftable._deliver(batch bytea)
RETURNS void
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
	OUT leader_contact_ms bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_status'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION raftable._nodes(
	OUT node_id bigint, OUT node_name text, OUT conninfo text,
	OUT voter boolean, OUT role text, OUT is_self boolean,
	OUT reachable boolean, OUT match_index bigint, OUT lag_entries bigint,
	OUT last_contact_ms bigint)
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
	OUT snapshots_received bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'raftable_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW raftable.status AS SELECT * FROM raftable._status();
CREATE VIEW raftable.nodes AS SELECT * FROM raftable._nodes();
CREATE VIEW raftable.stats AS SELECT * FROM raftable._stats();

GRANT USAGE ON SCHEMA raftable TO PUBLIC;
GRANT SELECT ON raftable.status, raftable.nodes, raftable.stats TO PUBLIC;
