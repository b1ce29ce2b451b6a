#!/usr/bin/python3
"""
test/chaos/chaos.py
    Randomized faults against a real raftable cluster (3 or 5 nodes) on
    this machine, with concurrent clients whose every operation is recorded
    with its invocation and completion and checked at the end.

        python3 test/chaos/chaos.py --seconds 120 --seed 7
        python3 test/chaos/chaos.py --seconds 1800 --nodes 5 --seed 7

    As root (the nemesis cuts the network with iptables, matching each
    node's packets by its OS user, and stops processes).  Each node runs
    as its own OS user (rt_chaos1..N, created if missing) on 127.0.0.1,
    with raftable preloaded; data lives in a temporary directory, removed
    at the end unless the run fails or --keep is given.

    Workloads, each with its own clients (threads) and table:
      register  keys 1..K of reg(k, v): read (at --read-level) on a random
                node, write and compare-and-set (UPDATE ... WHERE v =
                expected) on the node the client believes leads; checked
                for linearizability per key (linearizable.py).
      set       unique inserts into set_t (v primary key, id bigserial)
                RETURNING id, on the leader: every acknowledged insert ends
                on every node with the id it returned, none that definitely
                failed is anywhere, no serial id is handed out twice.
      bank      transfers between accounts in transactions on the leader;
                reads of all balances (strong, bounded or eventual) on any
                node in one statement always see the same total.
      counter   increments on the leader; strong, bounded and eventual reads
                on any node: never a value no one wrote, never backwards on
                one node, strong never stale, bounded never older than
                raftable.max_staleness (checkers.py).
    An operation's outcome is ok, fail (SPEC: any failed write other than
    40003 definitely did not happen) or unknown (40003, a statement or
    client timeout, a lost connection): an unknown write may take effect at
    any time after its invocation, or never.

    Nemesis (seeded), one fault after another and several at once (network
    faults overlap process faults): isolate a node or the leader, a
    majority/minority partition, one-way loss between two nodes, a ring of
    overlapping majorities (5 nodes), kill -9 of a node, of the leader, of
    a majority, of every node (then restart), SIGSTOP of a node or of the
    leader for longer than the election timeout (then SIGCONT), a leadership
    transfer, removing a follower (added back later), restarting a node
    with its wall clock skewed (libfaketime), and heal.  At the end
    everything heals and the nodes must converge: equal tables everywhere.

    Output: one line per workload, then alone:
        chaos: <ops> operations, <faults> faults, <anomalies> anomalies
    A failure keeps the history (history.json), the fault schedule
    (nemesis.log) and every node's server log in the directory it names,
    and says the seed that reproduces the schedule.
"""

import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkers  # noqa: E402
import linearizable  # noqa: E402

BINDIR = '/usr/lib/postgresql/15/bin'
FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
CHAIN = 'RAFTABLE_CHAOS'
STALENESS = 1.0         # raftable.max_staleness of bounded reads, seconds
ACCOUNTS, BALANCE = 5, 100
T0 = time.monotonic()


def log(msg):
    print(f'chaos: {time.monotonic() - T0:8.3f} {msg}', flush=True)


