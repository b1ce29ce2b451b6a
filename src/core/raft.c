/*
 * raft.c
 *	  The Raft state machine: roles and elections, the message handlers,
 *	  the driver's events (ticks, proposals, transfers, snapshots), the
 *	  Ready cycle, construction and observation.  The log (log.c),
 *	  configurations (conf.c), replication progress (progress.c), quorums
 *	  (quorum.c) and ReadIndex (read.c) are in files of their own, over the
 *	  state in raft_int.h.
 *
 * Everything here is a pure function of the events fed in (raft.h): no
 * clock, no I/O, no randomness but a PRNG seeded by the driver.  Section
 * references are to the extended Raft paper ("In Search of an
 * Understandable Consensus Algorithm", Ongaro & Ousterhout 2014) and to
 * Ongaro's dissertation ("Consensus: Bridging Theory and Practice", 2014).
 *
 * Outgoing messages are queued and handed out by raft_get_ready(); entries are
 * referenced by index until then (the log array may move when it grows), and
 * queued messages that carry entries are dropped if the log is truncated
 * under them.  Broadcasts caused by proposals and by read requests are
 * coalesced until raft_get_ready(), so that all proposals of one cycle share one
 * AppendEntries per follower and all reads of one cycle share one heartbeat
 * round (group commit, batched ReadIndex).
 */
#include "raft_int.h"

static void *
raft_default_alloc(void *ctx, size_t size)
{
	return malloc(size);
}

static void *
raft_default_realloc(void *ctx, void *ptr, size_t size)
{
	return realloc(ptr, size);
}

static void
raft_default_free(void *ctx, void *ptr)
{
	free(ptr);
}

static const raft_allocator raft_malloc_allocator = {
	raft_default_alloc, raft_default_realloc, raft_default_free, NULL
};

void *
ralloc(raft *r, size_t size)
{
	void	   *p = r->alloc.alloc(r->alloc.ctx, size ? size : 1);

	if (p == NULL)
		r->err = RAFT_ENOMEM;
	return p;
}

void
rfree(raft *r, void *p)
{
	if (p)
		r->alloc.free(r->alloc.ctx, p);
}

/* grow *arr (of elem-sized items) so it holds at least need; false on OOM */
bool
rgrow(raft *r, void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t		ncap;
	void	   *p;

	if (need <= *cap)
		return true;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	p = r->alloc.realloc(r->alloc.ctx, *arr, ncap * elem);
	if (p == NULL)
	{
		r->err = RAFT_ENOMEM;
		return false;
	}
	*arr = p;
	*cap = ncap;
	return true;
}

