--
-- test/pgtap/002_interface.sql
--	raftable's SQL interface on one server that is not in any cluster:
--	the membership functions, the peer entry points and the monitoring
--	views exist with their documented signatures and columns; the settings
--	exist with their documented contexts and defaults; bad input and calls
--	on a non-member fail with the documented SQLSTATEs; an ordinary role may
--	read the views but may call neither a membership function nor a peer
--	entry point.
--
--	Nothing here may change the server's state: no call that could succeed
--	in forming or joining a cluster is made (no valid create_cluster, no
--	_join).  Run by `make pgtap` (pg_prove) in a scratch database; all in one
--	transaction that is rolled back.
--
BEGIN;

CREATE EXTENSION IF NOT EXISTS pgtap;
CREATE EXTENSION raftable;

SELECT plan(199);

-- ---------------------------------------------------------------------------
-- functions: existence, signature, argument names and defaults, return type
-- ---------------------------------------------------------------------------

SELECT has_function('raftable', f, a, format('raftable.%s(%s) exists', f, array_to_string(a, ', ')))
  FROM (VALUES
	('create_cluster',      ARRAY['text', 'text']),
	('add_node',            ARRAY['text', 'text', 'boolean']),
	('remove_node',         ARRAY['bigint']),
	('transfer_leadership', ARRAY['bigint']),
	('_deliver',            ARRAY['bytea']),
	('_join',               ARRAY['bigint', 'bigint', 'text', 'text', 'bytea']),
	('_leave',              ARRAY['bigint', 'bigint']),
	('replicate_table',     ARRAY['regclass']),
	('unreplicate_table',   ARRAY['regclass']),
	('last_write_index',    ARRAY[]::text[]),
	('set_read_consistency', ARRAY['text', 'interval', 'boolean']),
	('read_barrier',        ARRAY['interval']),
	('wait_for_index',      ARRAY['bigint', 'interval'])
  ) AS v(f, a);															-- 13

SELECT function_returns('raftable', f, a, r, format('raftable.%s(%s) returns %s', f, array_to_string(a, ', '), r))
  FROM (VALUES
	('create_cluster',      ARRAY['text', 'text'],                     'bigint'),
	('add_node',            ARRAY['text', 'text', 'boolean'],          'bigint'),
	('remove_node',         ARRAY['bigint'],                           'void'),
	('transfer_leadership', ARRAY['bigint'],                           'bigint'),
	('_deliver',            ARRAY['bytea'],                            'bytea'),
	('_join',               ARRAY['bigint', 'bigint', 'text', 'text', 'bytea'], 'void'),
	('_leave',              ARRAY['bigint', 'bigint'],                 'void'),
	('replicate_table',     ARRAY['regclass'],                         'void'),
	('unreplicate_table',   ARRAY['regclass'],                         'void'),
	('last_write_index',    ARRAY[]::text[],                           'bigint'),
	('set_read_consistency', ARRAY['text', 'interval', 'boolean'],     'text'),
	('read_barrier',        ARRAY['interval'],                         'bigint'),
	('wait_for_index',      ARRAY['bigint', 'interval'],               'boolean')
  ) AS v(f, a, r);														-- 13

-- argument names and defaults are interface too (named-argument calls)
SELECT is(pg_get_function_arguments(p::regprocedure), args,
		  format('%s: arguments are (%s)', p, args))
  FROM (VALUES
	('raftable.create_cluster(text,text)',
	 'self_conninfo text, node_name text DEFAULT NULL::text'),
	('raftable.add_node(text,text,boolean)',
	 'conninfo text, node_name text DEFAULT NULL::text, wait boolean DEFAULT true'),
	('raftable.remove_node(bigint)',
	 'node_id bigint'),
	('raftable.transfer_leadership(bigint)',
	 'node_id bigint DEFAULT NULL::bigint'),
	('raftable.replicate_table(regclass)', 'tbl regclass'),
	('raftable.unreplicate_table(regclass)', 'tbl regclass'),
	('raftable.set_read_consistency(text,interval,boolean)',
	 'level text, max_staleness interval DEFAULT NULL::interval, is_local boolean DEFAULT false'),
	('raftable.read_barrier(interval)', 'timeout interval DEFAULT NULL::interval'),
	('raftable.wait_for_index(bigint,interval)',
	 'idx bigint, timeout interval DEFAULT NULL::interval')
  ) AS v(p, args);														-- 9

