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

import random
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


class _Entry:
    """A call or a return in the doubly linked event list."""
    __slots__ = ('op', 'call', 'match', 'prev', 'next')

    def __init__(self, op, call):
        self.op, self.call = op, call
        self.match = self.prev = self.next = None


def check_key(ops, initial=None, budget=5_000_000):
    """
    True if the operations on one key are linearizable, False if not, None
    if the search ran out of budget.  ops: as in the module comment.

    Porcupine's form of the search: the calls and returns in time order
    form a linked list; the first call whose operation may be applied
    next is taken out with its return ("lifted"), and the search starts
    again from the head; reaching a return means that operation could not
    be linearized before it returned, so the last choice is undone.  A
    set of (linearized operations, state) pairs already explored prunes
    the search (Lowe), the set hashed incrementally (Zobrist).  An
    operation whose outcome is unknown returns at infinity, and need not
    be linearized at all.
    """
    # reads with an unknown outcome constrain nothing; nor does a write
    # (or compare-and-set) of unknown outcome whose value nobody read: if it
    # took effect, the next operation overwrote it unseen, so the history
    # with it is linearizable exactly when the one without it is (values
    # written are unique)
    observed = {o['value'] for o in ops if o['f'] == 'read' and o['ok']}
    observed |= {o['value'][0] for o in ops if o['f'] == 'cas'}

    def written(o):
        return o['value'] if o['f'] == 'write' else o['value'][1]

    ops = [o for o in ops
           if not (o['ok'] is None and (o['f'] == 'read' or written(o) not in observed))]
    n = len(ops)
    if n == 0:
        return True
    rnd = random.Random(n)
    zobrist = [rnd.getrandbits(64) for _ in range(n)]
    events = []
    for i, o in enumerate(ops):
        c = _Entry(i, True)
        r = _Entry(i, False)
        c.match = r
        # calls before returns at the same instant: concurrent, not ordered
        events.append((o['invoke'], 0, c))
        events.append((o['complete'] if o['ok'] else INF, 1, r))
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(None, False)
    prev = head
    for _, _, e in events:
        prev.next = e
        e.prev = prev
        prev = e
    definite = sum(1 for o in ops if o['ok'])

    def lift(c):
        c.prev.next = c.next
        if c.next:
            c.next.prev = c.prev
        r = c.match
        r.prev.next = r.next
        if r.next:
            r.next.prev = r.prev

    def unlift(c):
        r = c.match
        r.prev.next = r
        if r.next:
            r.next.prev = r
        c.prev.next = c
        if c.next:
            c.next.prev = c

    state = initial
    lin_hash = 0
    left = definite
    seen = set()
    stack = []
    entry = head.next
    steps = 0
    while left > 0:
        steps += 1
        if steps > budget:
            return None
        if entry is None:
            return False
        if entry.call:
            i = entry.op
            ok, nstate = _step(state, ops[i])
            if ok:
                h = lin_hash ^ zobrist[i]
                if (h, nstate) not in seen:
                    seen.add((h, nstate))
                    stack.append((entry, state, lin_hash))
                    state, lin_hash = nstate, h
                    if ops[i]['ok']:
                        left -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not ops[entry.op]['ok']:
                # only unknown operations remain before this point in time
                entry = entry.next
                continue
            if not stack:
                return False
            entry, state, lin_hash = stack.pop()
            if ops[entry.op]['ok']:
                left += 1
            unlift(entry)
            entry = entry.next
    return True


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
