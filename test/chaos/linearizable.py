"""
test/chaos/linearizable.py
    A linearizability checker for registers, in the manner of Knossos and
    Porcupine: a history is split by key (P-compositionality: a history is
    linearizable iff each key's is), and each key's history is searched
    depth-first for an order of its operations that respects real time and
    the register's sequential specification (Wing and Gong), with the
    states already explored for a set of linearized operations remembered
    (Lowe's memoisation).

    An operation is a dict: key, f ('read', 'write', 'cas'), value (read:
    the value seen; write: the value; cas: (expected, new)), invoke and
    complete (monotonic seconds; complete None for an operation whose
    outcome is unknown: it may have taken effect at any time after its
    invocation, or never), ok (True for a definite success; unknown
    operations are passed with ok None; definite failures are left out of
    the history by the caller, since they had no effect).
"""

import sys

INF = float('inf')


def _step(state, op):
    """(allowed, new state) of applying op to the register's state."""
    f = op['f']
    if f == 'read':
        return state == op['value'], state
    if f == 'write':
        return True, op['value']
    expected, new = op['value']
    if state == expected:
        return True, new
    return False, state


def check_key(ops, initial=None, budget=2_000_000):
    """
    True if the operations on one key are linearizable, False if not, None
    if the search ran out of budget.  ops: as in the module comment.
    """
    n = len(ops)
    if n == 0:
        return True
    # an unknown operation completes at infinity; reads with an unknown
    # outcome constrain nothing and are dropped
    ops = [o for o in ops if not (o['f'] == 'read' and o['ok'] is None)]
    n = len(ops)
    inv = [o['invoke'] for o in ops]
    comp = [o['complete'] if o['ok'] else INF for o in ops]
    optional = [o['ok'] is None for o in ops]
    order = sorted(range(n), key=lambda i: inv[i])
    seen = set()
    steps = 0
    sys.setrecursionlimit(max(10000, 4 * n + 100))

    # required: every definite operation must be linearized
    required_mask = 0
    for i in range(n):
        if not optional[i]:
            required_mask |= 1 << i

    def search(done, state):
        nonlocal steps
        if done & required_mask == required_mask:
            return True
        key = (done, state)
        if key in seen:
            return False
        seen.add(key)
        steps += 1
        if steps > budget:
            raise TimeoutError
        # the earliest completion among operations not yet linearized: any
        # operation linearized next must have been invoked before it
        horizon = INF
        for i in range(n):
            if not (done >> i) & 1 and comp[i] < horizon:
                horizon = comp[i]
        for i in order:
            if (done >> i) & 1:
                continue
            if inv[i] > horizon:
                break
            ok, nstate = _step(state, ops[i])
            if ok and search(done | (1 << i), nstate):
                return True
        return False

    try:
        return search(0, initial)
    except TimeoutError:
        return None


def check(history, initial=None):
    """
    {key: True/False/None} for a whole history (a list of operations).
    """
    by_key = {}
    for op in history:
        by_key.setdefault(op['key'], []).append(op)
    return {k: check_key(v, initial) for k, v in sorted(by_key.items())}


def _self_test():
    """A few histories with known answers; run: python3 linearizable.py."""
    def op(f, v, a, b, ok=True, key=1):
        return {'key': key, 'f': f, 'value': v, 'invoke': a, 'complete': b, 'ok': ok}
    cases = [
        # write then read: fine
        ([op('write', 1, 0, 1), op('read', 1, 2, 3)], True),
        # a read after a completed write sees the old value: stale
        ([op('write', 1, 0, 1), op('read', None, 2, 3)], False),
        # concurrent write and read: either value
        ([op('write', 1, 0, 3), op('read', None, 1, 2)], True),
        ([op('write', 1, 0, 3), op('read', 1, 1, 2)], True),
        # an unknown write may take effect late...
        ([op('write', 1, 0, None, ok=None), op('read', None, 2, 3), op('read', 1, 4, 5)], True),
        # ...but not go back
        ([op('write', 1, 0, None, ok=None), op('read', 1, 2, 3), op('read', None, 4, 5)], False),
        # cas needs its expected value
        ([op('write', 1, 0, 1), op('cas', (2, 3), 2, 3)], False),
        ([op('write', 1, 0, 1), op('cas', (1, 3), 2, 3), op('read', 3, 4, 5)], True),
        # two reads that disagree on the order of two writes
        ([op('write', 1, 0, 10), op('write', 2, 0, 10),
          op('read', 1, 1, 2), op('read', 2, 3, 4), op('read', 1, 5, 6)], False),
    ]
    bad = 0
    for i, (h, want) in enumerate(cases):
        got = check_key(h)
        if got != want:
            print(f'not ok {i + 1}: got {got}, want {want}')
            bad += 1
        else:
            print(f'ok {i + 1}')
    print(f'{len(cases) - bad} passed, {bad} failed')
    return bad == 0


if __name__ == '__main__':
    sys.exit(0 if _self_test() else 1)