-- only these three answer for the other nodes; none is callable by PUBLIC
SELECT ok(NOT has_function_privilege('public', p, 'EXECUTE'),
		  format('PUBLIC may not execute %s', p))
  FROM unnest(ARRAY[
	'raftable.create_cluster(text,text)',
	'raftable.add_node(text,text,boolean)',
	'raftable.remove_node(bigint)',
	'raftable.transfer_leadership(bigint)',
	'raftable._deliver(bytea)',
	'raftable._join(bigint,bigint,text,text,bytea)',
	'raftable._leave(bigint,bigint)',
	'raftable.replicate_table(regclass)',
	'raftable.unreplicate_table(regclass)',
	'raftable._capture()',
	'raftable._attach(regclass)',
	'raftable._detach(regclass)',
	'raftable._table_ddl(regclass)',
	'raftable._check_dropped(oid,oid,integer,text)']) AS p;			-- 14

-- and no other function of raftable's is, but for what the views and
-- users call: a new privileged function must be revoked from PUBLIC
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
				 WHERE p.pronamespace = 'raftable'::regnamespace
				   AND has_function_privilege('public', p.oid, 'EXECUTE')
				 ORDER BY 1),
	ARRAY['raftable._nodes()', 'raftable._snapshot_progress()',
		  'raftable._stats()', 'raftable._status()', 'raftable._waits()',
		  'raftable.last_write_index()', 'raftable.read_barrier(interval)',
		  'raftable.set_read_consistency(text,interval,boolean)',
		  'raftable.table_checksum(regclass)', 'raftable.version()',
		  'raftable.wait_for_index(bigint,interval)'],
	'PUBLIC may execute only the functions behind the views and for users');	-- 1

-- SQL-language code of raftable's that may run as a superuser, or as its
-- definer, resolves no name in a schema its caller chose (privilege.c)
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
				 WHERE p.pronamespace = 'raftable'::regnamespace
				   AND (p.prosecdef OR p.prolang IN
						(SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql')))
				   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
				 ORDER BY 1),
	'{}'::text[],
	'every SQL or PL/pgSQL function of raftable pins search_path to pg_catalog, pg_temp');	-- 1

-- ---------------------------------------------------------------------------
-- views: columns, in order, and their types
-- ---------------------------------------------------------------------------

SELECT has_view('raftable', v, format('view raftable.%s exists', v))
  FROM unnest(ARRAY['status', 'nodes', 'stats', 'tables',
					 'snapshot_progress', 'waits']) AS v;				-- 6

SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.status'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['node_id', 'node_name', 'cluster_id', 'role', 'term', 'leader_id',
		  'leader_name', 'commit_index', 'applied_index', 'last_log_index',
		  'snapshot_index', 'leader_contact_ms', 'apply_error'],
	'raftable.status has its columns, in order');						-- 1
SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.nodes'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['node_id', 'node_name', 'conninfo', 'voter', 'role', 'is_self',
		  'reachable', 'match_index', 'lag_entries', 'last_contact_ms',
		  'applied_index', 'apply_error'],
	'raftable.nodes has its columns, in order');						-- 1
SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.tables'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['relid', 'table_name', 'since_index'],
	'raftable.tables has its columns, in order');						-- 1
SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.snapshot_progress'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['phase', 'source_node_id', 'source_index', 'tables_total',
		  'tables_done', 'current_table', 'rows_copied', 'bytes_copied',
		  'started_at', 'finished_at', 'error'],
	'raftable.snapshot_progress has its columns, in order');			-- 1
SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.stats'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['elections', 'leader_changes', 'proposals', 'commits',
		  'entries_applied', 'strong_reads', 'eventual_reads',
		  'bounded_reads', 'read_index_rounds', 'read_timeouts',
		  'write_timeouts', 'messages_sent', 'messages_received',
		  'snapshots_sent', 'snapshots_received', 'read_wait_ms'],
	'raftable.stats has its columns, in order');						-- 1

SELECT col_type_is('raftable', 'status', c, t, format('raftable.status.%s is %s', c, t))
  FROM (VALUES
	('node_id', 'bigint'), ('node_name', 'text'), ('cluster_id', 'bigint'),
	('role', 'text'), ('term', 'bigint'), ('leader_id', 'bigint'),
	('leader_name', 'text'), ('commit_index', 'bigint'),
	('applied_index', 'bigint'), ('last_log_index', 'bigint'),
	('snapshot_index', 'bigint'), ('leader_contact_ms', 'bigint'),
	('apply_error', 'text')
  ) AS v(c, t);															-- 13

SELECT col_type_is('raftable', 'nodes', c, t, format('raftable.nodes.%s is %s', c, t))
  FROM (VALUES
	('node_id', 'bigint'), ('node_name', 'text'), ('conninfo', 'text'),
	('voter', 'boolean'), ('role', 'text'), ('is_self', 'boolean'),
	('reachable', 'boolean'), ('match_index', 'bigint'),
	('lag_entries', 'bigint'), ('last_contact_ms', 'bigint'),
	('applied_index', 'bigint'), ('apply_error', 'text')
  ) AS v(c, t);															-- 12

SELECT col_type_is('raftable', 'tables', c, t, format('raftable.tables.%s is %s', c, t))
  FROM (VALUES
	('relid', 'regclass'), ('table_name', 'text'), ('since_index', 'bigint')
  ) AS v(c, t);															-- 3

SELECT col_type_is('raftable', 'stats', c, 'bigint', format('raftable.stats.%s is bigint', c))
  FROM unnest(ARRAY['elections', 'leader_changes', 'proposals', 'commits',
		  'entries_applied', 'strong_reads', 'eventual_reads',
		  'bounded_reads', 'read_index_rounds', 'read_timeouts',
		  'write_timeouts', 'messages_sent', 'messages_received',
		  'snapshots_sent', 'snapshots_received', 'read_wait_ms']) AS c;	-- 16

-- ---------------------------------------------------------------------------
-- contents while not in a cluster
-- ---------------------------------------------------------------------------

SELECT is((SELECT count(*) FROM raftable.status), 1::bigint,
	'raftable.status has exactly one row');							-- 1
SELECT is((SELECT role FROM raftable.status), 'none',
	'not in a cluster: role is none');									-- 1
SELECT ok((SELECT coalesce(node_id, 0) = 0 AND coalesce(cluster_id, 0) = 0
				  AND coalesce(leader_id, 0) = 0 AND leader_name IS NULL
			 FROM raftable.status),
	'not in a cluster: no node id, cluster id, leader');				-- 1
SELECT is((SELECT count(*) FROM raftable.nodes), 0::bigint,
	'not in a cluster: raftable.nodes is empty');						-- 1
SELECT is((SELECT count(*) FROM raftable.stats), 1::bigint,
	'raftable.stats has exactly one row');								-- 1
SELECT ok((SELECT elections >= 0 AND leader_changes >= 0 AND proposals >= 0
			  AND commits >= 0 AND entries_applied >= 0 AND strong_reads >= 0
			  AND eventual_reads >= 0 AND bounded_reads >= 0
			  AND read_index_rounds >= 0 AND read_timeouts >= 0
			  AND write_timeouts >= 0 AND messages_sent >= 0
			  AND messages_received >= 0 AND snapshots_sent >= 0
			  AND snapshots_received >= 0
			 FROM raftable.stats),
	'raftable.stats: every counter is a number >= 0 (none NULL)');	-- 1

-- ---------------------------------------------------------------------------
-- settings: all exist, with their contexts and defaults
-- ---------------------------------------------------------------------------

