"""
test/chaos/checkers.py
    The checkers of chaos.py's set, bank and counter workloads (the register
    workload's is linearizable.py).  Each takes the recorded operations
    (dicts with f, value, ok, invoke, complete, node, level) and what the
    nodes hold at the end, and returns a list of anomalies, each a short
    sentence naming the operation; an empty list means none was found.

    An operation's ok is True (acknowledged), False (it definitely had no
    effect) or None (unknown: 40003, a timeout, a lost connection; it may
    have taken effect at any time after its invocation, or never).

        python3 test/chaos/checkers.py      (self-test: known-bad and
                                             known-good histories)
"""

import bisect
import sys


def check_set(ops, final_by_node):
    """
    set: unique inserts (f 'add', value v, id the serial id it returned).
    final_by_node: node -> {v: id} read at the end, after convergence.
      - every acknowledged insert is on every node, with the id it returned;
      - no insert that definitely failed is anywhere;
      - no serial id is handed out twice (across failovers): the ids of
        acknowledged inserts are distinct, and so are the ids in each
        node's table.
    """
    bad = []
    adds = [o for o in ops if o['f'] == 'add']
    for node, rows in sorted(final_by_node.items()):
        for o in adds:
            v = o['value']
            if o['ok'] is True and v not in rows:
                bad.append(f'set: acknowledged insert {v} (at {o["invoke"]:.3f} on {o["node"]}) '
                           f'is missing on {node}')
            elif o['ok'] is True and rows[v] != o.get('id'):
                bad.append(f'set: insert {v} returned id {o.get("id")} but {node} holds id {rows[v]}')
            elif o['ok'] is False and v in rows:
                bad.append(f'set: insert {v} failed with {o.get("error")} (at {o["invoke"]:.3f} on '
                           f'{o["node"]}) but is on {node}')
        ids = list(rows.values())
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            bad.append(f'sequence: {node} holds serial ids more than once: {dup}')
    acked_ids = [o['id'] for o in adds if o['ok'] is True]
    if len(set(acked_ids)) != len(acked_ids):
        seen, dup = set(), set()
        for i in acked_ids:
            (dup if i in seen else seen).add(i)
        bad.append(f'sequence: serial ids handed out to two acknowledged inserts: {sorted(dup)[:5]}')
    return bad


def check_bank(ops, total, accounts):
    """
    bank: transfers (f 'transfer') between accounts in transactions on the
    leader, and reads (f 'read', value (sum, count)) of every balance in one
    statement on any node at any level: each read sees the same total, since
    every level reads a state some prefix of the log produced.  (That the
    nodes end with the same balances is the convergence check's.)
    """
    bad = []
    for o in ops:
        if o['f'] == 'read' and o['ok'] is True and tuple(o['value']) != (total, accounts):
            bad.append(f'bank: {o["level"]} read on {o["node"]} at {o["invoke"]:.3f} saw total '
                       f'{o["value"][0]} over {o["value"][1]} accounts, not {total} over {accounts}')
    return bad


def check_counter(ops, staleness):
    """
    counter: increments (f 'inc') on the leader, and reads (f 'read', value
    n) of the counter on any node at level strong, bounded or eventual.
      - every read: n is at most the number of increments invoked before the
        read completed that did not definitely fail (never a value no one
        wrote);
      - reads on one node never go backwards: a read that began after
        another on the same node completed sees at least its value;
      - strong: n is at least the number of increments acknowledged before
        the read began;
      - bounded: n is at least the number acknowledged before the read
        began minus `staleness` seconds.
    """
    bad = []
    incs = [o for o in ops if o['f'] == 'inc']
    acked = sorted(o['complete'] for o in incs if o['ok'] is True)
    maybe = sorted(o['invoke'] for o in incs if o['ok'] is not False)
    reads = [o for o in ops if o['f'] == 'read' and o['ok'] is True]
    for o in reads:
        n = o['value']
        most = bisect.bisect_left(maybe, o['complete'])
        if n > most:
            bad.append(f'counter: {o["level"]} read on {o["node"]} at {o["invoke"]:.3f} saw {n}, '
                       f'but only {most} increments were invoked by then')
        if o['level'] == 'strong':
            least = bisect.bisect_left(acked, o['invoke'])
        elif o['level'] == 'bounded':
            least = bisect.bisect_left(acked, o['invoke'] - staleness)
        else:
            least = 0
        if n < least:
            bad.append(f'counter: {o["level"]} read on {o["node"]} at {o["invoke"]:.3f} saw {n}, '
                       f'but {least} increments were acknowledged '
                       + ('before it began' if o['level'] == 'strong'
                          else f'more than {staleness} s before it began'))
    by_node = {}
    for o in reads:
        by_node.setdefault(o['node'], []).append(o)
    for node, rs in sorted(by_node.items()):
        # sweep by invocation; keep the highest value of the reads that
        # completed before it
        done = sorted(rs, key=lambda r: r['complete'])
        best, best_op, j = -1, None, 0
        for r in sorted(rs, key=lambda r: r['invoke']):
            while j < len(done) and done[j]['complete'] < r['invoke']:
                if done[j]['value'] > best:
                    best, best_op = done[j]['value'], done[j]
                j += 1
            if r['value'] < best:
                bad.append(f'counter: {r["level"]} read on {node} at {r["invoke"]:.3f} saw {r["value"]}, '
                           f'after a read there that completed at {best_op["complete"]:.3f} saw {best}: '
                           'backwards')
    return bad