/* splitmix64: the core's only source of randomness, seeded by the driver */
static uint64_t
raft_rand(raft *r)
{
	uint64_t	z = (r->rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

const char *
raft_strerror(int err)
{
	switch (err)
	{
		case RAFT_OK:
			return "ok";
		case RAFT_ENOMEM:
			return "out of memory";
		case RAFT_ENOTLEADER:
			return "not the leader";
		case RAFT_ENOLEADER:
			return "no leader known";
		case RAFT_EBUSY:
			return "a configuration change or transfer is in progress";
		case RAFT_EINVAL:
			return "invalid argument";
		case RAFT_ETOOBIG:
			return "entry too large";
		case RAFT_EMALFORMED:
			return "malformed encoding";
		case RAFT_EVERSION:
			return "unknown encoding version";
		case RAFT_ELEADERLOST:
			return "leadership lost";
		case RAFT_ETRANSFER:
			return "leadership transfer in progress";
	}
	return "unknown error";
}

const char *
raft_role_name(raft_role role)
{
	switch (role)
	{
		case RAFT_FOLLOWER:
			return "follower";
		case RAFT_PRECANDIDATE:
			return "precandidate";
		case RAFT_CANDIDATE:
			return "candidate";
		case RAFT_LEADER:
			return "leader";
	}
	return "unknown";
}

void
raft_options_default(raft_options *opts, raft_id id)
{
	memset(opts, 0, sizeof(*opts));
	opts->id = id;
	opts->seed = id;
	opts->election_timeout = 1000;
	opts->heartbeat_interval = 100;
	opts->pre_vote = true;
	opts->check_quorum = true;
	opts->max_inflight = 256;
	opts->max_msg_bytes = 1024 * 1024;
	opts->max_entry_bytes = 64 * 1024 * 1024;
}

/*
 * Whether this node may stand for election.  A voter may.  So may a node
 * whose own removal is the latest, still uncommitted, configuration entry:
 * if it led and lost leadership before the change committed, the remaining
 * voters of the old configuration may need it to win (with two voters, the
 * other one cannot win alone and its log may be behind).  Its votes are
 * counted against the latest configuration, of which it collects a
 * majority without counting itself, so election safety holds; once leader
 * it commits the change and steps down (dissertation §4.2.2).  While a
 * leader is alive, voters ignore it (the lease in raft_step()).
 */
static bool
can_campaign(raft *r)
{
	bool		was_voter = false;

	if (self_is_voter(r))
		return true;
	if (r->conf_index <= r->commit || raft_conf_find(r->conf, r->id) != NULL)
		return false;
	/* the configuration before the latest one: in the log, or the snapshot */
	for (raft_index i = r->conf_index - 1; i > r->snap->index; i--)
	{
		raft_entry *e = log_entry(r, i);
		raft_conf  *prev;

		if (e->type != RAFT_ENTRY_CONF)
			continue;
		prev = ralloc(r, sizeof(raft_conf));
		if (prev == NULL)
			return false;
		if (raft_conf_decode(e->data, e->len, prev) == 0)
		{
			const raft_member *m = raft_conf_find(prev, r->id);

			was_voter = m != NULL && m->voter;
		}
		rfree(r, prev);
		return was_voter;
	}
	{
		const raft_member *m = raft_conf_find(&r->snap->conf, r->id);

		return m != NULL && m->voter;
	}
}

raft_msg *
queue_msg(raft *r, uint8_t type, raft_id to)
{
	raft_msg   *m;

	if (!rgrow(r, (void **) &r->msgs, &r->cap_msgs, r->n_msgs + 1,
			   sizeof(raft_msg)))
		return NULL;
	m = &r->msgs[r->n_msgs++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->id;
	m->to = to;
	m->term = r->term;
	r->stats.msgs_sent++;
	return m;
}

static void
reset_election_timer(raft *r)
{
	uint64_t	t = r->opts.election_timeout;

	r->election_deadline = r->now + t + raft_rand(r) % t;
	r->hastened = false;
}

static void
set_lead(raft *r, raft_id lead)
{
	if (lead != RAFT_NONE && lead != r->lead)
		r->stats.leader_changes++;
	r->lead = lead;
}

void
become_follower(raft *r, raft_term term, raft_id lead)
{
	RAFT_ASSERT(term >= r->term);	/* terms only rise (Figure 2) */
	if (r->role == RAFT_LEADER)
	{
		fail_pending_reads(r);
		r->led_until = r->now;
	}
	if (term != r->term)
	{
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->role = RAFT_FOLLOWER;
	set_lead(r, lead);
	r->transferee = RAFT_NONE;
	r->bcast_pending = false;
	r->round_pending = false;
	reset_election_timer(r);
}

static void
reset_votes(raft *r)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
	{
		r->peers[i].vote_responded = false;
		r->peers[i].vote_granted = false;
	}
}

static void become_leader(raft *r);
static void become_candidate(raft *r, bool transfer);

/*
 * Record a vote answer and act on the tally: a quorum of grants wins,
 * a quorum of rejections loses.  Only voters of the configuration in force
 * count: a learner's vote never does.
 */
static void
poll(raft *r, raft_id from, bool granted)
{
	raft_peer  *p = find_peer(r, from);
	int			yes = 0,
				no = 0,
				q = quorum(r);

	if (p == NULL || !p->voter)
		return;
	if (!p->vote_responded)
	{
		p->vote_responded = true;
		p->vote_granted = granted;
	}
	for (uint32_t i = 0; i < r->n_peers; i++)
	{
		if (!r->peers[i].voter || !r->peers[i].vote_responded)
			continue;
		if (r->peers[i].vote_granted)
			yes++;
		else
			no++;
	}
	if (yes >= q)
	{
		if (r->role == RAFT_PRECANDIDATE)
			become_candidate(r, false);
		else
			become_leader(r);
	}
	else if (no >= q)
		become_follower(r, r->term, RAFT_NONE);
}

static void
send_vote_requests(raft *r, uint8_t type, bool transfer)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
	{
		raft_peer  *p = &r->peers[i];
		raft_msg   *m;

		if (!p->voter || p->id == r->id)
			continue;
		m = queue_msg(r, type, p->id);
		if (m == NULL)
			return;
		if (type == RAFT_MSG_PREVOTE)
			m->term = r->term + 1;
		m->index = log_last_index(r);
		m->log_term = log_last_term(r);
		m->transfer = transfer;
	}
}

/* ask every voter for a vote of this type, and count our own */
static void
start_poll(raft *r, uint8_t type, bool transfer)
{
	r->lead = RAFT_NONE;
	reset_votes(r);
	reset_election_timer(r);
	send_vote_requests(r, type, transfer);
	poll(r, r->id, true);
}

/*
 * Pre-vote (dissertation §9.6): ask whether we could win before disturbing
 * anyone's term.  The term and vote stay as they are.
 */
static void
become_precandidate(raft *r)
{
	r->role = RAFT_PRECANDIDATE;
	r->stats.pre_elections++;
	start_poll(r, RAFT_MSG_PREVOTE, false);
}

/* §5.2: increment the term, vote for self, request votes */
static void
become_candidate(raft *r, bool transfer)
{
	r->role = RAFT_CANDIDATE;
	r->term++;
	r->vote = r->id;
	r->stats.elections++;
	start_poll(r, RAFT_MSG_VOTE, transfer);
}

static void
campaign(raft *r)
{
	if (!can_campaign(r))
		return;
	if (r->opts.pre_vote)
		become_precandidate(r);
	else
		become_candidate(r, false);
}

/*
 * §5.2/§8: a new leader resets every follower's progress and appends a
 * no-op, so that it can commit (and so learn the commit index) in its term.
 */
static void
become_leader(raft *r)
{
	r->role = RAFT_LEADER;
	set_lead(r, r->id);
	r->transferee = RAFT_NONE;
	for (uint32_t i = 0; i < r->n_peers; i++)
		peer_reset(r, &r->peers[i]);
	r->heartbeat_deadline = r->now + r->opts.heartbeat_interval;
	if (!log_append(r, r->term, RAFT_ENTRY_NOOP, NULL, 0))
		return;
	r->noop_index = log_last_index(r);
	r->bcast_pending = true;
}

static void
handle_vote_request(raft *r, const raft_msg *m)
{
	bool		prevote = m->type == RAFT_MSG_PREVOTE;
	raft_msg   *resp;
	bool		can_vote;
	bool		up_to_date;

	/*
	 * No filter on membership here: nodes may hold different uncommitted
	 * configurations, and ignoring candidates outside our own can leave
	 * every side ignoring the only candidate that could win.  Removed
	 * servers are kept from disrupting by the leader lease in raft_step()
	 * (dissertation §4.2.3) and by pre-vote.
	 */
	can_vote = r->vote == m->from ||
		(r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
		(prevote && m->term > r->term);
	/* §5.4.1: the candidate's log must be at least as up-to-date */
	up_to_date = m->log_term > log_last_term(r) ||
		(m->log_term == log_last_term(r) && m->index >= log_last_index(r));

	resp = queue_msg(r, prevote ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP,
					 m->from);
	if (resp == NULL)
		return;
	if (can_vote && up_to_date)
	{
		resp->term = m->term;
		if (!prevote)
		{
			r->vote = m->from;
			reset_election_timer(r);
		}
	}
	else
		resp->reject = true;
}

/* follower: the first index of the term of the entry at i, for back-off */
static raft_index
first_index_of_term(raft *r, raft_index i, raft_term t)
{
	bool		ok;

	while (i - 1 > r->commit && log_term(r, i - 1, &ok) == t && ok)
		i--;
	return i;
}

/* §5.3, the receiver side of AppendEntries */
static void
handle_append(raft *r, const raft_msg *m)
{
	raft_msg   *resp;
	raft_index	last_new;

	if (m->index < r->commit)
	{
		/* everything up to our commit index matches already */
		resp = queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
		if (resp)
			resp->index = r->commit;
		return;
	}
	for (uint32_t i = 0; i < m->n_entries; i++)
		if (m->entries[i].index != m->index + 1 + i)
			return;				/* not a contiguous batch: ignore it */
	if (!log_matches(r, m->index, m->log_term))
	{
		resp = queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
		if (resp == NULL)
			return;
		resp->reject = true;
		resp->index = m->index;
		if (m->index > log_last_index(r))
		{
			resp->hint_index = log_last_index(r) + 1;
			resp->hint_term = 0;
		}
		else
		{
			bool		ok;

			resp->hint_term = log_term(r, m->index, &ok);
			resp->hint_index = first_index_of_term(r, m->index, resp->hint_term);
		}
		return;
	}
	for (uint32_t i = 0; i < m->n_entries; i++)
	{
		const raft_entry *e = &m->entries[i];

		if (e->index <= log_last_index(r))
		{
			if (log_matches(r, e->index, e->term))
				continue;
			/* a conflict can only be above the commit index (§5.4) */
			if (e->index <= r->commit)
				return;
			log_truncate(r, e->index);
		}
		if (!log_append(r, e->term, e->type, e->data, e->len))
			return;
		note_conf_entry(r, &r->ents[r->n_ents - 1]);
	}
	last_new = m->index + m->n_entries;
	if (m->commit > r->commit)
	{
		raft_index	c = m->commit < last_new ? m->commit : last_new;

		if (c > r->commit)
			r->commit = c;
	}
	resp = queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
	if (resp)
		resp->index = last_new;
}

static void
handle_heartbeat(raft *r, const raft_msg *m)
{
	raft_msg   *resp;

	/* the leader bounds m->commit by what it knows we hold */
	if (m->commit > r->commit)
	{
		raft_index	c = m->commit < log_last_index(r) ? m->commit : log_last_index(r);

		if (c > r->commit)
			r->commit = c;
	}
	resp = queue_msg(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (resp)
		resp->seq = m->seq;
}

/* a leader offers a snapshot: the driver must fetch content (§7) */
static void
handle_snapshot(raft *r, const raft_msg *m)
{
	raft_msg   *resp;

	if (m->snapshot == NULL)
		return;
	if (m->snapshot->index <= r->commit)
	{
		resp = queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
		if (resp)
			resp->index = r->commit;
		return;
	}
	/*
	 * Hand every offer to the driver: it ignores offers while it fetches.
	 * The leader repeats an offer at most once per election timeout, so a
	 * fetch that failed is simply retried.
	 */
	memcpy(r->wanted, m->snapshot, sizeof(raft_snapshot_meta));
	r->wanted_from = m->from;
	r->wanted_new = true;
}

static void
handle_append_resp(raft *r, raft_peer *p, const raft_msg *m)
{
	if (m->reject)
	{
		raft_index	next;

		/* ignore rejections of appends we no longer care about */
		if (m->index <= p->match ||
			(p->state == RAFT_PR_PROBE && m->index != p->next - 1))
			return;
		next = m->hint_index;
		if (m->hint_term > 0)
		{
			/* skip the whole conflicting term (§5.3, optimization) */
			raft_index	i = m->index < log_last_index(r) ? m->index : log_last_index(r);
			bool		ok = true;

			while (i > r->snap->index && log_term(r, i, &ok) > m->hint_term)
				i--;
			if (log_matches(r, i, m->hint_term) && i >= m->hint_index)
				next = i + 1;
		}
		if (next > m->index)
			next = m->index;
		if (next <= p->match)
			next = p->match + 1;
		p->state = RAFT_PR_PROBE;
		p->next = next;
		p->probe_sent = false;
		p->inflight_count = 0;
		send_append(r, p, true);
		return;
	}

	if (m->index > log_last_index(r))
		return;					/* cannot ack what we never sent */
	if (m->index > p->match)
	{
		p->match = m->index;
		if (p->next <= m->index)
			p->next = m->index + 1;
		inflight_free_to(r, p, m->index);
		if (p->state == RAFT_PR_SNAPSHOT && p->match >= p->pending_snapshot)
			r->stats.snapshots_sent++;	/* the follower installed it */
		if (p->state == RAFT_PR_PROBE ||
			(p->state == RAFT_PR_SNAPSHOT && p->match >= p->pending_snapshot))
		{
			p->state = RAFT_PR_REPLICATE;
			p->next = p->match + 1;
			p->probe_sent = false;
			p->inflight_count = 0;
		}
		maybe_commit(r);
		if (r->role != RAFT_LEADER)
			return;
		if (r->transferee == p->id && p->match == log_last_index(r))
			queue_msg(r, RAFT_MSG_TIMEOUT_NOW, p->id);
	}
	else if (p->state == RAFT_PR_PROBE)
		p->probe_sent = false;
	send_append(r, p, false);
}

static void
handle_heartbeat_resp(raft *r, raft_peer *p, const raft_msg *m)
{
	if (m->seq > p->acked_seq)
		p->acked_seq = m->seq;
	if (p->state == RAFT_PR_PROBE)
		p->probe_sent = false;
	else if (p->state == RAFT_PR_REPLICATE &&
			 p->inflight_count >= r->opts.max_inflight)
	{
		/* let one more append out: an ack may have been lost */
		p->inflight_start = (p->inflight_start + 1) % r->opts.max_inflight;
		p->inflight_count--;
	}
	else if (p->state == RAFT_PR_SNAPSHOT &&
			 r->now - p->snapshot_sent_at >= r->opts.election_timeout)
	{
		/* the offer (or the fetch) may have been lost: offer again */
		p->state = RAFT_PR_PROBE;
		p->probe_sent = false;
	}
	if (p->match < log_last_index(r))
		send_append(r, p, true);
	release_reads(r);
}

static void
step_leader(raft *r, const raft_msg *m)
{
	raft_peer  *p;

	/*
	 * A follower's request carries the term it was in when it sent it,
	 * after the read began.  If that is our term, the request is its
	 * acknowledgement of our leadership made after the read began, just
	 * as an answer to a later heartbeat would be: no member of it had
	 * moved to a newer term, so no newer leader had been elected by a
	 * majority that includes it.  With the leader and the follower a
	 * quorum (three voters), the read needs no heartbeat round.  A request
	 * from an older node carries 0 and waits for the round.
	 */
	if (m->type == RAFT_MSG_READ_INDEX)
	{
		queue_read(r, m->ctx, m->from, m->hint_term == r->term);
		return;
	}
	p = find_peer(r, m->from);
	if (p == NULL)
		return;
	p->last_contact = r->now;
	switch (m->type)
	{
		case RAFT_MSG_APPEND_RESP:
			handle_append_resp(r, p, m);
			break;
		case RAFT_MSG_HEARTBEAT_RESP:
			handle_heartbeat_resp(r, p, m);
			break;
		case RAFT_MSG_APPLIED:
			if (m->index > p->applied)
				p->applied = m->index;
			p->stalled_at = m->hint_index;
			p->stall_code = m->hint_index ? m->ctx : 0;
			break;
		default:
			break;
	}
}

static void
step_candidate(raft *r, const raft_msg *m)
{
	uint8_t		want = r->role == RAFT_PRECANDIDATE ?
		RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;

	switch (m->type)
	{
		case RAFT_MSG_APPEND:
		case RAFT_MSG_HEARTBEAT:
		case RAFT_MSG_SNAPSHOT:
			/* a leader of our term exists (§5.2) */
			become_follower(r, m->term, m->from);
			r->last_leader_contact = r->now;
			if (m->type == RAFT_MSG_APPEND)
				handle_append(r, m);
			else if (m->type == RAFT_MSG_HEARTBEAT)
				handle_heartbeat(r, m);
			else
				handle_snapshot(r, m);
			break;
		default:
			if (m->type == want)
				poll(r, m->from, !m->reject);
			break;
	}
}

static void
step_follower(raft *r, const raft_msg *m)
{
	switch (m->type)
	{
		case RAFT_MSG_APPEND:
		case RAFT_MSG_HEARTBEAT:
		case RAFT_MSG_SNAPSHOT:
			set_lead(r, m->from);
			r->last_leader_contact = r->now;
			reset_election_timer(r);
			if (m->type == RAFT_MSG_APPEND)
				handle_append(r, m);
			else if (m->type == RAFT_MSG_HEARTBEAT)
				handle_heartbeat(r, m);
			else
				handle_snapshot(r, m);
			break;
		case RAFT_MSG_TIMEOUT_NOW:
			/* dissertation §3.10: campaign at once, no pre-vote */
			if (self_is_voter(r))
				become_candidate(r, true);
			break;
		case RAFT_MSG_READ_INDEX:
			{
				/* we are not the leader it thought: let it retry */
				raft_msg   *resp = queue_msg(r, RAFT_MSG_READ_INDEX_RESP, m->from);

				if (resp)
				{
					resp->term = 0;
					resp->ctx = m->ctx;
					resp->reject = true;
				}
			}
			break;
		default:
			break;
	}
}

int
raft_step(raft *r, const raft_msg *m)
{
	if (r->err)
		return r->err;
	if (m->to != r->id || m->from == r->id || m->from == RAFT_NONE ||
		m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_MAX)
		return RAFT_EINVAL;
	r->stats.msgs_received++;

	if (m->type == RAFT_MSG_READ_INDEX_RESP)
	{
		push_read_state(r, m->ctx, m->reject ? 0 : m->index,
						m->reject ? RAFT_ELEADERLOST : 0);
		return r->err;
	}
	if (m->type == RAFT_MSG_READ_INDEX)
	{
		/* term-less: safety comes from the leader's quorum round */
		if (r->role == RAFT_LEADER)
			step_leader(r, m);
		else
			step_follower(r, m);
		return r->err;
	}

	if (m->term > r->term)
	{
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE)
		{
			/*
			 * Disruption prevention (dissertation §4.2.3): while we hear
			 * from a leader, ignore candidates, unless the leader itself
			 * asked for the election (TimeoutNow).
			 */
			bool		in_lease = r->opts.check_quorum && r->lead != RAFT_NONE &&
				(r->role == RAFT_LEADER ||
				 r->now - r->last_leader_contact < r->opts.election_timeout);

			if (in_lease && !m->transfer)
				return RAFT_OK;
		}
		if (m->type == RAFT_MSG_PREVOTE ||
			(m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
		{
			/* pre-vote traffic never changes anyone's term */
		}
		else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
				 m->type == RAFT_MSG_SNAPSHOT)
		{
			become_follower(r, m->term, m->from);
			r->last_leader_contact = r->now;
		}
		else if (m->type == RAFT_MSG_VOTE && r->role == RAFT_FOLLOWER)
		{
			/*
			 * Figure 3.1: a follower's election timer restarts when it
			 * hears from its leader or grants a vote (handle_vote), not
			 * when a candidate's term overtakes it.  A candidate whose log
			 * is behind would otherwise keep the nodes that could win
			 * from ever timing out.
			 */
			uint64_t	deadline = r->election_deadline;
			bool		hastened = r->hastened;

			become_follower(r, m->term, RAFT_NONE);
			r->election_deadline = deadline;
			r->hastened = hastened;
		}
		else
			become_follower(r, m->term, RAFT_NONE);
	}
	else if (m->term < r->term)
	{
		if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)
		{
			/*
			 * A stale leader: answer so that it learns our term and steps
			 * down (Figure 2: reply false with currentTerm), instead of
			 * being ignored forever -- which it would be when our own
			 * configuration does not let us ask it for a vote.
			 */
			queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
		}
		else if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE)
		{
			/*
			 * Figure 2, RequestVote 1: reply false with currentTerm, so
			 * that a candidate behind us in term catches up instead of
			 * campaigning below us for ever.
			 */
			raft_msg   *resp = queue_msg(r, m->type == RAFT_MSG_VOTE ?
										 RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP,
										 m->from);

			if (resp)
				resp->reject = true;
		}
		return r->err;
	}

	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE)
		handle_vote_request(r, m);
	else if (r->role == RAFT_LEADER)
		step_leader(r, m);
	else if (r->role == RAFT_FOLLOWER)
		step_follower(r, m);
	else
		step_candidate(r, m);
	return r->err;
}

int
raft_tick(raft *r, uint64_t now)
{
	if (r->err)
		return r->err;
	if (now > r->now)
		r->now = now;
	if (r->role == RAFT_LEADER)
	{
		if (r->opts.check_quorum && !quorum_active(r))
		{
			/* we may be on the minority side */
			become_follower(r, r->term, RAFT_NONE);
			return r->err;
		}
		if (r->transferee != RAFT_NONE && r->now >= r->transfer_deadline)
			r->transferee = RAFT_NONE;	/* transfer timed out: carry on */
		if (r->now >= r->heartbeat_deadline)
			bcast_heartbeat(r);
	}
	else if (r->now >= r->election_deadline)
	{
		if (can_campaign(r))
			campaign(r);
		else
			reset_election_timer(r);
	}
	return r->err;
}

bool
raft_msg_may_precede_persist(const raft_msg *m)
{
	return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

int
raft_propose(raft *r, raft_entry_type type, const void *data, uint32_t len,
			 raft_index *index, raft_term *term)
{
	if (r->err)
		return r->err;
	if (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_NOOP)
		return RAFT_EINVAL;		/* configuration goes through raft_add_* */
	if (r->role != RAFT_LEADER)
		return r->lead != RAFT_NONE ? RAFT_ENOTLEADER : RAFT_ENOLEADER;
	if (r->transferee != RAFT_NONE)
		return RAFT_ETRANSFER;
	if (len > r->opts.max_entry_bytes)
		return RAFT_ETOOBIG;
	if (!log_append(r, r->term, (uint8_t) type, data, len))
		return r->err;
	r->stats.proposals++;
	r->bcast_pending = true;
	if (index)
		*index = log_last_index(r);
	if (term)
		*term = r->term;
	return RAFT_OK;
}

int
raft_transfer_leader(raft *r, raft_id to)
{
	raft_peer  *p;

	if (r->err)
		return r->err;
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (to == r->id)
		return RAFT_OK;
	p = find_peer(r, to);
	if (p == NULL || !p->voter)
		return RAFT_EINVAL;
	r->transferee = to;
	r->transfer_deadline = r->now + r->opts.election_timeout;
	if (p->match == log_last_index(r))
		queue_msg(r, RAFT_MSG_TIMEOUT_NOW, to);
	else
		send_append(r, p, false);
	return r->err;
}

/*
 * The driver installed snapshot content up to meta->index: the log now
 * starts after it.  Entries beyond it are kept only if the log agrees at
 * meta->index (§7, "if existing log entry has same index and term as
 * snapshot's last included entry, retain log entries following it").
 */
int
raft_snapshot_installed(raft *r, const raft_snapshot_meta *meta)
{
	raft_msg   *resp;

	if (r->err)
		return r->err;
	if (meta->index <= r->commit)
		return RAFT_OK;			/* we already have it: stale */
	if (log_matches(r, meta->index, meta->term))
		log_drop_prefix(r, meta->index);
	else
	{
		purge_entry_msgs(r, 0, UINT64_MAX);
		log_free_range(r, 0, r->n_ents);
		r->n_ents = 0;
		if (r->truncate_from == 0 || r->truncate_from > meta->index + 1)
			r->truncate_from = meta->index + 1;
		/* what was durable beyond the snapshot is gone with the log */
		if (r->stable > meta->index)
			r->stable = meta->index;
	}
	memcpy(r->snap, meta, sizeof(raft_snapshot_meta));
	r->snap_dirty = true;
	if (r->stable < meta->index)
		r->stable = meta->index;
	r->commit = meta->index;
	r->applied = meta->index;
	r->stats.snapshots_received++;
	reload_conf(r);
	if (r->lead != RAFT_NONE && r->role == RAFT_FOLLOWER)
	{
		resp = queue_msg(r, RAFT_MSG_APPEND_RESP, r->lead);
		if (resp)
			resp->index = meta->index;
	}
	return r->err;
}

/*
 * Report the driver's apply progress (and stall) to the leader, when it
 * changed or the leader did.
 */
static void
report_applied(raft *r)
{
	raft_msg   *m;

	if (r->role == RAFT_LEADER || r->lead == RAFT_NONE ||
		(r->applied_sent_to == r->lead && r->applied_sent == r->local_applied &&
		 r->stalled_sent == r->local_stalled_at &&
		 r->stall_code_sent == r->local_stall_code))
		return;
	m = queue_msg(r, RAFT_MSG_APPLIED, r->lead);
	if (m == NULL)
		return;
	m->index = r->local_applied;
	m->hint_index = r->local_stalled_at;
	m->ctx = r->local_stall_code;
	r->applied_sent = r->local_applied;
	r->stalled_sent = r->local_stalled_at;
	r->stall_code_sent = r->local_stall_code;
	r->applied_sent_to = r->lead;
}

void
raft_set_applied(raft *r, raft_index applied)
{
	if (r->err)
		return;
	r->local_applied = applied;
	report_applied(r);
}

void
raft_set_apply_stall(raft *r, raft_index index, uint64_t code)
{
	if (r->err)
		return;
	r->local_stalled_at = index;
	r->local_stall_code = index ? code : 0;
	report_applied(r);
}

void
raft_peer_unreachable(raft *r, raft_id id)
{
	uint64_t	t = r->opts.election_timeout;
	uint64_t	d;

	if (r->err || r->role != RAFT_FOLLOWER || id == RAFT_NONE || id != r->lead ||
		r->hastened)
		return;
	d = r->last_leader_contact + t + raft_rand(r) % (t / 2 + 1);
	if (d < r->election_deadline)
		r->election_deadline = d;
	r->hastened = true;			/* once per leader contact */
}

int
raft_set_timeouts(raft *r, uint64_t election_timeout, uint64_t heartbeat_interval)
{
	if (r->err)
		return r->err;
	if (heartbeat_interval == 0 || heartbeat_interval >= election_timeout)
		return RAFT_EINVAL;
	r->opts.election_timeout = election_timeout;
	r->opts.heartbeat_interval = heartbeat_interval;
	if (r->role == RAFT_LEADER)
		r->heartbeat_deadline = r->now + heartbeat_interval;
	else
		reset_election_timer(r);
	return RAFT_OK;
}

/*
 * Forget entries up to upto, which the driver has applied and can serve as
 * a snapshot (§7).  The configuration as of upto is kept with it.
 */
int
raft_compact(raft *r, raft_index upto)
{
	raft_conf  *conf = NULL;
	size_t		drop;
	bool		ok;
	raft_term	t;

	if (r->err)
		return r->err;
	if (upto <= r->snap->index)
		return RAFT_OK;
	if (upto > r->applied || upto > r->stable)
		return RAFT_EINVAL;
	t = log_term(r, upto, &ok);
	drop = upto - r->snap->index;
	for (size_t i = drop; i > 0; i--)
		if (r->ents[i - 1].type == RAFT_ENTRY_CONF)
		{
			conf = ralloc(r, sizeof(raft_conf));
			if (conf == NULL)
				return r->err;
			if (raft_conf_decode(r->ents[i - 1].data, r->ents[i - 1].len, conf) != 0)
			{
				rfree(r, conf);
				conf = NULL;
				continue;
			}
			break;
		}
	if (conf)
	{
		memcpy(&r->snap->conf, conf, sizeof(raft_conf));
		rfree(r, conf);
	}
	log_drop_prefix(r, upto);
	r->snap->index = upto;
	r->snap->term = t;
	r->snap_dirty = true;
	return RAFT_OK;
}

/* send what was coalesced during this cycle */
static void
flush_broadcasts(raft *r)
{
	if (r->role != RAFT_LEADER)
		return;
	if (r->round_pending)
	{
		r->round_pending = false;
		r->stats.read_index_rounds++;
		bcast_heartbeat(r);
		release_reads(r);		/* a single voter confirms itself */
	}
	if (r->bcast_pending)
	{
		r->bcast_pending = false;
		bcast_append(r, true);
	}
}

static bool
hs_differs(const raft *r)
{
	return r->term != r->persisted_hs.term || r->vote != r->persisted_hs.vote ||
		r->commit != r->persisted_hs.commit;
}

bool
raft_has_ready(const raft *r)
{
	return hs_differs(r) || r->snap_dirty || r->truncate_from ||
		r->stable < log_last_index(r) || r->n_msgs > 0 || r->n_reads > 0 ||
		r->applied < r->commit || r->wanted_new ||
		(r->role == RAFT_LEADER && (r->bcast_pending || r->round_pending));
}

/*
 * What holds between events, checked at each Ready cycle and after it:
 * the commit index never passes the log (§5.3), nor do durable entries;
 * entries are handed out only once committed; a snapshot holds only
 * committed entries (§7); the term is never behind the one persisted.
 */
void
check_invariants(const raft *r)
{
	RAFT_ASSERT(r->commit <= log_last_index(r));
	RAFT_ASSERT(r->stable <= log_last_index(r));
	RAFT_ASSERT(r->applied <= r->commit);
	RAFT_ASSERT(r->snap->index <= r->commit);
	RAFT_ASSERT(r->term >= r->persisted_hs.term);
	RAFT_ASSERT(r->role != RAFT_LEADER || r->lead == r->id);
}

int
raft_get_ready(raft *r, raft_ready *rd)
{
	raft_index	last;
	raft_index	to;

	memset(rd, 0, sizeof(*rd));
	if (r->err)
		return r->err;
	check_invariants(r);
	flush_broadcasts(r);
	if (r->err)
		return r->err;

	last = log_last_index(r);
	rd->truncate_from = r->truncate_from;
	rd->snapshot_changed = r->snap_dirty;
	rd->snapshot = r->snap;
	if (r->stable < last)
	{
		rd->entries = log_entry(r, r->stable + 1);
		rd->n_entries = last - r->stable;
	}
	rd->hs_changed = hs_differs(r);
	rd->hs.term = r->term;
	rd->hs.vote = r->vote;
	rd->hs.commit = r->commit;

	/* entries of queued appends are resolved now that the log is settled */
	for (size_t i = 0; i < r->n_msgs; i++)
	{
		raft_msg   *m = &r->msgs[i];

		if (m->n_entries > 0)
			m->entries = log_entry(r, m->index + 1);
	}
	rd->msgs = r->msgs;
	rd->n_msgs = r->n_msgs;

	to = r->commit < last ? r->commit : last;
	if (to > r->applied)
	{
		rd->committed = log_entry(r, r->applied + 1);
		rd->n_committed = to - r->applied;
	}
	rd->reads = r->reads;
	rd->n_reads = r->n_reads;
	if (r->wanted_new)
	{
		rd->snapshot_wanted = true;
		rd->wanted = r->wanted;
		rd->wanted_from = r->wanted_from;
	}
	rd->stable_to = last;
	rd->stable_term = log_last_term(r);
	rd->applied_to = to > r->applied ? to : r->applied;
	return RAFT_OK;
}

void
raft_advance(raft *r, const raft_ready *rd)
{
	r->persisted_hs = rd->hs;
	r->snap_dirty = false;
	r->truncate_from = 0;
	if (log_matches(r, rd->stable_to, rd->stable_term))
		r->stable = rd->stable_to;
	if (rd->applied_to > r->applied)
		r->applied = rd->applied_to;
	r->n_msgs = 0;
	r->n_reads = 0;
	if (rd->snapshot_wanted)
		r->wanted_new = false;
	/* our own entries count towards the quorum once durable */
	if (r->role == RAFT_LEADER)
		maybe_commit(r);
	check_invariants(r);
}

uint64_t
raft_next_deadline(const raft *r)
{
	uint64_t	d;

	if (r->role != RAFT_LEADER)
		return r->election_deadline;
	d = r->heartbeat_deadline;	/* check-quorum is checked then too */
	if (r->transferee != RAFT_NONE && r->transfer_deadline < d)
		d = r->transfer_deadline;
	return d;
}

int
raft_new(const raft_options *opts, raft **out)
{
	const raft_allocator *a = opts->allocator ? opts->allocator : &raft_malloc_allocator;
	raft	   *r;

	*out = NULL;
	if (opts->id == RAFT_NONE || opts->election_timeout == 0 ||
		opts->heartbeat_interval == 0 || opts->max_inflight == 0 ||
		opts->heartbeat_interval >= opts->election_timeout)
		return RAFT_EINVAL;
	r = a->alloc(a->ctx, sizeof(raft));
	if (r == NULL)
		return RAFT_ENOMEM;
	memset(r, 0, sizeof(*r));
	r->opts = *opts;
	r->alloc = *a;
	r->id = opts->id;
	r->rng = opts->seed ^ (opts->id * 0x9E3779B97F4A7C15ULL);
	r->snap = ralloc(r, sizeof(raft_snapshot_meta));
	r->wanted = ralloc(r, sizeof(raft_snapshot_meta));
	r->conf = ralloc(r, sizeof(raft_conf));
	if (r->err)
	{
		raft_free(r);
		return RAFT_ENOMEM;
	}
	memset(r->snap, 0, sizeof(raft_snapshot_meta));
	memset(r->conf, 0, sizeof(raft_conf));
	r->role = RAFT_FOLLOWER;
	reset_election_timer(r);
	*out = r;
	return RAFT_OK;
}

void
raft_free(raft *r)
{
	if (r == NULL)
		return;
	log_free_range(r, 0, r->n_ents);
	rfree(r, r->ents);
	for (uint32_t i = 0; i < r->n_peers; i++)
		rfree(r, r->peers[i].inflight);
	rfree(r, r->peers);
	rfree(r, r->msgs);
	rfree(r, r->reads);
	rfree(r, r->preads);
	rfree(r, r->snap);
	rfree(r, r->wanted);
	rfree(r, r->conf);
	r->alloc.free(r->alloc.ctx, r);
}

int
raft_restore(raft *r, const raft_hard_state *hs,
			 const raft_snapshot_meta *snap,
			 const raft_entry *entries, size_t n, raft_index applied)
{
	if (r->err)
		return r->err;
	if (snap)
		memcpy(r->snap, snap, sizeof(raft_snapshot_meta));
	for (size_t i = 0; i < n; i++)
	{
		if (entries[i].index != log_last_index(r) + 1)
			return RAFT_EINVAL;
		if (!log_append(r, entries[i].term, entries[i].type, entries[i].data,
						entries[i].len))
			return r->err;
	}
	r->term = hs->term;
	r->vote = hs->vote;
	r->commit = hs->commit;
	if (r->commit < r->snap->index)
		r->commit = r->snap->index;
	if (r->commit > log_last_index(r))
		r->commit = log_last_index(r);
	if (applied > r->commit)
		r->commit = applied > log_last_index(r) ? log_last_index(r) : applied;
	r->applied = applied > r->snap->index ? applied : r->snap->index;
	if (r->applied > r->commit)
		r->applied = r->commit;
	r->stable = log_last_index(r);
	r->persisted_hs.term = r->term;
	r->persisted_hs.vote = r->vote;
	r->persisted_hs.commit = r->commit;
	reload_conf(r);
	reset_election_timer(r);
	return r->err;
}

int
raft_bootstrap(raft *r, const raft_conf *conf)
{
	size_t		len;
	uint8_t    *buf;

	if (r->err)
		return r->err;
	if (r->term != 0 || log_last_index(r) != 0 || conf->n == 0 ||
		raft_conf_voters(conf) == 0)
		return RAFT_EINVAL;
	len = raft_conf_encoded_size(conf);
	buf = ralloc(r, len);
	if (buf == NULL)
		return r->err;
	raft_conf_encode(conf, buf);
	if (log_append(r, 1, RAFT_ENTRY_CONF, buf, (uint32_t) len))
		note_conf_entry(r, &r->ents[0]);
	rfree(r, buf);
	/* the bootstrap entry is identical on every node: it is committed */
	r->term = 1;
	r->commit = 1;
	return r->err;
}

void
raft_get_status(const raft *r, raft_status *st)
{
	const raft_member *m = raft_conf_find(r->conf, r->id);
	uint64_t	contact;

	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->is_member = m != NULL;
	st->is_voter = m != NULL && m->voter;
	st->term = r->term;
	st->vote = r->vote;
	st->lead = r->lead;
	st->commit = r->commit;
	st->applied = r->applied;
	st->last_index = log_last_index(r);
	st->last_term = log_last_term(r);
	st->stable_index = r->stable;
	st->snapshot_index = r->snap->index;
	st->snapshot_term = r->snap->term;
	st->conf_index = r->conf_index;
	/* a deposed leader last heard a leader when it was one itself */
	contact = r->led_until > r->last_leader_contact ? r->led_until :
		r->last_leader_contact;
	st->leader_contact_ms = r->role == RAFT_LEADER ? 0 :
		(r->lead == RAFT_NONE && contact == 0 ? r->now : r->now - contact);
	st->transferee = r->transferee;
	st->term_start_index = r->role == RAFT_LEADER ? r->noop_index : 0;
}

const raft_conf *
raft_get_conf(const raft *r)
{
	return r->conf;
}

const raft_stats *
raft_get_stats(const raft *r)
{
	return &r->stats;
}

int
raft_get_progress(const raft *r, raft_id id, raft_progress *pr)
{
	const raft_peer *p = NULL;

	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == id)
			p = &r->peers[i];
	if (p == NULL)
		return RAFT_EINVAL;
	memset(pr, 0, sizeof(*pr));
	pr->id = p->id;
	pr->voter = p->voter;
	pr->state = p->id == r->id ? RAFT_PR_REPLICATE : p->state;
	pr->match = peer_match(r, p);
	pr->next = p->id == r->id ? log_last_index(r) + 1 : p->next;
	pr->inflight = p->inflight_count;
	pr->recent_active = peer_active(r, p);
	pr->last_contact_ms = p->id == r->id ? 0 : r->now - p->last_contact;
	pr->applied = p->id == r->id ? r->local_applied : p->applied;
	pr->stalled_at = p->id == r->id ? r->local_stalled_at : p->stalled_at;
	pr->stall_code = p->id == r->id ? r->local_stall_code : p->stall_code;
	return RAFT_OK;
}

const raft_entry *
raft_get_entry(const raft *r, raft_index index)
{
	return log_entry(r, index);
}

raft_term
raft_term_at(const raft *r, raft_index index, bool *ok)
{
	return log_term(r, index, ok);
}
