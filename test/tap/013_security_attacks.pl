# test/tap/013_security_attacks.pl
#	An ordinary role against raftable's privileged paths, on a three-node
#	cluster.  Each attack is one that worked before raftable ran its
#	privileged code safely; after each, the attacker is still not a
#	superuser on any node, the statement was refused with its errcode (or
#	replicated correctly), and the nodes agree.
#
#	The attacker, "mallory", is a LOGIN role with no special rights that
#	owns a schema and a replicated table in it, as an application owner
#	would.  Every new hook or privileged SQL path gets a row here.
#
#	 1. operators planted in mallory's schema, first in her search_path,
#	    while raftable checks DDL and records writes as a superuser;
#	 2. a "regclass" domain planted in pg_temp, while raftable's SECURITY
#	    DEFINER sql_drop trigger runs;
#	 3. DDL under standard_conforming_strings = off whose text, read under
#	    other settings, is three statements;
#	 4. the owner's code (a CHECK constraint) run by apply on the followers;
#	    triggers enabled ALWAYS or REPLICA, rules, row-level security;
#	 7. divergence: SET UNLOGGED, ENABLE TRIGGER ALL, ALTER INDEX on the
#	    table, ALTER TABLE on its index, DROP ... CASCADE reaching the table,
#	    ALTER TYPE of a column's type, node-local types (money, oid, reg*),
#	    DDL under a search_path with a schema only the leader has;
#	 8. raftable.status.apply_error: the SQLSTATE, index and table for
#	    everyone, the full text only for pg_monitor; OWNER TO or GRANT to a
#	    role the followers lack is refused on the leader.
#	Items 5 and 6 (peer identity, secrets) are in 014_security_peers.pl.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run ();
use RaftableTest;

my @nodes = make_nodes(3);
form_cluster(@nodes);
my $leader = wait_converged(\@nodes);
ok($leader, 'three-node cluster formed') or BAIL_OUT('no cluster');
my @followers = grep { $_ != $leader } @nodes;

# mallory exists on every node (roles are not replicated), owns schema mal
foreach my $n (@nodes)
{
	sql($n, q{
		CREATE ROLE mallory LOGIN;
		CREATE SCHEMA mal AUTHORIZATION mallory;
	});
}

sub as_mallory
{
	my ($node, $query) = @_;
	return sql_error($node, $query,
		connstr => $node->connstr('postgres') . ' user=mallory');
}

sub superuser_anywhere
{
	return grep {
		sql($_, q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}) eq 't'
	} @nodes;
}

sub agree
{
	my ($table, $what) = @_;
	ok(wait_applied(\@nodes, $leader), "$what: every node applied it");
	my @sums = map { checksum($_, $table) } @nodes;
	is(scalar(grep { $_ eq $sums[0] } @sums), 3, "$what: $table is equal on every node");
	my @errors = grep { defined status_of($_)->{apply_error} } @nodes;
	is(scalar(@errors), 0, "$what: no node has an apply error");
}

# the function every attack tries to get run with a superuser's rights
foreach my $n (@nodes)
{
	is(as_mallory($n, q{
		CREATE FUNCTION mal.pwn() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
		BEGIN
			IF (SELECT rolsuper FROM pg_catalog.pg_roles
				 WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
				ALTER ROLE mallory SUPERUSER;
			END IF;
			RETURN true;
		END $$;
	})->{ok}, 1, $n->name . ': mallory defines her function');
}

is(as_mallory($leader, q{
	CREATE TABLE mal.t (id int PRIMARY KEY, v text);
	INSERT INTO mal.t VALUES (1, 'one');
})->{ok}, 1, 'mallory creates mal.t');
sql($leader, q{SELECT raftable.replicate_table('mal.t')});
agree('mal.t', 'replicate_table of mallory\'s table');
is(sql($followers[0], q{SELECT tableowner FROM pg_tables WHERE schemaname = 'mal' AND tablename = 't'}),
	'mallory', 'a follower\'s copy of mal.t is owned by mallory');

# ---------------------------------------------------------------------------
# 1. operators planted first in the search_path
# ---------------------------------------------------------------------------

my $r = as_mallory($leader, q{
	CREATE FUNCTION mal.eq_oid(oid, oid) RETURNS boolean LANGUAGE sql
		AS $$ SELECT mal.pwn() AND $1 OPERATOR(pg_catalog.=) $2 $$;
	CREATE OPERATOR mal.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = mal.eq_oid);
	CREATE FUNCTION mal.eq_84(bigint, integer) RETURNS boolean LANGUAGE sql
		AS $$ SELECT mal.pwn() AND $1 OPERATOR(pg_catalog.=) $2 $$;
	CREATE OPERATOR mal.= (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = mal.eq_84);
	CREATE FUNCTION mal.eq_88(bigint, bigint) RETURNS boolean LANGUAGE sql
		AS $$ SELECT mal.pwn() AND $1 OPERATOR(pg_catalog.=) $2 $$;
	CREATE OPERATOR mal.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = mal.eq_88);
	SET search_path = mal, pg_catalog;
	ALTER TABLE mal.t ADD COLUMN w int;
	CREATE INDEX ON mal.t (w);
	INSERT INTO mal.t VALUES (2, 'two', 2);
	UPDATE mal.t SET v = 'uno' WHERE id = 1;
});
is($r->{ok}, 1, '1: DDL and writes with planted operators first in the search_path work')
  or diag($r->{stderr});
