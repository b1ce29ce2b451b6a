#!/usr/bin/env bash
# test/demo.sh
#	Start three local PostgreSQL 15 instances with raftable installed and
#	form a Raft cluster of them, to try it by hand.  On a fresh Debian 12 machine, as root:
#
#	    bash test/demo.sh          install packages, build, install, start
#	    bash test/demo.sh stop     stop the instances and remove their files
#
#	The instances live under $RAFTABLE_DEMO_DIR (default
#	/var/tmp/raftable-demo), run as the `postgres` account (as the calling
#	user when not root), listen on three free ports on localhost, and have
#	shared_preload_libraries = 'raftable' and the extension created in the
#	database postgres.  The directory is also their Unix socket directory.
#	node1 creates the cluster and adds node2 and node3; the nodes connect
#	to each other as the superuser postgres (production: one role per
#	node, see README.md).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=test/lib.sh
. test/lib.sh

DEMO_DIR=${RAFTABLE_DEMO_DIR:-/var/tmp/raftable-demo}
MARKER=.raftable-demo
NODES=(node1 node2 node3)

die() {
	rt_log "$*"
	exit 1
}

stop_demo() {
	if [ ! -e "$DEMO_DIR" ]; then
		echo "nothing to stop: $DEMO_DIR does not exist"
		return 0
	fi
	[ -f "$DEMO_DIR/$MARKER" ] ||
		die "$DEMO_DIR was not made by test/demo.sh (no $MARKER); not touching it"
	if [ "$(id -u)" = 0 ]; then
		RT_PG_USER=$(stat -c %U "$DEMO_DIR")
	fi
	local node
	for node in "${NODES[@]}"; do
		if [ -f "$DEMO_DIR/$node/postmaster.pid" ]; then
			(cd "$DEMO_DIR" && rt_as_pg pg_ctl --pgdata="$DEMO_DIR/$node" \
				-m fast -w stop >/dev/null) ||
				die "could not stop $node (see $DEMO_DIR/$node.log)"
			echo "stopped $node"
		fi
	done
	rm -rf "$DEMO_DIR"
	echo "removed $DEMO_DIR"
}

start_demo() {
	[ ! -e "$DEMO_DIR" ] ||
		die "$DEMO_DIR already exists; run 'bash test/demo.sh stop' first"

	rt_install_packages build-essential postgresql-15 postgresql-server-dev-15
	make
	rt_as_root make install

	mkdir -p "$DEMO_DIR"
	touch "$DEMO_DIR/$MARKER"
	chown -R "$RT_PG_USER" "$DEMO_DIR"
	chmod 700 "$DEMO_DIR"
	# From here on, a failure stops whatever was started.
	trap 'rt_log "demo failed; stopping what was started"; stop_demo >/dev/null || true' EXIT
	(cd "$DEMO_DIR" && rt_as_pg test -w "$DEMO_DIR") ||
		die "$RT_PG_USER cannot write $DEMO_DIR; choose another RAFTABLE_DEMO_DIR"

	local node port ports=() version i sql
	for node in "${NODES[@]}"; do
		port=$(rt_free_port "${ports[@]}")
		(
			cd "$DEMO_DIR"
			rt_init_node "$DEMO_DIR/$node" "$port" "$DEMO_DIR" localhost
			rt_as_pg pg_ctl --pgdata="$DEMO_DIR/$node" \
				--log="$DEMO_DIR/$node.log" -w start >/dev/null
			rt_as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DEMO_DIR" -p "$port" \
				-U postgres -d postgres -c 'CREATE EXTENSION raftable'
		)
		version=$(cd "$DEMO_DIR" && rt_as_pg psql -X -At -h "$DEMO_DIR" \
			-p "$port" -U postgres -d postgres -c 'SELECT raftable.version()')
		echo "$node port=$port raftable=$version" >>"$DEMO_DIR/nodes"
		ports+=("$port")
	done

	# Form the Raft cluster: node1 starts it, then adds the other two.
	# Each conninfo is how the peers reach that node, and its user is the
	# role that node connects to its peers as.  Here every node connects
	# as the superuser postgres (trusted on the Unix socket), which may act
	# as any member: that keeps the demo short.  In production each node
	# has its own role (user=raftable_db1, raftable_db2, ...), created on
	# every node, and no conninfo carries a password (raftable refuses
	# one): each node finds its own in ~/.pgpass, or uses a certificate.
	local conninfo
	for i in "${!NODES[@]}"; do
		conninfo="host=$DEMO_DIR port=${ports[$i]} dbname=postgres user=postgres"
		if [ "$i" = 0 ]; then
			sql="SELECT raftable.create_cluster('$conninfo', '${NODES[$i]}')"
		else
			sql="SELECT raftable.add_node('$conninfo', '${NODES[$i]}')"
		fi
		(cd "$DEMO_DIR" && rt_as_pg psql -X -q -At -v ON_ERROR_STOP=1 -h "$DEMO_DIR" \
			-p "${ports[0]}" -U postgres -d postgres -c "$sql" >/dev/null)
	done

	# A replicated table to try: created and replicated on the leader.
	(cd "$DEMO_DIR" && rt_as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$DEMO_DIR" \
		-p "${ports[0]}" -U postgres -d postgres >/dev/null) <<-'SQL'
		CREATE TABLE accounts (id bigserial PRIMARY KEY, owner text NOT NULL,
		                       balance numeric(12,2) NOT NULL DEFAULT 0 CHECK (balance >= 0));
		INSERT INTO accounts (owner, balance) VALUES ('alice', 100), ('bob', 50);
		SELECT raftable.replicate_table('accounts');
	SQL
	trap - EXIT

	echo
	echo "Three PostgreSQL $RT_PG_MAJOR instances are running with raftable $version"
	echo "(shared_preload_libraries = 'raftable', extension created in database postgres):"
	echo
	for i in "${!NODES[@]}"; do
		printf '  %s  psql -h %s -p %s -U postgres postgres\n' \
			"${NODES[$i]}" "$DEMO_DIR" "${ports[$i]}"
	done
	echo
	echo "Data directories and server logs are in $DEMO_DIR (owner: $RT_PG_USER);"
	echo "connect through its Unix socket as root or $RT_PG_USER, as shown above."
	echo
	echo "They form one Raft cluster (node1 created it and added the others):"
	echo
	(cd "$DEMO_DIR" && rt_as_pg psql -X -h "$DEMO_DIR" -p "${ports[0]}" -U postgres \
		-d postgres -c 'SELECT node_name, role, voter, reachable, match_index FROM raftable.nodes')
	echo "The table accounts is replicated. Try, on node1 (the leader):"
	echo "  INSERT INTO accounts (owner, balance) VALUES ('carol', 10);"
	echo "then, on any node:  SELECT * FROM accounts;  SELECT raftable.table_checksum('accounts');"
	echo "A write on node2 or node3 fails with SQLSTATE 25006 and names the leader."
	echo "SELECT * FROM raftable.status;  shows each node's role, commit and applied index."
	echo "Stop the leader's server and watch another node take over."
	echo
	echo "Stop and remove them with:  bash test/demo.sh stop"
}

case "${1:-start}" in
	start) start_demo ;;
	stop) stop_demo ;;
	*)
		echo "usage: bash test/demo.sh [start|stop]" >&2
		exit 2
		;;
esac
