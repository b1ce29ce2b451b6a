#!/usr/bin/python3
"""
test/chaos/chaos.py
    Randomized faults against a real three-node raftable cluster on this
    machine, with concurrent clients whose every operation is recorded
    and checked for linearizability at the end (linearizable.py).

        python3 test/chaos/chaos.py --seconds 60 --seed 7

    As root (the nemesis cuts the network with iptables, matching each
    node's packets by its OS user, and stops processes).  Each node runs
    as its own OS user (rt_chaos1..3, created if missing) on 127.0.0.1,
    with raftable preloaded; data lives in a temporary directory, removed
    at the end unless --keep.

    Workload (register): keys 1..K of a replicated table reg(k, v); each
    client loops over random operations on random keys:
      read   SELECT v (raftable.read_consistency = strong) on a random node;
      write  UPDATE ... SET v = <unique> on the node it believes leads;
      cas    UPDATE ... SET v = <unique> WHERE v = <last value it read>.
    An operation's outcome is ok, fail (it certainly had no effect: 25006,
    RA002, a refused CAS, RA001 on a write) or unknown (40003, a timeout, a
    lost connection): an unknown write may take effect at any time after
    its invocation, or never.  Failed reads are dropped.

    Nemesis (seeded): every few seconds one of: isolate a node (iptables:
    its peer traffic hangs, clients still reach it), isolate the leader,
    kill -9 a node (restarted later), kill -9 the leader, SIGSTOP a whole
    instance for longer than the election timeout (then SIGCONT), and
    heal.  At the end everything heals, the nodes must converge within 30
    s with equal tables, and each key's history must be linearizable.

    Last line: "chaos: N operations (N ok, N failed, N unknown), N keys
    linearizable, N not, N undecided: PASS|FAIL".
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
import linearizable  # noqa: E402

BINDIR = '/usr/lib/postgresql/15/bin'
READ_LEVEL = 'strong'
CHAIN = 'RAFTABLE_CHAOS'


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
        self.stopped = False

    def conninfo(self):
        return f'host=127.0.0.1 port={self.port} dbname=postgres user=postgres'

    def as_user(self, cmd, check=True):
        return run(['runuser', '-u', self.user, '--'] + cmd, check=check)

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
max_connections = 60
log_min_messages = warning
""")

    def start(self):
        self.as_user([f'{BINDIR}/pg_ctl', '-D', self.data, '-l', self.logfile, '-w', 'start'])
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
        self.signal_all(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def connect(self, timeout=3):
        return psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=timeout)

    def sql(self, q, timeout=10, level=None):
        with psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=timeout) as c:
            if level:
                c.execute(f"SET raftable.read_consistency = '{level}'")
            cur = c.execute(q)
            return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------------------
# network faults: iptables, by owner
# ---------------------------------------------------------------------------

def net_setup():
    run(['iptables', '-N', CHAIN], check=False)
    run(['iptables', '-F', CHAIN])
    r = run(['iptables', '-C', 'OUTPUT', '-j', CHAIN], check=False)
    if r.returncode != 0:
        run(['iptables', '-I', 'OUTPUT', '-j', CHAIN])


def net_heal():
    run(['iptables', '-F', CHAIN])


def net_isolate(node, nodes):
    """node's peer traffic hangs both ways; clients (root) still reach it"""
    for other in nodes:
        if other is node:
            continue
        uid_n = str(pwd.getpwnam(node.user).pw_uid)
        uid_o = str(pwd.getpwnam(other.user).pw_uid)
        run(['iptables', '-A', CHAIN, '-o', 'lo', '-p', 'tcp', '-m', 'owner', '--uid-owner', uid_n,
             '--dport', str(other.port), '-j', 'DROP'])
        run(['iptables', '-A', CHAIN, '-o', 'lo', '-p', 'tcp', '-m', 'owner', '--uid-owner', uid_o,
             '--dport', str(node.port), '-j', 'DROP'])


def net_teardown():
    run(['iptables', '-D', 'OUTPUT', '-j', CHAIN], check=False)
    run(['iptables', '-F', CHAIN], check=False)
    run(['iptables', '-X', CHAIN], check=False)


# ---------------------------------------------------------------------------
# the cluster
# ---------------------------------------------------------------------------

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
    nodes[0].id = nodes[0].sql(f"SELECT raftable.create_cluster('{nodes[0].conninfo()}', '{nodes[0].name}')")[0][0]
    wait_for(lambda: leader_of(nodes[:1]), 'the first leader', 30)
    for n in nodes[1:]:
        n.id = nodes[0].sql(f"SELECT raftable.add_node('{n.conninfo()}', '{n.name}')", timeout=120)[0][0]
    nodes[0].sql('CREATE TABLE reg (k int PRIMARY KEY, v int)')
    nodes[0].sql("SELECT raftable.replicate_table('reg')")
    nodes[0].sql(f'INSERT INTO reg SELECT g, 0 FROM generate_series(1, {keys}) g')