is(scalar(superuser_anywhere()), 0, '1: mallory is not a superuser on any node');
agree('mal.t', '1');

# ---------------------------------------------------------------------------
# 2. a regclass domain in pg_temp, then a drop (the sql_drop trigger)
# ---------------------------------------------------------------------------

$r = as_mallory($leader, q{
	CREATE DOMAIN pg_temp.regclass AS pg_catalog.oid CHECK (mal.pwn());
	CREATE FUNCTION pg_temp.pg_event_trigger_dropped_objects() RETURNS SETOF oid
		LANGUAGE sql AS $$ SELECT 0::oid WHERE mal.pwn() $$;
	CREATE TEMP TABLE scratch (x int);
	DROP TABLE scratch;
	CREATE TABLE mal.local (x int);
	DROP TABLE mal.local;
});
is($r->{ok}, 1, '2: drops with a planted pg_temp.regclass work') or diag($r->{stderr});
is(scalar(superuser_anywhere()), 0, '2: mallory is not a superuser on any node');

# ---------------------------------------------------------------------------
# 3. DDL text that lexes differently under other settings
# ---------------------------------------------------------------------------

$r = as_mallory($leader, q{
	SET standard_conforming_strings = off;
	SET escape_string_warning = off;
	ALTER TABLE mal.t ADD CONSTRAINT c_inj CHECK (v <> 'a\' ); ALTER ROLE mallory SUPERUSER; --');
});
is($r->{ok}, 1, '3: ALTER TABLE under standard_conforming_strings = off runs on the leader')
  or diag($r->{stderr});
agree('mal.t', '3');
is(scalar(superuser_anywhere()), 0, '3: mallory is not a superuser on any node');
foreach my $f (@followers)
{
	is(sql($f, q{SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'c_inj'}),
		sql($leader, q{SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'c_inj'}),
		'3: ' . $f->name . ' has the same constraint as the leader, as one literal');
}

# ---------------------------------------------------------------------------
# 4. the owner's code in apply; triggers, rules and row security
# ---------------------------------------------------------------------------

$r = as_mallory($leader, q{
	ALTER TABLE mal.t ADD CONSTRAINT c_pwn CHECK (mal.pwn());
	INSERT INTO mal.t VALUES (3, 'three', 3);
	UPDATE mal.t SET w = 30 WHERE id = 3;
});
is($r->{ok}, 1, '4: a CHECK calling mallory\'s function, then writes') or diag($r->{stderr});
agree('mal.t', '4');
is(scalar(superuser_anywhere()), 0,
	'4: apply ran mallory\'s CHECK on the followers without making her a superuser');

