# test/tap/009_replication.pl
#	Replicated tables on a three-node cluster: every write kind, DDL, the
#	refusals, unreplicate_table and serial values across a failover.
#
#	- replicate_table on a table that already holds rows (serial primary
#	  key, numeric with a CHECK, text, timestamptz DEFAULT now(), an
#	  index): the rows, the CHECK and the index appear on every node;
#	  raftable.tables shows it with the same since_index > 0 everywhere.
#	- INSERT, UPDATE, DELETE, TRUNCATE, COPY FROM STDIN, server-side COPY
#	  FROM a file, INSERT ... SELECT, INSERT ... ON CONFLICT DO UPDATE / DO
#	  NOTHING, MERGE, savepoints rolled back and released, a PL/pgSQL
#	  EXCEPTION block, a rolled back transaction: after each, once every
#	  node applied the leader's commit index, table_checksum is equal on
#	  all nodes and the rows are the expected ones (what was rolled back is
#	  absent on every node).  Values that text encoding must carry exactly:
#	  NULLs, control characters, non-ASCII, a TOASTed value, arrays, jsonb,
#	  bytea, NaN, infinities, -0.
#	- a composite primary key (whose key columns are updated too); an
#	  identity column (GENERATED ALWAYS) and a stored generated column.
#	- foreign keys: a child of a replicated parent replicates, ON DELETE
#	  and ON UPDATE CASCADE and TRUNCATE ... CASCADE included; refusals: an
#	  FK to a non-replicated table (42P16), no primary key (42P16), already
#	  replicated (42710).
#	- writes and DDL on a follower: 25006, a HINT naming the leader and its
#	  conninfo, nothing changed anywhere.
#	- DDL on the leader (ADD COLUMN with a constant default, CREATE INDEX,
#	  DROP INDEX, DROP COLUMN, DROP TABLE, and ADD/DROP COLUMN between the
#	  writes of one transaction) reaches the followers' catalogs; RENAME,
#	  SET SCHEMA, disabling raftable's triggers and ADD COLUMN ... DEFAULT
#	  now() or random() are refused
#	  (0A000).
#	- PREPARE TRANSACTION of a transaction that wrote a replicated table:
#	  0A000 (prepared transactions are enabled, and work for other tables).
#	- unreplicate_table: the old leader's writes stay local; followers may
#	  write their own copy.
#	- last_write_index() and raftable.stats.entries_applied.
#	- serial values after kill -9 of the leader: the new leader hands out
#	  only new, higher ids; the old leader, restarted, converges.
#	- ALTER COLUMN ... TYPE ... USING random() is refused (0A000): each
#	  node would compute its own values.
#	- the writer's DateStyle, IntervalStyle, TimeZone and
#	  extra_float_digits do not change what the followers store.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my @nodes = make_nodes(3, conf => "max_prepared_transactions = 5\n");
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes formed a cluster') or BAIL_OUT('no cluster');
my @followers = grep { $_ != $leader } @nodes;

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# check_table($tbl, $what, $query => $expected, ...): once every node has
# applied the leader's commit index, $tbl's checksum is the same on every
# node, and each query gives the expected value on every node.
sub check_table
{
	my ($tbl, $what, @expect) = @_;
	ok(wait_applied(\@nodes, $leader), "$what: every node applied the leader's commit index");
	my $lsum = checksum($leader, $tbl);
	foreach my $f (@followers)
	{
		is(checksum($f, $tbl), $lsum, "$what: $tbl has the leader's checksum on " . $f->name);
	}
	while (my ($q, $want) = splice(@expect, 0, 2))
	{
		(my $qname = $q) =~ s/\s+/ /g;
		$qname = substr($qname, 0, 100) . '...' if length($qname) > 100;
		foreach my $n (@nodes)
		{
			is(sql($n, $q), $want, "$what: on " . $n->name . ": $qname");
		}
	}
	return;
}

# on_all($query): the query's result on each node, "name=result, ..."
sub on_all
{
	my ($query, @n) = @_;
	@n = @nodes unless @n;
	return join(', ', map { $_->name . '=' . sql($_, $query) } @n);
}

# same_on_all($want): what on_all() gives when every node answers $want
sub same_on_all
{
	my ($want, @n) = @_;
	@n = @nodes unless @n;
	return join(', ', map { $_->name . "=$want" } @n);
}

# the replicated tables, as a node's raftable.tables shows them
sub tables_of
{
	my ($node) = @_;
	return sql($node,
		"SELECT coalesce(string_agg(table_name || ':' || since_index, ',' ORDER BY table_name), '') FROM raftable.tables");
}

# ---------------------------------------------------------------------------
# replicate_table on a table with rows
# ---------------------------------------------------------------------------

my $items_sum = q{SELECT count(*) || ':' || coalesce(sum(price), 0) FROM items};

