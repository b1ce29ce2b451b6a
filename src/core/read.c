/*
 * read.c
 *	  ReadIndex (dissertation §6.4): pending reads on the leader, each
 *	  released once a heartbeat round started after it is acknowledged by
 *	  a quorum, and the read states handed to the driver.
 *
 * Part of the pure Raft core: see raft.c for the whole and raft_int.h for
 * the state these functions share.
 */
#include "raft_int.h"

void
push_read_state(raft *r, uint64_t ctx, raft_index index, int err)
{
	raft_read_state *rs;

	if (!rgrow(r, (void **) &r->reads, &r->cap_reads, r->n_reads + 1,
			   sizeof(raft_read_state)))
		return;
	rs = &r->reads[r->n_reads++];
	rs->ctx = ctx;
	rs->index = index;
	rs->err = err;
}

/* answer every pending read: this node is no longer the leader */
void
fail_pending_reads(raft *r)
{
	for (size_t i = 0; i < r->n_preads; i++)
	{
		raft_pending_read *pr = &r->preads[i];

		if (pr->from == r->id)
			push_read_state(r, pr->ctx, 0, RAFT_ELEADERLOST);
		else
		{
			raft_msg   *m = queue_msg(r, RAFT_MSG_READ_INDEX_RESP, pr->from);

			if (m)
			{
				m->term = 0;
				m->ctx = pr->ctx;
				m->reject = true;
			}
		}
	}
	r->n_preads = 0;
}

/*
 * The reads a leader's driver may answer without stepping the core: a
 * READ_INDEX whose hint_term is g->term, from one of g->ids, is answered
 * with g->index, exactly as step_leader and release_reads would answer it
 * at once.  That is so when the request alone, with the leader itself,
 * is a quorum (three voters or two), and the leader's no-op has committed
 * (§6.4, step 1).  g->term is 0 when no request may be answered so.
 *
 * The driver publishes the grant for its other processes before it sends
 * any message or acknowledges any write after a step (see readindex.c);
 * the core only says what its own rule gives.
 */
void
raft_get_read_grant(const raft *r, raft_read_grant *g)
{
	int			q = quorum(r);
	const raft_member *self = raft_conf_find(r->conf, r->id);

	memset(g, 0, sizeof(*g));
	if (r->role != RAFT_LEADER || r->commit < r->noop_index ||
		self == NULL || !self->voter || q > 2)
		return;
	for (uint32_t i = 0; i < r->n_peers; i++)
	{
		const raft_peer *p = &r->peers[i];

		if (p->voter && p->id != r->id)
			g->ids[g->n_ids++] = p->id;
	}
	g->term = r->term;
	g->index = r->commit;
}

/*
 * Release pending reads that a quorum has acknowledged after they arrived
 * (dissertation §6.4, step 3): the leader itself, members that answered a
 * heartbeat round started after the read arrived, and the follower that
 * asked, if its request carried this term (step_leader).  Those may
 * release a later read before an earlier one, so every read is checked.
 */
void
release_reads(raft *r)
{
	size_t		kept = 0;
	int			q = quorum(r);

	for (size_t k = 0; k < r->n_preads; k++)
	{
		raft_pending_read *pr = &r->preads[k];
		int			acks = 0;

		for (uint32_t i = 0; i < r->n_peers && pr->index != 0; i++)
		{
			raft_peer  *p = &r->peers[i];

			if (p->voter && (p->id == r->id || p->acked_seq >= pr->seq ||
							 (pr->from_acked && p->id == pr->from)))
				acks++;
		}
		if (pr->index == 0 || acks < q)
		{
			r->preads[kept++] = *pr;
			continue;
		}
		if (pr->from == r->id)
			push_read_state(r, pr->ctx, pr->index, 0);
		else
		{
			raft_msg   *m = queue_msg(r, RAFT_MSG_READ_INDEX_RESP, pr->from);

			if (m)
			{
				m->term = 0;
				m->ctx = pr->ctx;
				m->index = pr->index;
			}
		}
	}
	r->n_preads = kept;
}

void
queue_read(raft *r, uint64_t ctx, raft_id from, bool from_acked)
{
	raft_pending_read *pr;

	if (!rgrow(r, (void **) &r->preads, &r->cap_preads, r->n_preads + 1,
			   sizeof(raft_pending_read)))
		return;
	pr = &r->preads[r->n_preads++];
	pr->ctx = ctx;
	pr->from = from;
	pr->from_acked = from_acked;
	/* only a round started after the request arrived may confirm it */
	pr->seq = r->hb_seq + 1;
	pr->index = r->commit >= r->noop_index ? r->commit : 0;
	release_reads(r);
	/* a round for what the request alone does not confirm */
	if (r->n_preads > 0)
		r->round_pending = true;
}

int
raft_read_index(raft *r, uint64_t ctx)
{
	raft_msg   *m;

	if (r->err)
		return r->err;
	if (r->role == RAFT_LEADER)
	{
		queue_read(r, ctx, r->id, false);
		return r->err;
	}
	if (r->lead == RAFT_NONE)
		return RAFT_ENOLEADER;
	m = queue_msg(r, RAFT_MSG_READ_INDEX, r->lead);
	if (m == NULL)
		return r->err;
	m->term = 0;
	m->ctx = ctx;
	m->hint_term = r->term;		/* see step_leader */
	return RAFT_OK;
}
