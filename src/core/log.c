/*
 * log.c
 *	  The log: entries after the snapshot, their terms, appending and
 *	  truncating (Figure 2's log, §5.3), and compaction's prefix drop (§7).
 *
 * Part of the pure Raft core: see raft.c for the whole and raft_int.h for
 * the state these functions share.
 */
#include "raft_int.h"

/* term at i; *ok false when i is compacted away or beyond the log */
raft_term
log_term(const raft *r, raft_index i, bool *ok)
{
	*ok = true;
	if (i == r->snap->index)
		return r->snap->term;	/* includes index 0, term 0 */
	if (i < r->snap->index || i > log_last_index(r))
	{
		*ok = false;
		return 0;
	}
	return r->ents[i - r->snap->index - 1].term;
}

bool
log_matches(const raft *r, raft_index i, raft_term t)
{
	bool		ok;
	raft_term	lt = log_term(r, i, &ok);

	return ok && lt == t;
}

bool
log_append(raft *r, raft_term term, uint8_t type, const void *data,
		   uint32_t len)
{
	raft_entry *e;

	if (!rgrow(r, (void **) &r->ents, &r->cap_ents, r->n_ents + 1,
			   sizeof(raft_entry)))
		return false;
	e = &r->ents[r->n_ents];
	e->term = term;
	e->index = log_last_index(r) + 1;
	e->type = type;
	e->len = len;
	e->data = NULL;
	if (len > 0)
	{
		e->data = ralloc(r, len);
		if (e->data == NULL)
			return false;
		memcpy(e->data, data, len);
	}
	r->n_ents++;
	return true;
}

void
log_free_range(raft *r, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		rfree(r, r->ents[i].data);
}

/* forget entries <= upto, which a snapshot now covers (§7) */
void
log_drop_prefix(raft *r, raft_index upto)
{
	size_t		drop = upto - r->snap->index;

	purge_entry_msgs(r, 0, upto);
	log_free_range(r, 0, drop);
	memmove(r->ents, r->ents + drop, (r->n_ents - drop) * sizeof(raft_entry));
	r->n_ents -= drop;
}

/*
 * Drop queued messages that carry any entry in [lo, hi]: their entries are
 * referenced by index (resolved in raft_get_ready()) and those entries are
 * about to go.  Losing a message is always safe in Raft.
 */
void
purge_entry_msgs(raft *r, raft_index lo, raft_index hi)
{
	size_t		j = 0;

	for (size_t i = 0; i < r->n_msgs; i++)
	{
		raft_msg   *m = &r->msgs[i];

		if (m->n_entries == 0 || m->index + m->n_entries < lo || m->index + 1 > hi)
			r->msgs[j++] = *m;
	}
	r->n_msgs = j;
}

/* remove entries >= i (a conflict with the leader's log, §5.3) */
void
log_truncate(raft *r, raft_index i)
{
	size_t		keep = i - r->snap->index - 1;

	purge_entry_msgs(r, i, UINT64_MAX);
	log_free_range(r, keep, r->n_ents);
	r->n_ents = keep;
	if (r->stable >= i)
	{
		r->stable = i - 1;
		if (r->truncate_from == 0 || r->truncate_from > i)
			r->truncate_from = i;
	}
	if (r->conf_index >= i)
		reload_conf(r);
}
