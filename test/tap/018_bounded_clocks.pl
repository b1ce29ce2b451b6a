# test/tap/018_bounded_clocks.pl
#	Bounded reads when the nodes' clocks run at different rates
#	(libfaketime): the leader's wall clock runs twice as fast, a
#	follower's at half speed, the third node's at the real rate.  A
#	bounded read's proof is a read-index round timed on the reading node's
#	monotonic clock: no wall clock and no other node's clock enters it.
#	So a cut-off follower answers bounded reads for at most max_staleness
#	of real time after the round that proved them, and never after, on the
#	follower with the real clock and on the one whose wall clock runs at
#	half speed alike.  (libfaketime keeps a time base per process, so it
#	cannot slow one node's monotonic clock consistently across its
#	processes: the monotonic clock is left real here.  README states the
#	bound as holding to within the reading node's monotonic clock rate.)
#	Real time is this test's own clock.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use RaftableTest;
use RaftableProxy;

my $lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';
plan skip_all => "libfaketime is not installed ($lib)" unless -e $lib;

my @nodes = make_nodes(3, start => 0);
my %rate = (node1 => 'x2', node3 => 'x0.5');
foreach my $node (@nodes)
{
	local $ENV{LD_PRELOAD} = $rate{ $node->name } ? $lib : ($ENV{LD_PRELOAD} // '');
	local $ENV{FAKETIME} = '+0 ' . ($rate{ $node->name } // 'x1');
	local $ENV{FAKETIME_NO_CACHE} = '1';
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = '1';
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION raftable');
}
my $proxy = RaftableProxy->new(name => 'net');
form_cluster_via_proxy($proxy, @nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes whose clocks run at x2, x1 and x0.5 form a cluster') or BAIL_OUT('no cluster');

sql($leader, q{
	CREATE TABLE reg (k int PRIMARY KEY, v int NOT NULL);
	SELECT raftable.replicate_table('reg');
	INSERT INTO reg VALUES (1, 1);
});
ok(wait_applied(\@nodes, $leader), 'the table reaches every node');

# bounded_window($node): prove freshness with a bounded read, cut the node
# off, and read bounded until it refuses; returns (seconds of real time
# from the start of the proving read to the last bounded answer, seconds
# to the first refusal)
sub bounded_window
{
	my ($node) = @_;
	my $p = poller($node);
	$p->query(q{SET raftable.read_consistency = 'bounded'; SET raftable.max_staleness = '2s'; SET raftable.read_timeout = '200ms'});
	my $t0 = time;
	$p->query(q{SELECT v FROM reg WHERE k = 1});
	$proxy->isolate($node->name);
	my ($last_ok, $refused) = (0, undef);
	while (time - $t0 < 15)
	{
		my $t = time;
		my $v = eval { $p->query(q{SELECT v FROM reg WHERE k = 1}, 5) };
		if (defined $v)
		{
			$last_ok = time - $t0;
			next;
		}
		$refused = $t - $t0;
		last;
	}
	$p->quit;
	$proxy->heal;
	return ($last_ok, $refused);
}

my ($real) = grep { $_->name eq 'node2' } @nodes;
my ($slow) = grep { $_->name eq 'node3' } @nodes;
for my $case ([ $real, 1.0 ], [ $slow, 0.5 ])
{
	my ($node, $r) = @$case;
	if ($node == $leader)
	{
		pass($node->name . ' leads: nothing to measure');
		next;
	}
	my ($last_ok, $refused) = bounded_window($node);
	my $limit = 2;
	ok(defined $refused, sprintf('%s (clock x%s), cut off: bounded reads stop answering (after %.2f s)',
			$node->name, $r, $refused // -1));
	cmp_ok($last_ok, '<=', $limit + 0.3,
		sprintf('%s (wall clock x%s): the last bounded answer came %.2f s after the proof, within max_staleness = %.1f s of real time',
			$node->name, $r, $last_ok, $limit));
	cmp_ok($refused // 99, '>=', 1.5,
		sprintf('%s: ... and bounded reads answered until close to the bound (%.2f s), not for a wall-clock second only',
			$node->name, $refused // -1));
	ok(wait_applied(\@nodes, $leader), 'healed');
}

done_testing();
