# test/tap/011_snapshot.pl
#	Catching up by snapshot (src/snapshot.c) with replicated tables, on a
#	cluster whose nodes run with raftable.log_keep = 5, so that the leader
#	compacts its log after a few entries.
#
#	1. A follower stopped while the leader writes (a foreign-key parent and
#	   child, a serial and an identity column, a stored generated column,
#	   ADD COLUMN and CREATE INDEX, a TRUNCATE, a table replicated, another
#	   unreplicated and a third dropped while it is away), until the
#	   leader's snapshot_index passes the follower's applied index.
#	   Restarted, it catches up by snapshot: raftable.snapshot_progress
#	   says 'done', from the leader, with every replicated table and rows;
#	   raftable.stats.snapshots_received >= 1; every replicated table has
#	   the leader's checksum, definitions included (columns, index, foreign
#	   key, identity, generated column); raftable.tables is equal on every
#	   node and does not list the unreplicated table; the owned sequences
#	   are at or past the leader's largest ids; later writes apply there.
#	2. A node added (add_node, without wait) after a 250,000-row table was
#	   loaded and the log compacted: its first snapshot is 'done', from the
#	   leader, with every table and at least the 250,000 rows; its rows,
#	   bytes and duration are printed (note).  It becomes a voter while the
#	   writer below keeps writing (the leader keeps the entries it needs
#	   after its snapshot), with the leader's checksums.
#	3. While the new node is added, a client keeps inserting on the leader,
#	   one transaction at a time: commits go on during the snapshot, none
#	   takes more than half the snapshot's duration, and every acknowledged
#	   row, and no other, ends on every node.
#	4. A follower that missed 100,000 more rows is killed (kill -9 of its
#	   postmaster and every child, as a machine crash) while its snapshot
#	   is copying; restarted, it installs a snapshot again and ends with
#	   the leader's checksums and no apply error; from its restart on, the
#	   large table there holds either all of its old rows or all of the new
#	   ones, never a part.  Its snapshot's figures are printed too.
#
#	5. replicate_table of a parent, then of its child, in one statement.
#
#	TODO (a known limit, asserted and marked TODO): a table unreplicated
#	while a follower was away keeps, there, the rows it had when the
#	follower stopped, not those it had when unreplicated (README: the
#	snapshot cannot tell them apart from later local writes).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use JSON::PP ();
use Time::HiRes qw(time);
use RaftableTest;

my $t_start = time;
my @all = make_nodes(4, conf => "raftable.log_keep = 5\n");
my ($n1, $n2, $n3, $n4) = @all;
my @nodes = ($n1, $n2, $n3);	# the members; node4 joins in part 2
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes formed a cluster') or BAIL_OUT('no cluster');
my $leader_id = sql($leader, 'SELECT node_id FROM raftable.status');

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# on_all($query, @nodes): "name=result, ..."
sub on_all
{
	my ($query, @n) = @_;
	@n = @nodes unless @n;
	return join(', ', map { $_->name . '=' . sql($_, $query) } @n);
}

sub same_on_all
{
	my ($want, @n) = @_;
	@n = @nodes unless @n;
	return join(', ', map { $_->name . "=$want" } @n);
}

# raftable.tables as "name:since_index,..." (relids differ between nodes)
sub tables_of
{
	my ($node) = @_;
	return sql($node,
		"SELECT coalesce(string_agg(table_name || ':' || since_index, ',' ORDER BY table_name), '') FROM raftable.tables");
}

sub replicated_names
{
	my ($node) = @_;
	return split /\n/, sql($node, 'SELECT table_name FROM raftable.tables ORDER BY table_name');
}

# every replicated table (as the leader lists them) has the leader's
# checksum on each node of @n
sub checksums_equal
{
	my ($what, @n) = @_;
	foreach my $t (replicated_names($leader))
	{
		is(on_all("SELECT raftable.table_checksum('$t')", @n),
			same_on_all(checksum($leader, $t), @n), "$what: $t has the leader's checksum on every node");
	}
	return;
}

# ticks($n): $n one-entry transactions on the leader
sub ticks
{
	my ($n) = @_;
	sql($leader, join('', map { "INSERT INTO ticks (note) VALUES ('tick');\n" } 1 .. $n));
	return;
}