$r = as_mallory($leader, q{
	CREATE FUNCTION mal.trg() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM mal.pwn(); RETURN NEW; END $$;
	CREATE TRIGGER t_pwn BEFORE INSERT ON mal.t FOR EACH ROW EXECUTE FUNCTION mal.trg();
	CREATE RULE r_pwn AS ON UPDATE TO mal.t WHERE mal.pwn() DO ALSO SELECT 1;
});
is($r->{ok}, 1, '4: mallory creates a trigger and a rule on the leader (local)') or diag($r->{stderr});
foreach my $case (
	[ 'ENABLE ALWAYS TRIGGER t_pwn',  '0A000' ],
	[ 'ENABLE REPLICA TRIGGER t_pwn', '0A000' ],
	[ 'ENABLE ALWAYS RULE r_pwn',     '0A000' ],
	[ 'ENABLE REPLICA RULE r_pwn',    '0A000' ],
	[ 'ENABLE ROW LEVEL SECURITY',    '0A000' ],
	[ 'FORCE ROW LEVEL SECURITY',     '0A000' ],
	[ 'ENABLE TRIGGER ALL',           '0A000' ],
	[ 'ENABLE TRIGGER USER',          '0A000' ],
	[ 'DISABLE TRIGGER ALL',          '0A000' ],
	[ 'SET UNLOGGED',                 '0A000' ])
{
	my ($cmd, $code) = @$case;
	$r = as_mallory($leader, "ALTER TABLE mal.t $cmd");
	is($r->{sqlstate}, $code, "4/7: ALTER TABLE ... $cmd is refused with $code")
	  or diag($r->{stderr});
}
is(sql($leader, q{SELECT relpersistence FROM pg_class WHERE oid = 'mal.t'::regclass}),
	'p', '7: mal.t is still logged');

# a table with such a trigger cannot be replicated either
sql($leader, q{
	CREATE TABLE public.trg_always (id int PRIMARY KEY);
	CREATE TRIGGER t BEFORE INSERT ON public.trg_always FOR EACH ROW EXECUTE FUNCTION mal.trg();
	ALTER TABLE public.trg_always ENABLE ALWAYS TRIGGER t;
	CREATE TABLE public.rls (id int PRIMARY KEY);
	ALTER TABLE public.rls ENABLE ROW LEVEL SECURITY;
	CREATE TABLE public.local_types (id int PRIMARY KEY, m money);
	CREATE TABLE public.reg_types (id int PRIMARY KEY, r regclass[]);
});
foreach my $t (qw(trg_always rls local_types reg_types))
{
	$r = sql_error($leader, "SELECT raftable.replicate_table('public.$t')");
	is($r->{sqlstate}, '0A000', "replicate_table of public.$t is refused with 0A000")
	  or diag($r->{stderr});
}

# ---------------------------------------------------------------------------
# 7. divergence holes
# ---------------------------------------------------------------------------

$r = as_mallory($leader, 'ALTER INDEX mal.t RENAME TO t_renamed');
is($r->{sqlstate}, '0A000', '7: ALTER INDEX on the table itself cannot rename it')
  or diag($r->{stderr});
$r = as_mallory($leader, 'ALTER TABLE mal.t_pkey SET (fillfactor = 70)');
is($r->{ok}, 1, '7: ALTER TABLE on the table\'s index is accepted') or diag($r->{stderr});
agree('mal.t', '7 (ALTER TABLE on an index)');
foreach my $f (@followers)
{
	is(sql($f, q{SELECT reloptions FROM pg_class WHERE oid = 'mal.t_pkey'::regclass}),
		'{fillfactor=70}', '7: ' . $f->name . ' got the index\'s new fillfactor');
}

foreach my $n (@nodes)
{
	sql($n, q{CREATE TYPE public.mood AS ENUM ('sad', 'ok')});
}
sql($leader, q{ALTER TABLE mal.t ADD COLUMN m public.mood});
agree('mal.t', '7 (a column of an enum type)');
foreach my $case (
	[ q{DROP TYPE public.mood CASCADE},              '2BP01' ],
	[ q{ALTER TYPE public.mood ADD VALUE 'happy'},   '0A000' ],
	[ q{ALTER TYPE public.mood RENAME VALUE 'ok' TO 'fine'}, '0A000' ],
	[ q{ALTER TYPE public.mood RENAME TO feeling},   '0A000' ],
	[ q{DROP FUNCTION mal.pwn() CASCADE},            '2BP01' ],
	[ q{DROP SCHEMA mal CASCADE},                    '2BP01' ],
	[ q{DROP OWNED BY mallory CASCADE},              '2BP01' ],
	[ q{ALTER TABLE mal.t ADD COLUMN cash money},    '0A000' ],
	[ q{ALTER TABLE mal.t ADD COLUMN o oid},         '0A000' ],
	[ q{ALTER TABLE mal.t ADD COLUMN rc regclass},   '0A000' ],
	[ q{ALTER TABLE mal.t ALTER COLUMN w TYPE regtype USING NULL}, '0A000' ])
{
	my ($stmt, $code) = @$case;
	$r = sql_error($leader, $stmt);
	is($r->{sqlstate}, $code, "7: $stmt is refused with $code") or diag($r->{stderr});
}
is(sql($leader, q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'mal.t'::regclass AND attname = 'm'}),
	'1', '7: mal.t still has its enum column on the leader');

