# shellcheck shell=bash
# test/lib.sh
#	Shell helpers shared by test/run-tests.sh and test/demo.sh (sourced,
#	not run).  Target: Debian 12 with PostgreSQL 15 from Debian's packages.
#
#	PostgreSQL refuses to run as root.  When these scripts run as root they
#	install packages with apt and run every server (and every client that
#	writes files next to it) as the `postgres` account that the Debian
#	packages create; when run as another user, they skip apt and run
#	servers as that user.

RT_PG_MAJOR=${RT_PG_MAJOR:-15}
RT_PG_BINDIR=/usr/lib/postgresql/$RT_PG_MAJOR/bin
export PG_CONFIG=${PG_CONFIG:-$RT_PG_BINDIR/pg_config}

if [ "$(id -u)" = 0 ]; then
	RT_PG_USER=postgres
else
	RT_PG_USER=$(id -un)
fi

rt_log() {
	printf '%s\n' "raftable: $*" >&2
}

# rt_install_packages PKG...
#	As root: apt-get update and install PKG (quietly; the log is shown only
#	on failure).  As another user: do nothing.
rt_install_packages() {
	if [ "$(id -u)" != 0 ]; then
		rt_log "not root: skipping apt-get (needs: $*)"
		return 0
	fi
	local log
	log=$(mktemp /tmp/raftable-apt.XXXXXX)
	rt_log "installing packages: $*"
	if DEBIAN_FRONTEND=noninteractive apt-get -q update >"$log" 2>&1 &&
		DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
			--no-install-recommends "$@" >>"$log" 2>&1; then
		rm -f "$log"
		return 0
	fi
	tail -n 40 "$log" >&2
	rt_log "apt-get failed; full log in $log"
	return 1
}

# rt_as_root CMD...
#	Run CMD with root rights: directly when root, else through sudo when
#	there is one, else directly (and let it fail if it must).
rt_as_root() {
	if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		"$@"
	fi
}

# rt_as_pg CMD...
#	Run CMD as $RT_PG_USER, with PostgreSQL's bindir first on PATH.  Runs
#	in the current directory, which that user must be able to enter.
rt_as_pg() {
	local path="$RT_PG_BINDIR:$PATH"
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$RT_PG_USER" -- env PATH="$path" HOME="$(rt_pg_home)" "$@"
	else
		env PATH="$path" "$@"
	fi
}

rt_pg_home() {
	getent passwd "$RT_PG_USER" | cut -d: -f6
}

# rt_port_in_use PORT: is anything listening on localhost:PORT (v4 or v6)?
rt_port_in_use() {
	local host
	for host in 127.0.0.1 ::1; do
		if (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; then
			return 0
		fi
	done
	return 1
}

# rt_free_port [EXCLUDED_PORT...]
#	Print a TCP port that nothing listens on and that is not among the
#	arguments, from 20000 up to the start of the kernel's ephemeral range
#	(net.ipv4.ip_local_port_range): an outgoing connection never holds such
#	a port, which a check for listeners would miss.  (A server started on
#	it may still lose a race; callers check that the server started.)
rt_free_port() {
	local port tries=0 p taken lo=32768 span
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	span=$((lo - 20000))
	[ "$span" -ge 1000 ] || span=12768	# an unusual range: as by default
	while [ $tries -lt 200 ]; do
		tries=$((tries + 1))
		port=$((20000 + RANDOM % span))
		taken=
		for p in "$@"; do
			[ "$p" = "$port" ] && taken=1
		done
		[ -n "$taken" ] && continue
		if ! rt_port_in_use "$port"; then
			echo "$port"
			return 0
		fi
	done
	rt_log "no free port found"
	return 1
}

# rt_init_node DATADIR PORT SOCKETDIR LISTEN_ADDRESSES
#	initdb (superuser "postgres", UTF8, C locale) and configure a node with
#	raftable preloaded.  Runs as $RT_PG_USER; DATADIR's parent must be
#	writable by it.
rt_init_node() {
	local datadir=$1 port=$2 sockdir=$3 listen=$4
	rt_as_pg initdb --pgdata="$datadir" --username=postgres \
		--auth-local=trust --auth-host=scram-sha-256 \
		--encoding=UTF8 --no-locale >/dev/null || return 1
	rt_as_pg tee -a "$datadir/postgresql.conf" >/dev/null <<EOF || return 1

# added by raftable's test/lib.sh
port = $port
listen_addresses = '$listen'
unix_socket_directories = '$sockdir'
shared_preload_libraries = 'raftable'
EOF
}