# compact_past($idx): write one-entry transactions on the leader until its
# snapshot_index is past $idx; returns that snapshot_index, or undef
sub compact_past
{
	my ($idx, $what) = @_;
	my $si;
	wait_for(
		sub {
			$si = status_of($leader)->{snapshot_index};
			return 1 if $si > $idx;
			ticks(3);
			return 0;
		},
		$what, timeout => 30, interval => 0.01)
	  or return undef;
	return $si;
}

# raftable.snapshot_progress, ids as text, with the duration in seconds
my $progress_sql = q{SELECT phase, source_node_id::text AS source_node_id, source_index,
							tables_total, tables_done, current_table, rows_copied, bytes_copied,
							started_at, finished_at, error,
							extract(epoch FROM finished_at - started_at) AS seconds
					   FROM raftable.snapshot_progress};

sub progress_of
{
	my ($node) = @_;
	my @r = rows_of($node, $progress_sql);
	return $r[0];
}

# load($tbl, $from, $to): rows $from..$to into the (id int, t text) table,
# 50,000 per transaction (about 1.3 MB of change set, under the 4 MB limit)
sub load
{
	my ($tbl, $from, $to) = @_;
	for (my $i = $from; $i <= $to; $i += 50_000)
	{
		my $j = $i + 49_999 < $to ? $i + 49_999 : $to;
		sql($leader, "INSERT INTO $tbl SELECT g, substr(md5(g::text), 1, 16) FROM generate_series($i, $j) g",
			timeout => 120);
	}
	return;
}

# ---------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------

sql($leader, q{
CREATE TABLE ticks (id serial PRIMARY KEY, note text);
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE child (id int PRIMARY KEY,
					parent_id int NOT NULL REFERENCES parent (id) ON DELETE CASCADE,
					note text);
CREATE TABLE ser (id serial PRIMARY KEY, v text);
CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int NOT NULL,
					doubled int GENERATED ALWAYS AS (v * 2) STORED);
CREATE TABLE trunc_me (id int PRIMARY KEY, v text);
CREATE TABLE to_drop (id int PRIMARY KEY, v text);
CREATE TABLE to_unrep (id int PRIMARY KEY, v text);
CREATE TABLE big (id int PRIMARY KEY, t text NOT NULL);
CREATE TABLE stream (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
SELECT raftable.replicate_table('ticks');
SELECT raftable.replicate_table('parent');
SELECT raftable.replicate_table('child');
SELECT raftable.replicate_table('ser');
SELECT raftable.replicate_table('ident');
SELECT raftable.replicate_table('trunc_me');
SELECT raftable.replicate_table('to_drop');
SELECT raftable.replicate_table('to_unrep');
SELECT raftable.replicate_table('big');
SELECT raftable.replicate_table('stream');
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 10) g;
INSERT INTO child SELECT g, 1 + g % 10, 'c' || g FROM generate_series(1, 30) g;
INSERT INTO ser (v) SELECT 's' || g FROM generate_series(1, 20) g;
INSERT INTO ident (v) SELECT g FROM generate_series(1, 20) g;
INSERT INTO trunc_me SELECT g, 't' || g FROM generate_series(1, 15) g;
INSERT INTO to_drop SELECT g, 'd' || g FROM generate_series(1, 5) g;
INSERT INTO to_unrep SELECT g, 'u' || g FROM generate_series(1, 5) g;
});
ok(wait_applied(\@nodes, $leader), 'the tables are replicated and applied everywhere');
checksums_equal('setup');

# ---------------------------------------------------------------------------
# 1. a follower away while the leader writes, DDL, compaction
# ---------------------------------------------------------------------------

my ($away) = grep { $_ != $leader } @nodes;
my @present = grep { $_ != $away } @nodes;
my $away_applied = status_of($away)->{applied_index};
is(status_of($away)->{commit_index}, status_of($leader)->{commit_index},
	$away->name . ' has the leader\'s commit index before it stops');
$away->stop;

