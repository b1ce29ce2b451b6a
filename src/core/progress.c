/*
 * progress.c
 *	  What the leader knows of each member (Figure 2's nextIndex and
 *	  matchIndex, and the replication state of dissertation §3.10) and the
 *	  messages that carry the log to them: AppendEntries, heartbeats and
 *	  snapshots, with a window of appends in flight.
 *
 * Part of the pure Raft core: see raft.c for the whole and raft_int.h for
 * the state these functions share.
 */
#include "raft_int.h"

raft_peer *
find_peer(raft *r, raft_id id)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].id == id)
			return &r->peers[i];
	return NULL;
}

bool
self_is_voter(const raft *r)
{
	const raft_member *m = raft_conf_find(r->conf, r->id);

	return m != NULL && m->voter;
}

void
peer_reset(raft *r, raft_peer *p)
{
	p->state = RAFT_PR_PROBE;
	p->match = 0;
	p->next = log_last_index(r) + 1;
	p->probe_sent = false;
	p->pending_snapshot = 0;
	p->inflight_start = 0;
	p->inflight_count = 0;
	p->last_contact = r->now;	/* a new peer gets a full timeout */
	p->acked_seq = 0;
	p->applied = 0;
	p->stalled_at = 0;
	p->stall_code = 0;
	p->vote_responded = false;
	p->vote_granted = false;
}

/*
 * Make peers[] mirror the configuration in force, keeping the progress of
 * members that stay.  Called whenever conf changes.
 */
void
sync_peers(raft *r)
{
	raft_peer  *np;
	uint32_t	n = r->conf->n;

	np = ralloc(r, sizeof(raft_peer) * (n ? n : 1));
	if (np == NULL)
		return;
	for (uint32_t i = 0; i < n; i++)
	{
		const raft_member *m = &r->conf->members[i];
		raft_peer  *old = find_peer(r, m->id);

		if (old)
		{
			np[i] = *old;
			old->inflight = NULL;	/* moved */
		}
		else
		{
			memset(&np[i], 0, sizeof(raft_peer));
			np[i].id = m->id;
			np[i].inflight = ralloc(r, sizeof(raft_index) * r->opts.max_inflight);
			if (np[i].inflight == NULL)
			{
				n = i;			/* free what we have; r->err is set */
				break;
			}
			peer_reset(r, &np[i]);
		}
		np[i].voter = m->voter;
	}
	for (uint32_t i = 0; i < r->n_peers; i++)
		rfree(r, r->peers[i].inflight);
	rfree(r, r->peers);
	r->peers = np;
	r->n_peers = n;
}

static void
inflight_add(raft *r, raft_peer *p, raft_index last)
{
	uint32_t	cap = r->opts.max_inflight;

	p->inflight[(p->inflight_start + p->inflight_count) % cap] = last;
	p->inflight_count++;
}

/* acknowledge every in-flight append whose last entry is <= index */
void
inflight_free_to(raft *r, raft_peer *p, raft_index index)
{
	uint32_t	cap = r->opts.max_inflight;

	while (p->inflight_count > 0 && p->inflight[p->inflight_start] <= index)
	{
		p->inflight_start = (p->inflight_start + 1) % cap;
		p->inflight_count--;
	}
}

static bool
peer_paused(const raft *r, const raft_peer *p)
{
	switch (p->state)
	{
		case RAFT_PR_PROBE:
			return p->probe_sent;
		case RAFT_PR_REPLICATE:
			return p->inflight_count >= r->opts.max_inflight;
		case RAFT_PR_SNAPSHOT:
			return true;
	}
	return true;
}

static void
send_snapshot(raft *r, raft_peer *p)
{
	raft_msg   *m = queue_msg(r, RAFT_MSG_SNAPSHOT, p->id);

	if (m == NULL)
		return;
	m->snapshot = r->snap;
	p->state = RAFT_PR_SNAPSHOT;
	p->pending_snapshot = r->snap->index;
	p->snapshot_sent_at = r->now;
	r->stats.snapshot_offers++;
}

/*
 * Send p the entries from p->next on (§5.3), bounded by max_msg_bytes, or a
 * snapshot when they were compacted away (§7).  With allow_empty an append
 * with no entries is sent too, to carry the commit index or to probe.
 */
void
send_append(raft *r, raft_peer *p, bool allow_empty)
{
	raft_index	prev = p->next - 1;
	raft_index	last = log_last_index(r);
	raft_term	prev_term;
	bool		ok;
	uint32_t	n = 0;
	uint64_t	bytes = 0;
	raft_msg   *m;

	if (p->id == r->id || peer_paused(r, p))
		return;
	prev_term = log_term(r, prev, &ok);
	if (!ok)
	{
		send_snapshot(r, p);
		return;
	}
	while (prev + n < last)
	{
		raft_entry *e = log_entry(r, prev + n + 1);

		if (n > 0 && bytes + e->len > r->opts.max_msg_bytes)
			break;
		bytes += e->len;
		n++;
	}
	if (n == 0 && !allow_empty)
		return;
	m = queue_msg(r, RAFT_MSG_APPEND, p->id);
	if (m == NULL)
		return;
	m->index = prev;
	m->log_term = prev_term;
	m->commit = r->commit;
	m->n_entries = n;			/* entries resolved by raft_get_ready() */
	if (p->state == RAFT_PR_REPLICATE)
	{
		if (n > 0)
		{
			p->next = prev + n + 1;
			inflight_add(r, p, prev + n);
		}
	}
	else
		p->probe_sent = true;
}

void
bcast_append(raft *r, bool allow_empty)
{
	for (uint32_t i = 0; i < r->n_peers; i++)
		send_append(r, &r->peers[i], allow_empty);
}

static void
send_heartbeat(raft *r, raft_peer *p)
{
	raft_msg   *m;

	if (p->id == r->id)
		return;
	m = queue_msg(r, RAFT_MSG_HEARTBEAT, p->id);
	if (m == NULL)
		return;
	/* never tell a follower to commit past what it is known to hold */
	m->commit = p->match < r->commit ? p->match : r->commit;
	m->seq = r->hb_seq;
}

/* a new heartbeat round: leadership is confirmed when a quorum echoes it */
void
bcast_heartbeat(raft *r)
{
	r->hb_seq++;
	for (uint32_t i = 0; i < r->n_peers; i++)
		send_heartbeat(r, &r->peers[i]);
	r->heartbeat_deadline = r->now + r->opts.heartbeat_interval;
}