def run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, i, base):
        self.i = i
        self.name = f'n{i}'
        self.user = f'rt_chaos{i}'
        self.port = free_port()
        self.dir = os.path.join(base, self.name)
        self.data = os.path.join(self.dir, 'data')
        self.sock = os.path.join(self.dir, 'sock')
        self.logfile = os.path.join(self.dir, 'server.log')
        self.id = None
        self.stopped = False    # killed or paused: no new work for it
        self.out = False        # removed from the cluster: clients keep off
        self.skew = None        # seconds its wall clock is off, if any

    def conninfo(self):
        return f'host=127.0.0.1 port={self.port} dbname=postgres user=postgres'

    def uid(self):
        return str(pwd.getpwnam(self.user).pw_uid)

    def as_user(self, cmd, check=True, env=None):
        return run(['runuser', '-u', self.user, '--'] + cmd, check=check, env=env)

    def setup(self):
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', self.user])
        os.makedirs(self.sock, exist_ok=True)
        shutil.chown(self.dir, self.user)
        shutil.chown(self.sock, self.user)
        self.as_user([f'{BINDIR}/initdb', '-D', self.data, '-U', 'postgres', '-A', 'trust',
                      '--no-locale', '-E', 'UTF8'])
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.sock}'
shared_preload_libraries = 'raftable'
raftable.read_timeout = '3s'
raftable.write_timeout = '3s'
raftable.max_staleness = '{int(STALENESS * 1000)}ms'
max_connections = 80
log_min_messages = warning
""")

    def start(self, skew=None):
        """start; with skew (seconds), under libfaketime with its wall clock off by that much"""
        env = None
        if skew is not None:
            env = dict(os.environ, LD_PRELOAD=FAKETIME, FAKETIME=f'{skew:+d}s',
                       FAKETIME_DONT_FAKE_MONOTONIC='1', FAKETIME_DONT_RESET='1')
        self.as_user([f'{BINDIR}/pg_ctl', '-D', self.data, '-l', self.logfile, '-w', '-t', '120',
                      'start'], env=env)
        self.skew = skew
        self.stopped = False

    def pids(self):
        r = run(['pgrep', '-u', self.user], check=False)
        return [int(p) for p in r.stdout.split()]

    def signal_all(self, sig):
        for p in self.pids():
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass

    def kill9(self):
        self.stopped = True
        self.signal_all(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def connect(self, timeout=3):
        return psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=timeout)

    def sql(self, q, args=None, timeout=10, level=None):
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=timeout) as c:
            c.execute(f"SET statement_timeout = '{int(timeout * 1000) + 60000}ms'")
            if level:
                c.execute(f"SET raftable.read_consistency = '{level}'")
            cur = c.execute(q, args)
            return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------------------
# network faults: iptables, by the owner of a node's outgoing packets
# ---------------------------------------------------------------------------

def net_setup():
    run(['iptables', '-N', CHAIN], check=False)
    run(['iptables', '-F', CHAIN])
    if run(['iptables', '-C', 'OUTPUT', '-j', CHAIN], check=False).returncode != 0:
        run(['iptables', '-I', 'OUTPUT', '-j', CHAIN])


def net_heal():
    run(['iptables', '-F', CHAIN])


def net_drop(a, b):
    """a's packets to b's port are dropped: a's connections to b hang (one way)"""
    run(['iptables', '-A', CHAIN, '-o', 'lo', '-p', 'tcp', '-m', 'owner', '--uid-owner', a.uid(),
         '--dport', str(b.port), '-j', 'DROP'])


def net_cut(a, b):
    net_drop(a, b)
    net_drop(b, a)


def net_teardown():
    run(['iptables', '-D', 'OUTPUT', '-j', CHAIN], check=False)
    run(['iptables', '-F', CHAIN], check=False)
    run(['iptables', '-X', CHAIN], check=False)


# ---------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------

TABLES = ['reg', 'set_t', 'bank', 'ctr']


def leader_of(nodes):
    for n in nodes:
        if n.stopped:
            continue
        try:
            r = n.sql('SELECT role FROM raftable.status', timeout=1)
            if r and r[0][0] == 'leader':
                return n
        except Exception:
            pass
    return None


def wait_for(cond, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f'timed out waiting for {what}')


def form(nodes, keys):
    for n in nodes:
        n.sql('CREATE EXTENSION raftable')
    nodes[0].id = nodes[0].sql('SELECT raftable.create_cluster(%s, %s)',
                               (nodes[0].conninfo(), nodes[0].name))[0][0]
    wait_for(lambda: leader_of(nodes[:1]), 'the first leader', 30)
    for n in nodes[1:]:
        n.id = nodes[0].sql('SELECT raftable.add_node(%s, %s)', (n.conninfo(), n.name), timeout=120)[0][0]
    for q in ['CREATE TABLE reg (k int PRIMARY KEY, v int)',
              f'INSERT INTO reg SELECT g, 0 FROM generate_series(1, {keys}) g',
              'CREATE TABLE set_t (v bigint PRIMARY KEY, id bigserial)',
              'CREATE TABLE bank (id int PRIMARY KEY, balance bigint NOT NULL)',
              f'INSERT INTO bank SELECT g, {BALANCE} FROM generate_series(1, {ACCOUNTS}) g',
              'CREATE TABLE ctr (k int PRIMARY KEY, n bigint NOT NULL)',
              'INSERT INTO ctr VALUES (1, 0)']:
        nodes[0].sql(q)
    for t in TABLES:
        nodes[0].sql('SELECT raftable.replicate_table(%s)', (t,))


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

