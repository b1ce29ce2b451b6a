# test/tap/002_cluster.pl
#	Forming a cluster: create_cluster on one node, add_node for the others
#	(3 nodes, then grown to 5, one of them added with wait => false and no
#	name), checked through raftable.status, raftable.nodes and
#	raftable.stats on every node; bad input to the membership functions on
#	the leader and on a follower; a conninfo that holds a password or
#	another secret is refused (22023), stores nothing, and stays out of
#	the server log.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use RaftableTest;

my @nodes = make_nodes(5);
my ($n1, $n2, $n3, $n4, $n5) = @nodes;
my @three = ($n1, $n2, $n3);

sub q_lit { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

# ---------------------------------------------------------------------------
# create_cluster
# ---------------------------------------------------------------------------

my $t   = time;
my $id1 = sql($n1,
	'SELECT raftable.create_cluster(' . q_lit(peer_conninfo($n1)) . ", 'node1')");
$n1->{raftable_id} = $id1;
like($id1, qr/^[1-9][0-9]*$/, "create_cluster returns a node id > 0 ($id1)");

my $el = wait_for(sub { status_of($n1)->{role} eq 'leader' },
	'node1 leads its new cluster', timeout => 30);
ok(defined $el, 'node1 becomes leader after create_cluster');
diag(sprintf('create_cluster: leader %.0f ms after the call', (time - $t) * 1000));
cmp_ok(time - $t, '<', 5, '... within a few election timeouts');

{
	my $s = status_of($n1);
	is($s->{node_id},   $id1,    'status: node_id is the id create_cluster returned');
	is($s->{node_name}, 'node1', 'status: node_name as given');
	ok(defined $s->{cluster_id} && $s->{cluster_id} != 0, 'status: a cluster id');
	cmp_ok($s->{term}, '>=', 1, 'status: term >= 1');
	is($s->{leader_id},   $id1,    'status: leader_id is itself');
	is($s->{leader_name}, 'node1', 'status: leader_name is its name');
	is($s->{leader_contact_ms}, 0, 'status: leader_contact_ms is 0 on the leader');

	my @m = nodes_of($n1);
	is(scalar @m, 1, 'nodes: one member');
	ok($m[0]{voter} && $m[0]{is_self} && $m[0]{role} eq 'leader',
		'nodes: itself, a voter, the leader');
	is($m[0]{node_id}, $id1, 'nodes: with its id');
}

# The worker's Raft core allocates in a memory context of its own, which
# pg_log_backend_memory_contexts() shows.
{
	my $offset = -s $n1->logfile;
	sql($n1,
		"SELECT pg_log_backend_memory_contexts(pid) FROM pg_stat_activity WHERE backend_type = 'raftable worker'"
	);
	my $used;
	wait_for(
		sub {
			($used) = slurp_file($n1->logfile, $offset) =~
			  /raftable core: \d+ total in \d+ blocks?; \d+ free \(\d+ chunks?\); (\d+) used/;
			defined $used;
		},
		'the worker logs its memory contexts',
		timeout => 30);
	# the configuration alone (64 members of 1 KiB) is far more than an
	# empty context's few hundred bytes
	cmp_ok($used // 0, '>', 65536,
		"the Raft core's memory is in the worker's 'raftable core' context");
}

my $e = sql_error($n1,
	'SELECT raftable.create_cluster(' . q_lit(peer_conninfo($n1)) . ')');
is($e->{sqlstate}, '55000', 'create_cluster on a node already in a cluster: 55000')
  or diag($e->{stderr});

# ---------------------------------------------------------------------------
# a conninfo that holds a secret: refused, nothing stored, not logged
# ---------------------------------------------------------------------------

{
	my $pw      = $RaftableTest::PASSWORD;
	my $before  = members_of($n1);
	my $user    = getpwuid($<);
	my @secrets = (
		[ 'password',    peer_conninfo($n4, password => $pw) ],
		[ 'sslpassword', peer_conninfo($n4) . " sslpassword=$pw" ],
		[ 'a URI with a password',
			"postgresql://$user:$pw\@127.0.0.1:" . $n4->port . '/postgres' ],
	);
	foreach my $s (@secrets)
	{
		my ($what, $ci) = @$s;
		for my $call (
			[ $n4, 'create_cluster', 'SELECT raftable.create_cluster(' . q_lit($ci) . ", 'node4')" ],
			[ $n1, 'add_node', 'SELECT raftable.add_node(' . q_lit($ci) . ", 'node4')" ],
			[ $n4, '_join', 'SELECT raftable._join(1, 2, \'node4\', ' . q_lit($ci) . ", '\\x00'::bytea)" ])
		{
			my ($node, $fn, $query) = @$call;
			$e = sql_error($node, $query);
			is($e->{sqlstate}, '22023', "$fn with $what: 22023") or diag($e->{stderr});
			like($e->{message}, qr/must not contain a password/, '... saying why');
			unlike($e->{stderr}, qr/\Q$pw\E/, '... without echoing the conninfo');
		}
	}
	is(status_of($n4)->{role}, 'none', 'node4 is still in no cluster');
	is(sql($n4, 'SELECT count(*) FROM raftable.node_state'), '0', '... and stored no identity');
	is(members_of($n1), $before, 'the membership is unchanged');
	foreach my $node ($n1, $n4)
	{
		unlike(slurp_file($node->logfile), qr/\Q$pw\E/,
			$node->name . ': the refused statements are not in the server log');
	}
}

# ---------------------------------------------------------------------------
# add_node
# ---------------------------------------------------------------------------

for my $node ($n2, $n3)
{
	my $t0 = time;
	my $id = add_node($n1, $node);
	diag(sprintf('add_node(%s, wait => true): %.0f ms', $node->name, (time - $t0) * 1000));
	like($id, qr/^[1-9][0-9]*$/, $node->name . ": add_node returns a node id > 0");
	my ($row) = grep { $_->{node_id} == $id } nodes_of($n1);
	ok($row && $row->{voter}, $node->name . ': a voter when add_node(wait => true) returns');
	is(status_of($node)->{node_id}, $id, $node->name . ': its own status has that id');
}
my %ids = map { $_->name => node_id($_) } @three;
is(scalar(keys %{ { reverse %ids } }), 3, 'three distinct node ids');

# check_cluster(\@nodes): the checks of a healthy, idle cluster
sub check_cluster
{
	my ($nodes) = @_;
	my $n = scalar @$nodes;
	my $leader = wait_converged($nodes);
	ok($leader, "$n nodes: exactly one leader, the others its followers, equal commit_index")
	  or return;
	my %want = map { node_id($_) => $_->name } grep { defined node_id($_) } @$nodes;
	my $lid = node_id($leader);

	# applied catches up with commit everywhere; the leader sees no lag
	ok( wait_for(
			sub {
				foreach my $node (@$nodes)
				{
					my $s = status_of($node);
					return 0 unless $s->{applied_index} == $s->{commit_index};
				}
				return !grep { !defined $_->{lag_entries} || $_->{lag_entries} != 0 }
				  nodes_of($leader);
			},
			'applied_index = commit_index, no lag',
			timeout => 30),
		"$n nodes: applied_index reaches commit_index everywhere, lag 0 on the leader");

	my @st = map { status_of($_) } @$nodes;
	my $ls = (grep { $_->{node_id} == $lid } @st)[0];
	is(scalar(grep { $_->{role} eq 'leader' } @st), 1, "$n nodes: one leader");
	is(scalar(grep { $_->{role} eq 'follower' } @st), $n - 1, "$n nodes: " . ($n - 1) . ' followers');
	is(scalar(grep { $_->{cluster_id} == $ls->{cluster_id} } @st), $n, "$n nodes: one cluster id");
	is(scalar(grep { $_->{term} == $ls->{term} } @st), $n, "$n nodes: one term");
	is(scalar(grep { ($_->{leader_id} // 0) == $lid } @st), $n, "$n nodes: all name the same leader_id");
	is(scalar(grep { ($_->{leader_name} // '') eq $leader->name } @st), $n,
		"$n nodes: all name the leader by its node_name");
	is(scalar(grep { $_->{commit_index} == $ls->{commit_index} } @st), $n, "$n nodes: equal commit_index");
	cmp_ok($ls->{commit_index}, '>=', $n, "$n nodes: commit_index counts the configuration entries");
	is(scalar(grep { $_->{last_log_index} >= $_->{commit_index} } @st), $n,
		"$n nodes: last_log_index >= commit_index");
	is(scalar(grep { $_->{snapshot_index} <= $_->{commit_index} } @st), $n,
		"$n nodes: snapshot_index <= commit_index");
	is(scalar(grep { $st[$_]{node_id} == node_id($nodes->[$_]) } 0 .. $#st), $n,
		"$n nodes: each status shows the node's own id");
	is(scalar(grep { $nodes->[$_]{raftable_default_name} || $st[$_]{node_name} eq $nodes->[$_]->name } 0 .. $#st),
		$n, "$n nodes: each status shows the node's own name");
	my @fc = map { $_->{leader_contact_ms} } grep { $_->{role} eq 'follower' } @st;
	is(scalar(grep { defined $_ && $_ >= 0 && $_ < 1000 } @fc), $n - 1,
		"$n nodes: followers heard from the leader within the last election timeout (@fc ms)");

	foreach my $i (0 .. $#$nodes)
	{
		my $node = $nodes->[$i];
		my $name = $node->name;
		my @m    = nodes_of($node);
		is(scalar @m, $n, "$name: raftable.nodes has $n rows");
		is(scalar(grep { $_->{voter} } @m), $n, "$name: all voters");
		is_deeply([ sort map { $_->{node_id} } @m ], [ sort keys %want ],
			"$name: the members' ids");
		my @self = grep { $_->{is_self} } @m;
		ok(@self == 1 && $self[0]{node_id} == node_id($node), "$name: is_self on its own row only");
		my @lrow = grep { $_->{role} eq 'leader' } @m;
		ok(@lrow == 1 && $lrow[0]{node_id} == $lid, "$name: the leader's row says leader");
		is(scalar(grep { $_->{role} eq 'follower' } @m), $n - 1, "$name: the other rows say follower");
		foreach my $r (@m)
		{
			my ($nd) = grep { node_id($_) == $r->{node_id} } @$nodes;
			next unless $nd;
			like($r->{conninfo} // '', qr/\bport='?@{[ $nd->port ]}\b/,
				"$name: member $r->{node_id}'s conninfo has its port");
			next if $nd->{raftable_default_name};
			is($r->{node_name}, $nd->name, "$name: member $r->{node_id} is named " . $nd->name);
		}
		if (node_id($node) == $lid)
		{
			is(scalar(grep { $_->{reachable} } @m), $n, "$name (leader): every member reachable");
			is(scalar(grep { defined $_->{match_index} && defined $_->{lag_entries} } @m), $n,
				"$name (leader): match_index and lag_entries known for every member");
			my @lc = map { $_->{last_contact_ms} } grep { !$_->{is_self} } @m;
			is(scalar(grep { defined $_ && $_ >= 0 && $_ < 1000 } @lc), $n - 1,
				"$name (leader): last_contact_ms of every follower below an election timeout (@lc)");
			is(scalar(grep { $_->{match_index} >= $ls->{commit_index} } grep { !$_->{is_self} } @m),
				$n - 1, "$name (leader): every follower's match_index reaches the commit index");
		}
		else
		{
			my @other = grep { !$_->{is_self} } @m;
			is(scalar(grep { !defined $_->{match_index} && !defined $_->{lag_entries} } @other),
				scalar @other,
				"$name (follower): match_index and lag_entries of others are NULL (only the leader knows)");
		}
	}

	# the counters move
	my %s0 = map { $_->name => stats_of($_) } @$nodes;
	ok( wait_for(
			sub { stats_of($leader)->{messages_sent} > $s0{ $leader->name }{messages_sent} },
			'messages_sent grows on the leader', timeout => 10),
		"$n nodes: messages_sent grows on the leader (heartbeats)");
	foreach my $f (grep { $_ != $leader } @$nodes)
	{
		ok( wait_for(
				sub {
					my $s = stats_of($f);
					$s->{messages_received} > $s0{ $f->name }{messages_received}
					  && $s->{messages_sent} > $s0{ $f->name }{messages_sent};
				},
				$f->name . ': messages_received and messages_sent grow', timeout => 10),
			$f->name . ': messages_received and messages_sent grow');
	}
	my @stats = map { stats_of($_) } @$nodes;
	is(scalar(grep { $_->{leader_changes} >= 1 } @stats), $n, "$n nodes: leader_changes >= 1 everywhere");
	cmp_ok((eval { my $x = 0; $x += $_->{elections} foreach @stats; $x }), '>=', 1,
		"$n nodes: at least one election counted");
	cmp_ok(stats_of($leader)->{commits}, '>=', 1, "$n nodes: the leader counted commits");
	return $leader;
}

my $leader = check_cluster(\@three);

# ---------------------------------------------------------------------------
# bad input, on the leader
# ---------------------------------------------------------------------------

sub members_of	# "id:name:voter" of every member, as $node sees them
{
	my ($node) = @_;
	return join(',', map { "$_->{node_id}:$_->{node_name}:" . ($_->{voter} ? 'v' : 'l') } nodes_of($node));
}

SKIP:
{
	skip 'no leader', 14 unless $leader;
	my $lname   = $leader->name;
	my $before  = members_of($leader);
	my $term    = status_of($leader)->{term};
	my @followers = grep { $_ != $leader } @three;

	my $closed = PostgreSQL::Test::Cluster::get_free_port();
	$e = sql_error($leader,
		"SELECT raftable.add_node('host=127.0.0.1 port=$closed dbname=postgres connect_timeout=5', 'ghost')");
	is($e->{sqlstate}, '08001', 'add_node with a conninfo that cannot connect: 08001')
	  or diag($e->{stderr});
	is(members_of($leader), $before, '... and the membership is unchanged');

	# node2, already a member
	$e = sql_error($leader,
		'SELECT raftable.add_node(' . q_lit(peer_conninfo($n2)) . ')');
	is($e->{sqlstate}, '55000', 'add_node of a node already in the cluster: 55000')
	  or diag($e->{stderr});
	is(members_of($leader), $before, '... and the membership is unchanged');

	$e = sql_error($leader, 'SELECT raftable.remove_node(12345)');
	is($e->{sqlstate}, '42704', 'remove_node of an unknown id: 42704') or diag($e->{stderr});
	$e = sql_error($leader, 'SELECT raftable.transfer_leadership(12345)');
	is($e->{sqlstate}, '42704', 'transfer_leadership to an unknown id: 42704') or diag($e->{stderr});
	$e = sql_error($leader, 'SELECT raftable.create_cluster('
		  . q_lit(peer_conninfo($leader)) . ')');
	is($e->{sqlstate}, '55000', 'create_cluster on the leader: 55000') or diag($e->{stderr});
	is(members_of($leader), $before, 'after the bad calls: membership unchanged');
	is(status_of($leader)->{role}, 'leader', '... and the leader still leads');

	# on a follower: RA002 with a HINT naming the leader
	my $f = $followers[0];
	my $fname = $f->name;
	for my $call (
		[ 'add_node', 'SELECT raftable.add_node(' . q_lit(peer_conninfo($n4)) . ')' ],
		[ 'remove_node', 'SELECT raftable.remove_node(' . node_id($followers[1]) . ')' ],
		[ 'transfer_leadership()', 'SELECT raftable.transfer_leadership()' ],
		[ 'transfer_leadership(id)', 'SELECT raftable.transfer_leadership(' . node_id($f) . ')' ])
	{
		$e = sql_error($f, $call->[1]);
		is($e->{sqlstate}, 'RA002', "$call->[0] on follower $fname: RA002") or diag($e->{stderr});
		like($e->{hint} // '', qr/\b\Q$lname\E\b/, "... with a HINT naming the leader $lname");
	}
	$e = sql_error($f, 'SELECT raftable.create_cluster('
		  . q_lit(peer_conninfo($f)) . ')');
	is($e->{sqlstate}, '55000', "create_cluster on follower $fname: 55000") or diag($e->{stderr});
	is(members_of($leader), $before, 'after the calls on the follower: membership unchanged');
	is(status_of($n4)->{role}, 'none', 'node4, named in a refused add_node, is still in no cluster');
	is(status_of($leader)->{term}, $term, 'no election happened meanwhile (same term)');
}

# ---------------------------------------------------------------------------
# five nodes: node4 with wait, node5 with wait => false and no name
# ---------------------------------------------------------------------------

$leader = wait_for_leader(\@three);
{
	my $t0  = time;
	my $id4 = add_node($leader, $n4);
	diag(sprintf('add_node(node4, wait => true): %.0f ms', (time - $t0) * 1000));
	like($id4, qr/^[1-9][0-9]*$/, 'node4 added');

	$t0 = time;
	my $id5 = add_node($leader, $n5, wait => 0, name => undef);
	$n5->{raftable_default_name} = 1;	# no name given: the node's own choice
	like($id5, qr/^[1-9][0-9]*$/, 'node5 added with wait => false: returns its id');
	my $promoted = wait_for(
		sub {
			my ($r) = grep { $_->{node_id} == $id5 } nodes_of($leader);
			return $r && $r->{voter};
		},
		'node5 becomes a voter', timeout => 30);
	ok(defined $promoted, 'node5 (wait => false) becomes a voter');
	diag(sprintf('add_node(node5, wait => false): voter after %.0f ms', (time - $t0) * 1000));
	my $s5 = status_of($n5);
	ok(defined $s5->{node_name} && $s5->{node_name} ne '',
		'node5, added without a name, has a default name (' . ($s5->{node_name} // 'NULL') . ')');
	my ($r5) = grep { $_->{node_id} == $id5 } nodes_of($leader);
	is($r5->{node_name}, $s5->{node_name}, '... the same in the leader\'s raftable.nodes');
}

$leader = check_cluster(\@nodes);

# ---------------------------------------------------------------------------
# no password in any server log, no crash
# ---------------------------------------------------------------------------

foreach my $node (@nodes)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/\Q$RaftableTest::PASSWORD\E/, $node->name . ': the password is not in the server log');
	unlike($log, qr/terminated by signal|PANIC:|TRAP:/, $node->name . ': no crash in the server log');
}

$_->stop foreach @nodes;
done_testing();