sql($leader, q{
CREATE TABLE items (
	id serial PRIMARY KEY,
	price numeric(10,2) NOT NULL CONSTRAINT items_price_check CHECK (price >= 0),
	label text,
	created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_label_idx ON items (label);
INSERT INTO items (price, label)
	SELECT g * 1.5, 'item ' || g FROM generate_series(1, 50) g;
SELECT raftable.replicate_table('items');
});

check_table('items', 'replicate_table with 50 rows', $items_sum => '50:1912.50',
	q{SELECT count(*) FROM items WHERE created IS NOT NULL AND label LIKE 'item %'} => '50');
foreach my $f (@followers)
{
	is(sql($f, q{SELECT pg_get_constraintdef(oid) FROM pg_constraint
				  WHERE conrelid = 'items'::regclass AND conname = 'items_price_check'}),
		'CHECK ((price >= (0)::numeric))', $f->name . ': the CHECK constraint came along');
	is(sql($f, q{SELECT indexdef FROM pg_indexes WHERE tablename = 'items' AND indexname = 'items_label_idx'}),
		'CREATE INDEX items_label_idx ON public.items USING btree (label)',
		$f->name . ': the index came along');
	is(sql($f, q{SELECT format_type(atttypid, atttypmod) FROM pg_attribute
				  WHERE attrelid = 'items'::regclass AND attname = 'price'}),
		'numeric(10,2)', $f->name . ': the column types came along');
}
{
	my $want;
	my $ok = wait_for(
		sub {
			my @t = map { tables_of($_) } @nodes;
			return 0 unless $t[0] =~ /^items:(\d+)$/ && $1 > 0;
			$want = $t[0];
			return !grep { $_ ne $want } @t;
		},
		'raftable.tables equal on every node', timeout => 30);
	ok($ok, "raftable.tables shows items with the same since_index > 0 on every node (" . ($want // "none") . ")")
	  or diag(on_all('SELECT string_agg(table_name || \':\' || since_index, \',\') FROM raftable.tables'));
}

# the CHECK is enforced (the refused row still takes a serial value)
{
	my $e = sql_error($leader, 'INSERT INTO items (price, label) VALUES (-1, \'negative\')');
	is($e->{sqlstate}, '23514', 'the CHECK constraint holds on the leader (23514)');
}

# ---------------------------------------------------------------------------
# every write kind
# ---------------------------------------------------------------------------

sql($leader, q{INSERT INTO items (price, label) VALUES (9.99, 'ins')});
# id 51 went to the row the CHECK refused: a sequence does not roll back
check_table('items', 'INSERT', $items_sum => '51:1922.49',
	q{SELECT id FROM items WHERE label = 'ins'} => '52');

sql($leader, q{UPDATE items SET price = price + 1, label = label || ' upd' WHERE id <= 10});
check_table('items', 'UPDATE', $items_sum => '51:1932.49',
	q{SELECT count(*) FROM items WHERE label LIKE '% upd'} => '10');

sql($leader, q{DELETE FROM items WHERE id BETWEEN 41 AND 50});
check_table('items', 'DELETE', $items_sum => '41:1249.99',
	q{SELECT count(*) FROM items WHERE id BETWEEN 41 AND 50} => '0');

sql($leader, q{TRUNCATE items});
check_table('items', 'TRUNCATE', $items_sum => '0:0');

# COPY FROM STDIN: the data follows the command in psql's input
sql($leader, "COPY items (price, label) FROM STDIN;\n1.25\tcopy a\n2.50\tcopy b\n3.75\tcopy\\tc\n\\.\n");
check_table('items', 'COPY FROM STDIN', $items_sum => '3:7.50',
	q{SELECT string_agg(label, '|' ORDER BY price) FROM items} => "copy a|copy b|copy\tc");

# server-side COPY FROM a file in the leader's data directory
{
	my $file = $leader->data_dir . '/items.copy';
	open(my $fh, '>', $file) or die "$file: $!";
	printf $fh "%.2f\tfile %d\n", $_ / 4, $_ foreach 1 .. 100;
	close $fh;
	sql($leader, "COPY items (price, label) FROM '$file'");
	unlink $file;
}
check_table('items', 'COPY FROM a file', $items_sum => '103:1270.00',
	q{SELECT count(*) FROM items WHERE label LIKE 'file %'} => '100');

sql($leader, q{INSERT INTO items (price, label) SELECT 1, 'gs ' || g FROM generate_series(1, 200) g});
check_table('items', 'INSERT ... SELECT generate_series', $items_sum => '303:1470.00');

# ON CONFLICT, savepoints and rollbacks on a table of their own
my $kv_all = q{SELECT coalesce(string_agg(k || ':' || v || ':' || n, ',' ORDER BY k), '') FROM kv};
sql($leader, q{
CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 1);
SELECT raftable.replicate_table('kv');
INSERT INTO kv VALUES (1, 'a', 1), (2, 'b', 1);
});
check_table('kv', 'an empty table replicated, then filled', $kv_all => '1:a:1,2:b:1');

sql($leader, q{INSERT INTO kv VALUES (1, 'a2', 1), (2, 'b2', 1), (3, 'c', 1)
			   ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = kv.n + 1});
check_table('kv', 'INSERT ... ON CONFLICT DO UPDATE', $kv_all => '1:a2:2,2:b2:2,3:c:1');

sql($leader, q{INSERT INTO kv VALUES (1, 'zzz', 100), (4, 'd', 1) ON CONFLICT DO NOTHING});
check_table('kv', 'INSERT ... ON CONFLICT DO NOTHING', $kv_all => '1:a2:2,2:b2:2,3:c:1,4:d:1');

sql($leader, q{
BEGIN;
INSERT INTO kv VALUES (10, 'keep', 1);
SAVEPOINT s1;
INSERT INTO kv VALUES (11, 'gone', 1);
UPDATE kv SET v = 'gone' WHERE k = 1;
DELETE FROM kv WHERE k = 3;
SAVEPOINT s1b;
INSERT INTO kv VALUES (13, 'gone too', 1);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO kv VALUES (12, 'keep2', 1);
SAVEPOINT s2;
DELETE FROM kv WHERE k = 2;
RELEASE SAVEPOINT s2;
UPDATE kv SET n = n + 10 WHERE k = 4;
COMMIT;
});
check_table('kv', 'a transaction with ROLLBACK TO SAVEPOINT and RELEASE',
	$kv_all => '1:a2:2,3:c:1,4:d:11,10:keep:1,12:keep2:1');

# a savepoint taken before the first write, rolled back, then more writes;
# and a transaction whose only write was rolled back to a savepoint
sql($leader, q{
BEGIN;
SAVEPOINT a;
INSERT INTO kv VALUES (20, 'gone', 1);
ROLLBACK TO SAVEPOINT a;
INSERT INTO kv VALUES (21, 'kept', 1);
COMMIT;
BEGIN;
SAVEPOINT b;
UPDATE kv SET v = 'gone' WHERE k = 21;
ROLLBACK TO SAVEPOINT b;
COMMIT;
});
check_table('kv', 'a savepoint rolled back before any kept write',
	$kv_all => '1:a2:2,3:c:1,4:d:11,10:keep:1,12:keep2:1,21:kept:1');

# a rolled back transaction, then a write that proves the log moved on
sql($leader, q{
BEGIN;
INSERT INTO kv VALUES (30, 'rolled back', 1);
UPDATE kv SET n = 999;
TRUNCATE items;
ROLLBACK;
INSERT INTO kv VALUES (31, 'after', 1);
});
check_table('kv', 'a rolled back transaction',
	$kv_all => '1:a2:2,3:c:1,4:d:11,10:keep:1,12:keep2:1,21:kept:1,31:after:1',
	$items_sum => '303:1470.00');

# a PL/pgSQL block whose inner block fails: its implicit subtransaction is
# rolled back, and with it what it had written
sql($leader, q{
DO $$
BEGIN
	INSERT INTO kv VALUES (40, 'outer', 1);
	BEGIN
		INSERT INTO kv VALUES (41, 'inner', 1);
		UPDATE kv SET n = 500 WHERE k = 1;
		INSERT INTO kv VALUES (40, 'duplicate', 1);
	EXCEPTION WHEN unique_violation THEN
		INSERT INTO kv VALUES (42, 'handler', 1);
	END;
END
$$;
});
check_table('kv', 'an EXCEPTION block rolled back',
	q{SELECT string_agg(k || ':' || v || ':' || n, ',' ORDER BY k) FROM kv WHERE k IN (1, 40, 41, 42)}
	  => '1:a2:2,40:outer:1,42:handler:1');

# MERGE (PostgreSQL 15): its INSERT, UPDATE and DELETE actions
sql($leader, q{
MERGE INTO kv USING (VALUES (3, 'merged'), (42, NULL), (45, 'new')) AS s (k, v) ON kv.k = s.k
WHEN MATCHED AND s.v IS NULL THEN DELETE
WHEN MATCHED THEN UPDATE SET v = s.v, n = kv.n + 1
WHEN NOT MATCHED THEN INSERT VALUES (s.k, s.v, 7);
});
check_table('kv', 'MERGE',
	q{SELECT string_agg(k || ':' || v || ':' || n, ',' ORDER BY k) FROM kv WHERE k IN (3, 42, 45)}
	  => '3:merged:2,45:new:7');

# values that text encoding must carry exactly: NULLs, control characters,
# quotes, backslashes, non-ASCII, a large (TOASTed) value, arrays, jsonb,
# bytea, floats, an empty string
sql($leader, q{
CREATE TABLE misc (id int PRIMARY KEY, t text, b bytea, j jsonb, a int[], f float8, r real);
SELECT raftable.replicate_table('misc');
INSERT INTO misc VALUES
	(1, NULL, NULL, NULL, NULL, NULL, NULL),
	(2, E'tab\there\nnewline \\ backslash '' quote " dq', '\x00ff10', '{"k": [1, "two", null]}',
	 '{1,NULL,3}', 0.1::float8 + 0.2, 1.1::real / 3),
	(3, 'grüße — 日本語 ✓', decode(repeat('ab', 300), 'hex'), '"str"', '{}', 'NaN', '-Infinity'),
	(4, repeat(md5('x'), 20000), NULL, '[]', '{-2147483648}', 1e308, 1.17549435e-38),
	(5, '', '\x', '{}', '{0}', '-0', 0);
UPDATE misc SET t = t || '!' WHERE id = 4;
});
check_table('misc', 'odd values',
	q{SELECT string_agg(id || ':' || coalesce(length(t)::text, 'null') || ':' || coalesce(md5(t), '-')
						|| ':' || coalesce(encode(b, 'hex'), '-') || ':' || coalesce(j::text, '-')
						|| ':' || coalesce(a::text, '-'), ' ' ORDER BY id) FROM misc}
	  => sql($leader, q{SELECT string_agg(id || ':' || coalesce(length(t)::text, 'null') || ':' || coalesce(md5(t), '-')
						|| ':' || coalesce(encode(b, 'hex'), '-') || ':' || coalesce(j::text, '-')
						|| ':' || coalesce(a::text, '-'), ' ' ORDER BY id) FROM misc}),
	q{SELECT string_agg(f::text || '/' || r::text, ',' ORDER BY id) FROM misc WHERE id > 1}
	  => '0.30000000000000004/0.36666667,NaN/-Infinity,1e+308/1.1754944e-38,-0/0');
is(sql($leader, q{SELECT length(t) FROM misc WHERE id = 4}), 640001, 'the large value is 640,001 characters');

# ---------------------------------------------------------------------------
# composite key; identity and generated columns
# ---------------------------------------------------------------------------

my $comp_all = q{SELECT string_agg(a || '/' || b || '=' || val, ',' ORDER BY a, b) FROM comp};
sql($leader, q{
CREATE TABLE comp (a int, b text, val numeric, PRIMARY KEY (a, b));
INSERT INTO comp VALUES (1, 'x', 1.5), (1, 'y', 2.5), (2, 'x', 3.5);
SELECT raftable.replicate_table('comp');
INSERT INTO comp VALUES (2, 'y', 4.5), (3, 'x', 5.5);
UPDATE comp SET val = val * 2 WHERE a = 1 AND b = 'y';
UPDATE comp SET b = 'z' WHERE a = 2 AND b = 'x';
UPDATE comp SET a = 4 WHERE a = 3;
DELETE FROM comp WHERE a = 1 AND b = 'x';
});
check_table('comp', 'composite primary key (key columns updated too)',
	$comp_all => '1/y=5.0,2/y=4.5,2/z=3.5,4/x=5.5');

my $gen_all = q{SELECT string_agg(id || ':' || qty || 'x' || price || '=' || total, ',' ORDER BY id) FROM gen};
sql($leader, q{
CREATE TABLE gen (
	id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	qty int NOT NULL,
	price numeric NOT NULL,
	total numeric GENERATED ALWAYS AS (qty * price) STORED
);
INSERT INTO gen (qty, price) VALUES (2, 3), (4, 5);
SELECT raftable.replicate_table('gen');
INSERT INTO gen (qty, price) VALUES (1, 10), (3, 7);
UPDATE gen SET qty = qty + 1 WHERE id = 2;
DELETE FROM gen WHERE id = 3;
});
check_table('gen', 'identity and stored generated columns',
	$gen_all => '1:2x3=6,2:5x5=25,4:3x7=21');
foreach my $f (@followers)
{
	is(sql($f, q{SELECT string_agg(attname || ':' || attidentity::text || attgenerated::text, ',' ORDER BY attnum)
				  FROM pg_attribute WHERE attrelid = 'gen'::regclass AND attnum > 0}),
		'id:a,qty:,price:,total:s', $f->name . ': gen has its identity and generated columns');
	cmp_ok(sql($f, q{SELECT last_value FROM gen_id_seq}), '>=', 4,
		$f->name . ': the identity sequence is past the ids handed out');
}

# ---------------------------------------------------------------------------
# foreign keys, and what replicate_table refuses
# ---------------------------------------------------------------------------

my $fk_all = q{SELECT (SELECT string_agg(id::text, ',' ORDER BY id) FROM parent) || ' / '
			   || (SELECT string_agg(id || '>' || parent_id, ',' ORDER BY id) FROM child)};
sql($leader, q{
CREATE TABLE parent (id int PRIMARY KEY, name text);
CREATE TABLE child (
	id int PRIMARY KEY,
	parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE,
	note text
);
INSERT INTO parent VALUES (1, 'p1'), (2, 'p2'), (3, 'p3');
INSERT INTO child VALUES (1, 1, 'c1'), (2, 1, 'c2'), (3, 2, 'c3');
SELECT raftable.replicate_table('parent');
SELECT raftable.replicate_table('child');
INSERT INTO child VALUES (4, 3, 'c4');
DELETE FROM parent WHERE id = 1;
});
check_table('child', 'a child table of a replicated parent (ON DELETE CASCADE)',
	$fk_all => '2,3 / 3>2,4>3');
is(checksum($followers[0], 'parent'), checksum($leader, 'parent'), 'parent: same checksum');
foreach my $f (@followers)
{
	is(sql($f, q{SELECT count(*) FROM pg_constraint WHERE conrelid = 'child'::regclass
				  AND contype = 'f' AND confrelid = 'parent'::regclass}),
		'1', $f->name . ': the foreign key came along');
}
{
	my $e = sql_error($leader, 'INSERT INTO child VALUES (9, 99, \'orphan\')');
	is($e->{sqlstate}, '23503', 'the foreign key holds on the leader (23503)');
}

sql($leader, q{UPDATE parent SET id = 30 WHERE id = 3});
check_table('child', 'ON UPDATE CASCADE of a parent key', $fk_all => '2,30 / 3>2,4>30');
is(checksum($followers[1], 'parent'), checksum($leader, 'parent'), 'parent: same checksum');

sql($leader, q{TRUNCATE parent CASCADE;
			   INSERT INTO parent VALUES (5, 'p5'); INSERT INTO child VALUES (5, 5, 'c5')});
check_table('child', 'TRUNCATE ... CASCADE, then new rows', $fk_all => '5 / 5>5');
is(checksum($followers[0], 'parent'), checksum($leader, 'parent'), 'parent: same checksum');

{
	my $before = tables_of($leader);
	sql($leader, q{
		CREATE TABLE local_ref (id int PRIMARY KEY);
		CREATE TABLE bad_fk (id int PRIMARY KEY, r int REFERENCES local_ref (id));
		CREATE TABLE nopk (a int, b text);
	});
	my $e = sql_error($leader, q{SELECT raftable.replicate_table('bad_fk')});
	is($e->{sqlstate}, '42P16', 'replicate_table of a table with an FK to a non-replicated table: 42P16')
	  or diag($e->{stderr});
	like($e->{message} // '', qr/local_ref/, '... the message names the referenced table');

	$e = sql_error($leader, q{SELECT raftable.replicate_table('nopk')});
	is($e->{sqlstate}, '42P16', 'replicate_table of a table without a primary key: 42P16')
	  or diag($e->{stderr});

	$e = sql_error($leader, q{SELECT raftable.replicate_table('items')});
	is($e->{sqlstate}, '42710', 'replicate_table of a replicated table: 42710')
	  or diag($e->{stderr});

	is(tables_of($leader), $before, 'the refused calls replicated nothing');
	is(sql($leader, q{SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('bad_fk'::regclass, 'nopk'::regclass)
					   AND tgname LIKE 'raftable%'}),
		'0', '... and attached no trigger');
	ok(wait_applied(\@nodes, $leader), 'every node applied the leader\'s commit index');
	foreach my $f (@followers)
	{
		is(sql($f, q{SELECT to_regclass('bad_fk') IS NULL AND to_regclass('nopk') IS NULL}),
			't', $f->name . ': the refused tables do not exist');
	}
}

# ---------------------------------------------------------------------------
# writes and DDL on a follower
# ---------------------------------------------------------------------------

{
	my $lname = $leader->name;
	my $lport = $leader->port;
	my %before = map { $_ => checksum($leader, $_) } qw(items kv);
	foreach my $f (@followers)
	{
		foreach my $w (
			q{INSERT INTO kv VALUES (100, 'follower', 1)},
			q{UPDATE kv SET n = n + 1},
			q{DELETE FROM kv WHERE k = 1},
			q{TRUNCATE kv},
			qq{COPY kv FROM STDIN;\n101\tcopy\t1\n\\.\n},
			q{INSERT INTO kv VALUES (1, 'x', 1) ON CONFLICT (k) DO UPDATE SET v = 'x'},
			q{INSERT INTO items (price, label) VALUES (1, 'follower')},
			q{BEGIN; SAVEPOINT s; INSERT INTO kv VALUES (102, 'f', 1); RELEASE s; COMMIT;},
			q{ALTER TABLE kv ADD COLUMN extra int},
			q{CREATE INDEX kv_v_idx ON kv (v)},
			q{DROP INDEX items_label_idx},
			q{DROP TABLE kv})
		{
			my $short = (split /\n/, $w)[0];
			my $e = sql_error($f, $w);
			is($e->{sqlstate}, '25006', $f->name . ": $short: 25006") or diag($e->{stderr});
			like($e->{hint} // '', qr/"\Q$lname\E".*\bport='?$lport\b/,
				$f->name . ": $short: the HINT names the leader and its conninfo");
		}
	}
	ok(wait_applied(\@nodes, $leader), 'every node applied the leader\'s commit index');
	foreach my $t (qw(items kv))
	{
		is(on_all("SELECT raftable.table_checksum('$t')"),
			same_on_all($before{$t}),
			"$t: refused follower writes changed nothing on any node");
	}
	foreach my $f (@followers)
	{
		is(sql($f, q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'kv'::regclass AND attname = 'extra'}),
			'0', $f->name . ': the refused ADD COLUMN left no column');
		is(sql($f, q{SELECT count(*) FROM pg_indexes WHERE indexname IN ('kv_v_idx', 'items_label_idx')}),
			'1', $f->name . ': the refused CREATE/DROP INDEX changed no index');
	}
}

# ---------------------------------------------------------------------------
# DDL on the leader
# ---------------------------------------------------------------------------

sub attr_on_all
{
	my ($tbl, $col) = @_;
	return on_all("SELECT count(*) FROM pg_attribute WHERE attrelid = '$tbl'::regclass
				   AND attname = '$col' AND NOT attisdropped");
}

sql($leader, q{ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7});
check_table('items', 'ALTER TABLE ADD COLUMN ... DEFAULT 7',
	q{SELECT count(*) FILTER (WHERE flag = 7) || '/' || count(*) FROM items} => '303/303');
is(attr_on_all('items', 'flag'), same_on_all(1), 'the new column exists on every node');

sql($leader, q{INSERT INTO items (price, label, flag) VALUES (2, 'with flag', 8)});
check_table('items', 'INSERT after ADD COLUMN',
	q{SELECT flag FROM items WHERE label = 'with flag'} => '8');

sql($leader, q{CREATE INDEX items_price_idx ON items (price)});
ok(wait_applied(\@nodes, $leader), 'CREATE INDEX: every node applied it');
is(on_all(q{SELECT indexdef FROM pg_indexes WHERE indexname = 'items_price_idx'}),
	same_on_all('CREATE INDEX items_price_idx ON public.items USING btree (price)'),
	'CREATE INDEX: the index exists on every node');

sql($leader, q{DROP INDEX items_price_idx});
ok(wait_applied(\@nodes, $leader), 'DROP INDEX: every node applied it');
is(on_all(q{SELECT count(*) FROM pg_indexes WHERE indexname = 'items_price_idx'}),
	same_on_all(0), 'DROP INDEX: the index is gone on every node');

sql($leader, q{ALTER TABLE items DROP COLUMN flag});
ok(wait_applied(\@nodes, $leader), 'DROP COLUMN: every node applied it');
is(attr_on_all('items', 'flag'), same_on_all(0), 'DROP COLUMN: the column is gone on every node');
sql($leader, q{INSERT INTO items (price, label) VALUES (3, 'after drop column');
			   UPDATE items SET price = price + 0.01 WHERE label = 'with flag'});
check_table('items', 'writes after DROP COLUMN', $items_sum => '305:1475.01');

# DDL in the middle of a transaction: the rows around it, in order
sql($leader, q{
BEGIN;
INSERT INTO items (price, label) VALUES (4, 'before note');
ALTER TABLE items ADD COLUMN note text NOT NULL DEFAULT 'none';
INSERT INTO items (price, label, note) VALUES (5, 'with note', 'yes');
UPDATE items SET note = 'updated' WHERE label = 'before note';
COMMIT;
});
check_table('items', 'ADD COLUMN between writes of one transaction',
	q{SELECT string_agg(label || '=' || note, ',' ORDER BY id) FROM items WHERE label LIKE '% note'}
	  => 'before note=updated,with note=yes',
	q{SELECT count(*) FILTER (WHERE note = 'none') FROM items} => '305');
sql($leader, q{
BEGIN;
UPDATE items SET note = 'last' WHERE label = 'with note';
ALTER TABLE items DROP COLUMN note;
INSERT INTO items (price, label) VALUES (6, 'after note');
COMMIT;
});
check_table('items', 'DROP COLUMN between writes of one transaction', $items_sum => '308:1490.01');
is(attr_on_all('items', 'note'), same_on_all(0), 'the column dropped in a transaction is gone on every node');

{
	my $e = sql_error($leader, q{ALTER TABLE items RENAME TO items2});
	is($e->{sqlstate}, '0A000', 'ALTER TABLE RENAME of a replicated table: 0A000') or diag($e->{stderr});
	sql($leader, q{CREATE SCHEMA other});
	$e = sql_error($leader, q{ALTER TABLE items SET SCHEMA other});
	is($e->{sqlstate}, '0A000', 'ALTER TABLE SET SCHEMA of a replicated table: 0A000') or diag($e->{stderr});
	$e = sql_error($leader, q{ALTER TABLE items ADD COLUMN stamp timestamptz DEFAULT now()});
	is($e->{sqlstate}, '0A000', 'ADD COLUMN ... DEFAULT now(): 0A000') or diag($e->{stderr});
	$e = sql_error($leader, q{ALTER TABLE items ADD COLUMN r float8 DEFAULT random()});
	is($e->{sqlstate}, '0A000', 'ADD COLUMN ... DEFAULT random(): 0A000') or diag($e->{stderr});
	is(sql($leader, q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'items'::regclass
					   AND attname IN ('stamp', 'r') AND NOT attisdropped}),
		'0', 'the refused ADD COLUMNs added nothing on the leader');
	is(on_all(q{SELECT to_regclass('public.items') IS NOT NULL AND to_regclass('items2') IS NULL}),
		same_on_all('t'), 'items still has its name on every node');
	foreach my $what ('DISABLE TRIGGER ALL', 'DISABLE TRIGGER USER', 'DISABLE TRIGGER raftable_capture')
	{
		$e = sql_error($leader, "ALTER TABLE items $what");
		is($e->{sqlstate}, '0A000', "ALTER TABLE $what on a replicated table: 0A000") or diag($e->{stderr});
	}
	is(sql($leader, q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'items'::regclass
					   AND tgname LIKE 'raftable%' AND tgenabled = 'A'}),
		'3', "raftable's three triggers stay enabled");
}

# ALTER COLUMN ... TYPE rewrites the existing rows with its USING
# expression on every node; a volatile one would give each node its own
# values.  Refused, or carried as the leader's values: either way, every
# node must end with the same rows.
sql($leader, q{
CREATE TABLE vol (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO vol SELECT g, g FROM generate_series(1, 100) g;
SELECT raftable.replicate_table('vol');
});
check_table('vol', 'vol replicated', q{SELECT sum(v) FROM vol} => '5050');
{
	my $e = sql_error($leader, q{ALTER TABLE vol ALTER COLUMN v TYPE bigint USING v + (random() * 1000000)::int});
	note('ALTER COLUMN TYPE ... USING random(): ' . ($e->{ok} ? 'accepted' : "refused, $e->{sqlstate}"));
	ok(wait_applied(\@nodes, $leader), 'ALTER COLUMN TYPE: every node applied it');
	is($e->{ok} ? 'accepted' : $e->{sqlstate}, '0A000',
		'ALTER COLUMN TYPE ... USING random(): refused with 0A000');
	{
		is(on_all(q{SELECT raftable.table_checksum('vol')}), same_on_all(checksum($leader, 'vol')),
			'ALTER COLUMN TYPE ... USING random(): the same rows on every node (or refused)');
	}
}

# DROP TABLE
sql($leader, q{
CREATE TABLE scratch (id int PRIMARY KEY, v text);
SELECT raftable.replicate_table('scratch');
INSERT INTO scratch VALUES (1, 'one');
});
check_table('scratch', 'scratch replicated', q{SELECT count(*) FROM scratch} => '1');
{
	my $e = sql_error($followers[0], q{DROP TABLE scratch});
	is($e->{sqlstate}, '25006', 'DROP TABLE on a follower: 25006') or diag($e->{stderr});
}
sql($leader, q{DROP TABLE scratch});
ok(wait_applied(\@nodes, $leader), 'DROP TABLE: every node applied it');
is(on_all(q{SELECT to_regclass('scratch') IS NULL}), same_on_all('t'),
	'DROP TABLE: the table is gone on every node');
is(on_all(q{SELECT count(*) FROM raftable.tables WHERE table_name = 'scratch'}),
	same_on_all(0), 'DROP TABLE: raftable.tables no longer lists it on any node');
is(on_all(q{SELECT count(*) FROM raftable.tables}), same_on_all(8),
	'raftable.tables lists the eight replicated tables on every node');

# ---------------------------------------------------------------------------
# PREPARE TRANSACTION
# ---------------------------------------------------------------------------

{
	my $e = sql_error($leader, q{
BEGIN;
INSERT INTO kv VALUES (50, 'prepared', 1);
PREPARE TRANSACTION 'raftable_p1';
});
	is($e->{sqlstate}, '0A000', 'PREPARE TRANSACTION after a write to a replicated table: 0A000')
	  or diag($e->{stderr});
	unlike($e->{stderr}, qr/prepared transactions are disabled/, '... refused by raftable');
	is(sql($leader, q{SELECT count(*) FROM pg_prepared_xacts}), '0', 'no transaction was prepared');

	# prepared transactions do work for other tables
	sql($leader, q{
CREATE TABLE local_only (id int PRIMARY KEY);
BEGIN;
INSERT INTO local_only VALUES (1);
PREPARE TRANSACTION 'raftable_p2';
COMMIT PREPARED 'raftable_p2';
});
	is(sql($leader, q{SELECT count(*) FROM local_only}), '1',
		'a prepared transaction on a non-replicated table commits');

	sql($leader, q{INSERT INTO kv VALUES (51, 'fence', 1)});
	check_table('kv', 'after the refused PREPARE',
		q{SELECT string_agg(k::text, ',' ORDER BY k) FROM kv WHERE k >= 50} => '51');
}

# ---------------------------------------------------------------------------
# unreplicate_table
# ---------------------------------------------------------------------------

sql($leader, q{
CREATE TABLE solo (id int PRIMARY KEY, v text);
SELECT raftable.replicate_table('solo');
INSERT INTO solo VALUES (1, 'replicated');
});
check_table('solo', 'solo replicated', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM solo} => '1');
sql($leader, q{SELECT raftable.unreplicate_table('solo')});
ok(wait_applied(\@nodes, $leader), 'unreplicate_table: every node applied it');
is(on_all(q{SELECT count(*) FROM raftable.tables WHERE table_name = 'solo'}), same_on_all(0),
	'unreplicate_table: raftable.tables no longer lists it on any node');
is(on_all(q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'solo'::regclass AND tgname LIKE 'raftable%'}), same_on_all(0),
	'unreplicate_table: no raftable trigger left on any node');
{
	my $e = sql_error($leader, q{SELECT raftable.unreplicate_table('solo')});
	is($e->{sqlstate}, '42704', 'unreplicate_table of a table that is not replicated: 42704')
	  or diag($e->{stderr});
}
sql($leader, q{INSERT INTO solo VALUES (2, 'leader only')});
sql($followers[0], q{INSERT INTO solo VALUES (3, 'follower only'); UPDATE solo SET v = 'changed here' WHERE id = 1});
sql($leader, q{INSERT INTO kv VALUES (52, 'fence', 1)});
check_table('kv', 'a write after unreplicate_table',
	q{SELECT count(*) FROM kv WHERE k = 52} => '1');
