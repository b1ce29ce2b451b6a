# test/tap/005_partition.pl
#	Real network partitions between three nodes, with the default timeouts.
#	Every node is reached by its peers through a fault-injecting TCP proxy
#	(RaftableProxy.pm: it tells peer connections apart by their
#	application_name, raftable-node-<id>) that blackholes the connections
#	of a cut-off node in both directions without closing them.  Test
#	clients connect to the nodes directly.
#
#	- a follower cut off: the leader keeps leading; healed, the follower
#	  rejoins without disturbing it (pre-vote: same leader, same term);
#	- the leader cut off: it steps down by itself (check-quorum; the time is
#	  printed), the majority elects another leader (time printed); healed,
#	  the old leader rejoins as a follower with the others' commit_index.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use RaftableTest;
use RaftableProxy;

my @nodes = make_nodes(3);
my $proxy = RaftableProxy->new(name => 'net');
my %pport = map { $_->name => $proxy->add_listener($_->name, $_->port) } @nodes;
$proxy->start;

my %ids = form_cluster(@nodes,
	{ conninfo => sub { peer_conninfo($_[0], port => $pport{ $_[0]->name }) } });
$proxy->set_ids(%ids);
my %by_id = map { node_id($_) => $_ } @nodes;

my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes, connected through the proxy, formed a cluster')
  or BAIL_OUT('no cluster');

