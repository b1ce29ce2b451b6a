# Makefile
#	Build, install and test raftable, a PostgreSQL extension that runs Raft
#	among PostgreSQL instances.  Built with PGXS; set PG_CONFIG to choose the
#	PostgreSQL installation (default: the pg_config found on PATH).
#
#	make                      build raftable.so
#	make install              install into the PostgreSQL of PG_CONFIG
#	make installcheck         pg_regress: sql/<test>.sql vs expected/<test>.out,
#	                          against the running server of PGHOST/PGPORT/PGUSER
#	make pgtap                pg_prove on test/pgtap/*.sql, same server, in a
#	                          scratch database (PGTAP_DB, dropped and recreated;
#	                          PG_PROVE_OPTS are passed to pg_prove)
#	make tap                  prove on test/tap/*.pl; PostgreSQL::Test::Cluster
#	                          starts its own servers (never as root;
#	                          PROVE_FLAGS, PROVE_TESTS as in PostgreSQL)
#	make bench                test/bench/bench.sh: write and read figures of
#	                          SPEC.md beside streaming replication, in one run
#	                          (BENCH_SECONDS per figure, default 20; installed
#	                          extension; root or a non-root user)
#	make bench-snapshot       test/bench/snapshot.sh: a new node copies a
#	                          replicated table of SNAPSHOT_ROWS rows (default
#	                          3,300,000, about 1.1 GB); times and checksums
#	make symbols              test/symbols.sh: raftable.so exports only what
#	                          PostgreSQL looks up by name
#	make failover-bench       test/tap/004_failover.pl with FAILOVER_RUNS=10
#	                          (kill -9 of the leader, median and max failover)
#	make core-check | sim SEEDS=N | sanitize | fuzz FUZZ_SECONDS=N
#	                          the pure Raft core, no server (test/core/core.mk)
#	make clean                also removes build/ and tmp_check/
#
#	test/run-tests.sh runs all of them from a fresh Debian machine, as root.

MODULE_big = raftable
# The Raft core (src/core/*.c) is linked into the module and is compiled with
# PostgreSQL's CFLAGS as well as by test/core/core.mk for its own tests.
OBJS = \
	src/anchor.o \
	src/apply.o \
	src/capture.o \
	src/changeset.o \
	src/ddl.o \
	src/deliver.o \
	src/member.o \
	src/membership.o \
	src/peer.o \
	src/privilege.o \
	src/proposal.o \
	src/raftable.o \
	src/readindex.o \
	src/reads.o \
	src/remote.o \
	src/request.o \
	src/shmem.o \
	src/snapshot.o \
	src/storage.o \
	src/transport.o \
	src/views.o \
	src/waits.o \
	src/worker.o \
	$(patsubst %.c,%.o,$(wildcard src/core/*.c))
# libpq, for the connections to the peers (as contrib/postgres_fdw does)
PG_CPPFLAGS = -I$(libpq_srcdir) -Isrc
# export only what PostgreSQL looks up by name (RAFTABLE_EXPORT, raftable.h)
PG_CFLAGS = -fvisibility=hidden
SHLIB_LINK_INTERNAL = $(libpq)
PGFILEDESC = "raftable - Raft among PostgreSQL instances"

EXTENSION = raftable
DATA = sql/raftable--0.2.sql sql/raftable--0.1.sql sql/raftable--0.1--0.2.sql

# pg_regress inputs are sql/<name>.sql and outputs expected/<name>.out
# (pg_regress's default layout, next to the install script).
REGRESS = raftable_basic

EXTRA_CLEAN = build tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

include test/core/core.mk

# The core's invariants (RAFT_ASSERT, src/core/raft_int.h) are checked in
# its own test builds; the module compiles them out, as PostgreSQL does
# Assert outside --enable-cassert builds.
src/core/%.o: CPPFLAGS += -DNDEBUG

# PGXS tracks no header dependencies: every object depends on the headers
$(OBJS): $(wildcard src/*.h) src/core/raft.h

# ---------------------------------------------------------------------------
# Test tiers that need PostgreSQL (besides installcheck, from PGXS)
# ---------------------------------------------------------------------------

# bindir comes from PGXS (pg_config --bindir); Debian keeps initdb, pg_ctl
# and friends there rather than on PATH.
PG_TEST_PERL = $(top_builddir)/src/test/perl
PG_TEST_ENV  = PATH="$(bindir):$$PATH"
PGTAP_DB    ?= raftable_pgtap
PROVE       ?= prove

.PHONY: pgtap tap bench bench-snapshot failover-bench pg-regress checkers chaos mutants symbols

pgtap:
	$(PG_TEST_ENV) dropdb --if-exists $(PGTAP_DB)
	$(PG_TEST_ENV) createdb $(PGTAP_DB)
	$(PG_TEST_ENV) pg_prove --dbname $(PGTAP_DB) $(PG_PROVE_OPTS) test/pgtap/*.sql
	$(PG_TEST_ENV) dropdb --if-exists $(PGTAP_DB)

# PostgreSQL::Test::Utils writes under $TESTDIR/tmp_check; Cluster needs
# PG_REGRESS (for --config-auth) and the server binaries on PATH.
tap:
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make tap: PostgreSQL refuses to run as root; run it as another user" \
			"(test/run-tests.sh does)" >&2; \
		exit 1; \
	fi
	rm -rf '$(CURDIR)/tmp_check'
	$(MKDIR_P) '$(CURDIR)/tmp_check'
	$(PG_TEST_ENV) TESTDIR='$(CURDIR)' \
	PERL5LIB='$(PG_TEST_PERL):$(CURDIR)/test/tap'$${PERL5LIB:+:$$PERL5LIB} \
	PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
	$(PROVE) $(PROVE_FLAGS) $(if $(PROVE_TESTS),$(PROVE_TESTS),test/tap/*.pl)

# PostgreSQL's own regression suite with and without raftable (as root the
# first time: it fetches the PostgreSQL 15 source with apt-get source)
pg-regress:
	$(PG_TEST_ENV) bash test/pgregress/run.sh

# raftable.so exports only what PostgreSQL looks up by name
symbols: all
	bash test/symbols.sh

# randomized faults against a real cluster, histories checked for
# linearizability (as root: iptables and per-node OS users)
checkers:
	/usr/bin/python3 test/chaos/linearizable.py
	/usr/bin/python3 test/chaos/checkers.py

chaos:
	DURATION=$(DURATION) NODES=$(NODES) SEED=$(SEED) bash test/chaos/run.sh

# each mutant breaks one mechanism in a copy of the tree; its test must fail
# (server mutants install the mutated build, then the real one again)
mutants:
	bash test/mutants/run.sh

bench:
	BENCH_SECONDS=$${BENCH_SECONDS:-20} $(PG_TEST_ENV) bash test/bench/bench.sh

bench-snapshot:
	$(PG_TEST_ENV) bash test/bench/snapshot.sh

# kill -9 of the leader, FAILOVER_RUNS times (default 10): median and maximum
# time until a new leader, printed by test/tap/004_failover.pl
failover-bench:
	FAILOVER_RUNS=$${FAILOVER_RUNS:-10} $(MAKE) tap PROVE_FLAGS=--verbose \
		PROVE_TESTS=test/tap/004_failover.pl