is(sql($leader, q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM solo}),
	'1:replicated,2:leader only', 'the old leader\'s writes to solo stay there');
is(sql($followers[0], q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM solo}),
	'1:changed here,3:follower only', $followers[0]->name . ' may write its own copy of solo');
is(sql($followers[1], q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM solo}),
	'1:replicated', $followers[1]->name . ' got neither');

# ---------------------------------------------------------------------------
# last_write_index() and entries_applied
# ---------------------------------------------------------------------------

{
	my %applied0 = map { $_->name => stats_of($_)->{entries_applied} } @nodes;
	my @out = split /\n/, sql($leader, q{
SELECT raftable.last_write_index() IS NULL;
INSERT INTO kv VALUES (60, 'lwi', 1);
SELECT raftable.last_write_index();
SELECT count(*) FROM kv;
SELECT raftable.last_write_index();
UPDATE kv SET n = n + 1 WHERE k = 60;
SELECT raftable.last_write_index();
BEGIN;
INSERT INTO kv VALUES (62, 'rolled back', 1);
ROLLBACK;
SELECT raftable.last_write_index();
SELECT commit_index FROM raftable.status;
});
	my ($null, $i1, undef, $i1b, $i2, $i2b, $commit) = @out;
	is($null, 't', 'last_write_index() is NULL before the session wrote anything');
	ok(defined $i1 && $i1 =~ /^\d+$/ && $i1 > 0, "last_write_index() after an INSERT: $i1");
	is($i1b, $i1, 'a read leaves it as it was');
	cmp_ok($i2, '>', $i1, 'a later write has a later index');
	is($i2b, $i2, 'a rolled back transaction leaves it as it was');
	# the status shows the commit index once the worker publishes its cycle
	ok(wait_for(sub { status_of($leader)->{commit_index} >= $i2 }, 'the commit index reaches the write'),
		'last_write_index() <= commit_index');
	foreach my $f (@followers)
	{
		ok( wait_for(sub { status_of($f)->{applied_index} >= $i2 }, $f->name . " applies $i2", timeout => 30),
			$f->name . ': applies up to last_write_index()');
		is(sql($f, q{SELECT string_agg(k || ':' || n, ',' ORDER BY k) FROM kv WHERE k >= 60}), '60:2',
			$f->name . ': once applied_index >= last_write_index(), the write is there');
	}
	ok(wait_applied(\@nodes, $leader), 'every node applied the leader\'s commit index');
	foreach my $n (@nodes)
	{
		cmp_ok(stats_of($n)->{entries_applied}, '>=', $applied0{ $n->name } + 2,
			$n->name . ': raftable.stats.entries_applied grew by the entries written');
	}
	is(on_all(q{SELECT count(*) FROM raftable.status WHERE apply_error IS NULL}), same_on_all(1),
		'no apply error on any node');
}

