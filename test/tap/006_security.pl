# test/tap/006_security.pl
#	The peer entry points under attack and under least privilege.
#
#	- malformed bytes given to raftable._deliver (as superuser, on the
#	  leader and on a follower): an ERROR (22P03), the server stays up, the
#	  cluster is not disturbed;
#	- well-formed messages (built from the codec's documented layout) that
#	  carry another cluster's id, or come from a node that is no member,
#	  with a huge term or a TimeoutNow: ignored (no term change, no
#	  election);
#	- the messages of another cluster arriving for real: a node's proxy is
#	  pointed at a node of a second cluster, which must not be disturbed;
#	- an ordinary role may call none of _deliver, _join, _leave (42501); a
#	  role granted EXECUTE on them gets past the privilege check (malformed
#	  bytes: 22P03), and cannot make a member leave (42501: it is bound
#	  to no member) or join elsewhere;
#	- a cluster whose peers connect as such a non-superuser role works.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use RaftableTest;
use RaftableProxy;

my @a = make_nodes(3, prefix => 'a');
my @b = make_nodes(2, prefix => 'b');

my $proxy = RaftableProxy->new(name => 'net');
my %pport = map { $_->name => $proxy->add_listener($_->name, $_->port) } @a;
$proxy->start;

# cluster A through the proxy, as the superuser
my %ids = form_cluster(@a,
	{ conninfo => sub { peer_conninfo($_[0], port => $pport{ $_[0]->name }) } });
$proxy->set_ids(%ids);
my $leader = wait_converged(\@a);
ok($leader, 'cluster A (a1, a2, a3) formed') or BAIL_OUT('no cluster');

my $user = getpwuid($<);