# ---------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------

DEFINITE_FAIL = {'25006', 'RA002', 'RA001', '42P01'}


class Client(threading.Thread):
    def __init__(self, cid, nodes, keys, rng, history, lock, stop):
        super().__init__(daemon=True)
        self.cid, self.nodes, self.keys, self.rng = cid, nodes, keys, rng
        self.history, self.lock, self.stop = history, lock, stop
        self.conns = {}
        self.leader = nodes[0]
        self.last = {}

    def conn(self, node):
        c = self.conns.get(node.name)
        if c is None or c.closed:
            c = node.connect(timeout=2)
            c.execute("SET statement_timeout = '5s'")
            c.execute(f"SET raftable.read_consistency = '{READ_LEVEL}'")
            self.conns[node.name] = c
        return c

    def drop(self, node):
        c = self.conns.pop(node.name, None)
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def record(self, op):
        with self.lock:
            self.history.append(op)

    def run(self):
        seq = 0
        while not self.stop.is_set():
            seq += 1
            key = self.rng.randint(1, self.keys)
            f = self.rng.choice(['read', 'read', 'write', 'cas'])
            unique = self.cid * 1_000_000 + seq
            node = self.rng.choice(self.nodes) if f == 'read' else self.leader
            op = {'key': key, 'f': f, 'client': self.cid, 'node': node.name}
            if f == 'write':
                op['value'] = unique
                q, args = 'UPDATE reg SET v = %s WHERE k = %s', (unique, key)
            elif f == 'cas':
                expected = self.last.get(key, 0)
                op['value'] = (expected, unique)
                q, args = 'UPDATE reg SET v = %s WHERE k = %s AND v = %s', (unique, key, expected)
            else:
                q, args = 'SELECT v FROM reg WHERE k = %s', (key,)
            op['invoke'] = time.monotonic()
            try:
                c = self.conn(node)
                cur = c.execute(q, args)
                if f == 'read':
                    row = cur.fetchone()
                    op['value'] = row[0] if row else None
                    self.last[key] = op['value']
                    op['ok'] = True
                elif f == 'cas' and cur.rowcount == 0:
                    op['ok'] = False        # refused: no effect
                else:
                    op['ok'] = True
                op['complete'] = time.monotonic()
            except psycopg.Error as e:
                state = getattr(e, 'sqlstate', None)
                op['complete'] = time.monotonic()
                if state in DEFINITE_FAIL:
                    op['ok'] = False
                    if state in ('25006', 'RA002'):
                        self.leader = self.rng.choice(self.nodes)
                else:
                    op['ok'] = None         # unknown
                    self.drop(node)
                    self.leader = self.rng.choice(self.nodes)
            except Exception:
                op['complete'] = time.monotonic()
                op['ok'] = None
                self.drop(node)
                self.leader = self.rng.choice(self.nodes)
            op['error'] = None
            self.record(op)
            if op['ok'] is not True:
                time.sleep(0.02)


# ---------------------------------------------------------------------------
# nemesis
# ---------------------------------------------------------------------------

ALL_FAULTS = ['isolate', 'isolate-leader', 'kill', 'kill-leader', 'pause', 'heal']


def nemesis(nodes, rng, stop, interval, faults):
    down = []           # (node, restart at)
    stopped = []        # (node, resume at)
    while not stop.is_set():
        stop.wait(interval * (0.5 + rng.random()))
        now = time.monotonic()
        for n, at in list(down):
            if now >= at:
                n.start()
                down.remove((n, at))
                log(f'{n.name} restarted')
        for n, at in list(stopped):
            if now >= at:
                n.signal_all(signal.SIGCONT)
                stopped.remove((n, at))
                log(f'{n.name} resumed (SIGCONT)')
        if stop.is_set():
            break
        fault = rng.choice(faults)
        live = [n for n in nodes if all(n is not d for d, _ in down) and all(n is not s for s, _ in stopped)]
        if len(live) < len(nodes):
            fault = 'heal'      # one fault of the process kind at a time
        leader = leader_of(live) if fault.endswith('leader') else None
        target = leader or rng.choice(live)
        if fault.startswith('isolate'):
            net_heal()
            net_isolate(target, nodes)
            log(f'isolate {target.name}' + (' (the leader)' if leader else ''))
        elif fault.startswith('kill'):
            target.kill9()
            target.stopped = True
            down.append((target, time.monotonic() + 1 + 2 * rng.random()))
            log(f'kill -9 {target.name}' + (' (the leader)' if leader else ''))
        elif fault == 'pause':
            target.signal_all(signal.SIGSTOP)
            stopped.append((target, time.monotonic() + 2 + 2 * rng.random()))
            log(f'SIGSTOP {target.name} (all its processes)')
        else:
            net_heal()
            log('heal the network')
    net_heal()
    for n, _ in stopped:
        n.signal_all(signal.SIGCONT)
        log(f'{n.name} resumed (SIGCONT)')
    for n, _ in down:
        n.start()
        log(f'{n.name} restarted')


