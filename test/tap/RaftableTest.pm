# test/tap/RaftableTest.pm
#	Shared helpers for raftable's multi-node TAP tests (PostgreSQL::Test::Cluster).
#
#	    use lib 'test/tap';		# or PERL5LIB (make tap sets it)
#	    use RaftableTest;
#
#	    my @nodes = make_nodes(3);			# node1..node3, started, extension created
#	    my %id    = form_cluster(@nodes);		# create_cluster on node1, add_node the rest
#	    my $l     = wait_for_leader(\@nodes);	# the one node whose status says 'leader'
#	    wait_converged(\@nodes);				# one leader, followers, equal commit_index
#
#	Nodes listen on their Unix socket (test clients: $node->safe_psql etc.)
#	and on TCP 127.0.0.1 at the same port, with trust authentication
#	(initdb -A trust), so peers can reach each other through a conninfo of
#	the form host=127.0.0.1 port=P user=U.  By default U is the bootstrap
#	superuser, which may act as any member; production gives every node
#	its own role (test/tap/014_security_peers.pl does too).  raftable
#	refuses a conninfo with a password: $RaftableTest::PASSWORD is the
#	secret the tests try to slip in, and look for in the server logs.
#
#	Synchronisation is always by polling a condition with a deadline
#	(wait_for), never by sleeping.

package RaftableTest;

use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();
use IPC::Run ();
use POSIX ();
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(
  make_nodes peer_conninfo form_cluster form_cluster_via_proxy add_node node_id
  wait_for wait_for_leader wait_converged leader_of leaders
  status_of nodes_of stats_of rows_of sql sql_error checksum
  wait_applied kill9_node wait_pids_gone kill9_and_wait restart_node poller
  $PASSWORD
);

# A password the tests put into conninfos that raftable must refuse; it
# must never appear in a server log.
our $PASSWORD = 'Rft-s3cret-9d2c7e';

my $json = JSON::PP->new->utf8(0);

# ---------------------------------------------------------------------------
# nodes
# ---------------------------------------------------------------------------

