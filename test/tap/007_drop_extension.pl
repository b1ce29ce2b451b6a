# test/tap/007_drop_extension.pl
#	DROP EXTENSION raftable on a node with user tables: in no cluster, and
#	as the leader of a one-node cluster.  The DROP does not wait on the
#	worker's locks, the user tables and their rows stay, the server keeps
#	running (and restarts), and CREATE EXTENSION works again, starting from
#	no cluster.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use RaftableTest;

my ($n) = make_nodes(1);
my $pm = $n->{_pid};

sql($n, q{
	CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric NOT NULL);
	INSERT INTO public.accounts SELECT g, g * 10 FROM generate_series(1, 1000) g;
	CREATE SCHEMA app;
	CREATE TABLE app.events (id bigserial PRIMARY KEY, payload text);
	INSERT INTO app.events (payload) SELECT md5(g::text) FROM generate_series(1, 500) g;
});
my $digest_sql = q{
	SELECT (SELECT count(*) || ':' || sum(balance) FROM public.accounts) || '/' ||
		   (SELECT count(*) || ':' || md5(string_agg(payload, ',' ORDER BY id)) FROM app.events)
};
my $digest = sql($n, $digest_sql);

sub drop_ext
{
	my ($what) = @_;
	my $e = sql_error($n, "SET lock_timeout = '20s'; DROP EXTENSION raftable", timeout => 60);
	ok($e->{ok}, "$what: DROP EXTENSION raftable succeeds (no lock wait on the worker)")
	  or diag($e->{stderr});
	# (the schema itself stays: CREATE EXTENSION made it from the control
	# file, outside the extension, as PostgreSQL does)
	is(sql($n, q{SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				  WHERE n.nspname = 'raftable'}), '0',
		"$what: raftable's tables and views are gone");
	is(sql($n, q{SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
				  WHERE n.nspname = 'raftable'}), '0',
		"$what: raftable's functions are gone");
	is(sql($n, $digest_sql), $digest, "$what: the user tables and their rows are intact");
	is($n->{_pid}, $pm, "$what: the server is the same (no restart)");
	is(sql($n, 'SELECT 1'), '1', "$what: the server answers");
	return;
}

# ---------------------------------------------------------------------------
# in no cluster
# ---------------------------------------------------------------------------

is(status_of($n)->{role}, 'none', 'before: in no cluster');
drop_ext('in no cluster');

$n->restart;
$pm = $n->{_pid};
is(sql($n, $digest_sql), $digest, 'restarted without the extension: user data intact');
is(sql($n, 'SHOW raftable.election_timeout'), '1s', '... the library is still preloaded');

my $e = sql_error($n, 'CREATE EXTENSION raftable');
ok($e->{ok}, 'CREATE EXTENSION raftable again') or diag($e->{stderr});
ok(wait_for(sub { status_of($n)->{role} eq 'none' }, 'role none', timeout => 10),
	'... in no cluster');

# ---------------------------------------------------------------------------
# the leader of a one-node cluster
# ---------------------------------------------------------------------------

my $id = sql($n, 'SELECT raftable.create_cluster(' . "'" . peer_conninfo($n) . "', 'solo')");
ok($id > 0, 'create_cluster');
ok(wait_for(sub { status_of($n)->{role} eq 'leader' }, 'leader', timeout => 30), 'it leads');
sql($n, q{INSERT INTO public.accounts VALUES (1001, 0)});
$digest = sql($n, $digest_sql);

drop_ext('as a leader');
$e = sql_error($n, 'CREATE EXTENSION raftable');
ok($e->{ok}, 'CREATE EXTENSION raftable again, right after the DROP') or diag($e->{stderr});
ok(wait_for(sub { status_of($n)->{role} eq 'none' }, 'role none', timeout => 10),
	'... in no cluster: the cluster state went with the extension');
is(scalar(nodes_of($n)), 0, '... no members');
my $after = status_of($n);
note('after DROP and CREATE EXTENSION: ', explain($after));

# a new cluster, unless the old one is still there (reported above)
if ($after->{role} eq 'none')
{
	$id = sql($n, 'SELECT raftable.create_cluster(' . "'" . peer_conninfo($n) . "', 'solo2')");
	ok($id > 0, 'create_cluster again');
	ok(wait_for(sub { status_of($n)->{role} eq 'leader' }, 'leader', timeout => 30), 'it leads again');
	is(status_of($n)->{node_name}, 'solo2', '... under its new name');
}

# the same, with time between DROP and CREATE for the worker to notice
sub n_dropped { my @m = slurp_file($n->logfile) =~ /raftable:[^\n]*extension dropped/g; return scalar @m }
my $seen = n_dropped();
drop_ext('as a leader, again');
ok( wait_for(sub { n_dropped() > $seen },
		'the worker notices the DROP', timeout => 10),
	'the worker notices the DROP (log: extension dropped)');
$e = sql_error($n, 'CREATE EXTENSION raftable');
ok($e->{ok}, 'CREATE EXTENSION raftable again, later') or diag($e->{stderr});
ok(wait_for(sub { status_of($n)->{role} eq 'none' }, 'role none', timeout => 10),
	'... in no cluster');
$id = sql($n, 'SELECT raftable.create_cluster(' . "'" . peer_conninfo($n) . "', 'solo3')");
ok(wait_for(sub { status_of($n)->{role} eq 'leader' }, 'leader', timeout => 30), 'a new cluster: it leads');
is(status_of($n)->{node_name}, 'solo3', '... under its new name');
sql($n, q{INSERT INTO public.accounts VALUES (1002, 0)});
$digest = sql($n, $digest_sql);

$n->restart;
ok(wait_for(sub { status_of($n)->{role} eq 'leader' }, 'leader after restart', timeout => 30),
	'after a restart: still the leader of its cluster');
is(sql($n, $digest_sql), $digest, 'user data intact at the end');

my $log = slurp_file($n->logfile);
unlike($log, qr/PANIC:|TRAP:|terminated by signal/, 'no crash in the server log');

$n->stop;
done_testing();