# the reviewer's holes: a trigger passing for one of raftable's, local
# trigger and rule changes, clock-reading defaults and checks, and text
# lexed before a SET in the same query string
$r = as_mallory($leader, q{CREATE TRIGGER raftable_x AFTER TRUNCATE ON mal.t
	FOR EACH STATEMENT EXECUTE FUNCTION mal.trg()});
is($r->{sqlstate}, '42939', '7: a trigger named raftable_* is refused (42939)') or diag($r->{stderr});
$r = as_mallory($leader, q{ALTER TABLE mal.t DISABLE TRIGGER t_pwn; ALTER TABLE mal.t ENABLE TRIGGER t_pwn;
	ALTER TRIGGER t_pwn ON mal.t RENAME TO t_pwn2; ALTER TABLE mal.t DISABLE RULE r_pwn});
is($r->{ok}, 1, '7: enabling, disabling and renaming a local trigger or rule stays local') or diag($r->{stderr});
$r = as_mallory($leader, q{ALTER TABLE mal.t ENABLE TRIGGER t_pwn2, ADD COLUMN q int});
is($r->{sqlstate}, '0A000', '7: ... and mixed with other subcommands is refused') or diag($r->{stderr});
foreach my $case (
	[ q{ALTER TABLE mal.t ADD COLUMN at timestamptz DEFAULT 'now'},          '0A000' ],
	[ q{ALTER TABLE mal.t ADD COLUMN d date NOT NULL DEFAULT 'tomorrow'},   '0A000' ],
	[ q{ALTER TABLE mal.t ADD CONSTRAINT c_rand CHECK (random() < 2)},      '0A000' ],
	[ q{ALTER TABLE mal.t ADD COLUMN r float8 CHECK (r < random())},        '0A000' ])
{
	my ($stmt, $code) = @$case;
	$r = as_mallory($leader, $stmt);
	is($r->{sqlstate}, $code, "7: $stmt is refused with $code") or diag($r->{stderr});
}
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $leader->installed_command('psql'), '-XAtq', '-v', 'VERBOSITY=verbose',
			'-d', $leader->connstr('postgres') . ' user=mallory', '-c',
			q{SET standard_conforming_strings = off; ALTER TABLE mal.t ADD COLUMN bs text DEFAULT 'a\\\\'} ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	like($err, qr/ERROR:\s+0A000:.*reads differently/,
		'7: DDL lexed before a SET in the same query string is refused (0A000)');
}
agree('mal.t', '7 (local trigger changes, refusals)');

# DDL under a search_path naming a schema only the leader has
sql($leader, q{CREATE SCHEMA only_here AUTHORIZATION mallory});
$r = as_mallory($leader, q{
	SET search_path = only_here, mal;
	ALTER TABLE t ADD COLUMN z int;
	CREATE INDEX t_z ON t (z);
	INSERT INTO t (id, v, z) VALUES (4, 'four', 4);
});
is($r->{ok}, 1, '7: DDL with a leader-only schema in the search_path') or diag($r->{stderr});
agree('mal.t', '7 (leader-only schema in the search_path)');

# A transaction whose entry committed in the log but which then aborted here
# (terminated during the write_ack = all wait) leaves its entry to apply:
# a later write of the same row must wait until it is applied, not commit
# ahead of it (which would leave the leader with the older value).
sql($leader, q{
	CREATE TABLE public.ab (id int PRIMARY KEY, v text);
	SELECT raftable.replicate_table('public.ab');
	INSERT INTO public.ab VALUES (1, 'zero');
});
agree('public.ab', '7 (committed, then aborted: setup)');
my @held = map { poller($_) } @followers;
$_->query('BEGIN; LOCK TABLE public.ab IN ACCESS EXCLUSIVE MODE') foreach @held;
my $apply_lock = poller($leader);
$apply_lock->query('BEGIN; SELECT 1 FROM raftable.apply_state FOR UPDATE');