SELECT lives_ok(format('SHOW %s', s), format('SHOW %s works', s))
  FROM unnest(ARRAY['raftable.database', 'raftable.election_timeout',
		  'raftable.heartbeat_interval', 'raftable.log_keep',
		  'raftable.read_consistency', 'raftable.max_staleness',
		  'raftable.read_timeout', 'raftable.write_ack',
		  'raftable.write_timeout', 'raftable.read_after_index',
		  'raftable.last_write_index']) AS s;							-- 11

SELECT is((SELECT context FROM pg_settings WHERE name = s), c,
		  format('%s has context %s', s, c))
  FROM (VALUES
	('raftable.database', 'postmaster'),
	('raftable.election_timeout', 'sighup'),
	('raftable.heartbeat_interval', 'sighup'),
	('raftable.log_keep', 'sighup'),
	('raftable.read_consistency', 'user'),
	('raftable.max_staleness', 'user'),
	('raftable.read_timeout', 'user'),
	('raftable.write_ack', 'user'),
	('raftable.write_timeout', 'user'),
	('raftable.read_after_index', 'user'),
	('raftable.last_write_index', 'internal')
  ) AS v(s, c);															-- 11

-- defaults: boot values, whatever postgresql.conf of this server says
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'raftable.database'),
	'postgres', 'raftable.database defaults to postgres');				-- 1
SELECT is((SELECT (boot_val || ' ' || unit)::interval FROM pg_settings WHERE name = s), d,
		  format('%s defaults to %s', s, d))
  FROM (VALUES
	('raftable.election_timeout', interval '1 s'),
	('raftable.heartbeat_interval', interval '100 ms'),
	('raftable.max_staleness', interval '5 s'),
	('raftable.read_timeout', interval '5 s'),
	('raftable.write_timeout', interval '10 s')
  ) AS v(s, d);															-- 5
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'raftable.read_consistency'),
	'strong', 'raftable.read_consistency defaults to strong');			-- 1
SELECT is((SELECT boot_val FROM pg_settings WHERE name = 'raftable.write_ack'),
	'majority', 'raftable.write_ack defaults to majority');			-- 1
SELECT ok((SELECT enumvals @> ARRAY['strong', 'eventual', 'bounded']
				  AND enumvals <@ ARRAY['strong', 'eventual', 'bounded']
			 FROM pg_settings WHERE name = 'raftable.read_consistency'),
	'raftable.read_consistency takes strong, eventual, bounded');		-- 1
SELECT ok((SELECT enumvals @> ARRAY['majority', 'all']
				  AND enumvals <@ ARRAY['majority', 'all']
			 FROM pg_settings WHERE name = 'raftable.write_ack'),
	'raftable.write_ack takes majority, all');							-- 1
SELECT ok((SELECT boot_val::bigint >= 0 FROM pg_settings
			WHERE name = 'raftable.log_keep'),
	'raftable.log_keep defaults to a number of entries >= 0');			-- 1

-- user settings: SET and SET LOCAL work, bad values are refused
SELECT lives_ok($$SET raftable.read_consistency = 'eventual'$$,
	'SET raftable.read_consistency = eventual');						-- 1
SELECT is(current_setting('raftable.read_consistency'), 'eventual',
	'... and it is in force');											-- 1
SELECT lives_ok($$SET LOCAL raftable.write_ack = 'all'$$,
	'SET LOCAL raftable.write_ack = all');								-- 1
SELECT throws_ok($$SET raftable.read_consistency = 'linearizable'$$, '22023', NULL,
	'an unknown read consistency level is refused (22023)');			-- 1
SELECT throws_ok($$SET raftable.write_ack = 'some'$$, '22023', NULL,
	'an unknown write_ack is refused (22023)');						-- 1
-- sighup and postmaster settings cannot be SET in a session
SELECT throws_ok($$SET raftable.election_timeout = '5s'$$, '55P02', NULL,
	'raftable.election_timeout cannot be SET in a session (55P02)');	-- 1