# ---------------------------------------------------------------------------
# the writer's session settings must not change what the followers store
# ---------------------------------------------------------------------------

# Row values travel as the text output of their types, which depends on the
# writing session's DateStyle, IntervalStyle, TimeZone and
# extra_float_digits; the apply worker reads them back with its own
# settings.  DDL statements are replayed as text too, under the apply
# worker's settings.
sql($leader, q{
CREATE TABLE typed (id int PRIMARY KEY, d date, ts timestamp, tstz timestamptz,
					f8 float8, f4 real, iv interval);
SELECT raftable.replicate_table('typed');
INSERT INTO typed VALUES (1, '2024-03-04', '2024-03-04 10:11:12.5', '2024-03-04 10:11:12.5+00',
						  0.1::float8 + 0.2, 1.1::real / 3, '-1 day -02:03:04');
SET DateStyle = 'SQL, DMY';
SET IntervalStyle = 'sql_standard';
SET TimeZone = 'Asia/Kolkata';
SET extra_float_digits = 0;
INSERT INTO typed SELECT 2, d, ts, tstz, f8, f4, iv FROM typed WHERE id = 1;
ALTER TABLE typed ADD COLUMN day date NOT NULL DEFAULT '04/03/2024';
ALTER TABLE typed ADD COLUMN since timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00';
});
ok(wait_applied(\@nodes, $leader), 'typed: every node applied the writes');
{
	my $want = q{SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres';
				 SET extra_float_digits = 3;
				 SELECT string_agg(concat_ws(' ', id, d, ts, tstz, f8, f4, iv, day, since), ' | ' ORDER BY id) FROM typed};
	is(sql($leader, $want),
		'1 2024-03-04 2024-03-04 10:11:12.5 2024-03-04 10:11:12.5+00 0.30000000000000004 0.36666667 -1 days -02:03:04 2024-03-04 2023-12-31 18:30:00+00 | '
		  . '2 2024-03-04 2024-03-04 10:11:12.5 2024-03-04 10:11:12.5+00 0.30000000000000004 0.36666667 -1 days -02:03:04 2024-03-04 2023-12-31 18:30:00+00',
		'typed: the leader holds the values written');
	{
		foreach my $f (@followers)
		{
			is(sql($f, $want), sql($leader, $want),
				$f->name . ': typed holds the same values as on the leader, whatever the writer\'s session settings');
			is(checksum($f, 'typed'), checksum($leader, 'typed'), $f->name . ': typed has the leader\'s checksum');
		}
	}
}