# make_nodes(N, %opts) -> list of started PostgreSQL::Test::Cluster nodes
#	opts: prefix => 'node' (names prefix1..prefixN), first => 1 (first index),
#	      conf => "extra postgresql.conf lines", start => 1,
#	      create_extension => 1, initdb => [extra initdb arguments],
#	      allows_streaming => 0 (1: wal_level replica, replication in
#	      pg_hba.conf: for base backups and raftable's identity slots)
sub make_nodes
{
	my ($count, %opts) = @_;
	my $prefix = $opts{prefix} // 'node';
	my $first  = $opts{first}  // 1;
	my @nodes;
	for my $i ($first .. $first + $count - 1)
	{
		my $node = PostgreSQL::Test::Cluster->new("$prefix$i");
		$node->init(extra => $opts{initdb} // [],
			allows_streaming => $opts{allows_streaming} // 0);
		# listen on TCP too (the Unix socket set by init stays); trust
		# authentication for 127.0.0.1 comes from initdb -A trust, repeated
		# here so that it does not depend on initdb's defaults.
		$node->append_conf(
			'postgresql.conf', qq{
shared_preload_libraries = 'raftable'
listen_addresses = '127.0.0.1'
# tests pass conninfos with a password, which raftable refuses: statements
# are not logged, so that a password found in the log can only have been
# written by raftable (an error that does not hide its statement)
log_statement = 'none'
log_connections = on
log_disconnections = on
max_connections = 50
} . ($opts{conf} // ''));
		$node->append_conf('pg_hba.conf',
			"host all all 127.0.0.1/32 trust");
		push @nodes, $node;
	}
	if ($opts{start} // 1)
	{
		$_->start foreach @nodes;
		if ($opts{create_extension} // 1)
		{
			$_->safe_psql('postgres', 'CREATE EXTENSION raftable')
			  foreach @nodes;
		}
	}
	return @nodes;
}

# peer_conninfo($node, %opts): how peers reach $node, and (its user) the
# role $node connects to its peers as.
#	opts: port => P (e.g. a proxy's port instead of the node's), user =>
#	      name (default: the bootstrap superuser), password => '...'
#	      (default none; raftable refuses it)
sub peer_conninfo
{
	my ($node, %opts) = @_;
	my $port = $opts{port} // $node->port;
	my $user = $opts{user} // scalar(getpwuid($<));
	my $ci   = "host=127.0.0.1 port=$port dbname=postgres user=$user";
	$ci .= " password=$opts{password}" if defined $opts{password};
	return $ci;
}

sub _q	# SQL literal
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

# node_id($node): the raftable node id recorded by form_cluster/add_node
sub node_id
{
	my ($node) = @_;
	return $node->{raftable_id};
}

# form_cluster(@nodes, [\%opts]): create_cluster on the first node, then
# add_node (wait => true) for each other one, from the leader.  Returns
# name => node id.  opts: conninfo => sub { my $node = shift; ... }.
sub form_cluster
{
	my @nodes = @_;
	my $opts  = ref $nodes[-1] eq 'HASH' ? pop @nodes : {};
	my $ci    = $opts->{conninfo} // sub { peer_conninfo($_[0]) };
	my $first = shift @nodes;
	my %ids;

	my $id = sql($first,
		    'SELECT raftable.create_cluster('
		  . _q($ci->($first)) . ', '
		  . _q($first->name) . ')');
	$first->{raftable_id} = $id;
	$ids{ $first->name } = $id;
	wait_for(
		sub { (status_of($first)->{role} // '') eq 'leader' },
		"$first->{_name} leads its new cluster",
		timeout => 30)
	  or die "create_cluster: " . $first->name . " did not become leader";

	my @members = ($first);
	foreach my $node (@nodes)
	{
		my $leader = wait_for_leader(\@members, timeout => 30)
		  or die "no leader among the members";
		add_node($leader, $node, conninfo => $ci->($node));
		$ids{ $node->name } = $node->{raftable_id};
		push @members, $node;
	}
	return %ids;
}

# form_cluster_via_proxy($proxy, @nodes): a listener of the RaftableProxy
# $proxy for each node, the proxy started, and form_cluster with each
# node's peers reaching it through its listener; tells the proxy the ids.
# Returns name => node id.
sub form_cluster_via_proxy
{
	my ($proxy, @nodes) = @_;
	my %pport = map { $_->name => $proxy->add_listener($_->name, $_->port) } @nodes;
	$proxy->start;
	my %ids = form_cluster(@nodes,
		{ conninfo => sub { peer_conninfo($_[0], port => $pport{ $_[0]->name }) } });
	$proxy->set_ids(%ids);
	return %ids;
}

# add_node($leader, $node, %opts): raftable.add_node on $leader for $node,
# with wait => true unless opts{wait} is 0; records and returns the id.
sub add_node
{
	my ($leader, $node, %opts) = @_;
	my $ci   = $opts{conninfo} // peer_conninfo($node);
	my $wait = ($opts{wait} // 1) ? 'true' : 'false';
	my $name = exists $opts{name} ? $opts{name} : $node->name;
	my $id   = sql($leader,
		    'SELECT raftable.add_node('
		  . _q($ci) . ', '
		  . _q($name)
		  . ", $wait)",
		timeout => $opts{timeout} // 120);
	$node->{raftable_id} = $id;
	return $id;
}

# ---------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------

# sql($node, $query, %opts): safe_psql with a timeout (default 60 s).
sub sql
{
	my ($node, $query, %opts) = @_;
	return $node->safe_psql('postgres', $query,
		timeout => $opts{timeout} // 60);
}

# sql_error($node, $query, %opts) -> hashref
#	{ ok => 1, out => ... } if the query succeeded, else
#	{ ok => 0, sqlstate, message, detail, hint, stderr }.
#	Runs with VERBOSITY verbose so that the SQLSTATE is printed.
sub sql_error
{
	my ($node, $query, %opts) = @_;
	my ($ret, $out, $err) = $node->psql(
		'postgres', "\\set VERBOSITY verbose\n$query",
		timeout => $opts{timeout} // 60,
		($opts{connstr} ? (connstr => $opts{connstr}) : ()));
	return { ok => 1, out => $out, stderr => $err } if $ret == 0;
	my %r = (ok => 0, stderr => $err, ret => $ret);
	if ($err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):\s+([^\n]*)/)
	{
		($r{sqlstate}, $r{message}) = ($1, $2);
	}
	$r{detail} = $1 if $err =~ /^DETAIL:\s+([^\n]*)/m;
	$r{hint}   = $1 if $err =~ /^HINT:\s+([^\n]*)/m;
	$r{sqlstate} //= '';
	$r{message}  //= $err;
	return \%r;
}

# checksum($node, $table) -> raftable.table_checksum of the table there, as
# this node has it (an eventual read: no read index, answers cut off)
sub checksum
{
	my ($node, $tbl) = @_;
	return sql($node, "SET raftable.read_consistency = 'eventual'; "
		  . "SELECT raftable.table_checksum('$tbl')");
}

# wait_applied(\@nodes, $leader, timeout => s) -> true once every node of
# @nodes has applied what $leader had committed when this was called
# (diag()s each node's applied index and apply error otherwise).
sub wait_applied
{
	my ($nodes, $l, %opts) = @_;
	my $ci = status_of($l)->{commit_index};
	my $last = '';
	my $ok = wait_for(
		sub {
			my @st = map { status_of($_) } @$nodes;
			$last = join(', ',
				map { $nodes->[$_]->name . ': applied ' . $st[$_]{applied_index}
					  . (defined $st[$_]{apply_error} ? " error: $st[$_]{apply_error}" : '') }
				  0 .. $#st);
			return !grep { $_->{applied_index} < $ci } @st;
		},
		"every node applies up to index $ci",
		timeout => $opts{timeout} // 60);
	diag("commit index $ci; $last") unless $ok;
	return defined $ok;
}

# rows_of($node, $query) -> list of hashrefs (one per row, NULL -> undef)
sub rows_of
{
	my ($node, $query, %opts) = @_;
	my $out = sql($node,
		"SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM ($query) t",
		%opts);
	return @{ $json->decode($out) };
}

sub status_of
{
	my ($node) = @_;
	my @rows = rows_of($node, 'SELECT * FROM raftable.status');
	die "raftable.status: " . scalar(@rows) . " rows on " . $node->name
	  unless @rows == 1;
	return $rows[0];
}

sub nodes_of
{
	my ($node) = @_;
	return rows_of($node, 'SELECT * FROM raftable.nodes ORDER BY node_id');
}

sub stats_of
{
	my ($node) = @_;
	my @rows = rows_of($node, 'SELECT * FROM raftable.stats');
	die "raftable.stats: " . scalar(@rows) . " rows" unless @rows == 1;
	return $rows[0];
}

# ---------------------------------------------------------------------------
# waiting
# ---------------------------------------------------------------------------

# wait_for($code, $what, timeout => s, interval => s) -> elapsed seconds, or
# undef on timeout (then diag()s $what and the last error of $code, if any).
# $code may die (a node that is down): that counts as "not yet".
sub wait_for
{
	my ($code, $what, %opts) = @_;
	my $timeout  = $opts{timeout}  // 60;
	my $interval = $opts{interval} // 0.05;
	my $start    = time;
	my $last_err;
	while (1)
	{
		my $ok = eval { $code->() };
		$last_err = $@ if $@;
		return time - $start if $ok;
		last if time - $start > $timeout;
		usleep($interval * 1e6);
	}
	diag("timed out after ${timeout}s waiting for: " . ($what // 'a condition'));
	diag("last error: $last_err") if $last_err;
	return undef;
}

# leaders(\@nodes) -> the nodes whose own raftable.status says 'leader'
# (nodes that cannot be queried are skipped)
sub leaders
{
	my ($nodes) = @_;
	my @l;
	foreach my $node (@$nodes)
	{
		my $st = eval { status_of($node) } or next;
		push @l, [ $node, $st ] if ($st->{role} // '') eq 'leader';
	}
	return map { $_->[0] } sort { $b->[1]{term} <=> $a->[1]{term} } @l;
}

# leader_of(\@nodes) -> the leader (the one with the highest term, should
# several claim it), or undef
sub leader_of
{
	my ($nodes) = @_;
	my @l = leaders($nodes);
	return $l[0];
}

# wait_for_leader(\@nodes, timeout => s) -> a node that is the only leader
# among @nodes and that every other reachable node of @nodes follows
sub wait_for_leader
{
	my ($nodes, %opts) = @_;
	my $leader;
	wait_for(
		sub {
			my @l = leaders($nodes);
			return 0 unless @l == 1;
			$leader = $l[0];
			return 1;
		},
		'exactly one leader among ' . join(',', map { $_->name } @$nodes),
		timeout => $opts{timeout} // 30);
	return $leader;
}

# wait_converged(\@nodes, timeout => s) -> leader node or undef
#	exactly one leader; every other node a follower of it (same term, same
#	leader_id); commit_index equal everywhere.
sub wait_converged
{
	my ($nodes, %opts) = @_;
	my ($leader, $last);
	wait_for(
		sub {
			my @st = map { status_of($_) } @$nodes;
			$last = join('; ',
				map {
					my $s = $st[$_];
					$nodes->[$_]->name . ": "
					  . join(' ',
						map { "$_=" . ($s->{$_} // 'NULL') }
						  qw(role term leader_id commit_index applied_index))
				} 0 .. $#st);
			my @li = grep { $st[$_]{role} eq 'leader' } 0 .. $#st;
			return 0 unless @li == 1;
			my $ls = $st[ $li[0] ];
			foreach my $s (@st)
			{
				next if $s == $ls;
				return 0 unless $s->{role} eq 'follower';
				return 0 unless ($s->{leader_id} // 0) == $ls->{node_id};
				return 0 unless $s->{term} == $ls->{term};
				return 0 unless $s->{commit_index} == $ls->{commit_index};
			}
			$leader = $nodes->[ $li[0] ];
			return 1;
		},
		'convergence of ' . join(',', map { $_->name } @$nodes),
		timeout => $opts{timeout} // 60)
	  or diag("last status: $last");
	return $leader;
}

# ---------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------

sub _children_of
{
	my ($pid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or return ();
	foreach my $p (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$p/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat;
		# pid (comm) state ppid ...; comm may contain spaces and parens
		$stat =~ s/^.*\)\s+//s;
		my (undef, $ppid) = split /\s+/, $stat;
		push @kids, $p if defined $ppid && $ppid == $pid;
	}
	closedir $dh;
	return @kids;
}

# kill9_node($node) -> [pids]: SIGKILL the postmaster only (a crash of it,
# as PostgreSQL::Test::Cluster's kill9 does); returns the pids of the
# postmaster and of its children at that moment, for wait_pids_gone.
sub kill9_node
{
	my ($node) = @_;
	my $pm = $node->{_pid} or die $node->name . " is not running";
	my @pids = ($pm, _children_of($pm));
	$node->kill9;
	return \@pids;
}

# wait_pids_gone($pids, $what, timeout => s) -> true once none of them runs.
# After the postmaster's death its children (backends, raftable's workers)
# must notice and exit by themselves, or the node cannot start again.
sub wait_pids_gone
{
	my ($pids, $what, %opts) = @_;
	my $ok = wait_for(
		sub { !grep { kill(0, $_) } @$pids },
		$what // 'processes to exit',
		timeout  => $opts{timeout} // 30,
		interval => 0.02);
	unless ($ok)
	{
		foreach my $k (grep { kill(0, $_) } @$pids)
		{
			my $cmd = '';
			if (open(my $fh, '<', "/proc/$k/cmdline"))
			{
				local $/;
				$cmd = <$fh> // '';
				$cmd =~ s/\0/ /g;
			}
			diag("still running: pid $k: $cmd");
		}
	}
	return $ok;
}

# kill9_and_wait($node, timeout => s): kill9_node, then wait_pids_gone
sub kill9_and_wait
{
	my ($node, %opts) = @_;
	my $pids = kill9_node($node);
	return wait_pids_gone($pids,
		$node->name . ': all processes exit after the postmaster was killed', %opts);
}

# restart_node($node): start a node that was stopped or killed
sub restart_node
{
	my ($node) = @_;
	$node->start;
	return;
}

# ---------------------------------------------------------------------------
# a persistent psql session for tight polling (no per-query note())
# ---------------------------------------------------------------------------

package RaftableTest::Poller;

use Time::HiRes qw(time);

sub new
{
	my ($class, $node) = @_;
	my $self = bless { in => '', out => '', err => '', n => 0,
		name => $node->name }, $class;
	$self->{timer} = IPC::Run::timeout(60);
	$self->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=0',
			'-d', $node->connstr('postgres')
		],
		'<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err},
		$self->{timer});
	return $self;
}

# query($sql) -> output (without the trailing newline); dies on timeout
sub query
{
	my ($self, $sql, $timeout) = @_;
	$self->send($sql);
	return $self->result($timeout);
}

# send($sql): start a query and return at once (for one that will wait on
# a lock); result() collects what it printed
sub send
{
	my ($self, $sql) = @_;
	my $n = ++$self->{n};
	$self->{mark} = "__raftable_poll_${n}__";
	$self->{out} = '';
	$self->{err} = '';
	$self->{in} .= "$sql;\n\\echo $self->{mark}\n";
	$self->{h}->pump_nb;
	return;
}

# result() -> the output of the query sent last; dies on timeout
sub result
{
	my ($self, $timeout) = @_;
	my $mark = $self->{mark};
	$self->{timer}->start($timeout // 10);
	$self->{h}->pump until $self->{out} =~ /\Q$mark\E\n/;
	$self->{timer}->reset;
	my $o = $self->{out};
	$o =~ s/\n?\Q$mark\E\n//;
	die "poller($self->{name}): $self->{err}" if $self->{err} ne '';
	return $o;
}

sub quit
{
	my ($self) = @_;
	$self->{in} .= "\\q\n";
	eval { $self->{h}->finish };
	eval { $self->{h}->kill_kill };
	return;
}

package RaftableTest;

# poller($node): a persistent psql session on $node (->query, ->quit)
sub poller
{
	my ($node) = @_;
	return RaftableTest::Poller->new($node);
}

1;
