# test/tap/012_abandoned_entry.pl
#	A transaction that gives up on its entry (40003: not committed within
#	raftable.write_timeout) while its node stays the leader: the entry may
#	still commit, and does here.  A later transaction writing the same row
#	must not commit ahead of it: it waits until the abandoned entry is
#	applied, then meets its row (23505).  Every node ends with the first
#	transaction's row and no apply error.
#
#	The followers are held up by locking their raftable.log for a while
#	(their Raft workers wait to persist the entry), shorter than the
#	election timeout, which is 3 s here, so that the leader keeps leading.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use RaftableTest;

my @nodes = make_nodes(3, conf => "raftable.election_timeout = 3000\n");
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes formed a cluster') or BAIL_OUT('no cluster');
my @followers = grep { $_ != $leader } @nodes;
my $term = status_of($leader)->{term};

sql($leader, q{
CREATE TABLE t (id int PRIMARY KEY, v text);
SELECT raftable.replicate_table('t');
});
ok(wait_applied(\@nodes, $leader), 't is replicated everywhere');

# hold up both followers' log writes
my @locks = map { poller($_) } @followers;
$_->query('BEGIN; LOCK TABLE raftable.log IN ACCESS EXCLUSIVE MODE') foreach @locks;

# A: gives up after 300 ms, its entry appended on the leader
my $a = sql_error($leader, q{SET raftable.write_timeout = '300ms'; INSERT INTO t VALUES (2, 'A')});
is($a->{sqlstate}, '40003', 'A: the outcome is unknown after raftable.write_timeout (40003)')
  or diag($a->{stderr});

# B: the same key, while A's entry is still pending
my ($bout, $berr) = ('', '');
my $b = IPC::Run::start(
	[
		$leader->installed_command('psql'), '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-v', 'VERBOSITY=verbose', '-d', $leader->connstr('postgres'),
		'-c', q{INSERT INTO t VALUES (2, 'B')}
	],
	'<', \'', '>', \$bout, '2>', \$berr, IPC::Run::timeout(60));

$_->query('COMMIT') foreach @locks;
$_->quit foreach @locks;

eval { $b->finish };
like($berr, qr/23505/, 'B waited for A\'s entry to be applied, then met its row (23505)')
  or diag("B: out '$bout' err '$berr'");
is(status_of($leader)->{term}, $term, 'the leader kept leading throughout');

ok(wait_applied(\@nodes, $leader), 'every node applied everything');
foreach my $n (@nodes)
{
	is(sql($n, q{SELECT string_agg(id || ':' || v, ',') FROM t}), '2:A',
		$n->name . ": A's row, committed by the log, and no other");
	is(status_of($n)->{apply_error}, undef, $n->name . ': no apply error');
}

# writes go on
sql($leader, q{INSERT INTO t VALUES (3, 'C')});
ok(wait_applied(\@nodes, $leader), 'a later write is applied everywhere');
is(sql($_, q{SELECT count(*) FROM t}), '2', $_->name . ': two rows') foreach @nodes;

$_->stop foreach @nodes;
done_testing();
