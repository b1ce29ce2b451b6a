/*
 * sim.c
 *	  Deterministic simulator for the pure Raft core (src/core/raft.h).
 *
 * One seed is one simulated cluster of 3, 5 or 7 nodes run in virtual time
 * (milliseconds) through a fault phase -- message drop, delay and reorder,
 * duplication, symmetric and asymmetric partitions, crash-restart losing all
 * that was not persisted, allocation failures, membership changes,
 * leadership transfers, log compaction and snapshot transfer, mixed per
 * seed -- followed by a heal phase in which the cluster must recover within
 * a bounded virtual time (liveness).  After every event a checker verifies
 * the safety properties of the Raft paper's Figure 3: election safety, log
 * matching, leader completeness, state-machine safety, plus linearizability
 * of read-index reads and the driver contract of raft.h (persist before
 * send, apply in order, never lose what was persisted or committed).
 *
 * Every message crosses the simulated network as the bytes of the real
 * codec (raft_msg_encode / raft_msg_decode), so the codec is exercised too.
 *
 * Everything is derived from the seed with our own PRNG (xoshiro256**): no
 * wall clock (except to print the rate), no rand(), no addresses in
 * decisions.  A failing seed therefore replays exactly: the run prints the
 * command, e.g. "build/core/sim --seed 1234", re-runs the seed with a trace
 * ring and prints its last lines.
 *
 * Fault mixes (chosen per seed, or --mix): calm, lossy, partitions,
 * crashes, membership, everything, oom (injected allocation failures and
 * RAFT_ENOMEM rebuilds) and churn (leader churn with stale leaders, big
 * entries in small messages, leaders killed right after they commit: the
 * interleavings of Figure 8 of the Raft paper).
 *
 * The driver follows raft.h: tick at the start of each loop iteration (one
 * virtual ms), feed events, then Ready cycles -- persist (truncate,
 * snapshot, append, hard state), send, apply, reads, advance -- and crash
 * only between cycles.  A crash or endless loop inside the core fails the
 * seed (signal handler, watchdog) and the run goes on with the next seed.
 *
 * Usage: sim [--seeds N] [--start S] [--seed S] [--trace] [--nodes K]
 *			  [--mix NAME] [--verbose]
 * The last line of output is "N passed, N failed"; the line before it gives
 * the rate in seeds per second.  The exit status is nonzero on any failure.
 */
#include "raft.h"

#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES		16		/* node ids 1..MAX_NODES; an id is never reused */
#define ELECTION_MS		100		/* raft_options.election_timeout */
#define HEARTBEAT_MS	10		/* raft_options.heartbeat_interval */
#define LIVENESS_MS		(20 * ELECTION_MS)	/* bound on recovery after heal */
#define MAX_ENTRY_BYTES 4096	/* raft_options.max_entry_bytes */
#define TRACE_LINES		200
#define TRACE_WIDTH		256
#define NO_TERM			UINT64_MAX	/* "previous term not known" */
#define SANE_LIMIT		UINT64_C(10000000)	/* terms/indexes beyond: runaway */

#define U(x) ((unsigned long long) (x))

/* ---------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

typedef struct rng
{
	uint64_t	s[4];
} rng;

/* One message in flight: the encoded bytes plus a header kept for traces. */
typedef struct packet
{
	uint64_t	at;				/* virtual ms of delivery */
	uint64_t	seq;			/* tie-break: FIFO among equal times */
	int			from,
				to;				/* slots */
	uint8_t		type;
	raft_term	term;
	raft_index	index;
	size_t		len;
	uint8_t    *buf;
} packet;

/* A snapshot fetch a node started because its Ready said snapshot_wanted. */
typedef struct fetch
{
	uint64_t	at;
	int			slot;
	uint32_t	incarnation;	/* a crash cancels the fetch */
	raft_id		from;			/* the leader that offered it */
	int			tries;
	raft_snapshot_meta meta;
} fetch;

/*
 * What a node keeps across crashes.  The entries are copies: the core's
 * pointers are only valid until raft_advance().  Invariant: ents[] holds
 * consecutive indexes starting right after the snapshot (or at 1).
 */
typedef struct disk
{
	raft_hard_state hs;
	raft_snapshot_meta *snap;	/* NULL: none yet */
	raft_entry *ents;
	size_t		n,
				cap;
} disk;

/*
 * The state machine, persisted atomically with each apply: the applied
 * index and the hash chain h_i = H(h_{i-1}, entry_i).  h[] keeps the value
 * at every index from base (the last installed snapshot) so this node can
 * serve snapshots of any index it applied.
 */
typedef struct smach
{
	raft_index	base;
	raft_index	applied;
	uint64_t   *h;				/* h[i - base], i in [base, applied] */
	size_t		cap;
} smach;

typedef enum node_state
{
	NODE_NONE = 0,				/* slot unused */
	NODE_UP,
	NODE_DOWN,					/* crashed; restarts at restart_at */
	NODE_GONE,					/* removed from the cluster and stopped */
} node_state;

typedef struct node
{
	raft_id		id;
	node_state	state;
	raft	   *r;
	disk		d;
	smach		sm;
	uint32_t	incarnation;
	uint64_t	clock_off;		/* its clock = virtual time + offset */
	uint64_t	wake_at;		/* virtual ms of the next raft_tick() */
	uint64_t	ticked_at;		/* virtual ms of the last raft_tick() */
	uint64_t	restart_at;
	uint64_t	leave_at;		/* 0: not leaving */
	uint64_t	crash_at;		/* 0: no crash planned */
	bool		crash_now;		/* crash before its next Ready cycle */
	bool		dirty;			/* events fed since the last Ready cycle */
	bool		was_member;		/* has been in a configuration it applied */
	uint64_t	cutoff_since;	/* leads, cut off from a quorum since: 0 not */

	/* last observed status, to see transitions */
	raft_role	role;
	raft_term	term;
	raft_id		lead;
	raft_index	commit;
	raft_term	lead_term;		/* term it became leader in */
	raft_index	lead_last;		/* its last index when it became leader */
} node;

typedef struct proposal
{
	raft_id		node;
	raft_index	index;
	raft_term	term;
	raft_index	applied_at;		/* 0: not applied anywhere yet */
	bool		acked;
} proposal;

typedef struct readreq
{
	raft_id		node;
	raft_index	need;			/* max commit index when it was issued */
	bool		done;
} readreq;

/* global log-matching map: (index, term) -> (content, previous term) */
typedef struct lm_slot
{
	raft_index	index;			/* 0: empty slot */
	raft_term	term;
	uint64_t	content;
	raft_term	prev;
} lm_slot;

/* A fault mix: which faults a seed gets, and how hard. */
typedef struct mixdef
{
	const char *name;
	uint32_t	drop_pm;		/* upper bound of the drop rate, per mille */
	uint32_t	dup_pm;			/* upper bound of the duplication rate */
	uint32_t	spike_pm;		/* rate of long delays (reordering) */
	uint32_t	delay_max;		/* ordinary delay is 1..delay_max ms */
	uint32_t	fault_ms;		/* mean ms between fault actions, 0: none */
	uint32_t	w_part,			/* weights of the fault actions */
				w_crash,
				w_member,
				w_transfer;
	uint32_t	oom_pm;			/* per mille of steps with a failing malloc */
	uint32_t	kill_leader_pct;	/* % of new leaders crashed within 25 ms */
	uint32_t	big_pct;		/* % of proposals larger than a small message */
	uint32_t	kill_commit_pct;	/* % of leader commits followed by a crash */
} mixdef;

static const mixdef mixes[] = {
	{"calm", 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0},
	{"lossy", 300, 100, 60, 20, 150, 0, 0, 0, 1, 0, 0, 5, 0},
	{"partitions", 50, 20, 20, 10, 120, 10, 0, 0, 2, 0, 0, 5, 0},
	{"crashes", 30, 10, 10, 10, 120, 0, 10, 0, 2, 0, 15, 5, 2},
	{"membership", 30, 10, 10, 10, 80, 2, 2, 10, 4, 0, 5, 5, 0},
	{"everything", 200, 50, 50, 20, 60, 6, 6, 6, 3, 0, 15, 10, 2},
	{"oom", 20, 10, 10, 10, 150, 1, 2, 2, 1, 8, 5, 5, 0},
	/* leader churn: stale leaders with divergent logs (Figure 8) */
	{"churn", 50, 20, 30, 10, 60, 10, 4, 0, 2, 0, 40, 60, 30},
};
#define N_MIXES ((int) (sizeof mixes / sizeof mixes[0]))

typedef struct stats
{
	uint64_t	seeds,
				virt_ms,
				sent,
				delivered,
				dropped,
				duplicated,
				step_err,
				leaders,
				max_term,
				proposals,
				prop_err,
				acked,
				reads,
				read_err,
				reads_ok,
				reads_failed,
				reads_dup,
				compactions,
				snap_wanted,
				snap_installed,
				snap_nosrc,
				snap_fail,
				crashes,
				ooms,
				conf_ok,
				conf_err,
				removed,
				transfer_ok,
				transfer_err,
				partitions;
} stats;

/* ---------------------------------------------------------------------
 * Global state of the running seed (reset between seeds)
 * --------------------------------------------------------------------- */

static struct sim
{
	uint64_t	seed;
	rng			rng;
	uint64_t	now;			/* virtual ms */
	uint64_t	cluster_id;
	const mixdef *mix;
	int			n_boot;

	/* per-seed core options and driver habits */
	bool		pre_vote,
				check_quorum;
	uint32_t	max_inflight,
				max_msg_bytes;
	uint32_t	immediate_pct;	/* % of events followed at once by a cycle */
	raft_index	compact_tail;

	/* network */
	uint32_t	drop_pm,
				dup_pm,
				spike_pm,
				delay_max;
	bool		cut[MAX_NODES][MAX_NODES];	/* [from][to]: link down */
	packet	   *heap;
	size_t		nheap,
				capheap;
	uint64_t	pseq;

	node		nodes[MAX_NODES];
	int			n_nodes;		/* slots in use: ids 1..n_nodes */
	fetch	  **fetches;
	size_t		nfetch,
				capfetch;

	/* checker state */
	raft_id    *lead_of;		/* term -> leader */
	size_t		cap_terms;
	raft_term  *cterm;			/* index -> committed term (0: unknown) */
	raft_term  *cseen;			/* index -> lowest current term of a node
								 * that saw it committed: it was committed
								 * in that term or an earlier one */
	uint64_t   *ahash;			/* index -> hash chain at apply (0: none) */
	size_t		cap_idx;
	raft_index	max_commit;
	lm_slot    *lm;
	size_t		lm_cap,
				lm_n;
	proposal   *props;
	size_t		nprops,
				capprops;
	readreq    *reads;
	size_t		nreads,
				capreads;

	/* schedule */
	uint64_t	next_client,
				next_fault,
				next_net,
				next_compact,
				next_scan,
				t_heal,
				t_end;
	bool		healed;

	/* liveness */
	raft_id		fresh_leader;
	raft_term	fresh_term;
	raft_index	fresh_index;
	char		why[200];
	bool		live_ok;

	bool		failed;
	char		failmsg[600];
	uint64_t	fail_at;

	stats		st;
} S;

static stats totals;


/* scratch configurations: raft_conf is ~66 kB, keep it off the stack */
static raft_conf boot_conf;
static raft_conf scratch_conf;

/* ---------------------------------------------------------------------
 * PRNG and hashing
 * --------------------------------------------------------------------- */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t	z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t
mix64(uint64_t x)
{
	return splitmix64(&x);
}

static void
rng_seed(rng *g, uint64_t seed)
{
	uint64_t	x = seed;

	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix64(&x);
}

