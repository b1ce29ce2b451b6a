# test/tap/RaftableProxy.pm
#	A fault-injecting TCP proxy for raftable's TAP tests: real network
#	partitions between PostgreSQL nodes that all run as the same OS user
#	(so iptables' owner match cannot tell them apart).
#
#	    my $proxy = RaftableProxy->new(name => 'p');
#	    my $pport = $proxy->add_listener('node1', $node1->port);  # per node
#	    $proxy->start;                       # forks the proxy process
#	    ... conninfo of node1 for its peers: host=127.0.0.1 port=$pport ...
#	    $proxy->set_ids(node1 => 1, node2 => 2, node3 => 3);  # raftable ids
#	    $proxy->isolate('node1');            # node1 cut off from everyone
#	    $proxy->partition(['node1'], ['node2', 'node3']);  # the same
#	    $proxy->heal;                        # everything flows again
#	    $proxy->retarget('node3', $other->port);  # node3's listener now
#	                                         # forwards to another server
#	    $proxy->stop;                        # also done in an END block
#
#	Each listener (one per node, on 127.0.0.1 and a free port) forwards to
#	the node's real TCP port on 127.0.0.1.  For every new connection the
#	proxy reads the startup packet (answering 'N' itself to an SSLRequest or
#	GSSENCRequest that precedes it) and takes the source node's id from its
#	application_name, "raftable-node-<id>", which raftable's transport sets
#	on its outbound connections.  The destination is the listener's node.
#
#	A connection whose source and destination are in different groups is
#	blackholed: nothing is forwarded in either direction and nothing is
#	closed, as behind a dead switch; bytes stay in the kernel's socket
#	buffers and in the proxy, and flow again, in order and complete, once
#	the groups are healed (as TCP retransmission would deliver them).  A
#	new connection whose destination is cut off is accepted but not
#	forwarded (not even the connect to the server) until healed.  A
#	connection without a raftable application_name counts as coming from
#	group 0, the group of every node not named in a partition.
#
#	Control: the test process writes a control file (generation number,
#	node ids, groups, targets) and waits until the proxy acknowledges that
#	generation, so that a cut is in force when isolate() returns.  The
#	proxy logs to tmp_check/log/<test>_proxy_<name>.log.  Only 127.0.0.1
#	is ever used.

package RaftableProxy;

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Fcntl;
use File::Basename qw(basename);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_REUSEADDR IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

my @live;	# started proxies, stopped in END

sub new
{
	my ($class, %opts) = @_;
	my $name = $opts{name} // 'proxy';
	my $testname = basename($0);
	$testname =~ s/\.[^.]+$//;
	my $dir = PostgreSQL::Test::Utils::tempdir("proxy_$name");
	my $self = bless {
		name      => $name,
		dir       => $dir,
		control   => "$dir/control",
		ack       => "$dir/ack",
		log       => "$PostgreSQL::Test::Utils::log_path/${testname}_proxy_$name.log",
		listeners => {},	# label => { sock, port, target }
		gen       => 0,
		ids       => {},	# label => raftable node id
		groups    => {},	# label => group number
		targets   => {},	# label => port (retargeted)
		pid       => undef,
	}, $class;
	return $self;
}

sub logfile { return $_[0]{log} }

# add_listener($label, $target_port) -> the proxy's port for that node
sub add_listener
{
	my ($self, $label, $target_port) = @_;
	die "add_listener after start" if $self->{pid};
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $sock = IO::Socket::INET->new(
		LocalAddr => '127.0.0.1',
		LocalPort => $port,
		Proto     => 'tcp',
		Listen    => 64,
		ReuseAddr => 1)
	  or die "proxy: cannot listen on 127.0.0.1:$port: $!";
	$self->{listeners}{$label} =
	  { sock => $sock, port => $port, target => $target_port };
	return $port;
}

sub port
{
	my ($self, $label) = @_;
	return $self->{listeners}{$label}{port};
}

sub start
{
	my ($self) = @_;
	$self->_write_control;
	my $parent = $$;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		# The child must never run the test's END blocks (they would stop
		# the nodes): leave through POSIX::_exit only.
		my $rc = 0;
		eval {
			open(STDIN, '<', '/dev/null');
			open(STDOUT, '>>', $self->{log}) or die "log: $!";
			open(STDERR, '>&', \*STDOUT);
			STDOUT->autoflush(1);
			$SIG{TERM} = sub { POSIX::_exit(0) };
			$SIG{INT}  = sub { POSIX::_exit(0) };
			$SIG{PIPE} = 'IGNORE';
			_run($self, $parent);
		};
		if ($@)
		{
			print STDOUT "proxy died: $@";
			$rc = 1;
		}
		POSIX::_exit($rc);
	}
	$self->{pid} = $pid;
	# the child owns the listening sockets now
	close($_->{sock}) foreach values %{ $self->{listeners} };
	push @live, $self;
	$self->_wait_ack;
	return;
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill('TERM', $self->{pid});
	waitpid($self->{pid}, 0);
	$self->{pid} = undef;
	@live = grep { $_ != $self } @live;
	return;
}