# ---------------------------------------------------------------------------

def main():
    global T0
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=int, default=60)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--clients', type=int, default=6)
    ap.add_argument('--keys', type=int, default=4)
    ap.add_argument('--interval', type=float, default=3.0, help='mean seconds between faults')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--faults', default='isolate,isolate-leader,kill,kill-leader,pause,heal,heal',
                    help='the nemesis draws from these (repeats weigh more)')
    ap.add_argument('--read-level', default='strong',
                    help="the clients' raftable.read_consistency; 'eventual' must be caught")
    a = ap.parse_args()
    global READ_LEVEL
    READ_LEVEL = a.read_level
    if os.geteuid() != 0:
        print('chaos: must run as root (iptables, per-node OS users)')
        print('chaos: 0 operations (0 ok, 0 failed, 0 unknown), 0 keys linearizable, 0 not, 0 undecided: FAIL')
        return 1
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    T0 = time.monotonic()
    base = tempfile.mkdtemp(prefix='raftable-chaos.')
    os.chmod(base, 0o755)
    nodes = [Node(i, base) for i in (1, 2, 3)]
    log(f'seed {seed}; nodes on ports {", ".join(str(n.port) for n in nodes)}; in {base}')
    ok = False
    try:
        net_setup()
        for n in nodes:
            n.setup()
            n.start()
        form(nodes, a.keys)
        log('cluster formed; workload and nemesis start')
        history, lock, stop = [], threading.Lock(), threading.Event()
        clients = [Client(i + 1, nodes, a.keys, random.Random(rng.random()), history, lock, stop)
                   for i in range(a.clients)]
        for c in clients:
            c.start()
        faults = a.faults.split(',')
        bad_faults = [f for f in faults if f not in ALL_FAULTS]
        if bad_faults:
            raise RuntimeError(f'unknown faults {bad_faults}; known: {ALL_FAULTS}')
        nem = threading.Thread(target=nemesis,
                               args=(nodes, random.Random(rng.random()), stop, a.interval, faults),
                               daemon=True)
        nem.start()
        time.sleep(a.seconds)
        stop.set()
        nem.join(60)
        for c in clients:
            c.join(30)
        log('healed; waiting for the nodes to converge')
        leader = wait_for(lambda: leader_of(nodes), 'a leader after healing', 30)
        target = leader.sql('SELECT commit_index FROM raftable.status')[0][0]
        wait_for(lambda: all(n.sql("SELECT applied_index FROM raftable.status")[0][0] >= target for n in nodes),
                 'every node applying the log', 30)
        sums = {n.name: n.sql("SELECT raftable.table_checksum('reg')", level='eventual')[0][0]
                for n in nodes}
        converged = len(set(sums.values())) == 1
        log(f'tables {"equal" if converged else "DIFFER"} on every node: {sums}')
        # the final state is part of the history: one strong read per key
        final = dict(leader.sql('SELECT k, v FROM reg'))
        t = time.monotonic()
        for k, v in final.items():
            history.append({'key': k, 'f': 'read', 'value': v, 'invoke': t, 'complete': t + 0.001,
                            'ok': True, 'client': 0})
        hist = [o for o in history if o['ok'] is not False]
        oks = sum(1 for o in history if o['ok'] is True)
        fails = sum(1 for o in history if o['ok'] is False)
        unknown = sum(1 for o in history if o['ok'] is None)
        verdict = linearizable.check(hist, initial=0)
        good = sum(1 for v in verdict.values() if v is True)
        bad = [k for k, v in verdict.items() if v is False]
        undecided = sum(1 for v in verdict.values() if v is None)
        with open(os.path.join(base, 'history.json'), 'w') as f:
            json.dump([dict(o, invoke=o['invoke'] - T0,
                            complete=(o['complete'] - T0) if o.get('complete') else None)
                       for o in history], f, indent=0, default=str)
        for k in bad:
            log(f"key {k}: NOT linearizable ({sum(1 for o in hist if o['key'] == k)} operations; "
                f"the whole history is in {base}/history.json)")
        ok = converged and not bad and undecided == 0 and oks > 0
        print(f'chaos: {len(history)} operations ({oks} ok, {fails} failed, {unknown} unknown), '
              f'{good} keys linearizable, {len(bad)} not, {undecided} undecided: {"PASS" if ok else "FAIL"}')
    except Exception as e:
        log(f'error: {e}')
        print('chaos: 0 operations (0 ok, 0 failed, 0 unknown), 0 keys linearizable, 0 not, 0 undecided: FAIL')
    finally:
        net_teardown()
        for n in nodes:
            n.signal_all(signal.SIGCONT)
            if os.path.exists(n.data):
                n.as_user([f'{BINDIR}/pg_ctl', '-D', n.data, '-m', 'immediate', 'stop'], check=False)
        if a.keep or not ok:
            log(f'kept {base} (server logs in */server.log)')
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