sub q_lit { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

sub hex_of { return '\\x' . unpack('H*', $_[0]) }

# snapshot($nodes): what must not change: leader, term, members, cluster id
sub snapshot
{
	my ($nodes) = @_;
	return join(' | ',
		map {
			my $s = status_of($_);
			my $m = join(',', map { "$_->{node_id}" . ($_->{voter} ? 'v' : 'l') } nodes_of($_));
			$_->name . ": $s->{role} c=$s->{cluster_id} t=$s->{term} l=" . ($s->{leader_id} // 0) . " m=$m"
		} @$nodes);
}

# settle($node, $n): wait until $node's leader has sent $n more messages,
# so that what was delivered before has been processed long since
sub settle
{
	my ($nodes, $n) = @_;
	my $l = leader_of($nodes) or return;
	my $s0 = stats_of($l)->{messages_sent};
	wait_for(sub { stats_of($l)->{messages_sent} >= $s0 + $n },
		"$n messages from the leader", timeout => 30);
	return;
}

# ---------------------------------------------------------------------------
# malformed bytes, as superuser
# ---------------------------------------------------------------------------

my $before = snapshot(\@a);
my ($f) = grep { $_ != $leader } @a;
my $fpid = $f->{_pid};

# Malformed messages carry the real cluster id, so that a check of the
# cluster id alone cannot be what refuses them.
my $cid0 = status_of($leader)->{cluster_id};
my $hdr  = sub {	# the 12 first bytes of a message: magic, version, type, cluster id
	my ($magic, $version, $type) = @_;
	return pack('a2 C C q<', $magic, $version, $type, $cid0);
};
srand(20240606);
my @garbage = (
	[ '\x00', 'one zero byte' ],
	[ '\x0000000000', 'a zero-length message and a stray byte' ],
	[ '\xffffffff', 'a batch length far beyond the data' ],
	[ '\x05000000524601', 'a truncated message' ],
	[ hex_of(join('', map { chr(int rand 256) } 1 .. 64)), '64 random bytes' ],
	[ hex_of(join('', map { chr(int rand 256) } 1 .. 4096)), '4096 random bytes' ],
	[ hex_of(pack('V', 99) . $hdr->('RF', 1, 250) . ("\0" x 87)), 'an unknown message type' ],
	[ hex_of(pack('V', 99) . $hdr->('XX', 1, 3) . ("\0" x 87)), 'a wrong magic' ],
	[ hex_of(pack('V', 98) . $hdr->('RF', 1, 3) . ("\0" x 86)), 'a message one byte short' ],
	[ hex_of(pack('V', 100) . $hdr->('RF', 1, 3) . ("\0" x 88)), 'a message with a trailing byte' ],
	[ hex_of(pack('V', 99) . $hdr->('RF', 77, 3) . ("\0" x 87)), 'an unknown codec version', qr/^(22P03|0A000)$/ ],
);
foreach my $target ($leader, $f)
{
	my $tn = $target == $leader ? 'leader' : 'follower';
	foreach my $g (@garbage)
	{
		my ($bytes, $what, $codes) = @$g;
		my $e = sql_error($target, "SELECT raftable._deliver('$bytes'::bytea)");
		ok(!$e->{ok}, "$tn: _deliver of $what fails");
		like($e->{sqlstate} // '', $codes // qr/^22P03$/, "... with " . ($codes ? '22P03 or 0A000' : '22P03'))
		  or diag($e->{stderr});
	}
}
is($f->{_pid}, $fpid, 'the follower was not restarted');
is(sql($f, 'SELECT 1'), '1', 'the follower answers');
is(sql($leader, 'SELECT 1'), '1', 'the leader answers');
settle(\@a, 20);
is(snapshot(\@a), $before, 'cluster A undisturbed: same leader, term, members');
ok(wait_converged(\@a, timeout => 10), 'cluster A converged');

# ---------------------------------------------------------------------------
# well-formed messages that must be ignored
# ---------------------------------------------------------------------------

use constant { MSG_HEARTBEAT => 3, MSG_HEARTBEAT_RESP => 4, MSG_TIMEOUT_NOW => 10 };

# the codec's message layout, version 1 (src/core/codec.c): 99 bytes
sub msg
{
	my (%m) = @_;
	return pack('a2 C C q< Q< Q< Q< Q< Q< Q< C C Q< Q< Q< Q< V C',
		'RF', 1, $m{type}, $m{cluster}, $m{from}, $m{to}, $m{term},
		$m{index} // 0, $m{log_term} // 0, $m{commit} // 0, 0, 0, 0, 0,
		$m{seq} // 0, 0, 0, 0);
}

# a batch as raftable's transport frames it: (u32 LE length, message)*
sub batch { return hex_of(join('', map { pack('V', length $_) . $_ } @_)) }

SKIP:
{
	my $ls  = status_of($leader);
	my $cid = $ls->{cluster_id};
	my $lid = node_id($leader);
	my ($g) = grep { $_ != $leader && $_ != $f } @a;
	my $fid = node_id($f);

	# positive control: a heartbeat response, which a follower ignores
	my $ok = sql_error($f, "SELECT raftable._deliver('"
		  . batch(msg(type => MSG_HEARTBEAT_RESP, cluster => $cid, from => node_id($g),
				to => $fid, term => $ls->{term})) . "'::bytea)");
	note('control message: ' . ($ok->{ok} ? 'accepted' : "refused: $ok->{stderr}"));
	skip 'a well-formed message is refused: the batch framing or the codec differs from what this test builds', 8
	  unless $ok->{ok};

	my $fs = status_of($f);
	my @attacks = (
		[ 'a heartbeat of another cluster, with a huge term',
			msg(type => MSG_HEARTBEAT, cluster => $cid ^ 0x5a5a, from => $lid, to => $fid,
				term => $ls->{term} + 1000) ],
		[ 'a TimeoutNow of another cluster "from the leader"',
			msg(type => MSG_TIMEOUT_NOW, cluster => $cid ^ 0x5a5a, from => $lid, to => $fid,
				term => $ls->{term}) ],
		[ 'a heartbeat from a node that is no member, with a huge term',
			msg(type => MSG_HEARTBEAT, cluster => $cid, from => 999_999, to => $fid,
				term => $ls->{term} + 1000) ],
		[ 'a TimeoutNow from a node that is no member',
			msg(type => MSG_TIMEOUT_NOW, cluster => $cid, from => 999_999, to => $fid,
				term => $ls->{term}) ],
	);
	foreach my $a (@attacks)
	{
		my $e = sql_error($f, "SELECT raftable._deliver('" . batch($a->[1]) . "'::bytea)");
		note("$a->[0]: " . ($e->{ok} ? 'accepted by _deliver' : "ERROR $e->{sqlstate}: $e->{message}"));
		settle(\@a, 20);
		my $s = status_of($f);
		is($s->{term}, $fs->{term}, "$a->[0]: the follower's term is unchanged");
		is(snapshot(\@a), $before, "$a->[0]: cluster A undisturbed");
	}
}

# ---------------------------------------------------------------------------
# privileges: an ordinary role, and a role granted the peer entry points
# ---------------------------------------------------------------------------

my $sock_ci = sub {
	my ($node, $role) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . " dbname=postgres user=$role";
};
my $cid_a = status_of($leader)->{cluster_id};
foreach my $node (@a, @b)
{
	sql($node, q{
		CREATE ROLE rt_ordinary LOGIN;
		CREATE ROLE raftable_peer LOGIN;
		GRANT USAGE ON SCHEMA raftable TO raftable_peer;
		GRANT EXECUTE ON FUNCTION raftable._deliver(bytea),
			raftable._join(bigint, bigint, text, text, bytea),
			raftable._leave(bigint, bigint) TO raftable_peer;
	});
}
# what a node added to cluster B needs to copy the tables from its leader
# (README: a new node starts from a snapshot)
foreach my $node (@b)
{
	sql($node, q{
		GRANT EXECUTE ON FUNCTION raftable._table_ddl(regclass) TO raftable_peer;
		GRANT SELECT ON raftable.apply_state, raftable.applied_marks,
			raftable.replicated TO raftable_peer;
	});
}
{
	my $ci = $sock_ci->($f, 'rt_ordinary');
	for my $call (
		[ '_deliver', q{SELECT raftable._deliver('\x00'::bytea)} ],
		[ '_join',    "SELECT raftable._join($cid_a, 4242, 'evil', 'host=127.0.0.1 port=1', '\\x00'::bytea)" ],
		[ '_leave',   "SELECT raftable._leave($cid_a, " . node_id($f) . ')' ],
		[ 'add_node', "SELECT raftable.add_node('host=127.0.0.1 port=1')" ],
		[ 'remove_node', 'SELECT raftable.remove_node(' . node_id($f) . ')' ],
		[ 'transfer_leadership', 'SELECT raftable.transfer_leadership()' ])
	{
		my $e = sql_error($f, $call->[1], connstr => $ci);
		is($e->{sqlstate}, '42501', "ordinary role: $call->[0] refused (42501)") or diag($e->{stderr});
	}
	my $e = sql_error($f, 'SELECT role FROM raftable.status', connstr => $ci);
	ok($e->{ok} && $e->{out} eq 'follower', 'ordinary role: reads raftable.status') or diag($e->{stderr});

	$ci = $sock_ci->($f, 'raftable_peer');
	$e = sql_error($f, q{SELECT raftable._deliver('\x00'::bytea)}, connstr => $ci);
	is($e->{sqlstate}, '22P03', 'granted peer role: _deliver of malformed bytes gets 22P03, not 42501')
	  or diag($e->{stderr});
	# no member of cluster A is bound to raftable_peer (their conninfos
	# name the superuser): 014_security_peers.pl tests the binding
	$e = sql_error($f, 'SELECT raftable._leave(' . ($cid_a ^ 0x77) . ', ' . node_id($f) . ')', connstr => $ci);
	is($e->{sqlstate}, '42501', 'granted peer role bound to no member: _leave refused (42501)')
	  or diag($e->{stderr});
	$e = sql_error($f, "SELECT raftable._join(" . ($cid_a ^ 0x77) . ", 4242, 'evil', 'host=127.0.0.1 port=1', '\\x00'::bytea)",
		connstr => $ci);
	ok(!$e->{ok} && $e->{sqlstate} ne '42501',
		'granted peer role: _join of another cluster on a member fails (' . ($e->{sqlstate} || 'ok') . ')');
	$e = sql_error($f, 'SELECT raftable.remove_node(' . node_id($f) . ')', connstr => $ci);
	is($e->{sqlstate}, '42501', 'granted peer role: remove_node still refused (42501)');
	settle(\@a, 20);
	is(snapshot(\@a), $before, 'cluster A undisturbed by the peer role\'s calls');
}

# ---------------------------------------------------------------------------
# a cluster whose peers connect as the non-superuser peer role
# ---------------------------------------------------------------------------

my ($b1, $b2) = @b;
my %bids;
{
	my $ci = sub { peer_conninfo($_[0], user => 'raftable_peer') };
	my $ok = eval { %bids = form_cluster($b1, $b2, { conninfo => $ci }); 1 };
	ok($ok, 'cluster B (b1, b2) formed with peers connecting as a non-superuser role granted the entry points and the snapshot\'s reads')
	  or diag($@);
	ok(wait_converged(\@b, timeout => 30), 'cluster B converged');
	my $log = slurp_file($b2->logfile);
	like($log, qr/connection authorized: user=raftable_peer[^\n]*application_name=raftable-node-/,
		'b2 received peer connections as raftable_peer');
}

# ---------------------------------------------------------------------------
# another cluster's traffic, for real: a3's address now leads to b1
# ---------------------------------------------------------------------------

{
	my $a3 = $a[2];
	my $b_before = snapshot(\@b);
	$leader = wait_converged(\@a);
	my @a12 = grep { $_ != $a3 } @a;
	$proxy->retarget($a3->name, $b1->port);
	note('a3\'s proxy now forwards to b1');
	my $lid = node_id(leader_of(\@a));
	ok( wait_for(
			sub { slurp_file($b1->logfile) =~ /connection authorized: user=\Q$user\E[^\n]*application_name=raftable-node-$lid\b/ },
			"b1 receives cluster A's leader", timeout => 30),
		'b1 receives a connection from cluster A\'s leader (meant for a3)');
	settle(\@a12, 40);
	is(snapshot(\@b), $b_before, 'cluster B undisturbed by cluster A\'s messages');
	ok(wait_converged(\@b, timeout => 10), 'cluster B converged');
	ok(wait_converged(\@a12, timeout => 10), 'a1, a2 still form a majority of A');

	$proxy->retarget($a3->name, $a3->port);
	ok(wait_converged(\@a, timeout => 30), 'a3 reachable again: cluster A converged');
	is(status_of($a3)->{cluster_id}, $cid_a, 'a3 still in cluster A');
}

foreach my $node (@a, @b)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/PANIC:|TRAP:|terminated by signal/, $node->name . ': no crash in the server log');
}

$_->stop foreach @a, @b;
$proxy->stop;
done_testing();