SELECT throws_ok($$SET raftable.database = 'x'$$, '55P02', NULL,
	'raftable.database cannot be SET in a session (55P02)');			-- 1
RESET raftable.read_consistency;

-- read_after_index: a log index or empty; set_read_consistency as SET does
SELECT lives_ok($$SET raftable.read_after_index = '42'$$,
	'SET raftable.read_after_index to a log index');					-- 1
SELECT throws_ok($$SET raftable.read_after_index = '-1'$$, '22023', NULL,
	'a negative read_after_index is refused (22023)');					-- 1
SELECT throws_ok($$SET raftable.read_after_index = 'x'$$, '22023', NULL,
	'a read_after_index that is no number is refused (22023)');		-- 1
RESET raftable.read_after_index;
SELECT throws_ok($$SET raftable.last_write_index = '5'$$, '55P02', NULL,
	'raftable.last_write_index cannot be SET (55P02)');				-- 1
SELECT is(raftable.set_read_consistency('bounded', interval '2 s'), 'strong',
	'set_read_consistency returns the previous level');				-- 1
SELECT is(current_setting('raftable.read_consistency') || ' ' ||
		  current_setting('raftable.max_staleness'), 'bounded 2s',
	'... and sets the level and max_staleness');						-- 1
SAVEPOINT local_level;
SELECT is(raftable.set_read_consistency('eventual', NULL, true), 'bounded',
	'set_read_consistency with is_local');								-- 1
SELECT is(current_setting('raftable.read_consistency'), 'eventual',
	'... is in force');												-- 1
ROLLBACK TO local_level;
SELECT throws_ok($$SELECT raftable.set_read_consistency('sometimes')$$, '22023', NULL,
	'set_read_consistency of an unknown level: 22023');				-- 1
RESET raftable.read_consistency;
RESET raftable.max_staleness;

-- ---------------------------------------------------------------------------
-- bad input and calls that need a cluster
-- ---------------------------------------------------------------------------

SELECT throws_ok('SELECT raftable.create_cluster(NULL)', '22023', NULL,
	'create_cluster(NULL): 22023');									-- 1
SELECT throws_ok($$SELECT raftable.create_cluster(NULL, 'n1')$$, '22023', NULL,
	'create_cluster(NULL, name): 22023');								-- 1
SELECT throws_ok($$SELECT raftable.create_cluster('not a conninfo')$$, '22023', NULL,
	'create_cluster with an unparseable conninfo (no "="): 22023');	-- 1
SELECT throws_ok($$SELECT raftable.create_cluster('host=''unterminated')$$, '22023', NULL,
	'create_cluster with an unterminated quoted value: 22023');		-- 1
SELECT throws_ok($$SELECT raftable.create_cluster('host=127.0.0.1 no_such_option=1')$$, '22023', NULL,
	'create_cluster with an unknown conninfo option: 22023');			-- 1

SELECT throws_ok($$SELECT raftable.add_node('host=127.0.0.1 port=1 dbname=postgres')$$, '55000', NULL,
	'add_node on a node in no cluster: 55000');						-- 1
SELECT throws_ok($$SELECT raftable.add_node('host=127.0.0.1 port=1', 'x', false)$$, '55000', NULL,
	'add_node(..., wait => false) on a node in no cluster: 55000');	-- 1
SELECT throws_ok('SELECT raftable.remove_node(1)', '55000', NULL,
	'remove_node on a node in no cluster: 55000');						-- 1
SELECT throws_ok('SELECT raftable.read_barrier()', '55000', NULL,
	'read_barrier on a node in no cluster: 55000');					-- 1
SELECT is(raftable.wait_for_index(0), true,
	'wait_for_index(0) is true at once');								-- 1
SELECT throws_ok('SELECT raftable.wait_for_index(-1)', '22023', NULL,
	'wait_for_index of a negative index: 22023');						-- 1
