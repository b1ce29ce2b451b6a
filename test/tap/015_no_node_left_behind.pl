# test/tap/015_no_node_left_behind.pl
#	What an honest user runs must not stop apply anywhere for good, and a
#	node that cannot apply an entry must not hold back what comes before it.
#
#	- an entry a follower cannot apply (ALTER TABLE ... OWNER TO a role the
#	  follower lacks) arrives in one batch behind good entries: those are
#	  applied, the failing one is retried alone, apply_error says why, and
#	  once the role exists apply goes on by itself;
#	- raftable's own tables, extension members and catalogs cannot be
#	  replicated;
#	- DDL that would break a replicated table's invariants is refused on the
#	  leader before anything reaches the log.
#	After each: every node's apply_error is NULL, a later write reaches
#	every node, and the checksums are equal.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my @nodes = make_nodes(3);
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three-node cluster formed') or BAIL_OUT('no cluster');
my @followers = grep { $_ != $leader } @nodes;

sql($leader, q{
	CREATE TABLE t (id int PRIMARY KEY, v text);
	SELECT raftable.replicate_table('t');
});

my $n = 0;
sub healthy
{
	my ($what) = @_;
	$n++;
	sql($leader, "INSERT INTO t VALUES (1000 + $n, 'after: $what')");
	ok(wait_applied(\@nodes, $leader), "$what: a later write reaches every node");
	my @sums = map { checksum($_, 't') } @nodes;
	is(scalar(grep { $_ eq $sums[0] } @sums), 3, "$what: t is equal on every node");
	is(scalar(grep { defined status_of($_)->{apply_error} } @nodes), 0,
		"$what: no node has an apply error");
}
healthy('setup');

# ---------------------------------------------------------------------------
# a failing entry holds back nothing before it
# ---------------------------------------------------------------------------

my $f = $followers[0];
my $hold = poller($f);
$hold->query('BEGIN; SELECT 1 FROM raftable.apply_state FOR UPDATE');
my $good = sql($leader, q{
	INSERT INTO t VALUES (1, 'good');
	SELECT raftable.last_write_index();
});
sql($leader, q{CREATE ROLE bob; ALTER TABLE t OWNER TO bob; INSERT INTO t VALUES (2, 'after bob')});
ok(wait_for(sub { status_of($leader)->{commit_index} > $good + 1 }, 'both entries committed'),
	'the good entry and the failing one are committed');
$hold->query('COMMIT');
$hold->quit;
ok(wait_for(sub {
		my $st = status_of($f);
		defined $st->{apply_error} && $st->{applied_index} >= $good },
		'the follower applies the good entry and reports the failing one'),
	'the entries before a failing one are applied without it');
my $st = status_of($f);
is($st->{applied_index}, $good, 'the follower stops right before the failing entry');
like($st->{apply_error}, qr/bob/, 'apply_error names the missing role');
is(sql($f, q{SELECT v FROM t WHERE id = 1}), 'good', 'the good row is there');
sql($_, q{CREATE ROLE bob}) foreach @followers;
healthy('a failing entry, once its role exists');
is(sql($f, q{SELECT tableowner FROM pg_tables WHERE tablename = 't'}), 'bob',
	'the follower\'s t is owned by bob, as on the leader');

# ---------------------------------------------------------------------------
# what can never be replicated
# ---------------------------------------------------------------------------

foreach my $t (qw(raftable.applied_marks raftable.log raftable.replicated pg_catalog.pg_class
	information_schema.sql_features))
{
	my $r = sql_error($leader, "SELECT raftable.replicate_table('$t')");
	is($r->{sqlstate}, '0A000', "replicate_table('$t') is refused with 0A000")
	  or diag($r->{stderr});
}
healthy('own tables and catalogs refused');

# ---------------------------------------------------------------------------
# DDL that would break a replicated table, refused before the log
# ---------------------------------------------------------------------------

sql($leader, q{
	CREATE SEQUENCE freeseq;
	CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
	CREATE TABLE parent (id int PRIMARY KEY);
});
foreach my $case (
	[ q{ALTER TABLE t DROP CONSTRAINT t_pkey},                        '42P16' ],
	[ q{ALTER TABLE t DROP COLUMN id},                                '42P16' ],
	[ q{ALTER TABLE t ALTER COLUMN v SET DEFAULT nextval('freeseq')}, '0A000' ],
	[ q{ALTER TABLE t ADD COLUMN n bigint; ALTER TABLE t ALTER COLUMN n SET DEFAULT nextval('freeseq')}, '0A000' ],
	[ q{ALTER TABLE t INHERIT parent},                                '0A000' ],
	[ q{ALTER TABLE parted ATTACH PARTITION t FOR VALUES FROM (0) TO (1000000)}, '0A000' ],
	[ q{CREATE TABLE child () INHERITS (t)},                          '0A000' ],
	[ q{CREATE TABLE tpart PARTITION OF t FOR VALUES FROM (0) TO (10)}, '0A000' ],
	[ q{DROP TABLE t, parent},                                        '0A000' ])
{
	my ($stmt, $code) = @$case;
	my $r = sql_error($leader, $stmt);
	is($r->{sqlstate}, $code, "$stmt: refused with $code") or diag($r->{stderr});
	if ($stmt =~ /^DROP TABLE t, parent/)
	{
		like($r->{hint} // '', qr/statement of its own/, '... with a hint that says what to do');
		unlike($r->{hint} // '', qr/CONCURRENTLY/, '... and does not speak of CONCURRENTLY');
	}
}
is(sql($leader, q{SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'p'}),
	'1', 't still has its primary key');
healthy('invariant-breaking DDL refused');

done_testing();
