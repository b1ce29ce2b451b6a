# test/tap/019_snapshot_marks.pl
#	A snapshot carries its source's applied marks (src/snapshot.c).  A
#	transaction committed on the leader is in the leader's tables before
#	the leader's apply worker reaches its entry; the mark it left says so,
#	and an entry with a mark is skipped, not applied twice.  A snapshot
#	taken in that window copies those rows, so the node that installs it
#	must skip the same entries: it needs the marks too.
#
#	The window is held open on purpose: a session on the leader keeps the
#	row of raftable.apply_state locked, so the leader's apply worker
#	cannot record progress, while a writer commits twenty rows (twenty
#	marks above the leader's applied index).  A node added then loads a
#	snapshot at the leader's applied index.  Once the lock goes, the new
#	node must apply everything without an error and end equal to the
#	leader: without the marks it would insert the twenty rows again
#	(a duplicate key, an apply stall).  make mutants: snapshot-without-marks.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my ($n1, $n2) = make_nodes(2);
form_cluster($n1);
ok((status_of($n1)->{role} // '') eq 'leader', 'node1 leads a one-node cluster');
sql($n1, 'CREATE TABLE t (id int PRIMARY KEY, v text)');
sql($n1, "SELECT raftable.replicate_table('t')");
sql($n1, "INSERT INTO t SELECT g, 'before' FROM generate_series(1, 10) g");
ok(wait_applied([$n1], $n1), 'the leader applied its first entries');

# hold the leader's apply worker back: it locks this row for every batch
my $lock = poller($n1);
$lock->query('BEGIN');
$lock->query('SELECT applied_index FROM raftable.apply_state FOR UPDATE');
my $applied = status_of($n1)->{applied_index};
sql($n1, "INSERT INTO t VALUES ($_, 'in the window')") for 11 .. 30;
my $marks = sql($n1, "SELECT count(*) FROM raftable.applied_marks WHERE idx > $applied");
cmp_ok($marks, '>=', 20,
	"twenty commits on the leader left marks above its applied index $applied ($marks marks)");
is(status_of($n1)->{applied_index}, $applied, "... while its apply worker is held at $applied");

add_node($n1, $n2, wait => 0);
ok( wait_for(
		sub {
			(sql($n2, 'SELECT phase FROM raftable.snapshot_progress') // '') eq 'done';
		},
		'node2 installs a snapshot',
		timeout => 60),
	'node2 installed a snapshot taken while the marks were pending');
$lock->query('COMMIT');
$lock->quit;

ok(wait_applied([ $n1, $n2 ], $n1, timeout => 60),
	'both nodes apply everything once the lock is gone');
is(status_of($n2)->{apply_error}, undef, 'node2: no apply error (the marked entries were skipped)');
is(sql($n2, "SET raftable.read_consistency = 'eventual'; SELECT count(*) FROM t"), 30,
	'node2 holds the 30 rows once each');
is(checksum($n2, 't'), checksum($n1, 't'), 'node2 ends equal to the leader');

done_testing();
