# test/tap/010_replication_crash.pl
#	Replicated tables through crashes, on a three-node cluster.
#
#	- kill -9 of the leader during a stream of inserts from four clients,
#	  each inserting (client, seq) one transaction at a time and printing
#	  "ack" only once its COMMIT returned.  After a new leader is elected
#	  and the killed node is restarted and caught up: every acknowledged
#	  row is on every node, no row is there twice, no row that was never
#	  sent is there, a write that failed for a definite reason is absent,
#	  and the checksums are equal.  The same with every node killed at
#	  once (postmaster and children, as a power cut) and restarted.
#	- kill -9 of a follower (its postmaster and every child at once, as a
#	  machine crash) while its apply worker applies one large transaction
#	  (100,000 rows, about 2.8 MB of change set, under the 4 MB limit):
#	  restarted, it applies it again from the log and ends with the
#	  leader's checksum and no apply error.
#	- a transaction whose change set exceeds the limit
#	  (RAFTABLE_MAX_CHANGE_BYTES, 4 MB): 54000, nothing of it on any node,
#	  and the cluster keeps working.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use Time::HiRes qw(time usleep);
use RaftableTest;

my @nodes = make_nodes(3);
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three nodes formed a cluster') or BAIL_OUT('no cluster');

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# wait_all_applied(\@nodes): one leader, equal commit index everywhere, and
# every node has applied up to it (applied_index = commit_index).
sub wait_all_applied
{
	my ($nodes, %opts) = @_;
	my $last = '';
	my $ok = wait_for(
		sub {
			my @st = map { status_of($_) } @$nodes;
			$last = join('; ',
				map {
					$nodes->[$_]->name . ": $st[$_]{role} commit=$st[$_]{commit_index}"
					  . " applied=$st[$_]{applied_index}"
					  . (defined $st[$_]{apply_error} ? " apply_error=$st[$_]{apply_error}" : '')
				} 0 .. $#st);
			return 0 unless (grep { $_->{role} eq 'leader' } @st) == 1;
			my $c = $st[0]{commit_index};
			return !grep { $_->{commit_index} != $c || $_->{applied_index} != $c } @st;
		},
		'every node applied the same commit index',
		timeout => $opts{timeout} // 60);
	diag("last status: $last") unless $ok;
	return defined $ok;
}

# the same checksum of $tbl on every node of @$nodes
sub checksums_equal
{
	my ($nodes, $tbl, $what) = @_;
	my %sums = map { $_->name => checksum($_, $tbl) } @$nodes;
	my %distinct = map { $_ => 1 } values %sums;
	ok(keys %distinct == 1, "$what: $tbl has the same checksum on every node")
	  or diag(join("\n", map { "$_: $sums{$_}" } sort keys %sums));
	return;
}

# kill9_all(@nodes): SIGKILL the postmasters and all their children at
# once, as a power cut would; returns once none of them runs
sub kill9_all
{
	my @nodes = @_;
	my @pids;
	foreach my $node (@nodes)
	{
		my $p = kill9_node($node);	# the postmaster, and its children's pids
		kill 'KILL', @$p;
		push @pids, @$p;
	}
	return wait_pids_gone(\@pids, join(',', map { $_->name } @nodes) . ': every process is gone');
}

sub apply_errors
{
	my ($nodes) = @_;
	return join(', ',
		map { my $e = status_of($_)->{apply_error}; defined $e ? $_->name . ": $e" : () } @$nodes);
}

# ---------------------------------------------------------------------------
# crashes during acknowledged inserts from four clients
# ---------------------------------------------------------------------------

my $nclients = 4;
my $per_client = 3000;		# far more than get sent before the crash

sql($leader, q{
CREATE TABLE acks (
	client int,
	seq int,
	at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (client, seq)
);
SELECT raftable.replicate_table('acks');
});

# stream_crash($label, $first_client, $crash): clients $first_client ..
# +3 insert (client, seq) into acks on the leader, one autocommit
# transaction at a time, each printing "ack" once its COMMIT returned
# (psql's :ERROR).  Once 200 of their rows are visible on the leader,
# $crash->($leader) crashes nodes and brings the cluster back (it returns
# once the nodes run again).  Then, once every node applied everything:
# every acknowledged row is on every node, once; no row that no client
# sent; no row whose insert failed for a reason other than 40003; the same
# checksum everywhere.
sub stream_crash
{
	my ($label, $first, $crash) = @_;
	my @clients = ($first .. $first + $nclients - 1);
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my (%h, %outfile, %errfile);
	foreach my $c (@clients)
	{
		my $script = "$dir/client$c.sql";
		open(my $fh, '>', $script) or die "$script: $!";
		for my $s (1 .. $per_client)
		{
			print $fh "INSERT INTO acks (client, seq) VALUES ($c, $s);\n"
			  . "\\if :ERROR\n\\echo fail $c $s :SQLSTATE\n\\else\n\\echo ack $c $s\n\\endif\n";
		}
		close $fh;
		$outfile{$c} = "$dir/client$c.out";
		$errfile{$c} = "$dir/client$c.err";
		$h{$c} = IPC::Run::start(
			[
				$leader->installed_command('psql'), '-X', '-q', '-A', '-t',
				'-v', 'ON_ERROR_STOP=0', '-d', $leader->connstr('postgres'),
				'-f', $script
			],
			'<', '/dev/null', '>', $outfile{$c}, '2>', $errfile{$c},
			IPC::Run::timeout(120));
	}

	my $lp = poller($leader);
	my $seen = 0;
	my $mine = "client BETWEEN $first AND " . ($first + $nclients - 1);
	ok( wait_for(
			sub { $seen = $lp->query("SELECT count(*) FROM acks WHERE $mine"); $seen >= 200 },
			'200 rows committed on the leader', timeout => 60, interval => 0.01),
		"$label: the four clients are inserting");
	my $per = $lp->query("SELECT string_agg(n::text, ',' ORDER BY client) FROM "
		  . "(SELECT client, count(*) AS n FROM acks WHERE $mine GROUP BY client) c");
	$lp->quit;
	note("$label: crash after $seen rows were visible on the leader " . $leader->name . " ($per per client)");
	$crash->($leader);

	# every client loses its connection (or gets an error) and stops
	my @rc;
	foreach my $c (@clients)
	{
		unless (eval { $h{$c}->finish; 1 })
		{
			diag("$label: client $c did not end: $@");
			eval { $h{$c}->kill_kill };
		}
		push @rc, $h{$c}->result(0) // -1;
	}
	is(scalar(grep { $_ != 0 } @rc), $nclients,
		"$label: every client ended with an error (exit codes: " . join(',', @rc) . ')');

	$leader = wait_converged(\@nodes, timeout => 60);
	ok($leader, "$label: one leader, followers, equal commit index") or BAIL_OUT('no convergence');
	ok(wait_all_applied(\@nodes), "$label: every node applied everything committed");

	# what the clients were told
	my (%acked, %failed, %attempted_max, %errors);
	foreach my $c (@clients)
	{
		$attempted_max{$c} = 1;
		foreach my $line (split /\n/, slurp_file($outfile{$c}))
		{
			if ($line =~ /^ack (\d+) (\d+)$/)
			{
				$acked{"$1:$2"} = 1;
				$attempted_max{$c} = $2 + 1 if $2 + 1 > $attempted_max{$c};
			}
			elsif ($line =~ /^fail (\d+) (\d+) (\S*)$/)
			{
				$failed{"$1:$2"} = $3;
				$attempted_max{$c} = $2 + 1 if $2 + 1 > $attempted_max{$c};
			}
			else
			{
				fail("$label: client $c printed an unexpected line: $line");
			}
		}
		my $err = slurp_file($errfile{$c});
		$errors{$1}++ while $err =~ /(server closed the connection unexpectedly|connection to server was lost|ERROR:\s+[^\n]*)/g;
	}
	note("$label: client errors: " . join('; ', map { "$_ x$errors{$_}" } sort keys %errors));
	note("$label: failed inserts: " . join(', ', map { "$_=$failed{$_}" } sort keys %failed)) if %failed;
	cmp_ok(scalar(keys %acked), '>=', $seen - $nclients,
		"$label: the clients saw the acknowledgements of what the leader had committed ("
		  . scalar(keys %acked) . " acknowledged, $seen visible at the crash)");

	foreach my $node (@nodes)
	{
		my %have;
		my $dups = 0;
		foreach my $r (split /\n/, sql($node, "SELECT client || ':' || seq FROM acks WHERE $mine"))
		{
			$dups++ if $have{$r}++;
		}
		my @missing = grep { !$have{$_} } sort keys %acked;
		is(scalar(@missing), 0, "$label: " . $node->name . ': every acknowledged row is there')
		  or diag('missing: ' . join(' ', @missing[0 .. ($#missing < 19 ? $#missing : 19)]));
		is($dups, 0, "$label: " . $node->name . ': no row twice');
		is(sql($node, "SELECT count(*) - count(DISTINCT (client, seq)) FROM acks WHERE $mine"), '0',
			"$label: " . $node->name . ': count(*) = count(DISTINCT (client, seq))');
		my @unsent = grep {
			my ($c, $s) = split /:/;
			$s > $attempted_max{$c}
		} keys %have;
		is(scalar(@unsent), 0, "$label: " . $node->name . ': no row that no client had sent')
		  or diag('unsent: ' . join(' ', sort @unsent));
		# a failure that is not "outcome unknown" means it did not happen
		my @ghost = grep { $have{$_} && $failed{$_} ne '40003' } keys %failed;
		is(scalar(@ghost), 0, "$label: " . $node->name . ': no row whose insert failed for a definite reason')
		  or diag('present although failed: ' . join(' ', map { "$_=$failed{$_}" } sort @ghost));
	}
	is(join(',', map { sql($_, "SELECT count(*) FROM acks WHERE $mine") } @nodes),
		join(',', (sql($leader, "SELECT count(*) FROM acks WHERE $mine")) x 3),
		"$label: the same row count on every node");
	checksums_equal(\@nodes, 'acks', $label);
	is(apply_errors(\@nodes), '', "$label: no apply error on any node");

	# the table still takes writes, on the leader of now
	sql($leader, "INSERT INTO acks (client, seq) VALUES (0, $first)");
	ok(wait_all_applied(\@nodes), "$label: a write after the crash is applied everywhere");
	is(join(',', map { sql($_, "SELECT count(*) FROM acks WHERE client = 0 AND seq = $first") } @nodes),
		'1,1,1', "$label: a write after the crash reaches every node");
	return;
}

# kill -9 of the leader: the others elect a new one; the old one restarts
stream_crash(
	'leader killed', 1,
	sub {
		my ($old) = @_;
		my @rest = grep { $_ != $old } @nodes;
		my $pids = kill9_node($old);
		my $new = wait_converged(\@rest, timeout => 60);
		ok($new, 'leader killed: the two others elect a new leader') or BAIL_OUT('no new leader');
		ok(wait_pids_gone($pids, $old->name . "'s processes exit"),
			'leader killed: every process of the killed leader exits')
		  or BAIL_OUT('the killed node cannot be restarted');
		restart_node($old);
	});

# every node killed at once (postmaster and children, as a power cut), then
# all restarted
stream_crash(
	'every node killed', 11,
	sub {
		ok(kill9_all(@nodes), 'every node killed: all processes of the three nodes are gone');
		restart_node($_) foreach @nodes;
	});

# ---------------------------------------------------------------------------
# kill -9 of a follower while it applies a large transaction
# ---------------------------------------------------------------------------

my $big_rows = 100_000;
sql($leader, q{
CREATE TABLE big (id int PRIMARY KEY, t text NOT NULL);
SELECT raftable.replicate_table('big');
});
ok(wait_all_applied(\@nodes), 'big is replicated');
{
	my ($f) = grep { $_ != $leader } @nodes;
	my $fp = poller($f);

	# the large transaction, from a client of its own
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			$leader->installed_command('psql'), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $leader->connstr('postgres'), '-c',
			"INSERT INTO big SELECT g, 'r' || g FROM generate_series(1, $big_rows) g",
			'-c', 'SELECT raftable.last_write_index()'
		],
		'<', '/dev/null', '>', \$out, '2>', \$err, IPC::Run::timeout(120));

	# the follower's apply worker busy for 100 ms already: only the large
	# entry takes that long (small ones apply in a few ms)
	my ($applied_at_kill, $busy_ms);
	my $t0 = time;
	my $caught = wait_for(
		sub {
			my $r = $fp->query(q{
				SELECT (SELECT applied_index FROM raftable.status) || ' ' ||
					   coalesce((SELECT round(extract(epoch FROM clock_timestamp() - xact_start) * 1000)
								   FROM pg_stat_activity
								  WHERE backend_type = 'raftable apply worker' AND state = 'active'), -1)});
			($applied_at_kill, $busy_ms) = split / /, $r;
			return $busy_ms >= 100;
		},
		$f->name . "'s apply worker busy with the large entry", timeout => 60, interval => 0.01);
	$fp->quit;
	ok($caught, $f->name . ": its apply worker is in the middle of the large entry ($busy_ms ms in)");
	ok(kill9_all($f), 'kill -9 of ' . $f->name . ' (postmaster and children) while it applies')
	  or BAIL_OUT('processes left');
	note(sprintf('killed %s %.0f ms after the INSERT started, %s ms into the apply',
		$f->name, (time - $t0) * 1000, $busy_ms));

	# the leader and the other follower are a quorum: the COMMIT returns
	my $ok = eval { $h->finish; 1 };
	ok($ok && $h->result(0) == 0, "the $big_rows-row INSERT commits on the leader") or diag("$@ $err");
	my $idx = (split /\n/, $out)[-1] // 0;
	cmp_ok($applied_at_kill, '<', $idx,
		$f->name . " had not applied the large entry ($idx) when it was killed (applied $applied_at_kill)");

	restart_node($f);
	ok(wait_converged(\@nodes, timeout => 60), $f->name . ' restarted and rejoined');
	ok(wait_all_applied(\@nodes, timeout => 90), 'every node applied everything committed');
	is(sql($f, 'SELECT count(*) || \':\' || sum(id) FROM big'),
		$big_rows . ':' . ($big_rows * ($big_rows + 1) / 2), $f->name . ": all $big_rows rows are there");
	checksums_equal(\@nodes, 'big', 'after the follower crashed mid-apply');
	is(status_of($f)->{apply_error}, undef, $f->name . ': apply_error is null');
	is(apply_errors(\@nodes), '', 'no apply error on any node');
}

# ---------------------------------------------------------------------------
# a change set over the limit
# ---------------------------------------------------------------------------

{
	my $before = checksum($leader, 'big');
	my $commit = status_of($leader)->{commit_index};

	# 30,000 rows of ~220 bytes each: about 6.6 MB
	my $e = sql_error($leader,
		q{INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(200001, 230000) g});
	is($e->{sqlstate}, '54000', 'an INSERT whose change set exceeds 4 MB: 54000') or diag($e->{stderr});
	like($e->{stderr}, qr/HINT:\s+\S/, '... with a HINT');

	# every row of big updated: the key and the new row of 100,000 rows
	$e = sql_error($leader, q{UPDATE big SET t = t || repeat('y', 20)});
	is($e->{sqlstate}, '54000', 'an UPDATE of 100,000 rows exceeding 4 MB: 54000') or diag($e->{stderr});

	# many small statements in one transaction add up too
	$e = sql_error($leader, q{
BEGIN;
INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(300001, 320000) g;
INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(320001, 340000) g;
INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(340001, 360000) g;
COMMIT;
});
	is($e->{sqlstate}, '54000', 'a transaction of three INSERTs adding up to over 4 MB: 54000')
	  or diag($e->{stderr});

	is(sql($leader, 'SELECT raftable.table_checksum(\'big\')'), $before, 'big is unchanged on the leader');

	# the cluster keeps working: a small write replicates
	sql($leader, q{INSERT INTO big VALUES (400001, 'small')});
	cmp_ok(status_of($leader)->{commit_index}, '>', $commit, 'the leader commits the small write');
	ok(wait_all_applied(\@nodes), 'every node applied it');
	is(join(',', map { sql($_, 'SELECT count(*) FILTER (WHERE id > 200000) || \'/\' || count(*) FROM big') } @nodes),
		join(',', ('1/' . ($big_rows + 1)) x 3),
		'nothing of the refused transactions on any node, the small write on every node');
	checksums_equal(\@nodes, 'big', 'after the refused transactions');
	is(apply_errors(\@nodes), '', 'no apply error on any node');
}

foreach my $node (@nodes)
{
	unlike(slurp_file($node->logfile), qr/PANIC:|TRAP:/, $node->name . ': no PANIC or assertion failure in the server log');
}

$_->stop foreach @nodes;
done_testing();
