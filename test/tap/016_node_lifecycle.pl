# test/tap/016_node_lifecycle.pl
#	A node's life outside the happy path:
#
#	- a node removed with remove_node while it was down learns it when it
#	  comes back (a member answers its messages with a committed
#	  configuration that leaves it out), leaves on its own instead of
#	  campaigning forever, keeps its tables as ordinary local tables, and
#	  can be added again with add_node without dropping the extension;
#	  until its first snapshot is in, strong and bounded reads there wait
#	  rather than answer from the rows of its old life;
#	- a node whose data directory is a copy (pg_basebackup of a member) or
#	  was restored to an earlier point (a new timeline) does not take part
#	  with the identity it was copied with: it forgets it, and add_node can
#	  add it as a new node;
#	- a node added later starts from a snapshot, so an old entry naming a
#	  role that was dropped everywhere since cannot stop it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my @nodes = make_nodes(3, allows_streaming => 1);
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three-node cluster formed') or BAIL_OUT('no cluster');
my @followers = grep { $_ != $leader } @nodes;

sql($leader, q{
	CREATE TABLE t (id int PRIMARY KEY, v text);
	SELECT raftable.replicate_table('t');
	INSERT INTO t VALUES (1, 'one');
});
ok(wait_applied(\@nodes, $leader), 'a first row reaches every node');

# ---------------------------------------------------------------------------
# removed while down
# ---------------------------------------------------------------------------

my $gone = $followers[1];
my $gone_id = node_id($gone);
my $cluster_id = status_of($leader)->{cluster_id};
$gone->stop('fast');
my ($ret, $out, $err) = $leader->psql('postgres', "SELECT raftable.remove_node($gone_id)");
is($ret, 0, 'remove_node of a node that is down works');
like($err, qr/could not tell node $gone_id/, '... warning that the node could not be told');
is(scalar(grep { $_->{node_id} == $gone_id } nodes_of($leader)), 0, '... and it is no member any more');
my @members = grep { $_ != $gone } @nodes;
sql($leader, q{INSERT INTO t VALUES (2, 'while it was away')});
ok(wait_applied(\@members, $leader), 'the two members go on');

$gone->start;
ok(wait_for(sub { !defined status_of($gone)->{node_id} }, 'the removed node leaves'),
	'a node removed while it was down learns it on return, and leaves');
my $st = status_of($gone);
is($st->{role}, 'none', '... its role is none');
ok(!defined $st->{cluster_id}, '... and it shows no cluster id');
is(scalar(nodes_of($gone)), 0, '... nor any member');
like(slurp_file($gone->logfile), qr/this node was removed from cluster $cluster_id/,
	'... and its log says why');
is(sql($gone, q{SELECT count(*) FROM t}), '1', 'its table keeps its rows');
sql($gone, q{INSERT INTO t VALUES (100, 'local')});
is(sql($gone, q{SELECT v FROM t WHERE id = 100}), 'local', '... and is an ordinary local table');
is(status_of($leader)->{role}, 'leader', 'the leader was not disturbed');