END
{
	my $status = $?;
	$_->stop foreach @live;
	$? = $status;
}

# set_ids(label => raftable node id, ...): whose application_name is whose
sub set_ids
{
	my ($self, %ids) = @_;
	$self->{ids}{$_} = $ids{$_} foreach keys %ids;
	$self->_apply;
	return;
}

# partition([labels...], [labels...], ...): group 1, 2, ...; others: 0
sub partition
{
	my ($self, @groups) = @_;
	$self->{groups} = {};
	for my $g (0 .. $#groups)
	{
		$self->{groups}{$_} = $g + 1 foreach @{ $groups[$g] };
	}
	$self->_apply;
	return;
}

# isolate(label...): those nodes each alone, cut off from all others
sub isolate
{
	my ($self, @labels) = @_;
	return $self->partition(map { [$_] } @labels);
}

sub heal
{
	my ($self) = @_;
	$self->{groups} = {};
	$self->_apply;
	return;
}

# retarget($label, $port): new connections to $label's listener go to $port
# on 127.0.0.1; the listener's open connections are closed.
sub retarget
{
	my ($self, $label, $port) = @_;
	$self->{targets}{$label} = $port;
	$self->_apply;
	return;
}

sub _write_control
{
	my ($self) = @_;
	my $gen = ++$self->{gen};
	my $tmp = "$self->{control}.tmp";
	open(my $fh, '>', $tmp) or die "$tmp: $!";
	print $fh "gen $gen\n";
	foreach my $l (sort keys %{ $self->{ids} })
	{
		print $fh "id $l $self->{ids}{$l}\n";
	}
	foreach my $l (sort keys %{ $self->{groups} })
	{
		print $fh "group $l $self->{groups}{$l}\n";
	}
	foreach my $l (sort keys %{ $self->{targets} })
	{
		print $fh "target $l $self->{targets}{$l}\n";
	}
	close $fh;
	rename($tmp, $self->{control}) or die "rename $tmp: $!";
	return $gen;
}

sub _apply
{
	my ($self) = @_;
	$self->_write_control;
	$self->_wait_ack if $self->{pid};
	return;
}

sub _wait_ack
{
	my ($self) = @_;
	my $deadline = time + 30;
	while (time < $deadline)
	{
		if (open(my $fh, '<', $self->{ack}))
		{
			my $g = <$fh>;
			close $fh;
			return if defined $g && $g =~ /^(\d+)/ && $1 >= $self->{gen};
		}
		die "proxy $self->{name} exited (see $self->{log})"
		  if waitpid($self->{pid}, POSIX::WNOHANG()) == $self->{pid};
		usleep(5_000);
	}
	die "proxy $self->{name} did not acknowledge generation $self->{gen}";
}

# ---------------------------------------------------------------------------
# the proxy process
# ---------------------------------------------------------------------------

use constant {
	SSL_REQUEST    => 80877103,
	GSSENC_REQUEST => 80877104,
	CANCEL_REQUEST => 80877102,
	MAX_BUF        => 4 * 1024 * 1024,
};

my ($t0, %ctl, %by_label, %conns, $next_conn);

sub _log
{
	my ($fmt, @args) = @_;
	printf STDOUT "%9.3f $fmt\n", time - $t0, @args;
	return;
}

sub _read_control
{
	my ($self) = @_;
	open(my $fh, '<', $self->{control}) or return;
	my %c = (gen => 0, ids => {}, groups => {}, targets => {});
	while (my $line = <$fh>)
	{
		my @f = split ' ', $line;
		next unless @f;
		if    ($f[0] eq 'gen')    { $c{gen} = $f[1] }
		elsif ($f[0] eq 'id')     { $c{ids}{ $f[1] } = $f[2] }
		elsif ($f[0] eq 'group')  { $c{groups}{ $f[1] } = $f[2] }
		elsif ($f[0] eq 'target') { $c{targets}{ $f[1] } = $f[2] }
	}
	close $fh;
	return \%c;
}

sub _group_of_label
{
	my ($label) = @_;
	return 0 unless defined $label;
	return $ctl{groups}{$label} // 0;
}

sub _label_of_id
{
	my ($id) = @_;
	return undef unless defined $id;
	foreach my $l (keys %{ $ctl{ids} })
	{
		return $l if $ctl{ids}{$l} == $id;
	}
	return undef;
}

sub _blocked
{
	my ($c) = @_;
	my $dst = _group_of_label($c->{label});
	my $src = defined $c->{src} ? _group_of_label(_label_of_id($c->{src})) : 0;
	return $src != $dst;
}

sub _close_conn
{
	my ($c, $why) = @_;
	return if $c->{closed};
	$c->{closed} = 1;
	close($c->{cli}) if $c->{cli};
	close($c->{srv}) if $c->{srv};
	_log("conn %d (%s -> %s) closed: %s",
		$c->{n}, $c->{src} // '?', $c->{label}, $why);
	delete $conns{ $c->{n} };
	return;
}

sub _nonblock
{
	my ($sock) = @_;
	my $flags = fcntl($sock, F_GETFL, 0) or die "fcntl: $!";
	fcntl($sock, F_SETFL, $flags | O_NONBLOCK) or die "fcntl: $!";
	setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);
	return;
}

# parse what the client sent before forwarding starts; returns 1 when the
# connection is identified (startup or cancel packet seen)
sub _parse_startup
{
	my ($c) = @_;
	while (length($c->{sbuf}) >= 8)
	{
		my ($len, $code) = unpack('N N', $c->{sbuf});
		if ($len < 8 || $len > 100_000)
		{
			_close_conn($c, "bad startup packet length $len");
			return 0;
		}
		return 0 if length($c->{sbuf}) < $len;
		if ($code == SSL_REQUEST || $code == GSSENC_REQUEST)
		{
			substr($c->{sbuf}, 0, $len, '');
			$c->{cliw} .= 'N';
			_log("conn %d: %s request answered N", $c->{n},
				$code == SSL_REQUEST ? 'SSL' : 'GSSENC');
			next;
		}
		if ($code != CANCEL_REQUEST)
		{
			my @kv = split /\0/, substr($c->{sbuf}, 8, $len - 8);
			for (my $i = 0; $i + 1 < @kv; $i += 2)
			{
				$c->{params}{ $kv[$i] } = $kv[ $i + 1 ];
			}
			my $app = $c->{params}{application_name} // '';
			$c->{src} = $1 if $app =~ /^raftable-node-(\d+)$/;
		}
		$c->{app} = $c->{params}{application_name};
		$c->{srvw} = $c->{sbuf};	# the packet and anything after it
		$c->{sbuf} = '';
		$c->{state} = 'identified';
		_log("conn %d: from %s (application_name %s, user %s) to %s",
			$c->{n}, $c->{src} // 'a client', $c->{app} // '-',
			$c->{params}{user} // '-', $c->{label});
		return 1;
	}
	return 0;
}

sub _connect_upstream
{
	my ($c) = @_;
	my $port = $ctl{targets}{ $c->{label} } // $by_label{ $c->{label} }{target};
	my $srv = IO::Socket::INET->new(
		PeerAddr => '127.0.0.1',
		PeerPort => $port,
		Proto    => 'tcp',
		Timeout  => 5);
	unless ($srv)
	{
		_close_conn($c, "connect to 127.0.0.1:$port failed: $!");
		return;
	}
	_nonblock($srv);
	$c->{srv}   = $srv;
	$c->{state} = 'open';
	$c->{port}  = $port;
	_log("conn %d: connected to 127.0.0.1:%d", $c->{n}, $port);
	return;
}

# read from $from into $buf; returns 0 on EOF/error (connection closed)
sub _pump_read
{
	my ($c, $sock, $bufref, $what) = @_;
	my $n = sysread($sock, my $data, 65536);
	if (!defined $n)
	{
		return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
		_close_conn($c, "$what read error: $!");
		return 0;
	}
	if ($n == 0)
	{
		# pass on what the other side still has to get, if it may
		if (!_blocked($c))
		{
			my ($other, $buf) =
			  $sock == $c->{cli}
			  ? ($c->{srv}, \$c->{srvw})
			  : ($c->{cli}, \$c->{cliw});
			syswrite($other, $$buf) if $other && length $$buf;
		}
		_close_conn($c, "$what closed");
		return 0;
	}
	$$bufref .= $data;
	return 1;
}

sub _pump_write
{
	my ($c, $sock, $bufref, $what) = @_;
	my $n = syswrite($sock, $$bufref);
	if (!defined $n)
	{
		return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
		_close_conn($c, "$what write error: $!");
		return 0;
	}
	substr($$bufref, 0, $n, '');
	return 1;
}

sub _run
{
	my ($self, $parent) = @_;
	$t0 = time;
	$next_conn = 0;
	%by_label = %{ $self->{listeners} };
	my %listener_of;	# fileno => label
	foreach my $l (keys %by_label)
	{
		_nonblock($by_label{$l}{sock});
		$listener_of{ fileno($by_label{$l}{sock}) } = $l;
		_log("listening on 127.0.0.1:%d for %s (-> 127.0.0.1:%d)",
			$by_label{$l}{port}, $l, $by_label{$l}{target});
	}
	%ctl = (gen => -1, ids => {}, groups => {}, targets => {});

	while (1)
	{
		POSIX::_exit(0) if getppid() != $parent;

		# control file (tiny, read every cycle): apply a new generation,
		# then acknowledge it
		my $c = _read_control($self);
		if ($c && $c->{gen} != $ctl{gen})
		{
			my %old_targets = %{ $ctl{targets} };
			%ctl = %$c;
			_log("control gen %d: ids {%s} groups {%s} targets {%s}",
				$ctl{gen},
				join(',', map { "$_=$ctl{ids}{$_}" } sort keys %{ $ctl{ids} }),
				join(',', map { "$_=$ctl{groups}{$_}" } sort keys %{ $ctl{groups} }),
				join(',', map { "$_=$ctl{targets}{$_}" } sort keys %{ $ctl{targets} }));
			foreach my $l (keys %{ $ctl{targets} })
			{
				next if defined $old_targets{$l}
				  && $old_targets{$l} == $ctl{targets}{$l};
				_close_conn($_, "listener $l retargeted")
				  foreach grep { $_->{label} eq $l } values %conns;
			}
			foreach my $cn (values %conns)
			{
				my $b = _blocked($cn) ? 1 : 0;
				if ($b != ($cn->{blocked} // 0))
				{
					_log("conn %d (%s -> %s): %s", $cn->{n},
						$cn->{src} // '?', $cn->{label},
						$b ? 'blackholed' : 'flowing again');
				}
				$cn->{blocked} = $b;
			}
			my $tmp = "$self->{ack}.tmp";
			open(my $fh, '>', $tmp) or die "$tmp: $!";
			print $fh "$ctl{gen}\n";
			close $fh;
			rename($tmp, $self->{ack}) or die "rename: $!";
		}

		# identified connections wait for their destination to be reachable
		foreach my $c (values %conns)
		{
			next unless $c->{state} eq 'identified';
			$c->{blocked} = _blocked($c) ? 1 : 0;
			_connect_upstream($c) unless $c->{blocked};
		}

		my $rsel = IO::Select->new;
		my $wsel = IO::Select->new;
		$rsel->add($_->{sock}) foreach values %by_label;
		my %sock_conn;
		foreach my $c (values %conns)
		{
			$sock_conn{ fileno($c->{cli}) } = $c;
			$sock_conn{ fileno($c->{srv}) } = $c if $c->{srv};
			if ($c->{state} eq 'startup')
			{
				$rsel->add($c->{cli});
				$wsel->add($c->{cli}) if length $c->{cliw};
				next;
			}
			next if $c->{state} ne 'open' || _blocked($c);
			$rsel->add($c->{cli}) if length($c->{srvw}) < MAX_BUF;
			$rsel->add($c->{srv}) if length($c->{cliw}) < MAX_BUF;
			$wsel->add($c->{cli}) if length $c->{cliw};
			$wsel->add($c->{srv}) if length $c->{srvw};
		}

		my ($r, $w) = IO::Select->select($rsel, $wsel, undef, 0.02);

		foreach my $sock (@{ $w // [] })
		{
			my $c = $sock_conn{ fileno($sock) } or next;
			next if $c->{closed};
			if ($sock == $c->{cli})
			{
				_pump_write($c, $sock, \$c->{cliw}, 'client');
			}
			else
			{
				_pump_write($c, $sock, \$c->{srvw}, 'server');
			}
		}

		foreach my $sock (@{ $r // [] })
		{
			if (defined(my $label = $listener_of{ fileno($sock) }))
			{
				while (my $cli = $sock->accept)
				{
					_nonblock($cli);
					my $n = ++$next_conn;
					$conns{$n} = {
						n      => $n,
						cli    => $cli,
						label  => $label,
						state  => 'startup',
						sbuf   => '',
						cliw   => '',
						srvw   => '',
						params => {},
					};
					_log("conn %d: accepted for %s", $n, $label);
				}
				next;
			}
			my $c = $sock_conn{ fileno($sock) } or next;
			next if $c->{closed};
			if ($c->{state} eq 'startup')
			{
				_pump_read($c, $sock, \$c->{sbuf}, 'client') or next;
				_parse_startup($c);
				next;
			}
			if ($sock == $c->{cli})
			{
				_pump_read($c, $sock, \$c->{srvw}, 'client');
			}
			else
			{
				_pump_read($c, $sock, \$c->{cliw}, 'server');
			}
		}
	}
}

1;