# the partition is only real if the peers' connections go through the proxy
# and say who they are
ok( wait_for(
		sub {
			my $log = slurp_file($proxy->logfile);
			return !grep { $log !~ /from $_ \(application_name raftable-node-$_\b/ } values %ids;
		},
		'peer connections of every node seen by the proxy', timeout => 10),
	'the proxy sees each node\'s peer connections, named raftable-node-<id>');
is_deeply([ sort map { $_->{conninfo} =~ /\bport='?(\d+)/ ? $1 : 0 } nodes_of($leader) ],
	[ sort values %pport ], 'the members\' conninfos point at the proxy');

# poll_role($node, $cond, $timeout) -> ms until $cond->(role) holds, or undef
sub poll_role
{
	my ($nodes, $cond, $timeout) = @_;
	my @p  = map { poller($_) } @$nodes;
	my $t0 = time;
	my $hit;
	while (time - $t0 < $timeout)
	{
		for my $i (0 .. $#p)
		{
			my $role = eval { $p[$i]->query('SELECT role FROM raftable.status') } // '';
			if ($cond->($role))
			{
				$hit = $nodes->[$i];
				last;
			}
		}
		last if $hit;
		usleep(10_000);
	}
	my $ms = (time - $t0) * 1000;
	$_->quit foreach @p;
	return $hit ? ($ms, $hit) : (undef, undef);
}

# ---------------------------------------------------------------------------
# a follower cut off
# ---------------------------------------------------------------------------

{
	my $ls   = status_of($leader);
	my ($f)  = grep { $_ != $leader } @nodes;
	my $fid  = node_id($f);
	my @majority = grep { $_ != $f } @nodes;

	$proxy->isolate($f->name);
	note('isolated follower ' . $f->name);

	# observed, not slept: the leader goes 3 election timeouts without
	# hearing from the follower
	my $r;
	ok( wait_for(
			sub {
				($r) = grep { $_->{node_id} == $fid } nodes_of($leader);
				return ($r->{last_contact_ms} // 0) > 3000;
			},
			'the leader\'s last_contact_ms of ' . $f->name . ' past 3 s', timeout => 30),
		'the leader\'s raftable.nodes: last_contact_ms of the cut-off follower grows past 3 s');
	ok(!$r->{reachable}, '... and it is not reachable') or diag(explain $r);
	my $fst = status_of($f);
	note('cut-off follower: ', explain($fst));
	cmp_ok($fst->{leader_contact_ms} // -1, '>', 2000,
		'the cut-off follower\'s own leader_contact_ms shows it has not heard from a leader for seconds ('
		  . ($fst->{leader_contact_ms} // 'NULL') . ", role $fst->{role})");
	# "every figure in a view is the real, current value": both sides lost
	# contact at the cut (within a heartbeat), so the follower's age of its
	# last leader contact and the leader's age of its last contact with the
	# follower must stay close, sampled every 100 ms for a second
	{
		my ($worst, @pairs) = (0);
		for (1 .. 10)
		{
			my ($lr) = grep { $_->{node_id} == $fid } nodes_of($leader);
			my $fl = status_of($f)->{leader_contact_ms};
			my $d = defined $fl ? abs(($lr->{last_contact_ms} // 0) - $fl) : 1e9;
			push @pairs, ($lr->{last_contact_ms} // 'NULL') . '/' . ($fl // 'NULL');
			$worst = $d if $d > $worst;
			usleep(100_000);	# sampling cadence, not synchronisation
		}
		cmp_ok($worst, '<', 400,
			"the cut-off follower's leader_contact_ms is current: within 400 ms of the leader's "
			  . "last_contact_ms for it, 10 samples (leader/follower ms: @pairs)");
	}
	my $s = status_of($leader);
	is($s->{role}, 'leader', 'the leader keeps leading with the other follower');
	is($s->{term}, $ls->{term}, '... in the same term');
	isnt(status_of($f)->{role}, 'leader', 'the cut-off follower does not lead');
	ok(wait_converged(\@majority, timeout => 10), 'the majority side is consistent');

	$proxy->heal;
	note('healed');
	my $l = wait_converged(\@nodes, timeout => 30);
	ok($l, 'healed: one leader, followers, equal commit_index');
	ok($l && $l == $leader, '... the same leader (the rejoining follower did not depose it)');
	is(status_of($leader)->{term}, $ls->{term}, '... in the same term (pre-vote)');
	$leader = $l // $leader;
}

# ---------------------------------------------------------------------------
# the leader cut off
# ---------------------------------------------------------------------------

{
	$leader = wait_converged(\@nodes);
	my $old    = $leader;
	my $old_st = status_of($old);
	my @rest   = grep { $_ != $old } @nodes;

	$proxy->isolate($old->name);
	my $t0 = time;
	note('isolated leader ' . $old->name);

	my ($down_ms) = poll_role([$old], sub { $_[0] ne 'leader' }, 30);
	ok(defined $down_ms, 'the cut-off leader steps down by itself');
	diag(sprintf('cut-off leader %s stepped down after %.0f ms', $old->name, $down_ms // -1));
	cmp_ok($down_ms // 1e9, '<', 5000, '... within a few election timeouts');

	my ($new_ms, $new) = poll_role(\@rest, sub { $_[0] eq 'leader' }, 30);
	ok($new, 'the majority elects another leader');
	my $since_cut = (time - $t0) * 1000;
	diag(sprintf('majority side: new leader %s by %.0f ms after the cut',
		$new ? $new->name : 'none', $since_cut));

	if ($new)
	{
		cmp_ok(status_of($new)->{term}, '>', $old_st->{term}, '... in a higher term');
		my $l = wait_converged(\@rest, timeout => 10);
		ok($l && $l == $new, '... followed by the other node');
	}
	isnt(status_of($old)->{role}, 'leader', 'the cut-off old leader does not lead meanwhile');

	$proxy->heal;
	my $t1 = time;
	note('healed');
	my $l = wait_converged(\@nodes, timeout => 30);
	ok($l, 'healed: one leader, followers, equal commit_index');
	diag(sprintf('healed: converged after %.0f ms', (time - $t1) * 1000));
	ok($l && $l != $old, '... and the old leader rejoined as a follower');
	is(status_of($old)->{role}, 'follower', $old->name . ' is a follower');
	if ($l)
	{
		my $ls = status_of($l);
		my $os = status_of($old);
		is($os->{commit_index}, $ls->{commit_index}, $old->name . ' has the same commit_index');
		is($os->{term}, $ls->{term}, $old->name . ' has the same term');
		cmp_ok($os->{commit_index}, '>', $old_st->{commit_index},
			$old->name . ' got the entries committed while it was cut off');
	}
}

foreach my $node (@nodes)
{
	unlike(slurp_file($node->logfile), qr/PANIC:|TRAP:|terminated by signal/,
		$node->name . ': no crash in the server log');
}

$_->stop foreach @nodes;
$proxy->stop;
done_testing();
