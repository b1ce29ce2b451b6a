# test/tap/014_security_peers.pl
#	Peer identity: every member is bound to the role its conninfo names,
#	and no other role may speak for it.
#
#	Cluster A (a1, a2, a3; the nodes connect as the bootstrap superuser,
#	which may act as any member).  mallory, a login role granted what
#	README.md grants a peer role, is bound to no member:
#	- raftable._leave for a follower, as mallory: 42501, and the follower
#	  stays a member;
#	- a heartbeat "from the leader" with a higher term, sent by mallory
#	  through raftable._deliver: dropped with a NOTICE, the follower's term
#	  does not move, and its server log has the LOG line; the same bytes
#	  sent as the superuser do move the term (the check can fail);
#	- create_cluster, add_node and _join with a password or sslpassword in
#	  the conninfo: 22023, nothing stored, not in the server log.
#	Cluster B (b1, b2, b3, with raftable.log_keep = 0; each node connects
#	to its peers as its own role raftable_bN, which README.md's grants
#	give on every node, and nothing else):
#	- it forms; writes replicate; b3, added after the log was compacted,
#	  copies the tables by snapshot (its apply worker connects as
#	  raftable_b3); every peer connection comes in as the peer's own role;
#	- on a follower, the role of the other follower is dropped when it
#	  claims to be the leader, and when it claims to be a node that is no
#	  member; it may not make the follower leave (42501); a role created
#	  for a future node (raftable_b4, bound to no member) is dropped when
#	  claiming the leader; the other follower's role is accepted for its
#	  own messages (the term moves);
#	- remove_node of a follower: the leader, as its own role, makes the
#	  removed node forget the cluster;
#	- a node given an identity by _join but never added: a role bound to
#	  no member may not make it leave (42501), another member's role may.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