# errors after which the outcome of a write is unknown (SPEC: every other
# failed write definitely did not happen)
UNKNOWN_STATES = {'40003', '57014', '57P01', '57P02', '57P03'}


class Client(threading.Thread):
    """One client of one workload: a loop of random operations, each recorded."""

    def __init__(self, cid, workload, nodes, keys, read_level, rng, history, lock, stop):
        super().__init__(daemon=True)
        self.cid, self.workload, self.nodes, self.keys = cid, workload, nodes, keys
        self.read_level, self.rng = read_level, rng
        self.history, self.lock, self.stop = history, lock, stop
        self.conns = {}
        self.levels = {}
        self.leader = nodes[0]
        self.last = {}
        self.seq = 0

    def conn(self, node, level):
        c = self.conns.get(node.name)
        if c is None or c.closed:
            c = node.connect(timeout=2)
            c.execute("SET statement_timeout = '5s'")
            self.conns[node.name] = c
            self.levels[node.name] = None
        if self.levels[node.name] != level:
            c.execute('SELECT raftable.set_read_consistency(%s)', (level,))
            self.levels[node.name] = level
        return c

    def drop(self, node):
        c = self.conns.pop(node.name, None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def any_node(self):
        return self.rng.choice([n for n in self.nodes if not n.out] or self.nodes)

    def lead(self):
        """the node this client sends writes to: the one it believes leads"""
        if self.leader.out:
            self.leader = self.any_node()
        return self.leader

    def unique(self):
        self.seq += 1
        return self.cid * 10_000_000 + self.seq

    def run(self):
        step = getattr(self, 'op_' + self.workload)
        while not self.stop.is_set():
            op = step()
            with self.lock:
                self.history.append(op)
            if op['ok'] is not True:
                time.sleep(0.02)

    def call(self, op, node, level, body):
        """run body(connection) for op on node; fill in ok/error/complete"""
        op.update(node=node.name, level=level, client=self.cid, workload=self.workload, error=None)
        op['invoke'] = time.monotonic() - T0     # the log's clock
        try:
            body(self.conn(node, level))
            op['ok'] = op.get('ok', True)
        except psycopg.Error as e:
            state = getattr(e, 'sqlstate', None)
            op['error'] = state or type(e).__name__
            if state is None or state in UNKNOWN_STATES or state.startswith('08'):
                op['ok'] = None
                self.drop(node)
                self.leader = self.any_node()
            else:
                op['ok'] = False
                if state in ('25006', 'RA002', 'RA001'):
                    self.leader = self.any_node()
        except Exception as e:
            op['error'] = type(e).__name__
            op['ok'] = None
            self.drop(node)
            self.leader = self.any_node()
        op['complete'] = time.monotonic() - T0 if op['ok'] is not None else None
        op['returned'] = time.monotonic() - T0
        return op

    # register: linearizable per key
    def op_register(self):
        key = self.rng.randint(1, self.keys)
        f = self.rng.choice(['read', 'read', 'write', 'cas'])
        op = {'key': key, 'f': f}
        if f == 'read':
            def body(c):
                row = c.execute('SELECT v FROM reg WHERE k = %s', (key,)).fetchone()
                op['value'] = row[0] if row else None
                self.last[key] = op['value']
            return self.call(op, self.any_node(), self.read_level, body)
        new = self.unique()
        if f == 'write':
            op['value'] = new

            def body(c):
                c.execute('UPDATE reg SET v = %s WHERE k = %s', (new, key))
        else:
            expected = self.last.get(key, 0)
            op['value'] = (expected, new)

            def body(c):
                if c.execute('UPDATE reg SET v = %s WHERE k = %s AND v = %s',
                             (new, key, expected)).rowcount == 0:
                    op['ok'] = False        # refused: no effect
        return self.call(op, self.lead(), 'strong', body)

    # set (and the sequence behind its ids)
    def op_set(self):
        v = self.unique()
        op = {'f': 'add', 'value': v, 'id': None}

        def body(c):
            op['id'] = c.execute('INSERT INTO set_t (v) VALUES (%s) RETURNING id', (v,)).fetchone()[0]
        return self.call(op, self.lead(), 'strong', body)

    # a read at a random level on any node; value() makes the row a value
    def read_any_level(self, sql, value):
        level = self.rng.choice(['strong', 'bounded', 'eventual'])
        op = {'f': 'read'}

        def body(c):
            op['value'] = value(c.execute(sql).fetchone())
        return self.call(op, self.any_node(), level, body)

    # bank: transfers in transactions, totals read at every level
    def op_bank(self):
        if self.rng.random() < 0.5:
            return self.read_any_level('SELECT sum(balance)::bigint, count(*)::int FROM bank', tuple)
        a, b = self.rng.sample(range(1, ACCOUNTS + 1), 2)
        amount = self.rng.randint(1, 10)
        op = {'f': 'transfer', 'value': (a, b, amount)}

        def body(c):
            with c.transaction():
                c.execute('UPDATE bank SET balance = balance - %s WHERE id = %s', (amount, a))
                c.execute('UPDATE bank SET balance = balance + %s WHERE id = %s', (amount, b))
        return self.call(op, self.lead(), 'strong', body)

    # counter: increments, and reads at every level
    def op_counter(self):
        if self.rng.random() < 0.6:
            return self.read_any_level('SELECT n FROM ctr WHERE k = 1', lambda row: row[0])
        op = {'f': 'inc', 'value': None}
        return self.call(op, self.lead(), 'strong',
                         lambda c: c.execute('UPDATE ctr SET n = n + 1 WHERE k = 1'))


# ---------------------------------------------------------------------------
# nemesis
# ---------------------------------------------------------------------------

NET_FAULTS = ['isolate', 'isolate-leader', 'partition', 'one-way', 'ring']
PROC_FAULTS = ['kill', 'kill-leader', 'kill-majority', 'kill-all', 'pause', 'pause-leader', 'skew']
ALL_FAULTS = NET_FAULTS + PROC_FAULTS + ['transfer', 'member', 'heal']
DEFAULT_FAULTS = ('isolate,isolate-leader,partition,one-way,ring,kill,kill-leader,kill-majority,'
                  'kill-all,pause,pause-leader,skew,transfer,member,heal,heal')


class Nemesis(threading.Thread):
    def __init__(self, nodes, rng, stop, interval, faults, schedule):
        super().__init__(daemon=True)
        self.nodes, self.rng, self.stop = nodes, rng, stop
        self.interval, self.faults, self.schedule = interval, faults, schedule
        self.down = []          # (node, restart at)
        self.paused = []        # (node, resume at)
        self.removed = None     # (node, add back at)
        self.counts = {}
        self.began = T0

    def note(self, kind, what):
        # stamped when the fault began (a kill waits for the processes to go)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        line = f'{self.began - T0:8.3f} {kind}: {what}'
        self.schedule.append(line)
        log(f'nemesis {kind}: {what}')

    def live(self):
        return [n for n in self.nodes if not n.stopped]

    def members(self):
        return [n for n in self.live() if not n.out]

    def recover(self, now, force=False):
        for n, at in list(self.down):
            if force or now >= at:
                self.down.remove((n, at))
                skew = n.skew if n.skew is not None and self.rng.random() < 0.5 else None
                n.start(skew)
                log(f'{n.name} restarted' + (f' (clock {skew:+d} s)' if skew else ''))
        for n, at in list(self.paused):
            if force or now >= at:
                self.paused.remove((n, at))
                n.signal_all(signal.SIGCONT)
                n.stopped = False
                log(f'{n.name} resumed (SIGCONT)')
        if self.removed and (force or now >= self.removed[1]):
            self.add_back(self.removed[0])

    def add_back(self, n):
        """finish the removal of n if it has not taken effect, then add n back"""
        leader = leader_of(self.members())
        try:
            if leader is None:
                raise RuntimeError('no leader')
            rows = leader.sql('SELECT node_id, node_name FROM raftable.nodes')
            again = [r[0] for r in rows if r[1] == n.name and r[0] != n.id]
            if again:
                # an add_node that timed out left it a learner, promoted later
                n.id = again[0]
            else:
                if any(r[0] == n.id for r in rows):
                    leader.sql('SELECT raftable.remove_node(%s)', (n.id,), timeout=30)
                n.id = leader.sql('SELECT raftable.add_node(%s, %s)', (n.conninfo(), n.name),
                                  timeout=60)[0][0]
            n.out = False
            self.removed = None
            log(f'{n.name} added back as node {n.id}')
        except Exception as e:
            log(f'adding {n.name} back failed, will retry: {str(e).splitlines()[0]}')
            self.removed = (n, time.monotonic() + 1)

    def run(self):
        while not self.stop.is_set():
            self.stop.wait(self.interval * (0.5 + self.rng.random()))
            self.recover(time.monotonic())
            if self.stop.is_set():
                break
            fault = self.rng.choice(self.faults)
            if fault in PROC_FAULTS and (self.down or self.paused):
                fault = 'heal'      # one process fault at a time; network faults overlap them
            try:
                self.inject(fault)
            except Exception as e:
                log(f'nemesis {fault} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}')
        net_heal()
        self.recover(time.monotonic(), force=True)
        deadline = time.monotonic() + 60
        while self.removed and time.monotonic() < deadline:
            time.sleep(1)
            self.add_back(self.removed[0])

    def inject(self, fault):
        nodes, rng = self.nodes, self.rng
        self.began = time.monotonic()
        leader = leader_of(self.members()) if fault.endswith('leader') or fault in ('transfer', 'member') \
            else None
        if fault in ('isolate', 'isolate-leader'):
            target = leader or rng.choice(nodes)
            net_heal()
            for o in nodes:
                if o is not target:
                    net_cut(target, o)
            self.note(fault, target.name)
        elif fault == 'partition':
            order = rng.sample(nodes, len(nodes))
            k = rng.randint(1, (len(nodes) - 1) // 2)
            net_heal()
            for a in order[:k]:
                for b in order[k:]:
                    net_cut(a, b)
            self.note(fault, f'{[n.name for n in order[:k]]} | {[n.name for n in order[k:]]}')
        elif fault == 'one-way':
            a, b = rng.sample(nodes, 2)
            net_heal()
            net_drop(a, b)
            self.note(fault, f'{a.name} -> {b.name} dropped')
        elif fault == 'ring':
            if len(nodes) < 5:
                return self.inject('one-way')
            order = rng.sample(nodes, len(nodes))
            net_heal()
            for i, a in enumerate(order):
                for j, b in enumerate(order):
                    if i < j and (j - i) % len(order) not in (1, len(order) - 1):
                        net_cut(a, b)
            self.note(fault, 'each node reaches only its neighbours in ' + ' '.join(n.name for n in order))
        elif fault in ('kill', 'kill-leader'):
            target = leader or rng.choice(self.live())
            target.kill9()
            self.down.append((target, time.monotonic() + 1 + 2 * rng.random()))
            self.note(fault, target.name)
        elif fault in ('kill-majority', 'kill-all'):
            live = self.live()
            k = len(nodes) if fault == 'kill-all' else len(nodes) // 2 + 1
            victims = rng.sample(live, min(k, len(live)))
            for n in victims:
                n.kill9()
            at = time.monotonic() + 1 + 2 * rng.random()
            self.down.extend((n, at) for n in victims)
            self.note(fault, ' '.join(n.name for n in victims))
        elif fault in ('pause', 'pause-leader'):
            target = leader or rng.choice(self.live())
            target.signal_all(signal.SIGSTOP)
            target.stopped = True
            self.paused.append((target, time.monotonic() + 2 + 2 * rng.random()))
            self.note(fault, f'{target.name} (every process)')
        elif fault == 'skew':
            if not os.path.exists(FAKETIME):
                return
            target = rng.choice(self.live())
            target.kill9()
            skew = rng.choice([-1, 1]) * rng.randint(5, 120)
            target.start(skew)
            self.note(fault, f'{target.name} restarted with its wall clock {skew:+d} s off')
        elif fault == 'transfer':
            if leader is None:
                return
            to = rng.choice([n for n in self.members() if n is not leader] or [leader])
            leader.sql('SELECT raftable.transfer_leadership(%s)', (to.id,), timeout=10)
            self.note(fault, f'{leader.name} -> {to.name}')
        elif fault == 'member':
            if self.removed or leader is None:
                return
            followers = [n for n in self.members() if n is not leader]
            if len(followers) < len(nodes) - 1:
                return      # remove only from a whole cluster: a majority must stay
            target = rng.choice(followers)
            target.out = True
            time.sleep(0.2)     # clients' operations on it finish first
            # added back later whatever happens now: a removal that timed
            # out may still take effect
            self.removed = (target, time.monotonic() + 3 + 3 * rng.random())
            self.note(fault, f'remove {target.name} (added back later)')
            leader.sql('SELECT raftable.remove_node(%s)', (target.id,), timeout=30)
        else:
            net_heal()
            self.note('heal', 'the network')


# ---------------------------------------------------------------------------
# the run and its checks
# ---------------------------------------------------------------------------

def converge(nodes, timeout=60):
    """seconds until every node has applied the leader's commit index and
    every table is equal everywhere, or None"""
    t = time.monotonic()
    leader = wait_for(lambda: leader_of(nodes), 'a leader after healing', timeout)
    deadline = t + timeout
    while time.monotonic() < deadline:
        try:
            target = leader.sql('SELECT commit_index FROM raftable.status')[0][0]
            if all(n.sql('SELECT applied_index FROM raftable.status')[0][0] >= target for n in nodes):
                sums = [tuple(n.sql('SELECT raftable.table_checksum(%s)', (tb,), level='eventual')[0][0]
                              for tb in TABLES) for n in nodes]
                if len(set(sums)) == 1:
                    return time.monotonic() - t, leader
        except Exception:
            pass
        time.sleep(0.2)
    return None, leader


def check(history, nodes, leader, keys):
    """per-workload summary lines and the list of anomalies"""
    lines, anomalies = [], []

    def counts(ops):
        return (f'{len(ops)} operations ({sum(o["ok"] is True for o in ops)} ok, '
                f'{sum(o["ok"] is False for o in ops)} failed, {sum(o["ok"] is None for o in ops)} unknown)')

    by = {w: [o for o in history if o['workload'] == w] for w in ('register', 'set', 'bank', 'counter')}

    reg = [o for o in by['register'] if o['ok'] is not False and not (o['f'] == 'read' and o['ok'] is None)]
    final = dict(leader.sql('SELECT k, v FROM reg', level='strong'))
    t = time.monotonic()
    for k, v in final.items():
        reg.append({'key': k, 'f': 'read', 'value': v, 'invoke': t, 'complete': t + 0.001, 'ok': True})
    verdict = linearizable.check(reg, initial=0)
    bad = sorted(k for k, v in verdict.items() if v is False)
    undecided = sorted(k for k, v in verdict.items() if v is None)
    anomalies += [f'register: key {k} is not linearizable' for k in bad]
    anomalies += [f'register: key {k}: the checker gave up (undecided)' for k in undecided]
    lines.append(f'register: {counts(by["register"])}; {len(verdict) - len(bad) - len(undecided)} keys '
                 f'linearizable, {len(bad)} not, {len(undecided)} undecided')

    rows = {n.name: {v: i for v, i in n.sql('SELECT v, id FROM set_t', level='eventual')} for n in nodes}
    a = checkers.check_set(by['set'], rows)
    anomalies += a
    lines.append(f'set: {counts(by["set"])}; {len(next(iter(rows.values())))} rows on each node; '
                 f'{len(a)} anomalies')

    a = checkers.check_bank(by['bank'], ACCOUNTS * BALANCE, ACCOUNTS)
    anomalies += a
    nreads = sum(o['f'] == 'read' and o['ok'] is True for o in by['bank'])
    lines.append(f'bank: {counts(by["bank"])}; {nreads} reads of the total; {len(a)} anomalies')

    a = checkers.check_counter(by['counter'], STALENESS)
    anomalies += a
    lv = {lvl: sum(o['f'] == 'read' and o['ok'] is True and o['level'] == lvl for o in by['counter'])
          for lvl in ('strong', 'bounded', 'eventual')}
    lines.append(f'counter: {counts(by["counter"])}; reads ok: {lv["strong"]} strong, {lv["bounded"]} '
                 f'bounded, {lv["eventual"]} eventual; {len(a)} anomalies')
    return lines, anomalies


def parse_duration(s):
    s = str(s).strip()
    mult = {'s': 1, 'm': 60, 'h': 3600}.get(s[-1:], None)
    return int(float(s[:-1]) * mult) if mult else int(s)


def main():
    global T0
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', default='120', help='how long the faults run: 90, 90s, 30m')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--nodes', type=int, default=3, choices=[3, 5])
    ap.add_argument('--keys', type=int, default=4)
    ap.add_argument('--clients', default='register=4,set=2,bank=2,counter=2',
                    help='clients per workload')
    ap.add_argument('--interval', type=float, default=3.0, help='mean seconds between faults')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--faults', default=DEFAULT_FAULTS,
                    help='the nemesis draws from these (repeats weigh more)')
    ap.add_argument('--read-level', default='strong',
                    help="the register's read level; 'eventual' must be caught")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print('chaos: must run as root (iptables, per-node OS users)')
        print('chaos: 0 operations, 0 faults, 1 anomalies')
        return 1
    seconds = parse_duration(a.seconds)
    faults = a.faults.split(',')
    unknown = [f for f in faults if f not in ALL_FAULTS]
    if unknown:
        print(f'chaos: unknown faults {unknown}; known: {ALL_FAULTS}')
        return 2
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    T0 = time.monotonic()
    base = tempfile.mkdtemp(prefix='raftable-chaos.')
    os.chmod(base, 0o755)
    nodes = [Node(i, base) for i in range(1, a.nodes + 1)]
    log(f'seed {seed}; {a.nodes} nodes on ports {", ".join(str(n.port) for n in nodes)}; '
        f'{seconds} s of faults; in {base}')
    ok, nfaults, nanom, nops = False, 0, 0, 0
    history, schedule = [], []
    try:
        net_setup()
        for n in nodes:
            n.setup()
            n.start()
        form(nodes, a.keys)
        log('cluster formed; workloads and nemesis start')
        lock, stop = threading.Lock(), threading.Event()
        clients, cid = [], 0
        for part in a.clients.split(','):
            w, k = part.split('=')
            for _ in range(int(k)):
                cid += 1
                clients.append(Client(cid, w, nodes, a.keys, a.read_level, random.Random(rng.random()),
                                      history, lock, stop))
        for c in clients:
            c.start()
        nem = Nemesis(nodes, random.Random(rng.random()), stop, a.interval, faults, schedule)
        nem.start()
        t_start = time.monotonic()
        time.sleep(seconds)
        stop.set()
        nem.join(180)
        for c in clients:
            c.join(30)
        t_end = time.monotonic()
        nfaults = sum(nem.counts.values())
        log('healed; waiting for the nodes to converge')
        took, leader = converge(nodes)
        anomalies = []
        if took is None:
            anomalies.append('convergence: the tables differ, or a node did not apply the log, 60 s after healing')
        else:
            log(f'converged {took:.1f} s after healing: equal tables on every node')
        lines, more = check(history, nodes, leader, a.keys)
        anomalies += more
        nops = len(history)
        nanom = len(anomalies)
        for line in lines:
            print(f'chaos: {line}', flush=True)
        span = max(t_end - t_start, 1e-9)
        print(f'chaos: faults: ' + ', '.join(f'{k} {v}' for k, v in sorted(nem.counts.items())), flush=True)
        print(f'chaos: {sum(o["ok"] is True for o in history) / span:.0f} acknowledged operations per second '
              f'over {span:.0f} s of faults', flush=True)
        for x in anomalies[:20]:
            log(f'ANOMALY {x}')
        ok = nanom == 0 and all(any(o['ok'] is True and o['workload'] == c.workload for o in history)
                                for c in clients)
        if not ok and nanom == 0:
            log('some workload had no acknowledged operation at all')
    except Exception as e:
        log(f'error: {e}')
        nanom = max(nanom, 1)
    finally:
        net_teardown()
        for n in nodes:
            n.signal_all(signal.SIGCONT)
            if os.path.exists(n.data):
                n.as_user([f'{BINDIR}/pg_ctl', '-D', n.data, '-m', 'immediate', 'stop'], check=False)
        if a.keep or not ok:
            with open(os.path.join(base, 'history.json'), 'w') as f:
                json.dump(history, f, indent=0, default=str)
            with open(os.path.join(base, 'nemesis.log'), 'w') as f:
                f.write(f'seed {seed}\n' + '\n'.join(schedule) + '\n')
            log(f'kept {base}: history.json, nemesis.log, */server.log; '
                f'the schedule comes back with --seed {seed}')
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f'chaos: {nops} operations, {nfaults} faults, {nanom} anomalies', flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