# ---------------------------------------------------------------------------
# self-test: each checker must reject a known anomaly and accept a known
# good history with unknown outcomes
# ---------------------------------------------------------------------------

def _op(f, value, ok, invoke, complete, node='n1', level='strong', **kw):
    return dict(f=f, value=value, ok=ok, invoke=invoke, complete=complete, node=node,
                level=level, **kw)


def _self_test():
    cases = []
    add = lambda v, ok, i, **kw: _op('add', v, ok, i, i + 0.01, **kw)  # noqa: E731
    good = [add(1, True, 0, id=1), add(2, None, 1, id=None), add(3, False, 2, error='25006', id=None),
            add(4, True, 3, id=3)]
    cases.append(('set: an unknown insert present or absent', check_set(good, {'n1': {1: 1, 2: 2, 4: 3},
                                                                               'n2': {1: 1, 4: 3}}), False))
    cases.append(('set: a lost acknowledged insert', check_set(good, {'n1': {1: 1, 4: 3}, 'n2': {1: 1}}), True))
    cases.append(('set: a failed insert that happened', check_set(good, {'n1': {1: 1, 3: 2, 4: 3}}), True))
    cases.append(('sequence: an id handed out twice',
                  check_set([add(1, True, 0, id=7), add(2, True, 1, id=7)], {'n1': {1: 7, 2: 7}}), True))

    bank = [_op('transfer', (1, 2, 5), True, 0, 1), _op('read', (500, 5), True, 0.5, 0.6),
            _op('transfer', (2, 1, 5), None, 1, None), _op('read', (500, 5), True, 2, 2.1, level='eventual')]
    cases.append(('bank: every read sees the total', check_bank(bank, 500, 5), False))
    cases.append(('bank: a read between the two halves of a transfer',
                  check_bank(bank + [_op('read', (495, 5), True, 3, 3.1)], 500, 5), True))

    inc = lambda ok, i, c: _op('inc', None, ok, i, c)  # noqa: E731
    rd = lambda n, i, c, node='n1', level='strong': _op('read', n, True, i, c, node=node, level=level)  # noqa: E731
    ctr = [inc(True, 0, 1), inc(None, 1, None), inc(True, 2, 3), inc(False, 4, 5),
           rd(2, 3.5, 3.6), rd(3, 3.7, 3.8), rd(0, 3.9, 4.0, node='n2', level='eventual'),
           rd(1, 2.5, 2.6, node='n3', level='bounded')]
    cases.append(('counter: unknown increments, a stale eventual read', check_counter(ctr, 5.0), False))
    cases.append(('counter: a stale strong read', check_counter(ctr + [rd(1, 3.9, 4.0)], 5.0), True))
    cases.append(('counter: a value no one wrote', check_counter(ctr + [rd(4, 5.5, 5.6, level='eventual')], 5.0),
                  True))
    cases.append(('counter: an eventual read going backwards',
                  check_counter(ctr + [rd(2, 4.1, 4.2, node='n2', level='eventual'),
                                       rd(1, 4.3, 4.4, node='n2', level='eventual')], 5.0), True))
    cases.append(('counter: a bounded read older than its bound',
                  check_counter(ctr + [rd(0, 3.5, 3.6, node='n3', level='bounded')], 1.0), True))
    passed = 0
    for name, anomalies, want in cases:
        got = bool(anomalies)
        print(f'{"ok" if got == want else "not ok"} - {name}: '
              f'{"anomaly found" if got else "no anomaly"}' + (f' ({anomalies[0]})' if anomalies else ''))
        passed += got == want
    print(f'{passed} passed, {len(cases) - passed} failed')
    return passed == len(cases)


if __name__ == '__main__':
    sys.exit(0 if _self_test() else 1)
