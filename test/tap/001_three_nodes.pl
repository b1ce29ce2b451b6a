# test/tap/001_three_nodes.pl
#	Three PostgreSQL instances with raftable preloaded: each one loads the
#	library at postmaster start (so the raftable. GUC prefix is reserved
#	before any raftable function runs), creates the extension and reports
#	the version of its SQL script.  The nodes do not form a cluster yet.
#
#	Run by `make tap`.  PostgreSQL::Test::Cluster picks free ports and
#	private socket directories; it refuses to run as root.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my @nodes;
foreach my $name (qw(node1 node2 node3))
{
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'raftable'\n");
	push @nodes, $node;
}

# A misspelt raftable.* setting in postgresql.conf is dropped, with a
# WARNING, when _PG_init reserves the prefix at postmaster start.
$nodes[0]->append_conf('postgresql.conf', "raftable.misspelt = 1\n");

$_->start foreach @nodes;

my %ports = map { $_->port => 1 } @nodes;
is(scalar(keys %ports), 3, 'the three nodes listen on three distinct ports');

foreach my $node (@nodes)
{
	my $name = $node->name;

	is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
		'raftable', "$name: raftable is preloaded");

	# Before CREATE EXTENSION, in a fresh session: only the postmaster's
	# _PG_init can have reserved the prefix.
	my ($ret, $stdout, $stderr) =
	  $node->psql('postgres', 'SET raftable.nonexistent = 1');
	isnt($ret, 0, "$name: SET raftable.nonexistent fails");
	like(
		$stderr,
		qr/ERROR:  invalid configuration parameter name "raftable\.nonexistent"/,
		"$name: ... as an invalid parameter name");
	like(
		$stderr,
		qr/DETAIL:  "raftable" is a reserved prefix\./,
		"$name: ... because the prefix is reserved");

	$node->safe_psql('postgres', 'CREATE EXTENSION raftable');
	is($node->safe_psql('postgres', 'SELECT raftable.version()'),
		'0.2', "$name: raftable.version() is 0.2");
	is( $node->safe_psql(
			'postgres',
			"SELECT raftable.version() = extversion FROM pg_extension WHERE extname = 'raftable'"
		),
		't',
		"$name: the library matches the installed SQL script");
}

# The misspelt setting on node1: warned about at start, and gone.
like(
	slurp_file($nodes[0]->logfile),
	qr/WARNING:  invalid configuration parameter name "raftable\.misspelt", removing it/,
	'node1: a misspelt raftable.* setting in postgresql.conf is reported');
my ($ret, $stdout, $stderr) =
  $nodes[0]->psql('postgres', 'SHOW raftable.misspelt');
like(
	$stderr,
	qr/unrecognized configuration parameter "raftable\.misspelt"/,
	'node1: ... and removed');

$_->stop foreach @nodes;

done_testing();