# ---------------------------------------------------------------------------
# ordinary roles, SERIALIZABLE, deferrable keys
# ---------------------------------------------------------------------------

{
	# roles are each node's own: GRANT replicates only to roles every node has
	my $e0 = sql_error($leader, q{BEGIN; CREATE ROLE writer LOGIN; CREATE TABLE shared (id int PRIMARY KEY, v text);
		SELECT raftable.replicate_table('shared'); GRANT SELECT ON shared TO writer; COMMIT});
	is($e0->{sqlstate}, '42704', 'a GRANT to a role the followers lack is refused (42704)') or diag($e0->{stderr});
	sql($_, q{CREATE ROLE writer LOGIN}) foreach @nodes;
	sql($leader, q{
CREATE TABLE shared (id int PRIMARY KEY, v text);
SELECT raftable.replicate_table('shared');
GRANT SELECT, INSERT, UPDATE, DELETE ON shared TO writer;
GRANT CREATE ON SCHEMA public TO writer;
});
	my $as_writer = sub { return $leader->psql('postgres', $_[0], extra_params => [ '-U', 'writer', '-v', 'ON_ERROR_STOP=1' ]) };
	is($as_writer->(q{INSERT INTO shared VALUES (1, 'by writer'); UPDATE shared SET v = v || '!' WHERE id = 1}),
		0, 'a role with table rights, not superuser, writes to a replicated table');
	check_table('shared', 'written by an ordinary role', q{SELECT v FROM shared WHERE id = 1} => 'by writer!');
	is($as_writer->(q{CREATE TABLE mine (id int PRIMARY KEY); CREATE INDEX ON mine (id); DROP TABLE mine}),
		0, 'an ordinary role runs DDL on its own tables');

	my $e = sql_error($leader, q{BEGIN ISOLATION LEVEL SERIALIZABLE; INSERT INTO shared VALUES (2, 'ser'); COMMIT});
	is($e->{sqlstate}, '0A000', 'a SERIALIZABLE write to a replicated table: 0A000') or diag($e->{stderr});
	is(sql($leader, q{BEGIN ISOLATION LEVEL REPEATABLE READ; INSERT INTO shared VALUES (3, 'rr'); COMMIT;
					  SELECT count(*) FROM shared WHERE id = 3}), '1', 'a REPEATABLE READ write works');

	sql($leader, q{CREATE TABLE defer (id int PRIMARY KEY DEFERRABLE)});
	$e = sql_error($leader, q{SELECT raftable.replicate_table('defer')});
	is($e->{sqlstate}, '0A000', 'a table with a deferrable primary key is refused: 0A000') or diag($e->{stderr});
	check_table('shared', 'after the refusals', q{SELECT count(*) FROM shared} => '2');
}