SELECT is(ARRAY(SELECT attname::text FROM pg_attribute
				 WHERE attrelid = 'raftable.waits'::regclass
				   AND attnum > 0 AND NOT attisdropped ORDER BY attnum),
	ARRAY['pid', 'waiting_for', 'log_index', 'since'],
	'raftable.waits has its columns, in order');						-- 1
SELECT throws_ok('SELECT raftable.transfer_leadership()', '55000', NULL,
	'transfer_leadership() on a node in no cluster: 55000');			-- 1
SELECT throws_ok('SELECT raftable.transfer_leadership(1)', '55000', NULL,
	'transfer_leadership(1) on a node in no cluster: 55000');			-- 1
-- membership is checked before the bytes are decoded
SELECT throws_ok($$SELECT raftable._deliver('\x00'::bytea)$$, '55000', NULL,
	'_deliver on a node in no cluster: 55000');						-- 1
SELECT throws_ok($$SELECT raftable._deliver(''::bytea)$$, '55000', NULL,
	'_deliver of nothing on a node in no cluster: 55000');				-- 1

-- none of this changed anything
SELECT is((SELECT role FROM raftable.status), 'none',
	'after all the refused calls: still in no cluster');				-- 1
SELECT is((SELECT count(*) FROM raftable.nodes), 0::bigint,
	'... and raftable.nodes still empty');								-- 1

-- ---------------------------------------------------------------------------
-- an ordinary role
-- ---------------------------------------------------------------------------

CREATE ROLE raftable_pgtap_user NOLOGIN;

SELECT ok(has_schema_privilege('raftable_pgtap_user', 'raftable', 'USAGE'),
	'an ordinary role may use schema raftable (to read the views)');	-- 1
SELECT ok(has_table_privilege('raftable_pgtap_user', 'raftable.' || v, 'SELECT'),
		  format('an ordinary role may SELECT raftable.%s', v))
  FROM unnest(ARRAY['status', 'nodes', 'stats', 'tables',
					 'snapshot_progress', 'waits']) AS v;				-- 6
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_class c
					 WHERE c.relnamespace = 'raftable'::regnamespace
					   AND c.relkind IN ('r', 'p')
					   AND has_table_privilege('raftable_pgtap_user', c.oid, 'SELECT')),
	'an ordinary role may read none of raftable''s internal tables');	-- 1

-- reads raftable.status as the current user without aborting the script
CREATE FUNCTION pg_temp.role_as_current_user() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	RETURN (SELECT role FROM raftable.status);
EXCEPTION WHEN insufficient_privilege THEN
	RETURN SQLERRM;
END
$$;

SET ROLE raftable_pgtap_user;

SELECT lives_ok('SELECT * FROM raftable.status', 'ordinary role: SELECT raftable.status');
SELECT lives_ok('SELECT * FROM raftable.nodes', 'ordinary role: SELECT raftable.nodes');
SELECT lives_ok('SELECT * FROM raftable.stats', 'ordinary role: SELECT raftable.stats');	-- 3
SELECT is(pg_temp.role_as_current_user(), 'none',
	'ordinary role: raftable.status shows role none');					-- 1

SELECT throws_ok(q, '42501', 'permission denied for function ' || f,
		  format('ordinary role: %s is refused (42501)', f))
  FROM (VALUES
	('create_cluster', $$SELECT raftable.create_cluster('host=127.0.0.1 port=1')$$),
	('add_node', $$SELECT raftable.add_node('host=127.0.0.1 port=1')$$),
	('remove_node', 'SELECT raftable.remove_node(1)'),
	('transfer_leadership', 'SELECT raftable.transfer_leadership()'),
	('_deliver', $$SELECT raftable._deliver('\x00'::bytea)$$),
	('_join', $$SELECT raftable._join(1, 2, 'n', 'host=127.0.0.1 port=1', '\x00'::bytea)$$),
	('_leave', 'SELECT raftable._leave(1, 2)')
  ) AS v(f, q);															-- 7

RESET ROLE;

SELECT is((SELECT role FROM raftable.status), 'none',
	'after the ordinary role: still in no cluster');					-- 1

SELECT * FROM finish();
ROLLBACK;
