/*
 * quorum.c
 *	  Majorities: the quorum size, the commit index the matches support
 *	  (§5.3, §5.4.2: only entries of the leader's term are committed by
 *	  counting), and whether a quorum was heard from recently (check-quorum,
 *	  dissertation §6.2).
 *
 * Part of the pure Raft core: see raft.c for the whole and raft_int.h for
 * the state these functions share.
 */
#include "raft_int.h"

/* how many voters make a majority of the configuration in force */
int
quorum(const raft *r)
{
	return raft_conf_voters(r->conf) / 2 + 1;
}

static int
cmp_index_desc(const void *a, const void *b)
{
	raft_index	x = *(const raft_index *) a,
				y = *(const raft_index *) b;

	return x < y ? 1 : (x > y ? -1 : 0);
}

/* the leader counts its own entries only once they are durable */
raft_index
peer_match(const raft *r, const raft_peer *p)
{
	return p->id == r->id ? r->stable : p->match;
}

/*
 * §5.3/§5.4.2: advance the commit index to the highest index stored on a
 * quorum of voters, but only by counting an entry of the current term.
 */
void
maybe_commit(raft *r)
{
	raft_index	matches[RAFT_MAX_MEMBERS];
	int			n = 0;
	raft_index	idx;
	bool		ok;

	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].voter)
			matches[n++] = peer_match(r, &r->peers[i]);
	if (n == 0)
		return;
	qsort(matches, n, sizeof(raft_index), cmp_index_desc);
	idx = matches[n / 2];		/* the quorum-th highest */
	if (idx <= r->commit || log_term(r, idx, &ok) != r->term || !ok)
		return;
	r->stats.commits += idx - r->commit;
	r->commit = idx;
	r->bcast_pending = true;	/* tell followers soon */

	/* reads that arrived before our first commit get their index now */
	if (r->commit >= r->noop_index)
		for (size_t i = 0; i < r->n_preads; i++)
			if (r->preads[i].index == 0)
				r->preads[i].index = r->commit;
	release_reads(r);

	/* dissertation §4.2.2: a removed leader steps down once it committed */
	if (r->commit >= r->conf_index && !self_is_voter(r))
		become_follower(r, r->term, RAFT_NONE);
}

bool
peer_active(const raft *r, const raft_peer *p)
{
	return p->id == r->id || r->now - p->last_contact < r->opts.election_timeout;
}

/*
 * Check-quorum: has a quorum of voters been heard from within the last
 * election timeout?  Checked at every tick, so a leader cut off from the
 * majority steps down one election timeout after it last heard from it:
 * by then the majority may be electing another.
 */
bool
quorum_active(raft *r)
{
	int			n = 0;

	for (uint32_t i = 0; i < r->n_peers; i++)
		if (r->peers[i].voter && peer_active(r, &r->peers[i]))
			n++;
	return n >= quorum(r);
}