# ---------------------------------------------------------------------------
# an apply error stops apply visibly, and apply resumes once it is fixed
# ---------------------------------------------------------------------------

{
	sql($leader, q{
CREATE TABLE clash (id int PRIMARY KEY, v text);
SELECT raftable.replicate_table('clash');
});
	check_table('clash', 'clash replicated', q{SELECT count(*) FROM clash} => '0');

	# raftable refuses to drop its triggers on a replicated table ...
	my $f = $followers[0];
	my $e = sql_error($f, q{DROP TRIGGER raftable_capture ON clash});
	is($e->{sqlstate}, '0A000', 'DROP TRIGGER raftable_capture on a replicated table: 0A000')
	  or diag($e->{stderr});
	$e = sql_error($leader, q{ALTER TRIGGER raftable_guard ON clash RENAME TO other_name});
	is($e->{sqlstate}, '0A000', 'renaming raftable_guard: 0A000') or diag($e->{stderr});

	# ... but a superuser can still break a follower's copy on purpose,
	# through raftable's internal _detach: without raftable's triggers, a
	# local row takes the key the leader is about to use.
	sql($f, q{SELECT raftable._detach('clash'); INSERT INTO clash VALUES (1, 'local')});
	sql($leader, q{INSERT INTO clash VALUES (1, 'leader')});
	my $ci = status_of($leader)->{commit_index};
	my $err;
	ok(wait_for(sub { $err = status_of($f)->{apply_error}; defined $err },
			'the follower reports an apply error'),
		$f->name . ': raftable.status shows the apply error');
	like($err // '', qr/duplicate key/, 'the error says what went wrong');
	like($err // '', qr/log index \d+, table public\.clash/, 'the error names the log index and the table');
	cmp_ok(status_of($f)->{applied_index}, '<', $ci, 'the follower stays behind the failed entry');
	like(slurp_file($f->logfile), qr/raftable apply of log index \d+, table public\.clash/,
		'the server log has the error with its context');

	# the other follower is not held up
	ok(wait_applied([ $leader, $followers[1] ], $leader), 'the other follower applies on');

	# fix it: apply retries and resumes, nothing skipped
	sql($f, q{DELETE FROM clash WHERE v = 'local'});
	ok(wait_applied(\@nodes, $leader), $f->name . ' applies again once the cause is gone');
	is(status_of($f)->{apply_error}, undef, 'the apply error is cleared');
	is(sql($f, q{SELECT v FROM clash WHERE id = 1}), 'leader', "the leader's row is there");
	sql($f, q{SELECT raftable._attach('clash')});
	sql($leader, q{DROP TABLE clash});
	ok(wait_applied(\@nodes, $leader), 'clash dropped everywhere');
}

# ---------------------------------------------------------------------------
# serial values across a failover
# ---------------------------------------------------------------------------

{
	sql($leader, q{INSERT INTO items (price, label) SELECT 5, 'before failover ' || g FROM generate_series(1, 20) g});
	ok(wait_applied(\@nodes, $leader), 'rows inserted before the failover are applied everywhere');
	my $old_max = sql($leader, q{SELECT max(id) FROM items});
	my $old = $leader;
	my @rest = @followers;
	my $pids = kill9_node($old);
	my $new = wait_converged(\@rest, timeout => 60);
	ok($new, 'after kill -9 of the leader, the two others elect a leader') or BAIL_OUT('no new leader');
	ok(wait_pids_gone($pids, $old->name . "'s processes exit"), 'every process of the killed leader exits');

	# the first write may meet a leader still settling: retry refusals only
	my $e;
	ok( wait_for(
			sub {
				$e = sql_error($new, q{INSERT INTO items (price, label)
										SELECT 6, 'after failover ' || g FROM generate_series(1, 20) g});
				return 1 if $e->{ok};
				die "INSERT on the new leader: $e->{stderr}" unless $e->{sqlstate} =~ /^(25006|RA001)$/;
				return 0;
			},
			'an INSERT on the new leader', timeout => 60),
		'the new leader takes writes with the serial default') or diag($e->{stderr});
	is(sql($new, q{SELECT count(*) - count(DISTINCT id) FROM items}), '0', 'no id is used twice');
	is(sql($new, q{SELECT count(*) FROM items WHERE label LIKE 'after failover %'}), '20',
		'20 rows inserted by the new leader');
	cmp_ok(sql($new, q{SELECT min(id) FROM items WHERE label LIKE 'after failover %'}), '>', $old_max,
		"the new leader's ids are above the old maximum ($old_max)");

	restart_node($old);
	$leader = wait_converged(\@nodes, timeout => 60);
	ok($leader, $old->name . ' restarted: one leader, followers, equal commit index')
	  or BAIL_OUT('no convergence after the restart');
	@followers = grep { $_ != $leader } @nodes;
	check_table('items', 'after the failover and the restart',
		q{SELECT count(*) FILTER (WHERE label LIKE '% failover %') || ':' || (count(*) - count(DISTINCT id)) FROM items}
		  => '40:0');
	foreach my $t (qw(kv comp gen parent child misc))
	{
		is(on_all("SELECT raftable.table_checksum('$t')"), same_on_all(checksum($leader, $t)),
			"$t: same checksum on every node after the failover");
	}
	is(on_all(q{SELECT count(*) FROM raftable.status WHERE apply_error IS NULL}), same_on_all(1),
		'no apply error on any node');
}

foreach my $node (@nodes)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/PANIC:|TRAP:|was terminated by signal (?!9)/, $node->name . ': no crash in the server log');
}

$_->stop foreach @nodes;
done_testing();
