# test/tap/020_apply_atomic.pl
#	The apply worker commits a batch's rows and its applied index in one
#	transaction (src/apply.c), so a crash keeps both or neither: a
#	restarted node neither loses an entry nor applies one twice.
#
#	The moment between rows and index is made visible on purpose.  On the
#	follower, a session S1 holds table t in SHARE mode, so the apply
#	worker, inside a batch, waits to insert the leader's new rows.  A
#	second session S2 then asks for raftable.apply_state in ACCESS
#	EXCLUSIVE mode and queues behind the batch, which holds it in a weaker
#	mode.  When S1 lets go, the batch ends and S2 gets the table next,
#	before anything else can touch it.  S2 reads the applied index and the
#	table t there: the rows must be exactly those of the entries up to
#	that index.  If rows and index went in separate transactions, S2 would
#	get the table between them: the rows committed, the index not.  Then
#	a checkpoint makes what is committed durable, the follower is killed
#	(kill -9) with S2 still holding the lock, and restarted: it must
#	apply the rest without an error and end equal to the leader (with
#	separate transactions it would insert those rows again: a duplicate
#	key, an apply stall).  make mutants: apply-rows-and-index-apart.
#
#	And durably, before anyone sees them: rows an eventual read on the
#	follower has returned survive a crash of the follower, even when no
#	leader is there afterwards to have them applied again.  The follower's
#	WAL writer is slowed (wal_writer_delay = 10s), so an apply batch
#	committed asynchronously would still be in memory when the follower is
#	killed, right after the read: the row would be gone after the restart,
#	and the read would have gone backwards.  make mutants:
#	apply-visible-before-durable.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my ($n1, $n2) = make_nodes(2);

# node1 leads (after a restart node2 may have won the election: hand it back)
sub node1_leads
{
	my $l = wait_converged([ $n1, $n2 ]) or return 0;
	sql($l, 'SELECT raftable.transfer_leadership(' . node_id($n1) . ')')
	  if $l->name ne $n1->name;
	return wait_for(
		sub {
			(status_of($n1)->{role} // '') eq 'leader'
			  && (status_of($n2)->{leader_id} // 0) == node_id($n1);
		},
		'node1 leads');
}

form_cluster($n1, $n2);
my $leader = wait_converged([ $n1, $n2 ]);
ok($leader && $leader->name eq $n1->name, 'node1 leads, node2 follows')
  or BAIL_OUT('no cluster');
sql($n1, 'CREATE TABLE t (id int PRIMARY KEY, v text)');
sql($n1, "SELECT raftable.replicate_table('t')");
sql($n1, "INSERT INTO t SELECT g, 'before' FROM generate_series(1, 10) g");
ok(wait_applied([ $n1, $n2 ], $n1), 'both nodes applied the first entries');

# the apply worker's wait on a lock, and a named session's
my $apply_waits = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'raftable apply worker' AND wait_event_type = 'Lock'};
my $s2_waits = q{SELECT count(*) FROM pg_stat_activity
	WHERE application_name = 's2' AND wait_event_type = 'Lock'};

my $s1 = poller($n2);
$s1->query('BEGIN');
$s1->query('LOCK TABLE t IN SHARE MODE');
# each insert is one entry; the leader's commit index after it is its index
my @idx;
foreach my $id (11 .. 30)
{
	sql($n1, "INSERT INTO t VALUES ($id, 'while held')");
	push @idx, status_of($n1)->{commit_index};
}
ok(wait_for(sub { sql($n2, $apply_waits) == 1 }, 'the apply worker waits for table t'),
	"node2's apply worker waits inside a batch (entries $idx[0] to $idx[-1] committed)");

my $s2 = poller($n2);
$s2->query("SET application_name = 's2'");
# what this node holds: a strong read would wait for the apply S2 blocks
$s2->query("SET raftable.read_consistency = 'eventual'");
$s2->query('BEGIN');
$s2->send('LOCK TABLE raftable.apply_state IN ACCESS EXCLUSIVE MODE');
ok(wait_for(sub { sql($n2, $s2_waits) == 1 }, 'S2 waits for raftable.apply_state'),
	'S2 queues for raftable.apply_state behind the batch');

$s1->query('COMMIT');
$s1->quit;
$s2->result(30);
my $index = $s2->query('SELECT applied_index FROM raftable.apply_state');
my $rows = $s2->query('SELECT count(*) FROM t');
my $want = 10 + grep { $_ <= $index } @idx;
cmp_ok($index, '>=', $idx[0], "S2 gets the table after the batch: applied index $index");
is($rows, $want, "the rows S2 sees are those of the entries up to index $index");

# make the committed part durable, then crash with S2 still holding the lock
sql($n2, 'CHECKPOINT');
ok(kill9_and_wait($n2), 'node2 killed with S2 holding the lock');
eval { $s2->quit };
restart_node($n2);
ok(node1_leads(), 'node2 is back in the cluster, node1 leads');

sql($n1, "INSERT INTO t VALUES (31, 'after')");
ok(wait_applied([ $n1, $n2 ], $n1, timeout => 60), 'node2 applies everything after the restart');
is(status_of($n2)->{apply_error}, undef, 'node2: no apply error (no entry applied twice)');
is(sql($n2, "SET raftable.read_consistency = 'eventual'; SELECT count(*) FROM t"), 31,
	'node2 holds the 31 rows once each');
is(checksum($n2, 't'), checksum($n1, 't'), 'node2 ends equal to the leader');

# rows a read has seen are durable: kill the follower right after the read,
# with its WAL writer slowed, and bring it back without a leader
sql($n2, q{ALTER SYSTEM SET wal_writer_delay = '10s'; SELECT pg_reload_conf()});
sql($n1, "INSERT INTO t VALUES (32, 'seen')");
ok( wait_for(
		sub {
			sql($n2, "SET raftable.read_consistency = 'eventual'; SELECT count(*) FROM t WHERE id = 32")
			  == 1;
		},
		'node2 applies row 32',
		interval => 0.01),
	'an eventual read on node2 sees row 32');
ok(kill9_and_wait($n2), 'node2 killed right after the read');
$n1->stop('immediate');
restart_node($n2);
is(sql($n2, "SET raftable.read_consistency = 'eventual'; SELECT count(*) FROM t WHERE id = 32"), 1,
	'restarted with no leader to apply it again, node2 still has the row the read saw');
$n1->start;
sql($n2, q{ALTER SYSTEM RESET wal_writer_delay; SELECT pg_reload_conf()});
ok(node1_leads(), 'the two nodes form the cluster again');
is(checksum($n2, 't'), checksum($n1, 't'), 'node2 ends equal to the leader');

done_testing();