sql($leader, q{
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(11, 20) g;
INSERT INTO child SELECT g, 11 + g % 10, 'c' || g FROM generate_series(31, 60) g;
DELETE FROM parent WHERE id IN (1, 2);
UPDATE child SET note = note || ' moved' WHERE parent_id = 3;
INSERT INTO ser (v) SELECT 'away ' || g FROM generate_series(1, 30) g;
DELETE FROM ser WHERE id % 7 = 0;
INSERT INTO ident (v) SELECT 100 + g FROM generate_series(1, 25) g;
UPDATE ident SET v = v + 1000 WHERE id % 2 = 0;
ALTER TABLE ser ADD COLUMN flag int NOT NULL DEFAULT 7;
CREATE INDEX ser_v_idx ON ser (v);
ALTER TABLE parent ADD COLUMN extra text DEFAULT 'x';
UPDATE ser SET flag = 8 WHERE id > 40;
INSERT INTO ser (v, flag) VALUES ('with flag', 9);
TRUNCATE trunc_me;
INSERT INTO trunc_me VALUES (100, 'after truncate');
CREATE TABLE late (id bigserial PRIMARY KEY, v text NOT NULL);
INSERT INTO late (v) SELECT 'l' || g FROM generate_series(1, 10) g;
SELECT raftable.replicate_table('late');
INSERT INTO late (v) SELECT 'l' || g FROM generate_series(11, 25) g;
INSERT INTO to_unrep VALUES (6, 'replicated while away');
SELECT raftable.unreplicate_table('to_unrep');
INSERT INTO to_unrep VALUES (7, 'leader only');
DROP TABLE to_drop;
});
my $si = compact_past($away_applied, 'the leader compacts its log past the stopped follower');
ok(defined $si, "the leader's snapshot_index (" . ($si // 'none')
	  . ") passed the stopped follower's applied index ($away_applied)");
ok(wait_applied(\@present, $leader), 'the two running nodes applied everything');
my %leader_max = map { $_ => sql($leader, "SELECT max(id) FROM $_") } qw(ser ident late);

$away->start;
ok(wait_applied(\@nodes, $leader), $away->name . ' restarted: it applies up to the leader\'s commit index');
my $p = progress_of($away);
ok($p, $away->name . ': raftable.snapshot_progress has a row');
$p //= {};
is($p->{phase}, 'done', $away->name . ': the snapshot is done');
is($p->{source_node_id}, $leader_id, $away->name . ': the snapshot came from the leader');
my @ltables = replicated_names($leader);
is(scalar(@ltables), 9, 'the leader replicates nine tables (to_unrep unreplicated, to_drop dropped, late added)');
is($p->{tables_total}, scalar(@ltables), $away->name . ': tables_total is the number of replicated tables');
is($p->{tables_done}, $p->{tables_total}, $away->name . ': tables_done = tables_total');
cmp_ok($p->{rows_copied} // 0, '>', 0, $away->name . ': rows were copied');
cmp_ok($p->{source_index} // 0, '>', $away_applied, $away->name . ': from a source index past where it stopped');
is($p->{error}, undef, $away->name . ': no snapshot error');
cmp_ok(stats_of($away)->{snapshots_received}, '>=', 1, $away->name . ': raftable.stats.snapshots_received >= 1');
checksums_equal('after the snapshot to ' . $away->name);
is(on_all('SELECT count(*) FROM parent') . ' / ' . on_all('SELECT count(*) FROM child'),
	same_on_all(18) . ' / ' . same_on_all(54), 'parent and child rows after the ON DELETE CASCADE');
{
	my $t = tables_of($leader);
	like($t, qr/^big:\d+,child:\d+,ident:\d+,late:\d+,parent:\d+,ser:\d+,stream:\d+,ticks:\d+,trunc_me:\d+$/,
		"raftable.tables on the leader: $t");
	is(on_all(q{SELECT coalesce(string_agg(table_name || ':' || since_index, ',' ORDER BY table_name), '')
				  FROM raftable.tables}), same_on_all($t), 'raftable.tables is the same on every node');
}
is(sql($away, q{SELECT count(*) FROM raftable.tables WHERE table_name = 'to_unrep'}), '0',
	$away->name . ': the unreplicated table is not listed in raftable.tables');
is(sql($away, q{SELECT count(*) FROM pg_trigger WHERE tgrelid = 'to_unrep'::regclass AND tgname LIKE 'raftable%'}),
	'0', $away->name . ': its copy of the unreplicated table has no raftable trigger');
TODO:
{
	local $TODO = 'a snapshot leaves a table unreplicated while the node was away as it was before the entries it missed';
	my $other = $present[0] == $leader ? $present[1] : $present[0];
	is(sql($away, q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM to_unrep}),
		sql($other, q{SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM to_unrep}),
		$away->name . ': its copy of to_unrep holds the rows it had when unreplicated, as on ' . $other->name);
}
is(sql($away, q{SELECT count(*) FROM to_unrep WHERE id = 7}), '0',
	$away->name . ': the leader\'s write after unreplicate_table is not there');
{
	is(on_all(q{SELECT to_regclass('to_drop') IS NULL}), same_on_all('t'),
		'the table dropped while ' . $away->name . ' was away is gone on every node');
}
is(sql($away, q{SELECT count(*) FROM raftable.tables WHERE table_name = 'to_drop'}), '0',
	$away->name . ': the dropped table is not listed in raftable.tables');

# definitions that came with the snapshot
is(on_all(q{SELECT string_agg(attname || '=' || pg_get_expr(adbin, adrelid), ',' ORDER BY attname)
			  FROM pg_attrdef JOIN pg_attribute ON attrelid = adrelid AND attnum = adnum
			 WHERE adrelid = 'ser'::regclass}),
	same_on_all(q{flag=7,id=nextval('ser_id_seq'::regclass)}), 'ser: ADD COLUMN ... DEFAULT 7 and the serial default on every node');
is(on_all(q{SELECT indexdef FROM pg_indexes WHERE indexname = 'ser_v_idx'}),
	same_on_all('CREATE INDEX ser_v_idx ON public.ser USING btree (v)'), 'ser: the index created while away is on every node');
is(on_all(q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'parent'::regclass AND attname = 'extra' AND NOT attisdropped}),
	same_on_all(1), 'parent: the column added while away is on every node');
is(on_all(q{SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'child'::regclass AND contype = 'f'}),
	same_on_all('FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE'), 'child: the foreign key is on every node');
is(on_all(q{SELECT attidentity::text || attgenerated::text FROM pg_attribute WHERE attrelid = 'ident'::regclass AND attname = 'id'})
	  . ' / ' . on_all(q{SELECT attgenerated::text || ':' || pg_get_expr(adbin, adrelid) FROM pg_attribute
						  JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
						 WHERE attrelid = 'ident'::regclass AND attname = 'doubled'}),
	same_on_all('a') . ' / ' . same_on_all('s:(v * 2)'), 'ident: the identity and the stored generated column on every node');
is(on_all(q{SELECT count(*) FILTER (WHERE doubled <> v * 2) || ':' || count(*) FROM ident}),
	same_on_all('0:45'), 'ident: 45 rows whose generated column is right on every node');
is(on_all(q{SELECT string_agg(id || ':' || v, ',') FROM trunc_me}), same_on_all('100:after truncate'),
	'trunc_me: only the row inserted after the TRUNCATE, on every node');
is(sql($away, q{SELECT count(*) FROM late}), '25', $away->name . ': the table replicated while away, with its 25 rows');
foreach my $t (qw(ser ident late))
{
	my $seq = sql($away, "SELECT pg_sequence_last_value(pg_get_serial_sequence('$t', 'id')::regclass)");
	ok($seq ne '' && $seq >= $leader_max{$t},
		$away->name . ": the sequence of $t.id is at or past the leader's max id ($seq >= $leader_max{$t})");
}

# later writes go to it the usual way
sql($leader, q{
INSERT INTO parent (id, name) VALUES (21, 'after');
INSERT INTO child VALUES (61, 21, 'after');
INSERT INTO ser (v) VALUES ('after');
INSERT INTO ident (v) VALUES (7);
UPDATE late SET v = v || '!' WHERE id <= 5;
DELETE FROM trunc_me;
});
ok(wait_applied(\@nodes, $leader), 'writes after the snapshot are applied everywhere');
checksums_equal('writes after the snapshot');
is(on_all(q{SELECT count(*) FROM raftable.status WHERE apply_error IS NULL}), same_on_all(1), 'no apply error on any node');
is(sql($away, q{SELECT v || ':' || doubled FROM ident WHERE id = (SELECT max(id) FROM ident)}), '7:14',
	$away->name . ': the identity row inserted after the snapshot is there');
note(sprintf('part 1 done at %.1f s', time - $t_start));

# ---------------------------------------------------------------------------
# 2 and 3. a new node added after a large load, writes during its snapshot
# ---------------------------------------------------------------------------

my $big_n = 250_000;
load('big', 1, $big_n);
my $load_idx = status_of($leader)->{commit_index};
ok(defined compact_past($load_idx, 'the leader compacts the log past the load'),
	'the log is compacted past the 250,000 rows');
ok(wait_applied(\@nodes, $leader), "the $big_n rows are applied on the three members");
note(sprintf('loaded at %.1f s', time - $t_start));

# the writer: one INSERT per transaction, "ack N" once its COMMIT returned,
# until a row appears in stream_stop (a local table of the leader)
sql($leader, q{CREATE TABLE stream_stop (x int)});
my $dir = PostgreSQL::Test::Utils::tempdir();
my $stream_max = 50_000;
{
	open(my $fh, '>', "$dir/stream.sql") or die "$dir/stream.sql: $!";
	print $fh "\\timing on\n";
	for my $k (1 .. $stream_max)
	{
		print $fh "INSERT INTO stream (id) VALUES ($k);\n\\echo ack $k\n"
		  . "SELECT count(*) = 0 AS go FROM stream_stop \\gset\n\\if :go\n\\else\n\\quit\n\\endif\n";
	}
	close $fh;
}
my $stream = IPC::Run::start(
	[
		$leader->installed_command('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-d', $leader->connstr('postgres'), '-f', "$dir/stream.sql"
	],
	'<', '/dev/null', '>', "$dir/stream.out", '2>', "$dir/stream.err", IPC::Run::timeout(180));
ok(wait_for(sub { sql($leader, 'SELECT count(*) FROM stream') >= 20 }, 'the writer commits', timeout => 30),
	'the writer is committing on the leader');

my $sent_before = stats_of($leader)->{snapshots_sent};
add_node($leader, $n4, wait => 0);
@nodes = ($n1, $n2, $n3, $n4);

# the first snapshot the new node completes, while the writer writes
my $np;
{
	# the row is read in the same query that sees 'done': a next snapshot
	# may start right after
	my $pp = poller($n4);
	my $last = '';
	ok( wait_for(
			sub {
				$last = $pp->query(q{SELECT row_to_json(p) FROM (} . $progress_sql . q{) p});
				return $last =~ /"phase":"done"/;
			},
			$n4->name . ' completes a snapshot', timeout => 60, interval => 0.01),
		$n4->name . ' completed a snapshot while the writer was writing') or diag("last progress: $last");
	$pp->quit;
	$np = $last ne '' ? JSON::PP->new->decode($last) : {};
}
is($np->{phase}, 'done', $n4->name . ': raftable.snapshot_progress says done');
is($np->{source_node_id}, $leader_id, $n4->name . ': from the leader');
is($np->{tables_total}, scalar(replicated_names($leader)), $n4->name . ': with every replicated table');
is($np->{tables_done}, $np->{tables_total}, $n4->name . ': tables_done = tables_total');
cmp_ok($np->{rows_copied} // 0, '>=', $big_n, $n4->name . ": at least the $big_n rows of big were copied");
cmp_ok($np->{bytes_copied} // 0, '>', 16 * $big_n, $n4->name . ': bytes_copied is at least 16 per row of big');
is($np->{error}, undef, $n4->name . ': no snapshot error');
ok(wait_for(sub { stats_of($leader)->{snapshots_sent} > $sent_before }, 'the leader counts it'),
	'the leader counted the snapshot it sent, once installed');
my $snap_secs = $np->{seconds} // 0;
note(sprintf('snapshot to the new node, with the writer running: %d rows, %d bytes, %.3f s (finished_at - started_at)',
		$np->{rows_copied} // -1, $np->{bytes_copied} // -1, $snap_secs));

# the writer still writing, the new node should catch up and be promoted
{
	my $t0 = time;
	my $voter = wait_for(
		sub { (grep { $_->{node_name} eq $n4->name && $_->{voter} } nodes_of($leader)) ? 1 : 0 },
		$n4->name . ' promoted while the writer writes', timeout => 10);
	ok($voter, $n4->name . ' becomes a voter while the writer keeps writing');
	note(sprintf('%s: %s after %.1f s of writes, %d snapshots received',
			$n4->name, $voter ? 'a voter' : 'still a learner', time - $t0, stats_of($n4)->{snapshots_received}));
}

my $stream_now = sql($leader, 'SELECT count(*) FROM stream');
ok(wait_for(sub { sql($leader, 'SELECT count(*) FROM stream') >= $stream_now + 20 },
		'the writer goes on', timeout => 30),
	'the writer still commits after the snapshot');
sql($leader, 'INSERT INTO stream_stop VALUES (1)');
my $stream_ok = eval { $stream->finish; 1 };
ok($stream_ok, 'the writer stops when told') or do { diag($@); eval { $stream->kill_kill } };
is($stream->result(0), 0, 'the writer never got an error') or diag(slurp_file("$dir/stream.err"));

ok( wait_for(sub { (grep { $_->{node_name} eq $n4->name && $_->{voter} } nodes_of($leader)) ? 1 : 0 },
		$n4->name . ' promoted', timeout => 60),
	$n4->name . ' is a voter once the writes stop');
ok( wait_for(sub { status_of($n4)->{role} eq 'follower' }, $n4->name . ' knows it is a voter', timeout => 30),
	$n4->name . ' follows the leader as a voter');
is(join(',', map { $_->{node_name} . ':' . ($_->{voter} ? 'voter' : 'learner') } nodes_of($leader)),
	join(',', map { $_->name . ':voter' } sort { node_id($a) <=> node_id($b) } @nodes),
	'raftable.nodes on the leader: four voters');
cmp_ok(stats_of($n4)->{snapshots_received}, '>=', 1, $n4->name . ': raftable.stats.snapshots_received >= 1');

# what the writer was told
my (%acked, @lat);
{
	my $last_ms;
	foreach my $line (split /\n/, slurp_file("$dir/stream.out"))
	{
		if ($line =~ /^Time: ([\d.]+) ms/) { $last_ms = $1; }
		elsif ($line =~ /^ack (\d+)$/)
		{
			$acked{$1} = 1;
			push @lat, $last_ms if defined $last_ms;
			undef $last_ms;
		}
	}
}
my $nacked = scalar(keys %acked);
cmp_ok($nacked, '>=', 60, "the writer committed $nacked rows");
is(scalar(@lat), $nacked, 'a commit time for every acknowledged INSERT');
my ($max_ms) = sort { $b <=> $a } @lat;
$max_ms //= 0;
my $during = sql($leader, "SELECT count(*) FROM stream WHERE at BETWEEN '$np->{started_at}' AND '$np->{finished_at}'");
note(sprintf('writer: %d commits, %d of them during the snapshot; slowest commit %.1f ms, snapshot %.0f ms',
		$nacked, $during, $max_ms, $snap_secs * 1000));
cmp_ok($during, '>', 0, 'commits happened on the leader while the new node copied its snapshot');
ok($max_ms < 1000 * $snap_secs / 2,
	sprintf('no commit stalled: the slowest took %.1f ms, under half the snapshot\'s %.0f ms', $max_ms, $snap_secs * 1000));
ok(wait_applied(\@nodes, $leader), 'the four nodes applied everything');
is(on_all('SELECT count(*) FROM stream'), same_on_all($nacked),
	'every acknowledged row (and no other) is on every node');
is(on_all(q{SELECT count(*) || ':' || min(id) || ':' || max(id) FROM stream}),
	same_on_all("$nacked:1:$nacked"), 'stream holds ids 1..N on every node');
checksums_equal('the new node');
is(on_all(q{SELECT count(*) FROM raftable.status WHERE apply_error IS NULL}), same_on_all(1), 'no apply error on any node');
note(sprintf('parts 2 and 3 done at %.1f s', time - $t_start));

# ---------------------------------------------------------------------------
# 4. kill -9 of a follower in the middle of its snapshot
# ---------------------------------------------------------------------------

my ($victim) = grep { $_ != $leader && $_ != $n4 } @nodes;
my @rest = grep { $_ != $victim } @nodes;
my $old_count = sql($victim, 'SELECT count(*) FROM big');
is($old_count, $big_n, $victim->name . ": big holds $big_n rows before it stops");
my $victim_applied = status_of($victim)->{applied_index};
$victim->stop;

my $new_count = $big_n + 100_000;
load('big', $big_n + 1, $new_count);
ok(defined compact_past(status_of($leader)->{commit_index}, 'the leader compacts past the new rows'),
	'the log is compacted past the 100,000 new rows');
ok(wait_applied(\@rest, $leader), 'the three running nodes applied the new rows');

$victim->start;
my $vp = poller($victim);
my ($seen, $missed) = ('', 0);
my $caught = wait_for(
	sub {
		$seen = $vp->query(q{SELECT phase || ' ' || rows_copied || ' ' || coalesce(current_table, '-')
							   FROM raftable.snapshot_progress});
		return 1 if $seen =~ /^copying (\d+) / && $1 >= 20_000;
		$missed = 1 if $seen =~ /^(installing|done)/;
		return $missed;
	},
	$victim->name . ' copying its snapshot', timeout => 60, interval => 0.005);
$vp->quit;
$caught = 0 if $missed;
SKIP:
{
	skip("the copy was not caught in progress ($seen)", 2) unless $caught;
	my $pids = kill9_node($victim);
	kill 'KILL', @$pids;
	ok(wait_pids_gone($pids, $victim->name . ': every process is gone'),
		'kill -9 of ' . $victim->name . " (postmaster and children) while it copies ($seen)");
	note($victim->name . ": killed while the snapshot progress was: $seen");
	$victim->start;
	pass($victim->name . ' restarted after the crash');
}

# restarted: until its new snapshot is in, big has the old rows; then all
my $cp = poller($victim);
$cp->query(q{SET raftable.read_consistency = 'eventual'});
my (%counts, @errors);
my $obs = 0;
my $slowest_read = 0;
ok( wait_for(
		sub {
			my $q0 = time;
			my $r = eval {
				$cp->query(q{SELECT (SELECT count(*) FROM big) || ' ' ||
									coalesce((SELECT phase FROM raftable.snapshot_progress), 'none')}, 60);
			};
			unless (defined $r)
			{
				push @errors, $@;
				$cp = poller($victim);	# a fresh session after an error
				$cp->query(q{SET raftable.read_consistency = 'eventual'});
				return 0;
			}
			my ($c, $phase) = split / /, $r;
			$slowest_read = time - $q0 if time - $q0 > $slowest_read;
			$counts{$c}++;
			$obs++;
			return $phase eq 'done' && $c == $new_count;
		},
		$victim->name . ' installs a snapshot again', timeout => 60, interval => 0.01),
	$victim->name . ' installed a snapshot ' . ($caught ? 'after its restart' : 'at last'));
$cp->quit;
is(join(' | ', @errors), '', $victim->name . ': reading big while the snapshot is installed never fails');
my $counts = join(', ', map { "$_ rows: $counts{$_} times" } sort { $a <=> $b } keys %counts);
note(sprintf('%s: count(*) of big seen after the restart: %s; the slowest read took %.0f ms '
		  . '(a read waits while the snapshot is installed)', $victim->name, $counts, $slowest_read * 1000));
is(join(',', grep { $_ != $old_count && $_ != $new_count } keys %counts), '',
	$victim->name . ": big always held $old_count or $new_count rows, never a part ($obs reads: $counts)");
ok(wait_applied(\@nodes, $leader), 'every node applied the leader\'s commit index');
my $vpr = progress_of($victim) // {};
is($vpr->{phase} . ':' . $vpr->{source_node_id}, "done:$leader_id", $victim->name . ': snapshot done, from the leader');
note(sprintf('snapshot to %s after its crash, no writer: %d rows, %d bytes, %.3f s (finished_at - started_at)',
		$victim->name, $vpr->{rows_copied} // -1, $vpr->{bytes_copied} // -1, $vpr->{seconds} // -1));
cmp_ok($vpr->{rows_copied} // 0, '>=', $new_count, $victim->name . ": at least the $new_count rows of big were copied");
cmp_ok(stats_of($victim)->{snapshots_received}, '>=', 1, $victim->name . ': raftable.stats.snapshots_received >= 1 since the restart');
checksums_equal('after the crash in the middle of a snapshot');
is(on_all(q{SELECT count(*) FROM raftable.status WHERE apply_error IS NULL}), same_on_all(1), 'no apply error on any node');
is(on_all('SELECT count(*) FROM big'), same_on_all($new_count), "big holds $new_count rows on every node");

# replicate_table of a parent and its child in one statement, parent first
sql($leader, q{
CREATE TABLE fk_parent (id int PRIMARY KEY);
CREATE TABLE fk_child (id int PRIMARY KEY, p int REFERENCES fk_parent (id));
});
{
	my $e = sql_error($leader, q{SELECT raftable.replicate_table(t::regclass) FROM unnest(ARRAY['fk_parent', 'fk_child']) t});
	ok($e->{ok}, 'replicate_table of a parent, then of its child, in one SELECT')
	  or diag($e->{stderr});
}

foreach my $node (@nodes)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/PANIC:|TRAP:|was terminated by signal (?!9)/, $node->name . ': no crash in the server log');
}
note(sprintf('total %.1f s', time - $t_start));

$_->stop foreach @nodes;
done_testing();