sub q_lit { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

sub hex_of { return '\\x' . unpack('H*', $_[0]) }

use constant MSG_HEARTBEAT => 3;

# a heartbeat in the codec's layout, version 1 (src/core/codec.c): 99 bytes
sub heartbeat
{
	my (%m) = @_;
	return pack('a2 C C q< Q< Q< Q< Q< Q< Q< C C Q< Q< Q< Q< V C',
		'RF', 1, MSG_HEARTBEAT, $m{cluster}, $m{from}, $m{to}, $m{term},
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

# a batch as raftable's transport frames it: (u32 LE length, message)*
sub batch { return hex_of(join('', map { pack('V', length $_) . $_ } @_)) }

# a connection string to $node's Unix socket as $role
sub as_role
{
	my ($node, $role) = @_;
	return 'host=' . $node->host . ' port=' . $node->port . " dbname=postgres user=$role";
}

# deliver($node, $role, $msg) -> sql_error's result of raftable._deliver
# of a one-message batch, as $role (undef: the superuser)
sub deliver
{
	my ($node, $role, $msg) = @_;
	return sql_error($node, "SELECT raftable._deliver('" . batch($msg) . "'::bytea)",
		($role ? (connstr => as_role($node, $role)) : ()));
}

# settle(\@nodes, $n): wait until the leader has sent $n more messages, so
# that a message delivered before has been processed long since
sub settle
{
	my ($nodes, $n) = @_;
	my $l = leader_of($nodes) or return;
	my $s0 = stats_of($l)->{messages_sent};
	wait_for(sub { stats_of($l)->{messages_sent} >= $s0 + $n },
		"$n messages from the leader", timeout => 30);
	return;
}

my $su = getpwuid($<);

# the grants README.md gives the peer roles, on one node: the group role
# raftable_peers holds the narrowest rights the peers need (no
# pg_read_all_data): the peer entry points, raftable's own tables that a
# snapshot reads, and SELECT on the tables the table owner (here the
# superuser) creates, which includes the replicated ones on every node
sub grant_peer
{
	my ($node, @roles) = @_;
	my $list = join(', ', @roles);
	sql($node, join("\n",
		(map { "CREATE ROLE $_ LOGIN;" } @roles),
		q{DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'raftable_peers') THEN
			CREATE ROLE raftable_peers NOLOGIN; END IF; END$$;},
		"GRANT raftable_peers TO $list;",
		'GRANT EXECUTE ON FUNCTION raftable._deliver(bytea),',
		'    raftable._join(bigint, bigint, text, text, bytea),',
		'    raftable._leave(bigint, bigint),',
		'    raftable._table_ddl(regclass) TO raftable_peers;',
		'GRANT SELECT ON raftable.apply_state, raftable.applied_marks,',
		'    raftable.replicated TO raftable_peers;',
		"ALTER DEFAULT PRIVILEGES FOR ROLE \"$su\" GRANT SELECT ON TABLES TO raftable_peers;",
		"ALTER DEFAULT PRIVILEGES FOR ROLE \"$su\" GRANT SELECT ON SEQUENCES TO raftable_peers;"));
	return;
}

# ---------------------------------------------------------------------------
# cluster A: the nodes connect as the superuser; mallory is bound to none
# ---------------------------------------------------------------------------

my @a = make_nodes(3, prefix => 'a');
form_cluster(@a);
my $leader = wait_converged(\@a);
ok($leader, 'cluster A (a1, a2, a3) formed') or BAIL_OUT('no cluster');
grant_peer($_, 'mallory') foreach @a;

{
	my ($f)  = grep { $_ != $leader } @a;
	my $lid  = node_id($leader);
	my $fid  = node_id($f);
	my $cid  = status_of($leader)->{cluster_id};

	# (a) mallory may not make a follower leave
	my $e = sql_error($f, "SELECT raftable._leave($cid, $fid)", connstr => as_role($f, 'mallory'));
	is($e->{sqlstate}, '42501', 'mallory: _leave of a follower refused (42501)') or diag($e->{stderr});
	like($e->{detail} // '', qr/not the role of another member/, '... because mallory is bound to no member');
	settle(\@a, 20);
	is(status_of($f)->{role}, 'follower', '... and the follower is still a follower');
	is(status_of($f)->{node_id}, $fid, '... with its identity');
	ok((grep { $_->{node_id} == $fid } nodes_of($leader)), '... and a member on the leader');

	# (b) a heartbeat "from the leader" with a higher term, from mallory
	my $t0 = status_of($f)->{term};
	my $hb = heartbeat(cluster => $cid, from => $lid, to => $fid, term => $t0 + 1);
	$e = deliver($f, 'mallory', $hb);
	ok($e->{ok}, 'mallory: _deliver of a forged heartbeat does not fail the batch') or diag($e->{stderr});
	like($e->{stderr}, qr/NOTICE:.*raftable message from node $lid dropped/,
		'... it gets a NOTICE that the message was dropped');
	settle(\@a, 20);
	is(status_of($f)->{term}, $t0, '... and the follower\'s term does not move');
	like(slurp_file($f->logfile),
		qr/LOG:.*raftable: dropped a message from role "mallory" claiming to be node $lid\b/,
		'... and its server log says so');

	# the same bytes from the superuser are acted on
	$e = deliver($f, undef, $hb);
	ok($e->{ok} && $e->{stderr} !~ /dropped|ignored/,
		'superuser: the same heartbeat is accepted') or diag($e->{stderr});
	ok(defined wait_for(sub { status_of($f)->{term} > $t0 }, 'the follower adopts the term', timeout => 30),
		'... and the follower adopts its term');
	$leader = wait_converged(\@a);
	ok($leader, 'cluster A converges again');

	# (d) a conninfo with a secret
	my ($spare) = make_nodes(1, prefix => 'spare');
	my $pw    = $RaftableTest::PASSWORD;
	for my $ci (peer_conninfo($spare, password => $pw),
		peer_conninfo($spare) . " sslpassword=$pw")
	{
		my $opt = $ci =~ /sslpassword/ ? 'sslpassword' : 'password';
		for my $call (
			[ $spare,  'create_cluster', 'SELECT raftable.create_cluster(' . q_lit($ci) . ')' ],
			[ $leader, 'add_node',       'SELECT raftable.add_node(' . q_lit($ci) . ')' ],
			[ $spare,  '_join',          'SELECT raftable._join(1, 2, \'x\', ' . q_lit($ci) . ", '\\x00'::bytea)" ])
		{
			$e = sql_error($call->[0], $call->[2]);
			is($e->{sqlstate}, '22023', "$call->[1] with $opt=: 22023") or diag($e->{stderr});
			like($e->{hint} // '', qr/pgpass|passfile|certificate/, '... with a hint where passwords go');
		}
	}
	is(status_of($spare)->{role}, 'none', 'the node named in the refused calls is in no cluster');
	is(sql($spare, 'SELECT count(*) FROM raftable.node_state'), '0', '... and stored no identity');
	is(scalar(nodes_of($leader)), 3, 'cluster A still has three members');
	foreach my $node ($spare, $leader)
	{
		unlike(slurp_file($node->logfile), qr/\Q$pw\E/,
			$node->name . ': the refused statements are not in the server log');
	}
	$spare->stop;
}

# ---------------------------------------------------------------------------
# cluster B: each node connects as its own role
# ---------------------------------------------------------------------------

my @b = make_nodes(3, prefix => 'b', conf => "raftable.log_keep = 0\n");
my ($b1, $b2, $b3) = @b;
my %role = map { $_->name => 'raftable_' . $_->name } @b;
grant_peer($_, (map { $role{ $_->name } } @b), 'raftable_b4') foreach @b;
my $ci = sub { peer_conninfo($_[0], user => $role{ $_[0]->name }) };

form_cluster($b1, $b2, { conninfo => $ci });
$leader = wait_converged([ $b1, $b2 ]);
ok($leader, 'b1 and b2 form a cluster, each connecting as its own role') or BAIL_OUT('no cluster B');
sql($leader, q{
	CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);
	INSERT INTO acct SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 100) g;
	SELECT raftable.replicate_table('acct');
	UPDATE acct SET balance = balance + 1 WHERE id <= 50;
});
ok( defined wait_for(sub { status_of($leader)->{snapshot_index} > 0 },
		'the leader compacts its log', timeout => 30),
	'the leader compacted its log (log_keep = 0)');
# without SELECT on acct, add_node refuses b3: it could never copy the tables
sql($leader, q{REVOKE SELECT ON acct FROM raftable_peers});
my $r = sql_error($leader, 'SELECT raftable.add_node(' . q_lit($ci->($b3)) . ')');
is($r->{sqlstate}, '42501', 'add_node of a node whose role cannot read a replicated table: 42501')
  or diag($r->{stderr});
like($r->{detail} // '', qr/cannot read table acct/, '... naming the table');
is(status_of($b3)->{role}, 'none', '... and b3 is in no cluster');
sql($leader, q{GRANT SELECT ON acct TO raftable_peers});

# the right revoked while b3 copies: its snapshot fails, and says why to
# pg_monitor (the copy waits for a lock on acct until the REVOKE commits)
my $locker = poller($leader);
$locker->query(q{BEGIN; LOCK TABLE acct IN ACCESS EXCLUSIVE MODE});
add_node($leader, $b3, conninfo => $ci->($b3), wait => 0);
ok(wait_for(sub { sql($leader, q{SELECT count(*) FROM pg_locks WHERE relation = 'acct'::regclass AND NOT granted}) >= 1 },
		'b3\'s copy waits for acct', timeout => 60),
	'b3\'s snapshot copy waits for the lock on acct');
$locker->query(q{REVOKE SELECT ON acct FROM raftable_peers; COMMIT});
$locker->quit;
ok(wait_for(sub { sql($b3, q{SELECT phase FROM raftable.snapshot_progress}) eq 'failed' },
		'b3\'s snapshot fails', timeout => 60),
	'without SELECT on a replicated table, a snapshot fails');
like(sql($b3, q{SELECT error FROM raftable.snapshot_progress}), qr/permission denied for table acct/,
	'... and snapshot_progress.error gives the source\'s reason to a superuser');
sql($b3, q{CREATE ROLE watcher LOGIN});
unlike(sql_error($b3, q{SELECT error FROM raftable.snapshot_progress},
		connstr => $b3->connstr('postgres') . ' user=watcher')->{out},
	qr/permission denied/, '... and not to a role without pg_monitor');
sql($leader, q{GRANT SELECT ON acct TO raftable_peers});
$leader = wait_converged(\@b);
ok($leader, 'once granted, b3 copies the tables: three nodes converge');
sql($leader, q{INSERT INTO acct VALUES (101, 'late', 1)});
ok(wait_applied(\@b, $leader), 'every node applied the writes');
is(checksum($_, 'acct'), checksum($leader, 'acct'), $_->name . ': acct has the leader\'s rows')
  foreach grep { $_ != $leader } @b;
is(sql($b3, 'SELECT phase FROM raftable.snapshot_progress'), 'done',
	'b3 copied the tables by snapshot');

my %bid = map { $_->name => node_id($_) } @b;
foreach my $f (grep { $_ != $leader } @b)
{
	foreach my $pair ([ $leader, $f ], [ $f, $leader ])
	{
		my ($to, $from) = @$pair;
		like(slurp_file($to->logfile),
			qr/connection authorized: user=$role{ $from->name }\b[^\n]*application_name=raftable-node-$bid{ $from->name }\b/,
			$to->name . ': ' . $from->name . ' connects as ' . $role{ $from->name });
	}
}
foreach my $node (@b)
{
	unlike(slurp_file($node->logfile), qr/connection authorized: user=\Q$su\E\b[^\n]*application_name=raftable-node-/,
		$node->name . ': no peer connects as the superuser');
}
like(join('', map { slurp_file($_->logfile) } grep { $_ != $b3 } @b),
	qr/connection authorized: user=raftable_b3\b[^\n]*application_name=raftable$/m,
	'b3\'s snapshot copy connected to the leader as raftable_b3');
{
	my ($f1, $f2) = grep { $_ != $leader } @b;
	my $lid  = node_id($leader);
	my $f1id = node_id($f1);
	my $f2id = node_id($f2);
	my $cid  = status_of($leader)->{cluster_id};
	my $r1   = $role{ $f1->name };
	my $t0   = status_of($f2)->{term};

	# f1's role claims to be the leader, then a node that is no member
	my $e = deliver($f2, $r1, heartbeat(cluster => $cid, from => $lid, to => $f2id, term => $t0 + 1));
	like($e->{stderr}, qr/NOTICE:.*raftable message from node $lid dropped/,
		"$r1 claiming to be the leader: dropped") or diag($e->{stderr});
	$e = deliver($f2, $r1, heartbeat(cluster => $cid, from => 999_999, to => $f2id, term => $t0 + 1));
	like($e->{stderr}, qr/NOTICE:.*raftable message from node 999999 dropped/,
		"$r1 claiming to be a node that is no member: dropped") or diag($e->{stderr});
	# a role for a future node may speak only as a stranger (which a
	# follower of a live leader ignores), never as a member
	$e = deliver($f2, 'raftable_b4', heartbeat(cluster => $cid, from => $lid, to => $f2id, term => $t0 + 1));
	like($e->{stderr}, qr/NOTICE:.*raftable message from node $lid dropped/,
		'raftable_b4 (bound to no member) claiming to be the leader: dropped') or diag($e->{stderr});
	$e = deliver($f2, 'raftable_b4', heartbeat(cluster => $cid, from => 999_999, to => $f2id, term => $t0 + 1));
	like($e->{stderr}, qr/NOTICE:.*raftable message from node 999999 to node $f2id ignored/,
		'raftable_b4 as a stranger: not dropped, but ignored while a leader is alive') or diag($e->{stderr});
	settle(\@b, 20);
	is(status_of($f2)->{term}, $t0, 'the follower\'s term did not move');
	my $log = slurp_file($f2->logfile);
	like($log, qr/LOG:.*raftable: dropped a message from role "$r1" claiming to be node $lid\b/,
		'the follower logged the forgery');
	like($log, qr/LOG:.*raftable: dropped a message from role "$r1" claiming to be node 999999\b/,
		'... and the member\'s role posing as a stranger');

	# f1's role may not make f2 leave: f2 is a member, f1 not its leader
	$e = sql_error($f2, "SELECT raftable._leave($cid, $f2id)", connstr => as_role($f2, $r1));
	is($e->{sqlstate}, '42501', "$r1: _leave of the other follower refused (42501)") or diag($e->{stderr});
	like($e->{detail} // '', qr/not the role of the leader/, '... because it is not the leader\'s role');
	is(status_of($f2)->{role}, 'follower', '... and it is still a follower');

	# f1's role speaking for f1 is accepted: the term moves
	$e = deliver($f2, $r1, heartbeat(cluster => $cid, from => $f1id, to => $f2id, term => $t0 + 1));
	ok($e->{ok} && $e->{stderr} !~ /dropped|ignored/, "$r1 speaking for its own node: accepted")
	  or diag($e->{stderr});
	ok(defined wait_for(sub { status_of($f2)->{term} > $t0 }, 'the follower adopts the term', timeout => 30),
		'... and acted on (the follower adopts its term)');
}

$leader = wait_converged(\@b);
ok($leader, 'cluster B converges again');
{
	my ($gone) = grep { $_ != $leader } @b;
	my $e = sql_error($leader, 'SELECT raftable.remove_node(' . node_id($gone) . ')');
	ok($e->{ok}, 'remove_node of a follower') or diag($e->{stderr});
	unlike($e->{stderr}, qr/could not tell/, '... which was told that it left');
	ok( defined wait_for(sub { status_of($gone)->{role} eq 'none' },
			'the removed node forgets the cluster', timeout => 30),
		'the removed node accepted _leave from the leader\'s role and forgot the cluster');
	is(sql($gone, 'SELECT count(*) FROM raftable.node_state'), '0', '... its identity is gone');
	ok(wait_converged([ grep { $_ != $gone } @b ]), 'the two others go on');
}

# a node given an identity by _join but never added (what add_node undoes
# when its proposal is refused): its configuration leaves it out, so any
# member's role may make it leave, and a role bound to no member may not
my ($c1) = make_nodes(1, prefix => 'c');
grant_peer($c1, (map { $role{ $_->name } } @b), 'raftable_b4');
{
	my $cid     = status_of($leader)->{cluster_id};
	my %members = map { $_->{node_id} => 1 } nodes_of($leader);
	my @members = grep { $members{ node_id($_) } } @b;
	my ($other) = grep { $_ != $leader } @members;
	# the membership as add_node hands it over (raft_conf_encode, codec.c)
	my $conf = pack('C V', 1, scalar @members);
	foreach my $m (@members)
	{
		my $addr = $m->name . "\0" . $ci->($m);
		$conf .= pack('Q< C v a*', node_id($m), 1, length $addr, $addr);
	}
	sql($c1, "SELECT raftable._join($cid, 4242, 'c1', " . q_lit(peer_conninfo($c1))
		  . ", '" . hex_of($conf) . "'::bytea)");
	is(status_of($c1)->{node_id}, 4242, 'c1 joined (an identity, not a member)');
	my $e = sql_error($c1, "SELECT raftable._leave($cid, 4242)", connstr => as_role($c1, 'raftable_b4'));
	is($e->{sqlstate}, '42501', 'a role bound to no member may not make it leave (42501)')
	  or diag($e->{stderr});
	$e = sql_error($c1, "SELECT raftable._leave($cid, 4242)",
		connstr => as_role($c1, $role{ $other->name }));
	ok($e->{ok}, 'a member\'s role that is not the leader\'s may: the node was never added')
	  or diag($e->{stderr});
	ok(!defined status_of($c1)->{cluster_id}, '... and it forgot the cluster');
	is(sql($c1, 'SELECT count(*) FROM raftable.node_state'), '0', '... its identity is gone');
}

foreach my $node (@a, @b, $c1)
{
	unlike(slurp_file($node->logfile), qr/PANIC:|TRAP:|terminated by signal/,
		$node->name . ': no crash in the server log');
}

$_->stop foreach @a, @b, $c1;
done_testing();