static inline uint64_t
rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(rng *g)
{
	uint64_t   *s = g->s;
	uint64_t	result = rotl64(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* uniform in [0, n); the modulo bias is irrelevant for a simulator */
static uint64_t
rnd(uint64_t n)
{
	return n ? rng_next(&S.rng) % n : 0;
}

static uint64_t
rnd_range(uint64_t lo, uint64_t hi)
{
	return lo + rnd(hi - lo + 1);
}

static bool
chance_pm(uint32_t pm)
{
	return pm && rnd(1000) < pm;
}

static uint64_t
hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	h ^= UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return mix64(h ^ n);
}

/* what an entry says, apart from its position (index, term) */
static uint64_t
content_hash(uint8_t type, const uint8_t *data, uint32_t len)
{
	return hash_bytes(mix64(type), data, len);
}

/* h_i = H(h_{i-1}, term, content); never 0 so that 0 can mean "unknown" */
static uint64_t
chain_hash(uint64_t prev, raft_term term, uint64_t content)
{
	return mix64(prev * 31 + mix64(term) + content) | 1;
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t	v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

/* ---------------------------------------------------------------------
 * Memory: plain malloc for the simulator, a counting allocator for the
 * core and the codec so that leaks show up without ASan, and so that
 * allocation failures can be injected.
 * --------------------------------------------------------------------- */

static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (!p)
	{
		fprintf(stderr, "sim: out of memory\n");
		exit(2);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (!q)
	{
		fprintf(stderr, "sim: out of memory\n");
		exit(2);
	}
	return q;
}

typedef union ahdr
{
	long double align1;			/* keep the user block maximally aligned */
	void	   *align2;
	size_t		size;
} ahdr;

static struct
{
	int64_t		live;			/* blocks allocated and not freed */
	int			fail_in;		/* >0: the fail_in-th allocation fails */
	bool		failed;			/* an injected failure happened */
} A;

static void *
a_alloc(void *ctx, size_t size)
{
	ahdr	   *h;

	if (A.fail_in > 0 && --A.fail_in == 0)
	{
		A.failed = true;
		return NULL;
	}
	h = malloc(sizeof(ahdr) + size);
	if (!h)
		return NULL;
	h->size = size;
	A.live++;
	return h + 1;
}

static void *
a_realloc(void *ctx, void *p, size_t size)
{
	ahdr	   *h;

	if (!p)
		return a_alloc(ctx, size);
	if (A.fail_in > 0 && --A.fail_in == 0)
	{
		A.failed = true;
		return NULL;
	}
	h = realloc((ahdr *) p - 1, sizeof(ahdr) + size);
	if (!h)
		return NULL;
	h->size = size;
	return h + 1;
}

static void
a_free(void *ctx, void *p)
{
	if (!p)
		return;
	A.live--;
	free((ahdr *) p - 1);
}

static const raft_allocator sim_alloc = {a_alloc, a_realloc, a_free, NULL};

/* ---------------------------------------------------------------------
 * Trace: formatted only when asked for (--trace, or the replay of a
 * failing seed, which keeps the last TRACE_LINES lines in a ring).
 * --------------------------------------------------------------------- */

static struct
{
	bool		live;
	bool		ring;
	uint64_t	n;
	char		line[TRACE_LINES][TRACE_WIDTH];
} T;

#define TRACING() (T.live || T.ring)
#define TR(...) do { if (TRACING()) trace_line(__VA_ARGS__); } while (0)

static void trace_line(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
trace_line(const char *fmt,...)
{
	char		buf[TRACE_WIDTH];
	int			off;
	va_list		ap;

	off = snprintf(buf, sizeof buf, "%7llu ms  ", U(S.now));
	va_start(ap, fmt);
	vsnprintf(buf + off, sizeof buf - off, fmt, ap);
	va_end(ap);
	if (T.live)
		puts(buf);
	if (T.ring)
	{
		memcpy(T.line[T.n % TRACE_LINES], buf, TRACE_WIDTH);
		T.n++;
	}
}

static void fail(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* Record the first violation; the main loop stops at the next check. */
static void
fail(const char *fmt,...)
{
	va_list		ap;

	if (S.failed)
		return;
	S.failed = true;
	S.fail_at = S.now;
	va_start(ap, fmt);
	vsnprintf(S.failmsg, sizeof S.failmsg, fmt, ap);
	va_end(ap);
	TR("FAIL: %s", S.failmsg);
}

static const char *const msg_names[] = {
	"?", "APPEND", "APPEND_RESP", "HEARTBEAT", "HEARTBEAT_RESP", "VOTE",
	"VOTE_RESP", "PREVOTE", "PREVOTE_RESP", "SNAPSHOT", "TIMEOUT_NOW",
	"READ_INDEX", "READ_INDEX_RESP", "APPLIED",
};

static const char *
msg_name(unsigned t)
{
	return t <= RAFT_MSG_TYPE_MAX ? msg_names[t] : "?";
}

static void
msg_desc(char *buf, size_t sz, const raft_msg *m)
{
	int			off;

	off = snprintf(buf, sz, "%s %llu->%llu t%llu", msg_name(m->type),
				   U(m->from), U(m->to), U(m->term));
	switch (m->type)
	{
		case RAFT_MSG_APPEND:
			snprintf(buf + off, sz - off, " i%llu lt%llu c%llu n%u",
					 U(m->index), U(m->log_term), U(m->commit), m->n_entries);
			break;
		case RAFT_MSG_APPEND_RESP:
			snprintf(buf + off, sz - off, " i%llu%s hint %llu/%llu",
					 U(m->index), m->reject ? " REJECT" : "",
					 U(m->hint_index), U(m->hint_term));
			break;
		case RAFT_MSG_HEARTBEAT:
			snprintf(buf + off, sz - off, " c%llu seq%llu",
					 U(m->commit), U(m->seq));
			break;
		case RAFT_MSG_HEARTBEAT_RESP:
			snprintf(buf + off, sz - off, " seq%llu", U(m->seq));
			break;
		case RAFT_MSG_VOTE:
		case RAFT_MSG_PREVOTE:
			snprintf(buf + off, sz - off, " i%llu lt%llu%s",
					 U(m->index), U(m->log_term), m->transfer ? " transfer" : "");
			break;
		case RAFT_MSG_VOTE_RESP:
		case RAFT_MSG_PREVOTE_RESP:
			snprintf(buf + off, sz - off, "%s", m->reject ? " REJECT" : " granted");
			break;
		case RAFT_MSG_SNAPSHOT:
			if (m->snapshot)
				snprintf(buf + off, sz - off, " snap i%llu t%llu",
						 U(m->snapshot->index), U(m->snapshot->term));
			break;
		case RAFT_MSG_READ_INDEX:
			snprintf(buf + off, sz - off, " ctx%llu", U(m->ctx));
			break;
		case RAFT_MSG_READ_INDEX_RESP:
			snprintf(buf + off, sz - off, " ctx%llu i%llu%s", U(m->ctx),
					 U(m->index), m->reject ? " REJECT" : "");
			break;
		default:
			break;
	}
}

/* ---------------------------------------------------------------------
 * Small helpers over nodes, configurations, disks and state machines
 * --------------------------------------------------------------------- */

static node *
node_by_id(raft_id id)
{
	if (id == 0 || id > (raft_id) S.n_nodes)
		return NULL;
	return &S.nodes[id - 1];
}

static uint64_t
node_clock(const node *n)
{
	return S.now + n->clock_off;
}

static void
conf_copy(raft_conf *dst, const raft_conf *src)
{
	uint32_t	n = src->n > RAFT_MAX_MEMBERS ? RAFT_MAX_MEMBERS : src->n;

	dst->n = n;
	memcpy(dst->members, src->members, n * sizeof(raft_member));
}

static void
meta_copy(raft_snapshot_meta *dst, const raft_snapshot_meta *src)
{
	dst->index = src->index;
	dst->term = src->term;
	conf_copy(&dst->conf, &src->conf);
}

static bool
conf_equal(const raft_conf *a, const raft_conf *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n && i < RAFT_MAX_MEMBERS; i++)
	{
		const raft_member *x = &a->members[i],
				   *y = &b->members[i];

		if (x->id != y->id || x->voter != y->voter || x->addr_len != y->addr_len ||
			memcmp(x->addr, y->addr, x->addr_len) != 0)
			return false;
	}
	return true;
}

static raft_index
disk_last(const disk *d)
{
	if (d->n)
		return d->ents[d->n - 1].index;
	return d->snap ? d->snap->index : 0;
}

static const raft_entry *
disk_entry(const disk *d, raft_index i)
{
	if (d->n == 0 || i < d->ents[0].index || i > d->ents[d->n - 1].index)
		return NULL;
	return &d->ents[i - d->ents[0].index];
}

/* term of the persisted entry at i (or of the snapshot), NO_TERM if none */
static raft_term
disk_term(const disk *d, raft_index i)
{
	const raft_entry *e;

	if (i == 0)
		return 0;
	if (d->snap && d->snap->index == i)
		return d->snap->term;
	e = disk_entry(d, i);
	return e ? e->term : NO_TERM;
}

/* drop persisted entries with index >= i */
static void
disk_truncate_from(disk *d, raft_index i)
{
	while (d->n && d->ents[d->n - 1].index >= i)
	{
		d->n--;
		free(d->ents[d->n].data);
	}
}

/* drop persisted entries with index <= i */
static void
disk_drop_upto(disk *d, raft_index i)
{
	size_t		k = 0;

	if (d->n == 0)
		return;					/* ents may be NULL: no pointer arithmetic */
	while (k < d->n && d->ents[k].index <= i)
		free(d->ents[k++].data);
	memmove(d->ents, d->ents + k, (d->n - k) * sizeof(raft_entry));
	d->n -= k;
}

static void
disk_append(disk *d, const raft_entry *e)
{
	raft_entry *c;

	if (d->n == d->cap)
	{
		d->cap = d->cap ? 2 * d->cap : 64;
		d->ents = xrealloc(d->ents, d->cap * sizeof(raft_entry));
	}
	c = &d->ents[d->n++];
	*c = *e;
	c->data = NULL;
	if (e->len)
	{
		c->data = xmalloc(e->len);
		memcpy(c->data, e->data, e->len);
	}
}

static void
disk_free(disk *d)
{
	disk_truncate_from(d, 0);
	free(d->ents);
	free(d->snap);
	memset(d, 0, sizeof *d);
}

static bool
sm_hash_at(const smach *sm, raft_index i, uint64_t *h)
{
	if (i < sm->base || i > sm->applied || !sm->h)
		return false;
	*h = sm->h[i - sm->base];
	return true;
}

static void
sm_reset(smach *sm, raft_index base, uint64_t h)
{
	sm->base = base;
	sm->applied = base;
	if (!sm->h)
	{
		sm->cap = 256;
		sm->h = xmalloc(sm->cap * sizeof(uint64_t));
	}
	sm->h[0] = h;
}

static void
sm_push(smach *sm, uint64_t h)
{
	size_t		k = sm->applied + 1 - sm->base;

	if (k >= sm->cap)
	{
		sm->cap *= 2;
		sm->h = xrealloc(sm->h, sm->cap * sizeof(uint64_t));
	}
	sm->h[k] = h;
	sm->applied++;
}

/* grow the per-index checker arrays to hold index i */
static bool
grow_idx(raft_index i)
{
	size_t		old = S.cap_idx;

	if (i < S.cap_idx)
		return true;
	if (i > SANE_LIMIT)
	{
		fail("index %llu is beyond any plausible log length", U(i));
		return false;
	}
	while (S.cap_idx <= i)
		S.cap_idx = S.cap_idx ? 2 * S.cap_idx : 1024;
	S.cterm = xrealloc(S.cterm, S.cap_idx * sizeof(raft_term));
	S.cseen = xrealloc(S.cseen, S.cap_idx * sizeof(raft_term));
	S.ahash = xrealloc(S.ahash, S.cap_idx * sizeof(uint64_t));
	memset(S.cterm + old, 0, (S.cap_idx - old) * sizeof(raft_term));
	memset(S.cseen + old, 0, (S.cap_idx - old) * sizeof(raft_term));
	memset(S.ahash + old, 0, (S.cap_idx - old) * sizeof(uint64_t));
	return true;
}

/* ---------------------------------------------------------------------
 * Checker: safety properties
 * --------------------------------------------------------------------- */

/* the entry at index i, term t was committed (seen on node n) */
static void
record_committed(node *n, raft_index i, raft_term t)
{
	raft_status st;

	if (!grow_idx(i))
		return;
	raft_get_status(n->r, &st);
	if (S.cseen[i] == 0 || st.term < S.cseen[i])
		S.cseen[i] = st.term;
	if (S.cterm[i] == 0)
		S.cterm[i] = t;
	else if (S.cterm[i] != t)
		fail("state machine safety: n%llu has entry %llu of term %llu committed, "
			 "but the entry of term %llu was committed at that index before",
			 U(n->id), U(i), U(t), U(S.cterm[i]));
}

static void
lm_grow(void)
{
	lm_slot    *old = S.lm;
	size_t		oldcap = S.lm_cap;

	S.lm_cap = S.lm_cap ? 2 * S.lm_cap : 1024;
	S.lm = calloc(S.lm_cap, sizeof(lm_slot));
	if (!S.lm)
	{
		fprintf(stderr, "sim: out of memory\n");
		exit(2);
	}
	for (size_t k = 0; k < oldcap; k++)
	{
		if (old[k].index)
		{
			size_t		h = mix64(old[k].index * UINT64_C(0x9e3779b97f4a7c15) ^ old[k].term) & (S.lm_cap - 1);

			while (S.lm[h].index)
				h = (h + 1) & (S.lm_cap - 1);
			S.lm[h] = old[k];
		}
	}
	free(old);
}

/*
 * Log matching (Figure 3): two entries with the same index and term hold
 * the same command and are preceded by the same log.  By induction it is
 * enough that every (index, term) has one content and one previous term.
 */
static void
lm_check(node *n, raft_index idx, raft_term term, uint64_t content, raft_term prev)
{
	size_t		h;

	if (S.lm_n * 2 >= S.lm_cap)
		lm_grow();
	h = mix64(idx * UINT64_C(0x9e3779b97f4a7c15) ^ term) & (S.lm_cap - 1);
	while (S.lm[h].index)
	{
		lm_slot    *s = &S.lm[h];

		if (s->index == idx && s->term == term)
		{
			if (s->content != content)
				fail("log matching: entry %llu of term %llu on n%llu differs in "
					 "content from the entry with that index and term seen before",
					 U(idx), U(term), U(n->id));
			else if (prev != NO_TERM && s->prev != NO_TERM && prev != s->prev)
				fail("log matching: entry %llu of term %llu on n%llu follows an "
					 "entry of term %llu, elsewhere one of term %llu",
					 U(idx), U(term), U(n->id), U(prev), U(s->prev));
			else if (s->prev == NO_TERM)
				s->prev = prev;
			return;
		}
		h = (h + 1) & (S.lm_cap - 1);
	}
	S.lm[h].index = idx;
	S.lm[h].term = term;
	S.lm[h].content = content;
	S.lm[h].prev = prev;
	S.lm_n++;
}

/* every entry of the node's in-memory log against the global map */
static void
scan_node(node *n)
{
	raft_status st;
	raft_term	prev = 0;
	bool		ok;

	if (n->state != NODE_UP || S.failed)
		return;
	raft_get_status(n->r, &st);
	if (st.snapshot_index)
	{
		prev = raft_term_at(n->r, st.snapshot_index, &ok);
		if (!ok)
			prev = NO_TERM;
		else if (prev != st.snapshot_term)
			fail("n%llu: raft_term_at(snapshot index %llu) = %llu, status says %llu",
				 U(n->id), U(st.snapshot_index), U(prev), U(st.snapshot_term));
	}
	for (raft_index i = st.snapshot_index + 1; i <= st.last_index && !S.failed; i++)
	{
		const raft_entry *e = raft_get_entry(n->r, i);
		raft_term	t;

		if (!e)
		{
			fail("n%llu: raft_get_entry(%llu) is NULL inside its log (%llu, %llu]",
				 U(n->id), U(i), U(st.snapshot_index), U(st.last_index));
			return;
		}
		t = raft_term_at(n->r, i, &ok);
		if (e->index != i || !ok || t != e->term)
		{
			fail("n%llu: entry %llu: raft_get_entry gives index %llu term %llu, "
				 "raft_term_at gives %llu (ok %d)", U(n->id), U(i), U(e->index),
				 U(e->term), U(t), ok);
			return;
		}
		if (e->term > st.term)
			fail("n%llu: entry %llu has term %llu beyond its current term %llu",
				 U(n->id), U(i), U(e->term), U(st.term));
		if (prev != NO_TERM && e->term < prev)
			fail("n%llu: log terms decrease at %llu (%llu after %llu)",
				 U(n->id), U(i), U(e->term), U(prev));
		lm_check(n, i, e->term, content_hash(e->type, e->data, e->len), prev);
		prev = e->term;
	}
}

static void
scan_all(void)
{
	for (int k = 0; k < S.n_nodes && !S.failed; k++)
		scan_node(&S.nodes[k]);
}

/*
 * Leader completeness (Figure 3.2): an entry committed in a term is in the
 * logs of the leaders of every higher term.  Checked when the node becomes
 * leader, against every entry the checker has seen committed in a lower
 * term.  A leader of an older term can be elected late (its votes were
 * cast before a newer term committed anything, their answers delayed):
 * nothing committed in its term or later is required of it.
 */
static void
check_leader_complete(node *n, const raft_status *st)
{
	for (raft_index i = st->snapshot_index + 1; i <= S.max_commit && !S.failed; i++)
	{
		raft_term	t;
		bool		ok;

		if (i >= S.cap_idx || S.cterm[i] == 0 || S.cseen[i] >= st->term)
			continue;
		if (i > st->last_index)
		{
			fail("leader completeness: n%llu became leader of term %llu with last "
				 "index %llu, but entry %llu (term %llu) is committed",
				 U(n->id), U(st->term), U(st->last_index), U(i), U(S.cterm[i]));
			return;
		}
		t = raft_term_at(n->r, i, &ok);
		if (!ok || t != S.cterm[i])
			fail("leader completeness: n%llu became leader of term %llu with "
				 "entry %llu of term %llu, but term %llu is committed there",
				 U(n->id), U(st->term), U(i), U(t), U(S.cterm[i]));
	}
}

static void
set_wake(node *n)
{
	uint64_t	d = raft_next_deadline(n->r);
	uint64_t	at;

	if (d == UINT64_MAX)
	{
		n->wake_at = UINT64_MAX;
		return;
	}
	at = d > n->clock_off ? d - n->clock_off : 0;
	if (at <= S.now)
		at = S.now + 1;
	/* a driver is sometimes late */
	if (rnd(8) == 0)
		at += rnd(4);
	n->wake_at = at;
}

/*
 * Look at a node after each event or cycle: role and term transitions
 * (election safety, leader completeness), commit index progress (which
 * entries are committed).
 */
static void
observe(node *n)
{
	raft_status st;

	if (n->state != NODE_UP)
		return;
	raft_get_status(n->r, &st);
	if (st.id != n->id)
	{
		fail("n%llu: raft_get_status reports id %llu", U(n->id), U(st.id));
		return;
	}
	if (st.role != n->role || st.term != n->term)
	{
		TR("n%llu ROLE %s -> %s, term %llu -> %llu, lead %llu", U(n->id),
		   raft_role_name(n->role), raft_role_name(st.role), U(n->term), U(st.term),
		   U(st.lead));
		if (st.term < n->term)
			fail("n%llu: term went back from %llu to %llu", U(n->id),
				 U(n->term), U(st.term));
	}
	if (st.term > SANE_LIMIT)
		fail("n%llu: term %llu is runaway", U(n->id), U(st.term));
	if (st.term > S.st.max_term)
		S.st.max_term = st.term;
	/*
	 * Who may campaign: a voter; or (raft.h, can_campaign) a node whose own
	 * removal is the latest configuration and still uncommitted, since the
	 * rest of the old configuration may need it.  Never a learner, never a
	 * node that knows its removal committed.
	 */
	if ((st.role == RAFT_CANDIDATE || st.role == RAFT_PRECANDIDATE) && !st.is_voter &&
		(st.is_member || st.conf_index <= st.commit))
		fail("n%llu is %s in term %llu but is %s", U(n->id), raft_role_name(st.role),
			 U(st.term), st.is_member ? "a learner" :
			 "not in its committed configuration");
	if (st.role == RAFT_LEADER && (n->role != RAFT_LEADER || n->term != st.term) && !S.failed)
	{
		/* election safety: at most one leader per term, ever */
		if (st.term >= S.cap_terms)
		{
			size_t		old = S.cap_terms;

			while (S.cap_terms <= st.term)
				S.cap_terms = S.cap_terms ? 2 * S.cap_terms : 256;
			S.lead_of = xrealloc(S.lead_of, S.cap_terms * sizeof(raft_id));
			memset(S.lead_of + old, 0, (S.cap_terms - old) * sizeof(raft_id));
		}
		if (S.lead_of[st.term] && S.lead_of[st.term] != n->id)
			fail("election safety: n%llu and n%llu are both leaders of term %llu",
				 U(S.lead_of[st.term]), U(n->id), U(st.term));
		S.lead_of[st.term] = n->id;
		S.st.leaders++;

		/*
		 * Kill some new leaders before they replicate all they have: the
		 * situations of Figure 8 (commitment of entries of older terms)
		 * need a leader that dies having sent only part of its log.
		 */
		if (!S.healed && !n->crash_at && rnd(100) < S.mix->kill_leader_pct)
			n->crash_at = S.now + rnd_range(1, 25);
		check_leader_complete(n, &st);
		n->lead_term = st.term;
		n->lead_last = st.last_index;
	}
	if (st.commit != n->commit && !S.failed)
	{
		if (st.commit < n->commit)
			fail("n%llu: commit index went back from %llu to %llu", U(n->id),
				 U(n->commit), U(st.commit));
		else if (st.commit > st.last_index)
			fail("n%llu: commit index %llu beyond its last index %llu", U(n->id),
				 U(st.commit), U(st.last_index));
		else
		{
			for (raft_index i = n->commit + 1; i <= st.commit && !S.failed; i++)
			{
				bool		ok;
				raft_term	t = raft_term_at(n->r, i, &ok);

				if (ok)
					record_committed(n, i, t);
			}
			TR("n%llu COMMIT %llu -> %llu", U(n->id), U(n->commit), U(st.commit));
			if (st.commit > S.max_commit)
				S.max_commit = st.commit;
			/* a leader that dies knowing alone of a commit */
			if (st.role == RAFT_LEADER && !S.healed &&
				rnd(100) < S.mix->kill_commit_pct)
				n->crash_now = true;
		}
	}
	n->role = st.role;
	n->term = st.term;
	n->lead = st.lead;
	n->commit = st.commit;
	set_wake(n);
}

/* ---------------------------------------------------------------------
 * Network
 * --------------------------------------------------------------------- */

static bool
pkt_less(const packet *a, const packet *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void
heap_push(const packet *p)
{
	size_t		i;

	if (S.nheap == S.capheap)
	{
		S.capheap = S.capheap ? 2 * S.capheap : 256;
		S.heap = xrealloc(S.heap, S.capheap * sizeof(packet));
	}
	i = S.nheap++;
	S.heap[i] = *p;
	while (i > 0)
	{
		size_t		parent = (i - 1) / 2;
		packet		tmp;

		if (!pkt_less(&S.heap[i], &S.heap[parent]))
			break;
		tmp = S.heap[i];
		S.heap[i] = S.heap[parent];
		S.heap[parent] = tmp;
		i = parent;
	}
}

static packet
heap_pop(void)
{
	packet		top = S.heap[0];
	size_t		i = 0;

	S.heap[0] = S.heap[--S.nheap];
	for (;;)
	{
		size_t		l = 2 * i + 1,
					r = l + 1,
					m = i;
		packet		tmp;

		if (l < S.nheap && pkt_less(&S.heap[l], &S.heap[m]))
			m = l;
		if (r < S.nheap && pkt_less(&S.heap[r], &S.heap[m]))
			m = r;
		if (m == i)
			break;
		tmp = S.heap[i];
		S.heap[i] = S.heap[m];
		S.heap[m] = tmp;
		i = m;
	}
	return top;
}

/* poison before freeing so that a core keeping pointers into it misbehaves */
static void
free_poisoned(uint8_t *buf, size_t len)
{
	memset(buf, 0xA5, len);
	free(buf);
}

static uint64_t
net_delay(void)
{
	uint64_t	d = rnd_range(1, S.delay_max);

	if (chance_pm(S.spike_pm))
		d += rnd_range(20, 300);
	return d;
}

/*
 * Decode what we just encoded and compare every field (the codec carries
 * them all, whatever the type): a codec bug shows up here with a precise
 * message instead of as odd behaviour later.  Now and then also decode a
 * truncated copy, in a buffer of its exact size so that ASan sees any read
 * past it: it must be rejected.
 */
static void
codec_check(const raft_msg *m, const uint8_t *buf, size_t len)
{
	raft_msg	d;
	uint64_t	cid = 0;
	const char *diff = NULL;
	int			rc;

	memset(&d, 0, sizeof d);
	rc = raft_msg_decode(buf, len, &cid, &d, &sim_alloc);
	if (rc != 0)
	{
		fail("codec: decoding a freshly encoded %s (%zu bytes) fails: %s",
			 msg_name(m->type), len, raft_strerror(rc));
		return;
	}
	if (cid != S.cluster_id)
		diff = "cluster id";
	else if (d.type != m->type)
		diff = "type";
	else if (d.from != m->from || d.to != m->to)
		diff = "from/to";
	else if (d.term != m->term)
		diff = "term";
	else if (d.index != m->index || d.log_term != m->log_term)
		diff = "index/log_term";
	else if (d.commit != m->commit)
		diff = "commit";
	else if (d.reject != m->reject || d.transfer != m->transfer)
		diff = "reject/transfer";
	else if (d.hint_index != m->hint_index || d.hint_term != m->hint_term)
		diff = "hint";
	else if (d.seq != m->seq || d.ctx != m->ctx)
		diff = "seq/ctx";
	else if (d.n_entries != m->n_entries)
		diff = "n_entries";
	else if ((d.snapshot != NULL) != (m->snapshot != NULL))
		diff = "snapshot presence";
	else if (m->snapshot && (d.snapshot->index != m->snapshot->index ||
							 d.snapshot->term != m->snapshot->term ||
							 !conf_equal(&d.snapshot->conf, &m->snapshot->conf)))
		diff = "snapshot meta";
	for (uint32_t k = 0; !diff && k < m->n_entries; k++)
	{
		const raft_entry *a = &m->entries[k],
				   *b = &d.entries[k];

		if (a->term != b->term || a->index != b->index || a->type != b->type ||
			a->len != b->len || (a->len && memcmp(a->data, b->data, a->len) != 0))
			diff = "entries";
	}
	raft_msg_free(&d, &sim_alloc);
	if (diff)
	{
		fail("codec: round trip of %s %llu->%llu changes the %s",
			 msg_name(m->type), U(m->from), U(m->to), diff);
		return;
	}
	if (len > 1 && rnd(100) == 0)
	{
		size_t		cut = (size_t) rnd_range(1, len - 1);
		uint8_t    *part = xmalloc(cut);

		memcpy(part, buf, cut);
		memset(&d, 0, sizeof d);
		rc = raft_msg_decode(part, cut, &cid, &d, &sim_alloc);
		if (rc == 0)
		{
			raft_msg_free(&d, &sim_alloc);
			fail("codec: a %s of %zu bytes truncated to %zu decodes without error",
				 msg_name(m->type), len, cut);
		}
		free(part);
	}
}

static void
net_send(node *n, const raft_msg *m)
{
	size_t		sz,
				w;
	uint8_t    *buf;
	packet		p;
	node	   *dst;
	char		desc[160];

	if (m->from != n->id)
	{
		fail("n%llu sends a message with from = %llu", U(n->id), U(m->from));
		return;
	}
	if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX)
	{
		fail("n%llu sends a message of unknown type %u", U(n->id), m->type);
		return;
	}
	if (TRACING())
		msg_desc(desc, sizeof desc, m);
	S.st.sent++;
	sz = raft_msg_encoded_size(m);
	buf = xmalloc(sz);
	w = raft_msg_encode(m, S.cluster_id, buf);
	if (w != sz)
	{
		fail("codec: raft_msg_encode wrote %zu bytes of a %s, "
			 "raft_msg_encoded_size said %zu", w, msg_name(m->type), sz);
		free(buf);
		return;
	}
	codec_check(m, buf, w);

	dst = node_by_id(m->to);
	if (!dst || m->to == n->id)
	{
		TR("n%llu DROP (no such peer) %s", U(n->id), TRACING() ? desc : "");
		S.st.dropped++;
		free(buf);
		return;
	}
	if (chance_pm(S.drop_pm))
	{
		TR("n%llu DROP (loss) %s", U(n->id), TRACING() ? desc : "");
		S.st.dropped++;
		free(buf);
		return;
	}
	memset(&p, 0, sizeof p);
	p.from = (int) (n->id - 1);
	p.to = (int) (m->to - 1);
	p.type = m->type;
	p.term = m->term;
	p.index = m->index;
	p.len = w;
	p.buf = buf;
	p.at = S.now + net_delay();
	p.seq = S.pseq++;
	TR("n%llu SEND %s (arrives %llu)", U(n->id), TRACING() ? desc : "", U(p.at));
	heap_push(&p);
	if (chance_pm(S.dup_pm))
	{
		p.buf = xmalloc(w);
		memcpy(p.buf, buf, w);
		p.at = S.now + net_delay();
		p.seq = S.pseq++;
		S.st.duplicated++;
		TR("n%llu DUP %s (arrives %llu)", U(n->id), TRACING() ? desc : "", U(p.at));
		heap_push(&p);
	}
}

/* ---------------------------------------------------------------------
 * Node life cycle
 * --------------------------------------------------------------------- */

static void node_cycle(node *n);
static void node_rebuild(node *n, const char *where);
static void node_crash(node *n, uint64_t down_ms);

/* arm an injected allocation failure for the next call into the core */
static void
oom_arm(void)
{
	A.failed = false;
	A.fail_in = chance_pm(S.mix->oom_pm) ? (int) rnd_range(1, 6) : 0;
}

static bool
oom_disarm(void)
{
	bool		f = A.failed;

	A.fail_in = 0;
	A.failed = false;
	return f;
}

/* after feeding an event: observe, then run the Ready cycle now or later */
static void
after_event(node *n)
{
	if (n->state != NODE_UP)
		return;
	observe(n);
	if (S.failed)
		return;
	if (n->crash_now)
	{
		/* between cycles: what the event queued is lost */
		n->crash_now = false;
		node_crash(n, rnd_range(20, 400));
		return;
	}
	if (rnd(100) < S.immediate_pct)
		node_cycle(n);
	else
		n->dirty = true;
}

/*
 * raft.h: every event happens at the time of the last raft_tick(), so the
 * driver ticks at the start of each loop iteration (here: each virtual ms)
 * before it feeds the first message or request of that iteration.
 */
static void
drive(node *n)
{
	if (n->state != NODE_UP || n->ticked_at == S.now)
		return;
	n->ticked_at = S.now;
	(void) raft_tick(n->r, node_clock(n));
	observe(n);
}

static void
node_options(node *n, raft_options *o)
{
	raft_options_default(o, n->id);
	o->seed = mix64(S.seed * 1000003 + n->id * 7919 + n->incarnation);
	o->election_timeout = ELECTION_MS;
	o->heartbeat_interval = HEARTBEAT_MS;
	o->pre_vote = S.pre_vote;
	o->check_quorum = S.check_quorum;
	o->max_inflight = S.max_inflight;
	o->max_msg_bytes = S.max_msg_bytes;
	o->max_entry_bytes = MAX_ENTRY_BYTES;
	o->allocator = &sim_alloc;
}

/*
 * Start (boot, restart or first start of an added node) from the disk.  A
 * restart is raft_new + raft_restore of what was persisted, nothing else.
 */
static void
node_start(node *n, bool boot)
{
	raft_options o;
	raft_status st;
	int			rc;
	disk	   *d = &n->d;

	node_options(n, &o);
	rc = raft_new(&o, &n->r);
	if (rc != 0 || !n->r)
	{
		fail("n%llu: raft_new: %s", U(n->id), raft_strerror(rc));
		n->r = NULL;
		return;
	}
	n->state = NODE_UP;
	n->dirty = false;
	if (boot)
	{
		rc = raft_bootstrap(n->r, &boot_conf);
		if (rc != 0)
			fail("n%llu: raft_bootstrap: %s", U(n->id), raft_strerror(rc));
	}
	else if (d->hs.term || d->snap || d->n)
	{
		rc = raft_restore(n->r, &d->hs, d->snap, d->ents, d->n, n->sm.applied);
		if (rc != 0)
			fail("n%llu: raft_restore (term %llu, snapshot %llu, %zu entries, "
				 "applied %llu): %s", U(n->id), U(d->hs.term),
				 U(d->snap ? d->snap->index : 0), d->n, U(n->sm.applied),
				 raft_strerror(rc));
	}
	raft_get_status(n->r, &st);
	TR("n%llu START%s incarnation %u: term %llu vote %llu commit %llu, "
	   "snapshot %llu, log (%llu, %llu], applied %llu", U(n->id),
	   boot ? " (bootstrap)" : "", n->incarnation, U(st.term), U(st.vote),
	   U(st.commit), U(st.snapshot_index), U(st.snapshot_index),
	   U(st.last_index), U(n->sm.applied));
	if (!boot && !S.failed &&
		(st.term != d->hs.term || st.vote != d->hs.vote ||
		 st.last_index != disk_last(d) || st.applied != n->sm.applied ||
		 st.snapshot_index != (d->snap ? d->snap->index : 0)))
		fail("n%llu: after raft_restore the status (term %llu vote %llu last %llu "
			 "applied %llu snapshot %llu) differs from the disk (term %llu vote "
			 "%llu last %llu applied %llu snapshot %llu)", U(n->id), U(st.term),
			 U(st.vote), U(st.last_index), U(st.applied), U(st.snapshot_index),
			 U(d->hs.term), U(d->hs.vote), U(disk_last(d)), U(n->sm.applied),
			 U(d->snap ? d->snap->index : 0));
	n->role = st.role;
	n->term = st.term;
	n->lead = st.lead;
	n->commit = st.commit;
	n->ticked_at = S.now;
	rc = raft_tick(n->r, node_clock(n));
	(void) rc;
	observe(n);
	if (!S.failed)
		node_cycle(n);
}

/*
 * Compare the disk with the in-memory state of a node that has nothing
 * left to hand out: a restart from this disk must give the same node.
 */
static void
check_disk(node *n)
{
	raft_status st;
	disk	   *d = &n->d;

	raft_get_status(n->r, &st);
	if (st.term != d->hs.term || st.vote != d->hs.vote)
	{
		fail("n%llu: in memory term %llu vote %llu, persisted term %llu vote %llu "
			 "(with no Ready pending)", U(n->id), U(st.term), U(st.vote),
			 U(d->hs.term), U(d->hs.vote));
		return;
	}
	if (st.last_index != disk_last(d) ||
		st.snapshot_index != (d->snap ? d->snap->index : 0))
	{
		fail("n%llu: in memory log (%llu, %llu], persisted (%llu, %llu] (with no "
			 "Ready pending)", U(n->id), U(st.snapshot_index), U(st.last_index),
			 U(d->snap ? d->snap->index : 0), U(disk_last(d)));
		return;
	}
	for (raft_index i = st.snapshot_index + 1; i <= st.last_index; i++)
	{
		bool		ok;
		raft_term	t = raft_term_at(n->r, i, &ok);

		if (!ok || t != disk_term(d, i))
		{
			fail("n%llu: entry %llu has term %llu in memory, %llu on disk",
				 U(n->id), U(i), U(t), U(disk_term(d, i)));
			return;
		}
	}
}

static void
node_crash(node *n, uint64_t down_ms)
{
	if (n->state != NODE_UP)
		return;
	scan_node(n);
	if (!raft_has_ready(n->r))
		check_disk(n);
	TR("n%llu CRASH (%s, term %llu), down for %llu ms%s", U(n->id),
	   raft_role_name(n->role), U(n->term), U(down_ms),
	   n->dirty ? ", losing unpersisted events" : "");
	raft_free(n->r);
	n->r = NULL;
	n->state = NODE_DOWN;
	n->dirty = false;
	n->crash_now = false;
	n->restart_at = S.now + down_ms;
	n->incarnation++;
	S.st.crashes++;

	/* the others' connections to it break, as raftable's transport reports */
	for (int k = 0; k < S.n_nodes; k++)
		if (S.nodes[k].state == NODE_UP && &S.nodes[k] != n)
		{
			raft_peer_unreachable(S.nodes[k].r, n->id);
			S.nodes[k].dirty = true;
		}
}

/* RAFT_ENOMEM: the instance is undefined; rebuild it from the disk */
static void
node_rebuild(node *n, const char *where)
{
	TR("n%llu ENOMEM in %s: rebuild from disk", U(n->id), where);
	S.st.ooms++;
	raft_free(n->r);
	n->r = NULL;
	n->state = NODE_DOWN;
	n->incarnation++;
	node_start(n, false);
}

/* a node removed from the configuration shuts down, as raftable's would */
static void
node_leave(node *n)
{
	TR("n%llu LEAVE (removed from the configuration)", U(n->id));
	if (n->state == NODE_UP)
		raft_free(n->r);
	n->r = NULL;
	n->state = NODE_GONE;
	n->dirty = false;
	n->leave_at = 0;
	S.st.removed++;
}

/* ---------------------------------------------------------------------
 * The Ready cycle (raft.h): persist, send, apply, reads, advance
 * --------------------------------------------------------------------- */

/*
 * Persist a Ready in the order raft.h prescribes: truncate, snapshot,
 * append, hard state.  The checks here are the driver contract: what was
 * persisted or known committed is never lost, the log stays contiguous.
 */
static void
persist(node *n, const raft_ready *rd)
{
	disk	   *d = &n->d;
	raft_term	cur_term = rd->hs_changed ? rd->hs.term : d->hs.term;
	raft_index	last = disk_last(d);

	if (rd->truncate_from)
	{
		/*
		 * Never drop a committed entry: neither one this node had persisted
		 * as committed before this Ready (the commit it reports now may
		 * already count the entries that replace the dropped ones), nor one
		 * the checker has seen committed anywhere.
		 */
		if (rd->truncate_from <= last && rd->truncate_from <= d->hs.commit)
		{
			fail("n%llu: Ready truncates the persisted log from %llu, but it "
				 "had persisted commit %llu", U(n->id), U(rd->truncate_from),
				 U(d->hs.commit));
			return;
		}
		for (raft_index i = rd->truncate_from; i <= last; i++)
		{
			raft_term	t = disk_term(d, i);

			if (i < S.cap_idx && t != NO_TERM && S.cterm[i] == t)
			{
				fail("n%llu: Ready truncates the persisted log from %llu, "
					 "dropping entry %llu of term %llu, which is committed",
					 U(n->id), U(rd->truncate_from), U(i), U(t));
				return;
			}
		}
		if (d->snap && rd->truncate_from <= d->snap->index &&
			!(rd->snapshot_changed && rd->snapshot &&
			  rd->snapshot->index >= rd->truncate_from))
		{
			fail("n%llu: Ready truncates from %llu, inside its snapshot at %llu",
				 U(n->id), U(rd->truncate_from), U(d->snap->index));
			return;
		}
		TR("n%llu PERSIST truncate from %llu (log ended at %llu)", U(n->id),
		   U(rd->truncate_from), U(last));
		disk_truncate_from(d, rd->truncate_from);
	}
	if (rd->snapshot_changed)
	{
		const raft_snapshot_meta *sn = rd->snapshot;

		if (!sn)
		{
			fail("n%llu: Ready has snapshot_changed but no snapshot", U(n->id));
			return;
		}
		if (d->snap && sn->index < d->snap->index)
			fail("n%llu: persisted snapshot goes back from %llu to %llu",
				 U(n->id), U(d->snap->index), U(sn->index));
		else if (sn->index > n->sm.applied)
			fail("n%llu: snapshot at %llu is ahead of its state machine "
				 "(applied %llu)", U(n->id), U(sn->index), U(n->sm.applied));
		else if (sn->index < S.cap_idx && S.cterm[sn->index] &&
				 S.cterm[sn->index] != sn->term)
			fail("n%llu: snapshot at %llu has term %llu, term %llu is committed "
				 "there", U(n->id), U(sn->index), U(sn->term),
				 U(S.cterm[sn->index]));
		else if (disk_term(d, sn->index) != NO_TERM &&
				 disk_term(d, sn->index) != sn->term && sn->index <= d->hs.commit)
			fail("n%llu: snapshot at %llu has term %llu, its persisted committed "
				 "entry there has term %llu", U(n->id), U(sn->index), U(sn->term),
				 U(disk_term(d, sn->index)));
		if (S.failed)
			return;
		if (!d->snap)
			d->snap = xmalloc(sizeof(raft_snapshot_meta));
		meta_copy(d->snap, sn);
		disk_drop_upto(d, sn->index);
		/* what is left must follow the snapshot (raft.h: ents after it) */
		if (d->n && d->ents[0].index != sn->index + 1)
		{
			fail("n%llu: after the snapshot at %llu the persisted log starts at "
				 "%llu (gap)", U(n->id), U(sn->index), U(d->ents[0].index));
			return;
		}
		TR("n%llu PERSIST snapshot i%llu t%llu (%u members)", U(n->id),
		   U(sn->index), U(sn->term), sn->conf.n);
	}
	if (rd->n_entries)
	{
		const raft_entry *e = rd->entries;
		raft_index	first = e[0].index;
		raft_term	prev;

		last = disk_last(d);
		if (first != last + 1)
		{
			fail("n%llu: Ready entries start at %llu, the persisted log ends at "
				 "%llu", U(n->id), U(first), U(last));
			return;
		}
		prev = disk_term(d, first - 1);
		for (size_t k = 0; k < rd->n_entries; k++)
		{
			if (e[k].index != first + k)
			{
				fail("n%llu: Ready entries are not consecutive (%llu after %llu)",
					 U(n->id), U(e[k].index), U(first + k - 1));
				return;
			}
			if (e[k].term > cur_term)
			{
				fail("n%llu: persists entry %llu of term %llu beyond its term %llu",
					 U(n->id), U(e[k].index), U(e[k].term), U(cur_term));
				return;
			}
			if (n->role == RAFT_LEADER && n->term == n->lead_term &&
				e[k].index > n->lead_last && e[k].term != n->lead_term)
			{
				fail("n%llu: leader of term %llu appends entry %llu of term %llu",
					 U(n->id), U(n->lead_term), U(e[k].index), U(e[k].term));
				return;
			}
			if (prev != NO_TERM && e[k].term < prev)
			{
				fail("n%llu: log terms decrease at %llu (%llu after %llu)",
					 U(n->id), U(e[k].index), U(e[k].term), U(prev));
				return;
			}
			disk_append(d, &e[k]);
			lm_check(n, e[k].index, e[k].term,
					 content_hash(e[k].type, e[k].data, e[k].len), prev);
			prev = e[k].term;
		}
		TR("n%llu PERSIST entries %llu..%llu (terms %llu..%llu)", U(n->id),
		   U(first), U(first + rd->n_entries - 1), U(e[0].term),
		   U(e[rd->n_entries - 1].term));
	}
	if (rd->hs_changed && !S.failed)
	{
		if (rd->hs.term < d->hs.term)
			fail("n%llu: persisted term goes back from %llu to %llu", U(n->id),
				 U(d->hs.term), U(rd->hs.term));
		else if (rd->hs.term == d->hs.term && d->hs.vote != RAFT_NONE &&
				 rd->hs.vote != d->hs.vote)
			fail("n%llu: vote changes within term %llu from n%llu to n%llu",
				 U(n->id), U(rd->hs.term), U(d->hs.vote), U(rd->hs.vote));
		d->hs = rd->hs;
		TR("n%llu PERSIST hs term %llu vote %llu commit %llu", U(n->id),
		   U(d->hs.term), U(d->hs.vote), U(d->hs.commit));
	}
	if (!S.failed && d->hs.commit > disk_last(d))
		fail("n%llu: persisted commit %llu is beyond the persisted log (%llu)",
			 U(n->id), U(d->hs.commit), U(disk_last(d)));
}

/* a configuration this node applied (entry or snapshot): removed? */
static void
conf_applied(node *n, const raft_conf *conf, raft_index at)
{
	if (raft_conf_find(conf, n->id))
		n->was_member = true;
	else if (n->was_member && !n->leave_at)
	{
		/* give it a little while, as a real process would take to stop */
		n->leave_at = S.now + rnd_range(1, 200);
		TR("n%llu applied configuration %llu without itself: leaves at %llu",
		   U(n->id), U(at), U(n->leave_at));
	}
}

static void
apply_normal(node *n, const raft_entry *e)
{
	uint64_t	id;
	proposal   *p;

	if (e->len < 16 || le64(e->data + 8) != S.seed)
	{
		fail("n%llu: applies entry %llu with a payload the simulator never "
			 "proposed", U(n->id), U(e->index));
		return;
	}
	id = le64(e->data);
	if (id == 0 || id > S.nprops)
	{
		fail("n%llu: applies entry %llu with unknown proposal id %llu",
			 U(n->id), U(e->index), U(id));
		return;
	}
	p = &S.props[id - 1];
	if (p->applied_at && p->applied_at != e->index)
	{
		fail("proposal %llu is applied at index %llu and at index %llu",
			 U(id), U(p->applied_at), U(e->index));
		return;
	}
	p->applied_at = e->index;
	if (!p->acked && p->node == n->id && p->index == e->index && p->term == e->term)
	{
		p->acked = true;
		S.st.acked++;
		TR("n%llu ACK proposal %llu at %llu", U(n->id), U(id), U(e->index));
	}
}

static void
apply(node *n, const raft_ready *rd)
{
	for (size_t k = 0; k < rd->n_committed && !S.failed; k++)
	{
		const raft_entry *e = &rd->committed[k];
		uint64_t	prevh = 0,
					h;

		if (e->index != n->sm.applied + 1)
		{
			fail("n%llu: is handed entry %llu to apply after applying %llu",
				 U(n->id), U(e->index), U(n->sm.applied));
			return;
		}
		/* applied state is durable; the entry must be too, or restart breaks */
		if (disk_term(&n->d, e->index) != e->term &&
			!(n->d.snap && n->d.snap->index >= e->index))
		{
			fail("n%llu: applies entry %llu (term %llu) that is not persisted "
				 "(disk has term %llu)", U(n->id), U(e->index), U(e->term),
				 U(disk_term(&n->d, e->index)));
			return;
		}
		sm_hash_at(&n->sm, n->sm.applied, &prevh);
		h = chain_hash(prevh, e->term, content_hash(e->type, e->data, e->len));
		if (!grow_idx(e->index))
			return;
		if (S.ahash[e->index] && S.ahash[e->index] != h)
		{
			fail("state machine safety: n%llu applied entry %llu (term %llu) and "
				 "its state differs from what another node had at that index",
				 U(n->id), U(e->index), U(e->term));
			return;
		}
		S.ahash[e->index] = h;
		record_committed(n, e->index, e->term);
		sm_push(&n->sm, h);
		TR("n%llu APPLY %llu t%llu %s", U(n->id), U(e->index), U(e->term),
		   e->type == RAFT_ENTRY_CONF ? "conf" : e->type == RAFT_ENTRY_NOOP ? "noop" : "normal");
		if (e->type == RAFT_ENTRY_CONF)
		{
			int			rc = raft_conf_decode(e->data, e->len, &scratch_conf);

			if (rc != 0)
				fail("n%llu: configuration entry %llu does not decode: %s",
					 U(n->id), U(e->index), raft_strerror(rc));
			else
				conf_applied(n, &scratch_conf, e->index);
		}
		else if (e->type == RAFT_ENTRY_NORMAL)
			apply_normal(n, e);
		else if (e->type != RAFT_ENTRY_NOOP)
			fail("n%llu: entry %llu has unknown type %u", U(n->id), U(e->index),
				 e->type);
	}
}

/* read linearizability: an index granted must cover all that was committed */
static void
reads(node *n, const raft_ready *rd)
{
	for (size_t k = 0; k < rd->n_reads && !S.failed; k++)
	{
		const raft_read_state *rs = &rd->reads[k];
		readreq    *q;

		if (rs->ctx == 0 || rs->ctx > S.nreads)
		{
			fail("n%llu: read state for unknown ctx %llu", U(n->id), U(rs->ctx));
			return;
		}
		q = &S.reads[rs->ctx - 1];
		if (q->node != n->id)
		{
			fail("read %llu issued on n%llu is answered on n%llu", U(rs->ctx),
				 U(q->node), U(n->id));
			return;
		}
		TR("n%llu READ ctx%llu -> index %llu err %s (needed >= %llu)", U(n->id),
		   U(rs->ctx), U(rs->index), rs->err ? raft_strerror(rs->err) : "0",
		   U(q->need));
		if (q->done)
			S.st.reads_dup++;
		q->done = true;
		if (rs->err == 0)
		{
			if (rs->index < q->need)
			{
				fail("read linearizability: read %llu on n%llu granted index %llu, "
					 "but %llu was committed when it was issued", U(rs->ctx),
					 U(n->id), U(rs->index), U(q->need));
				return;
			}
			S.st.reads_ok++;
		}
		else
			S.st.reads_failed++;
	}
}

static void
want_snapshot(node *n, const raft_ready *rd)
{
	fetch	   *f;

	if (!rd->wanted)
	{
		fail("n%llu: Ready has snapshot_wanted but no wanted meta", U(n->id));
		return;
	}
	S.st.snap_wanted++;
	TR("n%llu SNAPSHOT WANTED i%llu t%llu from n%llu", U(n->id),
	   U(rd->wanted->index), U(rd->wanted->term), U(rd->wanted_from));
	/* one fetch at a time per node; a newer offer replaces an older one */
	for (size_t k = 0; k < S.nfetch; k++)
	{
		f = S.fetches[k];
		if (f->slot == (int) (n->id - 1) && f->incarnation == n->incarnation)
		{
			if (rd->wanted->index > f->meta.index)
			{
				meta_copy(&f->meta, rd->wanted);
				f->from = rd->wanted_from;
			}
			return;
		}
	}
	f = xmalloc(sizeof(fetch));
	f->at = S.now + rnd_range(1, 60);
	f->slot = (int) (n->id - 1);
	f->incarnation = n->incarnation;
	f->from = rd->wanted_from;
	f->tries = 0;
	meta_copy(&f->meta, rd->wanted);
	if (S.nfetch == S.capfetch)
	{
		S.capfetch = S.capfetch ? 2 * S.capfetch : 8;
		S.fetches = xrealloc(S.fetches, S.capfetch * sizeof(fetch *));
	}
	S.fetches[S.nfetch++] = f;
}

static void
node_cycle(node *n)
{
	int			guard = 0;

	n->dirty = false;
	while (!S.failed && n->state == NODE_UP && raft_has_ready(n->r))
	{
		raft_ready	rd;
		raft_status st;
		int			rc;
		bool		oomed;
		bool		early;

		if (++guard > 1000)
		{
			fail("n%llu: raft_has_ready() stays true after 1000 cycles", U(n->id));
			return;
		}
		memset(&rd, 0, sizeof rd);
		oom_arm();
		rc = raft_get_ready(n->r, &rd);
		oomed = oom_disarm();
		if (rc == RAFT_ENOMEM && oomed)
		{
			node_rebuild(n, "raft_get_ready");
			return;
		}
		if (rc != 0)
		{
			fail("n%llu: raft_get_ready: %s", U(n->id), raft_strerror(rc));
			return;
		}
		/*
		 * Persist before sending (§5.1), then send, apply, reads; but a
		 * leader sends its appends and heartbeats first (dissertation
		 * §10.2.1), and sometimes dies before its disk has them.
		 */
		raft_get_status(n->r, &st);
		early = st.role == RAFT_LEADER;
		for (size_t k = 0; early && k < rd.n_msgs && !S.failed; k++)
			if (raft_msg_may_precede_persist(&rd.msgs[k]))
				net_send(n, &rd.msgs[k]);
		if (early && rd.n_entries && !S.healed &&
			rnd(100) < S.mix->kill_commit_pct)
		{
			TR("n%llu dies after sending appends, before persisting them", U(n->id));
			node_crash(n, rnd_range(20, 400));
			return;
		}
		persist(n, &rd);
		for (size_t k = 0; k < rd.n_msgs && !S.failed; k++)
			if (!early || !raft_msg_may_precede_persist(&rd.msgs[k]))
				net_send(n, &rd.msgs[k]);
		if (!S.failed)
			apply(n, &rd);
		if (!S.failed)
			reads(n, &rd);
		if (!S.failed && rd.snapshot_wanted)
			want_snapshot(n, &rd);
		raft_advance(n->r, &rd);
		observe(n);
		if (S.failed)
			return;
		raft_get_status(n->r, &st);
		if (st.applied != n->sm.applied)
			fail("n%llu: after raft_advance the core says applied %llu, the "
				 "driver applied %llu", U(n->id), U(st.applied), U(n->sm.applied));
		/* report it; a leader never believes a member applied more */
		raft_set_applied(n->r, n->sm.applied);
		for (int k = 0; k < S.n_nodes && st.role == RAFT_LEADER && !S.failed; k++)
		{
			raft_progress pr;

			if (raft_get_progress(n->r, S.nodes[k].id, &pr) == RAFT_OK &&
				pr.applied > S.nodes[k].sm.applied)
				fail("n%llu: leader says n%llu applied %llu, it applied %llu",
					 U(n->id), U(S.nodes[k].id), U(pr.applied),
					 U(S.nodes[k].sm.applied));
		}
	}
	if (n->crash_now && n->state == NODE_UP && !S.failed)
	{
		/* commit advanced in raft_advance(): die before telling anyone */
		n->crash_now = false;
		node_crash(n, rnd_range(20, 400));
	}
}

static void
flush_dirty(void)
{
	for (int k = 0; k < S.n_nodes && !S.failed; k++)
		if (S.nodes[k].state == NODE_UP && S.nodes[k].dirty)
			node_cycle(&S.nodes[k]);
}

/* ---------------------------------------------------------------------
 * Events: delivery, ticks, snapshot fetches
 * --------------------------------------------------------------------- */

static void
deliver(packet *p)
{
	node	   *dst = &S.nodes[p->to];
	const char *reason = NULL;
	raft_msg	m;
	uint64_t	cid = 0;
	int			rc;
	bool		oomed;

	if (dst->state != NODE_UP)
		reason = dst->state == NODE_GONE ? "gone" : "down";
	else if (S.cut[p->from][p->to])
		reason = "partition";
	if (reason)
	{
		TR("n%d DROP (%s) %s %d->%d t%llu i%llu", p->to + 1, reason,
		   msg_name(p->type), p->from + 1, p->to + 1, U(p->term), U(p->index));
		S.st.dropped++;
		free_poisoned(p->buf, p->len);
		return;
	}
	memset(&m, 0, sizeof m);
	rc = raft_msg_decode(p->buf, p->len, &cid, &m, &sim_alloc);
	if (rc != 0)
	{
		fail("codec: a message we encoded does not decode: %s", raft_strerror(rc));
		free_poisoned(p->buf, p->len);
		return;
	}
	if (cid != S.cluster_id || m.to != dst->id)
	{
		/* the driver's own check: not for this cluster or this node */
		fail("codec: message decodes with cluster id %llx (want %llx), to %llu "
			 "(delivered to n%llu)", U(cid), U(S.cluster_id), U(m.to), U(dst->id));
		raft_msg_free(&m, &sim_alloc);
		free_poisoned(p->buf, p->len);
		return;
	}
	if (TRACING())
	{
		char		desc[160];

		msg_desc(desc, sizeof desc, &m);
		TR("n%llu RECV %s", U(dst->id), desc);
	}
	drive(dst);
	if (S.failed || dst->state != NODE_UP)
	{
		raft_msg_free(&m, &sim_alloc);
		free_poisoned(p->buf, p->len);
		return;
	}
	S.st.delivered++;
	oom_arm();
	rc = raft_step(dst->r, &m);
	oomed = oom_disarm();
	raft_msg_free(&m, &sim_alloc);
	free_poisoned(p->buf, p->len);
	if (rc == RAFT_ENOMEM && oomed)
	{
		node_rebuild(dst, "raft_step");
		return;
	}
	if (rc != 0)
	{
		S.st.step_err++;
		TR("n%llu raft_step: %s", U(dst->id), raft_strerror(rc));
	}
	else if (oomed)
		TR("n%llu raft_step: an allocation failed but it returned 0", U(dst->id));
	after_event(dst);
}

/* Fetch the content of a wanted snapshot from a peer and install it. */
static bool
fetch_fire(fetch *f)
{
	node	   *n = &S.nodes[f->slot];
	raft_index	idx = f->meta.index;
	node	   *src = NULL;
	uint64_t	h = 0;
	raft_status st;
	int			rc;

	if (n->state != NODE_UP || n->incarnation != f->incarnation)
		return true;			/* crashed meanwhile: the leader will offer again */
	/*
	 * raft_snapshot_installed() returns RAFT_OK without installing when the
	 * node has meanwhile committed that far, so a driver must not replace
	 * its state machine then: check first (nothing runs in between).
	 */
	drive(n);
	raft_get_status(n->r, &st);
	if (n->sm.applied >= idx || st.commit >= idx)
	{
		TR("n%llu FETCH i%llu: stale (applied %llu, commit %llu)", U(n->id),
		   U(idx), U(n->sm.applied), U(st.commit));
		return true;
	}
	if (rnd(100) < 15)
	{
		S.st.snap_fail++;
		if (++f->tries <= 3)
		{
			f->at = S.now + rnd_range(5, 80);
			TR("n%llu FETCH i%llu failed, retry at %llu", U(n->id), U(idx), U(f->at));
			return false;
		}
		TR("n%llu FETCH i%llu failed, given up", U(n->id), U(idx));
		return true;
	}
	/* prefer the node that offered it, else any live node that has it */
	{
		node	   *cand = node_by_id(f->from);
		int			start = (int) rnd((uint64_t) S.n_nodes);

		if (cand && cand != n && cand->state == NODE_UP && sm_hash_at(&cand->sm, idx, &h))
			src = cand;
		for (int k = 0; k < S.n_nodes && !src; k++)
		{
			cand = &S.nodes[(start + k) % S.n_nodes];
			if (cand != n && cand->state == NODE_UP && sm_hash_at(&cand->sm, idx, &h))
				src = cand;
		}
	}
	if (!src)
	{
		S.st.snap_nosrc++;
		TR("n%llu FETCH i%llu: no live node has it", U(n->id), U(idx));
		return true;
	}
	if (idx < S.cap_idx && S.cterm[idx] && S.cterm[idx] != f->meta.term)
	{
		fail("n%llu: snapshot wanted at %llu with term %llu, term %llu is "
			 "committed there", U(n->id), U(idx), U(f->meta.term), U(S.cterm[idx]));
		return true;
	}
	rc = raft_snapshot_installed(n->r, &f->meta);
	TR("n%llu FETCH i%llu t%llu from n%llu: raft_snapshot_installed %s", U(n->id),
	   U(idx), U(f->meta.term), U(src->id), rc ? raft_strerror(rc) : "ok");
	if (rc != 0)
	{
		S.st.snap_fail++;
		observe(n);
		return true;
	}
	raft_get_status(n->r, &st);
	if (st.applied != idx || st.snapshot_index != idx || st.commit != idx)
	{
		fail("n%llu: after raft_snapshot_installed(%llu) applied %llu, snapshot "
			 "%llu, commit %llu", U(n->id), U(idx), U(st.applied),
			 U(st.snapshot_index), U(st.commit));
		return true;
	}
	S.st.snap_installed++;
	sm_reset(&n->sm, idx, h);
	conf_applied(n, &f->meta.conf, idx);
	/* the new state machine is durable now: persist the snapshot with it */
	observe(n);
	if (!S.failed)
		node_cycle(n);
	return true;
}

static void
run_fetches(void)
{
	for (size_t k = 0; k < S.nfetch && !S.failed;)
	{
		fetch	   *f = S.fetches[k];

		if (f->at <= S.now && fetch_fire(f))
		{
			S.fetches[k] = S.fetches[--S.nfetch];
			free(f);
		}
		else
			k++;
	}
}

/* ---------------------------------------------------------------------
 * Client load
 * --------------------------------------------------------------------- */

static node *
random_up(void)
{
	int			c[MAX_NODES],
				k = 0;

	for (int i = 0; i < S.n_nodes; i++)
		if (S.nodes[i].state == NODE_UP)
			c[k++] = i;
	return k ? &S.nodes[c[rnd((uint64_t) k)]] : NULL;
}

/* the up node that believes it leads the highest term */
static node *
current_leader(void)
{
	node	   *best = NULL;

	for (int i = 0; i < S.n_nodes; i++)
	{
		node	   *n = &S.nodes[i];

		if (n->state == NODE_UP && n->role == RAFT_LEADER &&
			(!best || n->term > best->term))
			best = n;
	}
	return best;
}

/* any up node that believes it is leader (stale ones too) */
static node *
random_leader(void)
{
	int			c[MAX_NODES],
				k = 0;

	for (int i = 0; i < S.n_nodes; i++)
		if (S.nodes[i].state == NODE_UP && S.nodes[i].role == RAFT_LEADER)
			c[k++] = i;
	return k ? &S.nodes[c[rnd((uint64_t) k)]] : NULL;
}

static int
propose(node *n, raft_index *idx_out)
{
	uint8_t		buf[MAX_ENTRY_BYTES + 512];
	uint32_t	len;
	raft_index	idx = 0;
	raft_term	term = 0;
	raft_status st;
	uint64_t	id = S.nprops + 1;
	bool		oomed;
	int			rc;

	/* unique payload: proposal id, seed, then filler of a random size */
	len = 16 + (uint32_t) rnd(48);
	if (rnd(100) < S.mix->big_pct)
		len += (uint32_t) rnd(600);
	if (rnd(200) == 0)
		len = MAX_ENTRY_BYTES + 1 + (uint32_t) rnd(400);
	drive(n);
	put_le64(buf, id);
	put_le64(buf + 8, S.seed);
	for (uint32_t k = 16; k < len; k++)
		buf[k] = (uint8_t) (id * 31 + k);
	oom_arm();
	rc = raft_propose(n->r, RAFT_ENTRY_NORMAL, buf, len, &idx, &term);
	oomed = oom_disarm();
	/* the core must have copied the payload */
	memset(buf, 0x5A, len);
	S.st.proposals++;
	if (rc == RAFT_ENOMEM && oomed)
	{
		node_rebuild(n, "raft_propose");
		return rc;
	}
	if (rc != 0)
	{
		S.st.prop_err++;
		TR("n%llu PROPOSE %u bytes: %s", U(n->id), len, raft_strerror(rc));
		after_event(n);
		return rc;
	}
	if (len > MAX_ENTRY_BYTES)
	{
		fail("n%llu: raft_propose accepted %u bytes, max_entry_bytes is %u",
			 U(n->id), len, MAX_ENTRY_BYTES);
		return -1;
	}
	raft_get_status(n->r, &st);
	if (st.role != RAFT_LEADER || idx != st.last_index || term != st.term)
	{
		fail("n%llu: raft_propose succeeded with index %llu term %llu, but it is "
			 "%s with last index %llu, term %llu", U(n->id), U(idx), U(term),
			 raft_role_name(st.role), U(st.last_index), U(st.term));
		return -1;
	}
	if (S.nprops == S.capprops)
	{
		S.capprops = S.capprops ? 2 * S.capprops : 256;
		S.props = xrealloc(S.props, S.capprops * sizeof(proposal));
	}
	memset(&S.props[S.nprops], 0, sizeof(proposal));
	S.props[S.nprops].node = n->id;
	S.props[S.nprops].index = idx;
	S.props[S.nprops].term = term;
	S.nprops++;
	TR("n%llu PROPOSE %llu (%u bytes) -> index %llu term %llu", U(n->id), U(id),
	   len, U(idx), U(term));
	if (idx_out)
		*idx_out = idx;
	after_event(n);
	return 0;
}

static void
read_request(node *n)
{
	uint64_t	ctx = S.nreads + 1;
	int			rc;

	if (S.nreads == S.capreads)
	{
		S.capreads = S.capreads ? 2 * S.capreads : 256;
		S.reads = xrealloc(S.reads, S.capreads * sizeof(readreq));
	}
	drive(n);
	S.reads[S.nreads].node = n->id;
	S.reads[S.nreads].need = S.max_commit;
	S.reads[S.nreads].done = false;
	S.nreads++;
	S.st.reads++;
	rc = raft_read_index(n->r, ctx);
	TR("n%llu READ_INDEX ctx%llu (committed %llu): %s", U(n->id), U(ctx),
	   U(S.max_commit), rc ? raft_strerror(rc) : "pending");
	if (rc != 0)
	{
		S.st.read_err++;
		S.reads[S.nreads - 1].done = true;
	}
	after_event(n);
}

static void
client_action(void)
{
	uint64_t	k = rnd(100);
	node	   *n;

	if (k < 65)
	{
		n = random_leader();
		if (n)
			propose(n, NULL);
	}
	else if (k < 75)
	{
		n = random_up();
		if (n)
			propose(n, NULL);
	}
	else
	{
		n = random_up();
		if (n)
			read_request(n);
	}
}

/* compaction: snapshot the state machine up to (nearly) what is applied */
static void
compact_action(void)
{
	node	   *n = random_up();
	raft_status st;
	raft_index	tail,
				idx;
	int			rc;

	if (!n)
		return;
	drive(n);
	raft_get_status(n->r, &st);
	tail = rnd(S.compact_tail + 1);
	if (n->sm.applied <= tail)
		return;
	idx = n->sm.applied - tail;
	if (idx <= st.snapshot_index)
		return;
	rc = raft_compact(n->r, idx);
	S.st.compactions++;
	TR("n%llu COMPACT up to %llu (applied %llu): %s", U(n->id), U(idx),
	   U(n->sm.applied), rc ? raft_strerror(rc) : "ok");
	after_event(n);
}

/* ---------------------------------------------------------------------
 * Faults
 * --------------------------------------------------------------------- */

static void
trace_cuts(const char *what)
{
	char		buf[TRACE_WIDTH];
	int			off = 0;

	if (!TRACING())
		return;
	buf[0] = 0;
	for (int i = 0; i < S.n_nodes && off < (int) sizeof buf - 16; i++)
		for (int j = 0; j < S.n_nodes && off < (int) sizeof buf - 16; j++)
			if (S.cut[i][j])
				off += snprintf(buf + off, sizeof buf - off, " %d>%d", i + 1, j + 1);
	TR("FAULT %s: cut%s", what, off ? buf : " nothing");
}

static void
fault_partition(void)
{
	node	   *x = current_leader();

	if (!x || rnd(3) == 0)
		x = random_up();
	memset(S.cut, 0, sizeof S.cut);
	S.st.partitions++;
	switch (rnd(7))
	{
		case 0:
		case 1:
			TR("FAULT partitions healed");
			return;
		case 2:
		case 3:
			{
				bool		side[MAX_NODES];

				for (int i = 0; i < MAX_NODES; i++)
					side[i] = rnd(2);
				for (int i = 0; i < MAX_NODES; i++)
					for (int j = 0; j < MAX_NODES; j++)
						S.cut[i][j] = side[i] != side[j];
				trace_cuts("symmetric partition");
				return;
			}
		case 4:
			if (x)
				for (int j = 0; j < MAX_NODES; j++)
					S.cut[x->id - 1][j] = S.cut[j][x->id - 1] = true;
			trace_cuts("isolate");
			return;
		case 5:
			for (int i = 0; i < MAX_NODES; i++)
				for (int j = 0; j < MAX_NODES; j++)
					S.cut[i][j] = rnd(4) == 0;
			trace_cuts("asymmetric random links");
			return;
		default:
			if (x)
			{
				bool		deaf = rnd(2);

				for (int j = 0; j < MAX_NODES; j++)
				{
					if (deaf)
						S.cut[j][x->id - 1] = true;
					else
						S.cut[x->id - 1][j] = true;
				}
			}
			trace_cuts("one-way isolation");
			return;
	}
}

static void
fault_crash(void)
{
	node	   *n = current_leader();

	if (!n || rnd(10) >= 3)
		n = random_up();
	if (!n)
		return;
	/* usually a short outage, sometimes a long one, sometimes immediate */
	node_crash(n, rnd(5) == 0 ? rnd_range(500, 1500) : rnd_range(0, 300));
	if (rnd(5) == 0)
	{
		n = random_up();
		if (n)
			node_crash(n, rnd_range(0, 600));
	}
}

static int
conf_voter_count(const raft_conf *c)
{
	int			v = 0;

	for (uint32_t i = 0; i < c->n; i++)
		v += c->members[i].voter;
	return v;
}

static void
fault_membership(void)
{
	node	   *l = current_leader();
	const raft_conf *c;
	raft_index	idx = 0;
	raft_status ls;
	int			rc = 0;
	uint64_t	k = rnd(10);

	if (!l)
		return;
	drive(l);
	c = raft_get_conf(l->r);
	raft_get_status(l->r, &ls);
	if (k < 4)
	{
		/* add a learner with a fresh id; its node starts empty */
		raft_id		id = (raft_id) S.n_nodes + 1;
		char		addr[32];
		int			alen;

		if (S.n_nodes >= MAX_NODES || (int) c->n >= S.n_boot + 3)
			return;
		alen = snprintf(addr, sizeof addr, "sim://n%llu", U(id));
		rc = raft_add_learner(l->r, id, addr, (uint16_t) alen, &idx);
		TR("n%llu ADD LEARNER n%llu: %s (index %llu)", U(l->id), U(id),
		   rc ? raft_strerror(rc) : "ok", U(idx));
		if (rc == 0)
		{
			node	   *n = &S.nodes[S.n_nodes++];

			memset(n, 0, sizeof *n);
			n->id = id;
			n->clock_off = rnd_range(1000, 1000000);
			sm_reset(&n->sm, 0, 0);
			node_start(n, false);
		}
	}
	else if (k < 7)
	{
		/* promote a learner once it has caught up */
		for (uint32_t i = 0; i < c->n; i++)
		{
			raft_progress pr;

			if (c->members[i].voter || conf_voter_count(c) >= S.n_boot + 2)
				continue;
			if (raft_get_progress(l->r, c->members[i].id, &pr) != 0 ||
				pr.match + 3 < ls.last_index)
				continue;
			{
				raft_id		id = c->members[i].id;	/* c changes in the call */

				rc = raft_promote(l->r, id, &idx);
				TR("n%llu PROMOTE n%llu (match %llu): %s (index %llu)", U(l->id),
				   U(id), U(pr.match), rc ? raft_strerror(rc) : "ok", U(idx));
			}
			break;
		}
	}
	else
	{
		/* remove a random member, the leader included, keeping one voter */
		raft_id		id;
		bool		voter;

		if (c->n == 0)
			return;
		/* copy: the call replaces the configuration c points into */
		id = c->members[rnd(c->n)].id;
		voter = raft_conf_find(c, id)->voter;
		if (voter && conf_voter_count(c) <= 1)
			return;
		rc = raft_remove(l->r, id, &idx);
		TR("n%llu REMOVE n%llu (%s): %s (index %llu)", U(l->id), U(id),
		   voter ? "voter" : "learner", rc ? raft_strerror(rc) : "ok", U(idx));
	}
	if (rc == 0)
		S.st.conf_ok++;
	else
		S.st.conf_err++;
	after_event(l);
}

static void
fault_transfer(void)
{
	node	   *l = current_leader();
	const raft_conf *c;
	raft_id		to;
	int			rc;

	if (!l)
		return;
	drive(l);
	c = raft_get_conf(l->r);
	if (c->n == 0)
		return;
	to = c->members[rnd(c->n)].id;
	if (rnd(10) == 0)
		to = rnd_range(1, MAX_NODES);
	rc = raft_transfer_leader(l->r, to);
	TR("n%llu TRANSFER LEADERSHIP to n%llu: %s", U(l->id), U(to),
	   rc ? raft_strerror(rc) : "ok");
	if (rc == 0)
		S.st.transfer_ok++;
	else
		S.st.transfer_err++;
	after_event(l);
}

static void
fault_action(void)
{
	const mixdef *m = S.mix;
	uint64_t	total = m->w_part + m->w_crash + m->w_member + m->w_transfer;
	uint64_t	k;

	if (!total)
		return;
	k = rnd(total);
	if (k < m->w_part)
		fault_partition();
	else if ((k -= m->w_part) < m->w_crash)
		fault_crash();
	else if ((k -= m->w_crash) < m->w_member)
		fault_membership();
	else
		fault_transfer();
}

/* change the loss and duplication rates from time to time */
static void
net_change(void)
{
	S.drop_pm = (uint32_t) rnd(S.mix->drop_pm + 1);
	S.dup_pm = (uint32_t) rnd(S.mix->dup_pm + 1);
	TR("FAULT network: drop %u/1000, duplicate %u/1000", S.drop_pm, S.dup_pm);
}

/* end of the fault phase: reconnect, stop losing, restart the crashed */
static void
heal(void)
{
	S.healed = true;
	memset(S.cut, 0, sizeof S.cut);
	S.drop_pm = S.dup_pm = S.spike_pm = 0;
	S.delay_max = 5;
	for (int k = 0; k < S.n_nodes; k++)
		if (S.nodes[k].state == NODE_DOWN)
			S.nodes[k].restart_at = S.now;
	TR("HEAL: network repaired, crashed nodes restart, no more faults");
}

/* ---------------------------------------------------------------------
 * Liveness after heal
 * --------------------------------------------------------------------- */

static void
why(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
why(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(S.why, sizeof S.why, fmt, ap);
	va_end(ap);
}

/*
 * Called after every event once healed: true when a leader is followed by
 * every member of its (committed) configuration, a fresh proposal of its
 * term is applied everywhere and all commit indexes agree.
 */
static bool
live_check(void)
{
	node	   *l = current_leader();
	const raft_conf *c;
	raft_status ls;

	if (!l)
	{
		why("no leader");
		return false;
	}
	raft_get_status(l->r, &ls);
	c = raft_get_conf(l->r);
	for (uint32_t i = 0; i < c->n; i++)
	{
		node	   *m = node_by_id(c->members[i].id);

		if (!m || m->state != NODE_UP)
		{
			why("member n%llu of leader n%llu's configuration is %s",
				U(c->members[i].id), U(l->id), !m ? "unknown" :
				m->state == NODE_GONE ? "gone" : "down");
			return false;
		}
		if (m->lead != l->id || m->term != l->term)
		{
			why("n%llu (term %llu, %s) does not follow leader n%llu of term %llu",
				U(m->id), U(m->term), raft_role_name(m->role), U(l->id), U(l->term));
			return false;
		}
	}
	if (ls.commit < ls.conf_index)
	{
		why("leader n%llu has not committed its configuration %llu (commit %llu)",
			U(l->id), U(ls.conf_index), U(ls.commit));
		return false;
	}
	/* nodes outside a committed configuration are stopped by their drivers */
	for (int k = 0; k < S.n_nodes; k++)
	{
		node	   *n = &S.nodes[k];

		if ((n->state == NODE_UP || n->state == NODE_DOWN) && !raft_conf_find(c, n->id))
		{
			TR("n%llu STOP: not in the committed configuration of n%llu",
			   U(n->id), U(l->id));
			node_leave(n);
		}
	}
	if (l->state != NODE_UP)
	{
		/* a removed leader that had committed its own removal */
		why("leader n%llu was not in its own configuration", U(l->id));
		return false;
	}
	if (S.fresh_leader != l->id || S.fresh_term != l->term)
	{
		raft_index	idx;

		if (propose(l, &idx) == 0)
		{
			S.fresh_leader = l->id;
			S.fresh_term = l->term;
			S.fresh_index = idx;
		}
		why("fresh proposal just made");
		return false;
	}
	if (ls.commit < S.fresh_index)
	{
		why("leader n%llu has not committed the fresh proposal %llu (commit %llu)",
			U(l->id), U(S.fresh_index), U(ls.commit));
		return false;
	}
	if (ls.commit != ls.last_index)
	{
		why("leader n%llu: commit %llu, last index %llu", U(l->id), U(ls.commit),
			U(ls.last_index));
		return false;
	}
	for (uint32_t i = 0; i < c->n; i++)
	{
		node	   *m = node_by_id(c->members[i].id);

		if (m->sm.applied < S.fresh_index || m->commit != ls.commit)
		{
			why("n%llu applied %llu, commit %llu; leader n%llu commit %llu, fresh "
				"proposal at %llu", U(m->id), U(m->sm.applied), U(m->commit),
				U(l->id), U(ls.commit), U(S.fresh_index));
			return false;
		}
	}
	return true;
}

static void
dump_nodes(void)
{
	for (int k = 0; k < S.n_nodes; k++)
	{
		node	   *n = &S.nodes[k];
		raft_status st;

		if (n->state != NODE_UP)
		{
			TR("  n%llu: %s", U(n->id), n->state == NODE_DOWN ? "down" : "gone");
			continue;
		}
		raft_get_status(n->r, &st);
		{
			const raft_conf *c = raft_get_conf(n->r);
			char		members[128];
			int			off = 0;

			members[0] = 0;
			for (uint32_t i = 0; i < c->n && off < (int) sizeof members - 8; i++)
				off += snprintf(members + off, sizeof members - off, "%s%llu%s",
								i ? "," : "", U(c->members[i].id),
								c->members[i].voter ? "" : "L");
			TR("  n%llu: %s term %llu vote %llu lead %llu commit %llu applied %llu "
			   "log (%llu, %llu] last term %llu, conf@%llu {%s}%s", U(n->id),
			   raft_role_name(st.role), U(st.term), U(st.vote), U(st.lead),
			   U(st.commit), U(st.applied), U(st.snapshot_index),
			   U(st.last_index), U(st.last_term), U(st.conf_index), members,
			   st.transferee ? " transferring" : "");
		}
	}
}

/* ---------------------------------------------------------------------
 * One seed
 * --------------------------------------------------------------------- */

static uint64_t
next_time(void)
{
	uint64_t	t = UINT64_MAX;

#define MIN_T(x) do { uint64_t _x = (x); if (_x < t) t = _x; } while (0)
	if (S.nheap)
		MIN_T(S.heap[0].at);
	for (int k = 0; k < S.n_nodes; k++)
	{
		node	   *n = &S.nodes[k];

		if (n->state == NODE_UP)
			MIN_T(n->wake_at);
		if (n->state == NODE_DOWN)
			MIN_T(n->restart_at);
		if (n->leave_at && (n->state == NODE_UP || n->state == NODE_DOWN))
			MIN_T(n->leave_at);
		if (n->crash_at)
			MIN_T(n->crash_at);
	}
	for (size_t k = 0; k < S.nfetch; k++)
		MIN_T(S.fetches[k]->at);
	MIN_T(S.next_compact);
	MIN_T(S.next_scan);
	if (!S.healed)
	{
		MIN_T(S.t_heal);
		MIN_T(S.next_client);
		if (S.mix->fault_ms)
			MIN_T(S.next_fault);
		MIN_T(S.next_net);
	}
#undef MIN_T
	return t < S.now ? S.now : t;
}

static void
seed_setup(uint64_t seed, int force_nodes, const mixdef *force_mix)
{
	static const int sizes[] = {3, 5, 7};
	static const uint32_t inflight[] = {1, 2, 4, 16, 256};
	static const uint32_t msgbytes[] = {64, 256, 1024, 65536};
	static const raft_index tails[] = {0, 2, 10, 50, 200};

	memset(&S, 0, sizeof S);
	memset(&A, 0, sizeof A);
	S.seed = seed;
	rng_seed(&S.rng, seed);
	/* draw everything even when overridden, so the rest stays the same */
	S.n_boot = sizes[rnd(3)];
	S.mix = &mixes[rnd(N_MIXES)];
	/* Figure 8 interleavings are likelier with few nodes */
	if (S.mix->kill_leader_pct >= 40 && rnd(10) < 7)
		S.n_boot = 3;
	if (force_nodes)
		S.n_boot = force_nodes;
	if (force_mix)
		S.mix = force_mix;
	S.cluster_id = rng_next(&S.rng);
	S.pre_vote = rnd(10) < 7;
	S.check_quorum = rnd(2);
	S.max_inflight = inflight[rnd(5)];
	S.max_msg_bytes = msgbytes[rnd(4)];
	if (S.mix->big_pct >= 40 && rnd(2))
		S.max_msg_bytes = 64;	/* one big entry per message */
	S.immediate_pct = (uint32_t) rnd(101);
	S.compact_tail = tails[rnd(5)];
	S.delay_max = S.mix->delay_max;
	S.spike_pm = S.mix->spike_pm;
	S.drop_pm = (uint32_t) rnd(S.mix->drop_pm + 1);
	S.dup_pm = (uint32_t) rnd(S.mix->dup_pm + 1);
	S.now = 0;
	S.t_heal = rnd_range(1500, 4000);
	S.t_end = S.t_heal + LIVENESS_MS;
	S.next_client = rnd_range(1, 30);
	S.next_fault = S.mix->fault_ms ? rnd_range(50, 2 * S.mix->fault_ms) : UINT64_MAX;
	S.next_net = rnd_range(200, 1000);
	S.next_compact = rnd_range(50, 300);
	S.next_scan = 100;

	boot_conf.n = (uint32_t) S.n_boot;
	for (int i = 0; i < S.n_boot; i++)
	{
		raft_member *m = &boot_conf.members[i];

		memset(m, 0, offsetof(raft_member, addr));
		m->id = (raft_id) i + 1;
		m->voter = true;
		m->addr_len = (uint16_t) snprintf(m->addr, sizeof m->addr, "sim://n%d", i + 1);
	}
	TR("SEED %llu: %d nodes, mix %s, pre_vote %d, check_quorum %d, inflight %u, "
	   "msg bytes %u, heal at %llu", U(seed), S.n_boot, S.mix->name, S.pre_vote,
	   S.check_quorum, S.max_inflight, S.max_msg_bytes, U(S.t_heal));
	S.n_nodes = S.n_boot;
	for (int i = 0; i < S.n_boot; i++)
	{
		node	   *n = &S.nodes[i];

		n->id = (raft_id) i + 1;
		n->clock_off = rnd_range(1000, 1000000);
		n->was_member = true;
		sm_reset(&n->sm, 0, 0);
	}
	for (int i = 0; i < S.n_boot && !S.failed; i++)
		node_start(&S.nodes[i], true);
}

/*
 * Check-quorum (dissertation §6.2): a leader that cannot exchange messages
 * with a quorum steps down within an election timeout or two.  Checked
 * where the voters are known to be the boot nodes (no membership changes)
 * and every link is either up or cut both ways for the whole wait: a
 * leader cut off from a quorum for five election timeouts still leading
 * fails the seed.  (Without check-quorum a deposed minority leader would
 * keep serving as if it led, until a higher term reaches it.)
 */
static void
check_check_quorum(void)
{
	if (!S.check_quorum || S.mix->w_member != 0 || S.n_nodes != S.n_boot)
		return;
	for (int i = 0; i < S.n_nodes && !S.failed; i++)
	{
		node	   *n = &S.nodes[i];
		int			reach = 1;

		if (n->state != NODE_UP || n->role != RAFT_LEADER)
		{
			n->cutoff_since = 0;
			continue;
		}
		for (int j = 0; j < S.n_nodes; j++)
			if (j != i && S.nodes[j].state == NODE_UP && !S.cut[i][j] && !S.cut[j][i])
				reach++;
		if (reach >= S.n_boot / 2 + 1)
			n->cutoff_since = 0;
		else if (n->cutoff_since == 0)
			n->cutoff_since = S.now;
		else if (S.now - n->cutoff_since > 5 * ELECTION_MS)
			fail("check-quorum: n%llu still leads term %llu, cut off from a quorum since %llu ms",
				 U(n->id), U(n->term), U(n->cutoff_since));
	}
}

static void
seed_run(void)
{
	while (!S.failed)
	{
		uint64_t	t = next_time();

		if (t > S.t_end)
		{
			S.now = S.t_end;
			fail("liveness: %llu ms after heal: %s", U(S.t_end - S.t_heal), S.why);
			break;
		}
		S.now = t;
		if (!S.healed && S.now >= S.t_heal)
			heal();

		/* leaves and restarts */
		for (int k = 0; k < S.n_nodes && !S.failed; k++)
		{
			node	   *n = &S.nodes[k];

			if (n->leave_at && n->leave_at <= S.now &&
				(n->state == NODE_UP || n->state == NODE_DOWN))
				node_leave(n);
			else if (n->crash_at && n->crash_at <= S.now)
			{
				n->crash_at = 0;
				if (!S.healed)
					node_crash(n, rnd_range(20, 400));
			}
			else if (n->state == NODE_DOWN && n->restart_at <= S.now)
				node_start(n, false);
		}
		while (S.nheap && S.heap[0].at <= S.now && !S.failed)
		{
			packet		p = heap_pop();

			deliver(&p);
		}
		run_fetches();
		for (int k = 0; k < S.n_nodes && !S.failed; k++)
		{
			node	   *n = &S.nodes[k];

			if (n->state == NODE_UP && n->wake_at <= S.now)
			{
				n->ticked_at = S.now;
				(void) raft_tick(n->r, node_clock(n));
				after_event(n);
			}
		}
		if (!S.healed && !S.failed)
		{
			if (S.now >= S.next_client)
			{
				client_action();
				S.next_client = S.now + rnd_range(1, 40);
			}
			if (S.now >= S.next_fault && !S.failed)
			{
				fault_action();
				S.next_fault = S.now + rnd_range(1, 2 * S.mix->fault_ms);
			}
			if (S.now >= S.next_net && !S.failed)
			{
				net_change();
				S.next_net = S.now + rnd_range(200, 1000);
			}
		}
		if (S.now >= S.next_compact && !S.failed)
		{
			compact_action();
			S.next_compact = S.now + rnd_range(10, 200);
		}
		flush_dirty();
		check_check_quorum();
		if (S.now >= S.next_scan && !S.failed)
		{
			scan_all();
			S.next_scan = S.now + 100;
		}
		if (S.healed && !S.failed && live_check())
		{
			S.live_ok = true;
			break;
		}
	}
	if (!S.failed)
	{
		scan_all();
		for (size_t k = 0; k < S.nprops && !S.failed; k++)
		{
			proposal   *p = &S.props[k];

			if (p->acked && (p->index >= S.cap_idx || S.cterm[p->index] != p->term))
				fail("acknowledged proposal %llu (index %llu term %llu) is not "
					 "in the committed log", U(k + 1), U(p->index), U(p->term));
		}
	}
	if (S.failed)
		dump_nodes();
	TR("END: %s", S.failed ? "failed" : "ok");
}

/* free everything; the core's allocations must all be back */
static void
seed_cleanup(void)
{
	for (int k = 0; k < S.n_nodes; k++)
	{
		node	   *n = &S.nodes[k];

		if (n->r)
			raft_free(n->r);
		disk_free(&n->d);
		free(n->sm.h);
	}
	while (S.nheap)
	{
		packet		p = heap_pop();

		free(p.buf);
	}
	free(S.heap);
	for (size_t k = 0; k < S.nfetch; k++)
		free(S.fetches[k]);
	free(S.fetches);
	free(S.lead_of);
	free(S.cterm);
	free(S.cseen);
	free(S.ahash);
	free(S.lm);
	free(S.props);
	free(S.reads);
	if (A.live != 0)
		fail("memory: %lld blocks allocated by the core or codec are not freed",
			 (long long) A.live);
}

static void
stats_add(stats *t, const stats *s)
{
	const uint64_t *a = (const uint64_t *) s;
	uint64_t   *b = (uint64_t *) t;

	for (size_t k = 0; k < sizeof(stats) / sizeof(uint64_t); k++)
	{
		if (&b[k] == &t->max_term)
			b[k] = b[k] > a[k] ? b[k] : a[k];
		else
			b[k] += a[k];
	}
}

/*
 * A crash (or a hang) in the core must not end a run of thousands of seeds:
 * fatal signals jump back to run_seed(), which reports the seed as failed
 * and abandons its memory (the core's may be corrupt).  The watchdog uses
 * the wall clock only to stop a seed, never to decide anything in it.
 */
#define WATCHDOG_S 60

static sigjmp_buf seed_jmp;
static volatile sig_atomic_t in_seed;
static volatile sig_atomic_t caught_sig;

static void
on_fatal(int sig)
{
	if (!in_seed)
	{
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	in_seed = 0;
	caught_sig = sig;
	siglongjmp(seed_jmp, 1);
}

static void
install_handlers(void)
{
	static char altstack[1 << 16];
	stack_t		ss;
	struct sigaction sa;
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM};

	ss.ss_sp = altstack;
	ss.ss_size = sizeof altstack;
	ss.ss_flags = 0;
	sigaltstack(&ss, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
		sigaction(sigs[k], &sa, NULL);
}

/* run one seed; returns true if it passed */
static bool
run_seed(uint64_t seed, int force_nodes, const mixdef *force_mix)
{
	if (sigsetjmp(seed_jmp, 1) != 0)
	{
		int			sig = caught_sig;

		alarm(0);
		A.fail_in = 0;
		S.failed = false;		/* the crash is the failure to report */
		if (sig == SIGALRM)
			fail("hang: the seed ran for more than %d s of real time "
				 "(an endless loop in the core?)", WATCHDOG_S);
		else
			fail("crash: signal %d (%s) at virtual time %llu ms", sig,
				 strsignal(sig), U(S.now));
		S.st.seeds = 1;
		S.st.virt_ms = S.now;
		/* abandon the seed's memory: forget it, do not free it */
		memset(S.nodes, 0, sizeof S.nodes);
		S.heap = NULL;
		S.nheap = 0;
		return false;
	}
	in_seed = 1;
	alarm(WATCHDOG_S);
	seed_setup(seed, force_nodes, force_mix);
	if (!S.failed)
		seed_run();
	S.st.seeds = 1;
	S.st.virt_ms = S.now;
	seed_cleanup();
	alarm(0);
	in_seed = 0;
	return !S.failed;
}

/* ---------------------------------------------------------------------
 * main
 * --------------------------------------------------------------------- */

static void
usage(const char *argv0)
{
	fprintf(stderr,
			"usage: %s [--seeds N] [--start S] [--seed S] [--trace] [--nodes 3|5|7]\n"
			"          [--mix NAME] [--verbose]\n"
			"mixes:", argv0);
	for (int i = 0; i < N_MIXES; i++)
		fprintf(stderr, " %s", mixes[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	uint64_t	nseeds = 2000,
				start = 1;
	bool		single = false,
				verbose = false,
				trace = false;
	int			force_nodes = 0;
	const mixdef *force_mix = NULL;
	uint64_t	passed = 0,
				failed = 0;
	double		t0,
				dt;
	char		extra[128] = "";

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (!strcmp(a, "--seeds") && i + 1 < argc)
			nseeds = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(a, "--start") && i + 1 < argc)
			start = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(a, "--seed") && i + 1 < argc)
		{
			start = strtoull(argv[++i], NULL, 10);
			nseeds = 1;
			single = true;
		}
		else if (!strcmp(a, "--trace"))
			trace = true;
		else if (!strcmp(a, "--verbose"))
			verbose = true;
		else if (!strcmp(a, "--nodes") && i + 1 < argc)
		{
			force_nodes = atoi(argv[++i]);
			if (force_nodes < 1 || force_nodes > MAX_NODES - 3)
				usage(argv[0]);
		}
		else if (!strcmp(a, "--mix") && i + 1 < argc)
		{
			const char *name = argv[++i];

			for (int k = 0; k < N_MIXES; k++)
				if (!strcmp(mixes[k].name, name))
					force_mix = &mixes[k];
			if (!force_mix)
				usage(argv[0]);
		}
		else
			usage(argv[0]);
	}
	if (force_nodes)
		snprintf(extra, sizeof extra, " --nodes %d", force_nodes);
	if (force_mix)
		snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " --mix %s",
				 force_mix->name);

	install_handlers();
	t0 = wall_seconds();
	for (uint64_t seed = start; seed < start + nseeds; seed++)
	{
		bool		ok;
		char		msg[sizeof S.failmsg];
		uint64_t	at;
		int			nb;
		const char *mixname;

		T.live = trace;
		T.ring = false;
		ok = run_seed(seed, force_nodes, force_mix);
		stats_add(&totals, &S.st);
		if (verbose)
			printf("seed %llu: %s, %d nodes, mix %s, %llu ms, %llu msgs, %llu "
				   "leaders, max term %llu, %llu/%llu acked, %llu reads ok, "
				   "%llu snapshots, %llu crashes\n", U(seed), ok ? "ok" : "FAILED",
				   S.n_boot, S.mix->name, U(S.now), U(S.st.delivered),
				   U(S.st.leaders), U(S.st.max_term), U(S.st.acked),
				   U(S.st.proposals), U(S.st.reads_ok), U(S.st.snap_installed),
				   U(S.st.crashes));
		if (ok)
		{
			passed++;
			continue;
		}
		failed++;
		snprintf(msg, sizeof msg, "%s", S.failmsg);
		at = S.fail_at;
		nb = S.n_boot;
		mixname = S.mix->name;
		printf("FAIL seed %llu (%d nodes, mix %s) at %llu ms: %s\n", U(seed), nb,
			   mixname, U(at), msg);
		printf("  replay: %s --seed %llu%s --trace\n", argv[0], U(seed), extra);
		if (!trace)
		{
			/* replay with the trace ring to show how it came about */
			T.live = false;
			T.ring = true;
			T.n = 0;
			run_seed(seed, force_nodes, force_mix);
			T.ring = false;
			if (strcmp(msg, S.failmsg) != 0)
				printf("  (the replay did not reproduce this: \"%s\")\n",
					   S.failed ? S.failmsg : "passed");
			printf("  --- last %d trace lines ---\n",
				   (int) (T.n < TRACE_LINES ? T.n : TRACE_LINES));
			for (uint64_t k = T.n > TRACE_LINES ? T.n - TRACE_LINES : 0; k < T.n; k++)
				printf("  %s\n", T.line[k % TRACE_LINES]);
			printf("  --- end of trace of seed %llu ---\n", U(seed));
		}
		fflush(stdout);
	}
	dt = wall_seconds() - t0;
	if (!single || verbose)
		printf("totals: %llu virtual s, %llu msgs sent, %llu delivered, %llu dropped, "
			   "%llu duplicated; %llu leaders (max term %llu); %llu proposals, "
			   "%llu acked; %llu reads, %llu ok, %llu failed; %llu compactions, "
			   "%llu snapshots installed (%llu wanted); %llu crashes, %llu ENOMEM "
			   "rebuilds; %llu conf changes (%llu refused), %llu removed; %llu "
			   "transfers (%llu refused); %llu partitions\n",
			   U(totals.virt_ms / 1000), U(totals.sent), U(totals.delivered),
			   U(totals.dropped), U(totals.duplicated), U(totals.leaders),
			   U(totals.max_term), U(totals.proposals), U(totals.acked),
			   U(totals.reads), U(totals.reads_ok), U(totals.reads_failed + totals.read_err),
			   U(totals.compactions), U(totals.snap_installed), U(totals.snap_wanted),
			   U(totals.crashes), U(totals.ooms), U(totals.conf_ok),
			   U(totals.conf_err), U(totals.removed), U(totals.transfer_ok),
			   U(totals.transfer_err), U(totals.partitions));
	printf("rate: %.1f seeds/s (%llu seeds in %.2f s)\n",
		   dt > 0 ? (passed + failed) / dt : 0.0, U(passed + failed), dt);
	printf("%llu passed, %llu failed\n", U(passed), U(failed));
	return failed ? 1 : 0;
}