sub start_psql
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
		  '-c', $sql ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	return { h => $h, out => \$out, err => \$err };
}

my $ci = status_of($leader)->{commit_index};
my $w = start_psql($leader, q{SET raftable.write_ack = 'all'; SET raftable.write_timeout = '100s';
	SET application_name = 'w_all'; UPDATE public.ab SET v = 'first' WHERE id = 1});
ok(wait_for(sub {
		status_of($leader)->{commit_index} > $ci
		  && sql($leader, q{SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'w_all' AND wait_event_type = 'Extension'}) eq '1' },
		'the write_ack = all write is committed in the log and waits for the followers'),
	'7: a write_ack = all write commits in the log, then waits');
sql($leader, q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'w_all'});
eval { $w->{h}->finish };
my $later = start_psql($leader, q{SET application_name = 'w_later';
	UPDATE public.ab SET v = 'later' WHERE id = 1});
ok(wait_for(sub {
		sql($leader, q{SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'w_later' AND wait_event_type = 'Extension'}) eq '1' },
		'the later write waits'),
	'7: a later write of the row waits for the entry whose transaction aborted here');
$apply_lock->query('COMMIT');
$_->query('COMMIT') foreach @held;
$_->quit foreach @held, $apply_lock;
$later->{h}->finish;
is(${ $later->{err} }, '', '7: the later write then commits');
agree('public.ab', '7 (committed, then aborted)');
is(sql($_, q{SELECT v FROM public.ab WHERE id = 1}), 'later',
	'7: ' . $_->name . ' holds the later value') foreach @nodes;

is(scalar(superuser_anywhere()), 0, 'after everything, mallory is not a superuser on any node');

# ---------------------------------------------------------------------------
# 8. what apply_error tells whom
# ---------------------------------------------------------------------------

# OWNER TO a role the followers lack is refused on the leader (42704)
$r = sql_error($leader, q{CREATE ROLE bob; ALTER TABLE mal.t OWNER TO bob});
is($r->{sqlstate}, '42704', '8: OWNER TO a role the followers lack is refused') or diag($r->{stderr});

# a function only the leader has, in a new CHECK: refused on the leader
$r = sql_error($leader, q{CREATE FUNCTION public.only_here(int) RETURNS boolean IMMUTABLE LANGUAGE sql AS 'SELECT true';
	ALTER TABLE mal.t ADD CONSTRAINT c_here CHECK (public.only_here(id))});
is($r->{sqlstate}, '42704', '8: a CHECK calling a function the followers lack is refused') or diag($r->{stderr});
like($r->{message}, qr/function.*only_here.*does not exist on node/, '... naming the function and the node');

# a name that a follower already uses for something of its own: the
# follower cannot apply the new index, and says so
my $f = $followers[0];
sql($f, q{CREATE TABLE mal.clash_idx (x int)});
sql($leader, q{CREATE INDEX clash_idx ON mal.t (v)});
ok(wait_for(sub { defined status_of($f)->{apply_error} }, 'the follower reports an apply error'),
	'8: an index whose name a follower uses for a table of its own stops apply there, visibly');
my $full = status_of($f)->{apply_error};
like($full, qr/clash_idx/, '8: a superuser sees the whole error');
my $brief = as_mallory($f, q{SELECT apply_error FROM raftable.status})->{out};
like($brief, qr/^SQLSTATE [0-9A-Z]{5} at log index \d+, table mal\.t$/,
	'8: an ordinary role sees the SQLSTATE, log index and table');
unlike($brief, qr/clash_idx|CREATE/, '8: ... and not the statement or its names');
sql($f, q{GRANT pg_monitor TO mallory});
like(as_mallory($f, q{SELECT apply_error FROM raftable.status})->{out}, qr/clash_idx/,
	'8: a member of pg_monitor sees the whole error');
sql($f, q{DROP TABLE mal.clash_idx});
agree('mal.t', '8 (once the name is free, apply goes on)');

done_testing();