# Added back, it learns which tables are replicated from its first
# snapshot; until it has installed it, t is a local table to its catalog
# while holding the rows of its old life.  Strong and bounded reads must
# not answer from them: hold the snapshot back before it touches t here
# (a member, as its source, first reads its raftable.apply_state, which we
# lock there) and read.
my @holds = map {
	my $p = poller($_);
	$p->query('BEGIN');
	$p->query('LOCK TABLE raftable.apply_state');
	$p
} @members;
add_node($leader, $gone, wait => 0);
ok(node_id($gone) != $gone_id, 'add_node adds it again, without DROP EXTENSION, with a new id');
ok( wait_for(
		sub { (sql($gone, 'SELECT phase FROM raftable.snapshot_progress') // '') eq 'connecting' },
		'the added node asks for its snapshot'),
	'added back, it waits for its snapshot, held back by a lock at its source');
for my $level ('strong', 'bounded')
{
	my $err = sql_error($gone,
		"SET raftable.read_consistency = '$level'; SET raftable.read_timeout = 300; SELECT count(*) FROM t");
	is($err->{sqlstate}, 'RA001',
		"a $level read of t fails with RA001 before the snapshot, rather than answer from the old rows")
	  or diag explain $err;
}
is(sql($gone, q{SET raftable.read_consistency = 'eventual'; SELECT count(*) FROM t}), '2',
	'an eventual read answers from the rows it has (as README says)');
$_->query('COMMIT'), $_->quit for @holds;
is(sql($gone, q{SELECT string_agg(id::text, ',' ORDER BY id) FROM t}), '1,2',
	'once the snapshot is in, a strong read shows the cluster\'s rows');
push @members, $gone;
sql($leader, q{INSERT INTO t VALUES (3, 'after the return')});
ok(wait_applied(\@members, $leader), 'a later write reaches every node');
my @sums = map { checksum($_, 't') } @members;
is(scalar(grep { $_ eq $sums[0] } @sums), 3, 't is equal on every node (its local row is gone)');

# ---------------------------------------------------------------------------
# copies and restores of a member's data directory
# ---------------------------------------------------------------------------

$leader = wait_converged(\@members);
my @f = grep { $_ != $leader } @members;
my $orig = $f[0];
my $orig_id = node_id($orig);
my $term = status_of($leader)->{term};

$orig->restart;
ok(wait_for(sub { (status_of($orig)->{node_id} // 0) == $orig_id }, 'a restarted member keeps its identity'),
	'a member restarted in place keeps its identity (its anchors hold)');
is(sql($orig, q{SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'raftable_node_' || (SELECT node_id FROM raftable.status)::text AND restart_lsn IS NULL}),
	'1', '... anchored by a slot that holds back no WAL');

$orig->backup('copy');
my $clone = PostgreSQL::Test::Cluster->new('clone');
$clone->init_from_backup($orig, 'copy');
$clone->start;
ok(wait_for(sub { !defined status_of($clone)->{node_id} }, 'the copy forgets its identity'),
	'a pg_basebackup copy of a member does not take part as that member');
like(slurp_file($clone->logfile), qr/this data directory is a copy or was restored: node $orig_id forgets/,
	'... its log says so');
like(slurp_file($clone->logfile), qr/Replication slot "raftable_node_$orig_id", created with its identity, is missing/,
	'... and why');
is(status_of($orig)->{node_id}, $orig_id, 'the original keeps its identity');
is(status_of($leader)->{term}, $term, 'the leader\'s term did not move');
add_node($leader, $clone);
push @members, $clone;
sql($leader, q{INSERT INTO t VALUES (4, 'with the copy as a new node')});
ok(wait_applied(\@members, $leader), 'the copy added as a new node applies a later write');
is(scalar(grep { $_->{node_id} == $orig_id } nodes_of($leader)), 1, '... and the original is still a member');

# a standby of a member, promoted: a new timeline (its slot copied by hand,
# as a file-level backup would)
my $other = $f[1];
my $other_id = node_id($other);
$other->backup('standby');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($other, 'standby', has_streaming => 1);
PostgreSQL::Test::RecursiveCopy::copypath($other->data_dir . "/pg_replslot/raftable_node_$other_id",
	$standby->data_dir . "/pg_replslot/raftable_node_$other_id");
$standby->start;
$standby->promote;
ok(wait_for(sub { !defined status_of($standby)->{node_id} }, 'the promoted standby forgets its identity'),
	'a member\'s data directory on a new timeline does not take part as that member');
like(slurp_file($standby->logfile), qr/given on timeline 1; the server is on timeline 2/,
	'... its log says it is on another timeline');
is(status_of($other)->{node_id}, $other_id, 'the member it came from keeps its identity');
sql($leader, q{INSERT INTO t VALUES (5, 'after the restores')});
ok(wait_applied(\@members, $leader), 'the cluster goes on');

# ---------------------------------------------------------------------------
# a node added later starts from the tables as they are, not old entries
# ---------------------------------------------------------------------------

# an entry that names a role every member had then, and none has now
sql($_, q{CREATE ROLE bob}) foreach @members;
sql($leader, q{ALTER TABLE t OWNER TO bob});
ok(wait_applied(\@members, $leader), 'an owner change that every member can apply');
sql($leader, q{ALTER TABLE t OWNER TO CURRENT_USER});
ok(wait_applied(\@members, $leader), '... and back');
sql($_, q{DROP ROLE bob}) foreach @members;
my ($late) = make_nodes(1, prefix => 'late');
add_node($leader, $late);
push @members, $late;
sql($leader, q{INSERT INTO t VALUES (6, 'after the late node')});
ok(wait_applied(\@members, $leader), 'a node added later, without a role an old entry names, applies a later write');
ok(!defined status_of($late)->{apply_error}, '... with no apply error');
cmp_ok(stats_of($late)->{snapshots_received}, '>=', 1, '... having started from a snapshot');
@sums = map { checksum($_, 't') } @members;
is(scalar(grep { $_ eq $sums[0] } @sums), scalar(@members), 't is equal on every node');

done_testing();
