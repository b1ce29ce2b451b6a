/*
 * conf.c
 *	  Configurations: the one in force (the latest in the log,
 *	  dissertation §4.1), and single-server membership changes (§4.2.1).
 *
 * Part of the pure Raft core: see raft.c for the whole and raft_int.h for
 * the state these functions share.
 */
#include "raft_int.h"

const raft_member *
raft_conf_find(const raft_conf *conf, raft_id id)
{
	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->members[i].id == id)
			return &conf->members[i];
	return NULL;
}

int
raft_conf_voters(const raft_conf *conf)
{
	int			n = 0;

	for (uint32_t i = 0; i < conf->n; i++)
		if (conf->members[i].voter)
			n++;
	return n;
}

static void
set_conf(raft *r, const raft_conf *conf, raft_index index)
{
	memcpy(r->conf, conf, sizeof(raft_conf));
	r->conf_index = index;
	sync_peers(r);
}

/*
 * Put the configuration entry e holds in force: 1 if it did, 0 if e holds
 * none (another type, or one that does not decode), -1 out of memory.
 */
static int
conf_from_entry(raft *r, const raft_entry *e)
{
	raft_conf  *tmp;
	int			rc = 0;

	if (e->type != RAFT_ENTRY_CONF)
		return 0;
	tmp = ralloc(r, sizeof(raft_conf));
	if (tmp == NULL)
		return -1;
	if (raft_conf_decode(e->data, e->len, tmp) == 0)
	{
		set_conf(r, tmp, e->index);
		rc = 1;
	}
	rfree(r, tmp);
	return rc;
}

/*
 * The configuration in force is the one in the latest configuration entry
 * of the log, else the snapshot's.  Scans backwards: used only after the log
 * was truncated or rebuilt.
 */
void
reload_conf(raft *r)
{
	for (size_t i = r->n_ents; i > 0; i--)
	{
		if (conf_from_entry(r, &r->ents[i - 1]) != 0)
			return;
	}
	set_conf(r, &r->snap->conf, r->snap->index);
}

/* a configuration entry just entered the log: it is in force at once */
void
note_conf_entry(raft *r, const raft_entry *e)
{
	(void) conf_from_entry(r, e);
}

static int
propose_conf(raft *r, raft_conf *conf, raft_index *index)
{
	size_t		len;
	uint8_t    *buf;
	bool		ok;

	len = raft_conf_encoded_size(conf);
	buf = ralloc(r, len);
	if (buf == NULL)
		return r->err;
	raft_conf_encode(conf, buf);
	ok = log_append(r, r->term, RAFT_ENTRY_CONF, buf, (uint32_t) len);
	rfree(r, buf);
	if (!ok)
		return r->err;
	note_conf_entry(r, &r->ents[r->n_ents - 1]);
	r->stats.proposals++;
	r->bcast_pending = true;
	if (index)
		*index = log_last_index(r);
	return r->err;
}

/*
 * One change at a time, and only once this leader has committed an entry
 * of its own term: without that, single-server changes are unsafe (the
 * configuration bug reported by Ongaro on raft-dev, 2015).
 */
static int
conf_change_allowed(raft *r)
{
	if (r->err)
		return r->err;
	if (r->role != RAFT_LEADER)
		return r->lead != RAFT_NONE ? RAFT_ENOTLEADER : RAFT_ENOLEADER;
	if (r->transferee != RAFT_NONE)
		return RAFT_ETRANSFER;
	if (r->commit < r->conf_index || r->commit < r->noop_index)
		return RAFT_EBUSY;
	return RAFT_OK;
}

typedef enum conf_op
{
	CONF_ADD_LEARNER,
	CONF_PROMOTE,
	CONF_REMOVE,
} conf_op;

/*
 * Propose the configuration in force changed by one server: checks the
 * request against it, then appends the new configuration (which is in
 * force from that moment, committed or not).
 */
static int
change_conf(raft *r, conf_op op, raft_id id, const char *addr,
			uint16_t addr_len, raft_index *index)
{
	const raft_member *m = raft_conf_find(r->conf, id);
	raft_conf  *conf;
	int			rc = conf_change_allowed(r);

	if (rc != RAFT_OK)
		return rc;
	switch (op)
	{
		case CONF_ADD_LEARNER:
			if (id == RAFT_NONE || m != NULL || addr_len > RAFT_MAX_ADDR ||
				r->conf->n >= RAFT_MAX_MEMBERS)
				return RAFT_EINVAL;
			break;
		case CONF_PROMOTE:
			if (m == NULL || m->voter)
				return RAFT_EINVAL;
			break;
		case CONF_REMOVE:
			/* unknown, or the last voter */
			if (m == NULL || (m->voter && raft_conf_voters(r->conf) == 1))
				return RAFT_EINVAL;
			break;
	}
	conf = ralloc(r, sizeof(raft_conf));
	if (conf == NULL)
		return r->err;
	memcpy(conf, r->conf, sizeof(raft_conf));
	if (op == CONF_ADD_LEARNER)
	{
		raft_member *nm = &conf->members[conf->n++];

		memset(nm, 0, sizeof(*nm));
		nm->id = id;
		nm->addr_len = addr_len;
		if (addr_len)
			memcpy(nm->addr, addr, addr_len);
	}
	else
	{
		uint32_t	i = (uint32_t) (m - r->conf->members);

		if (op == CONF_PROMOTE)
			conf->members[i].voter = true;
		else
		{
			memmove(&conf->members[i], &conf->members[i + 1],
					(conf->n - i - 1) * sizeof(raft_member));
			conf->n--;
		}
	}
	rc = propose_conf(r, conf, index);
	rfree(r, conf);
	return rc;
}

int
raft_add_learner(raft *r, raft_id id, const char *addr, uint16_t addr_len,
				 raft_index *index)
{
	return change_conf(r, CONF_ADD_LEARNER, id, addr, addr_len, index);
}

int
raft_promote(raft *r, raft_id id, raft_index *index)
{
	return change_conf(r, CONF_PROMOTE, id, NULL, 0, index);
}

int
raft_remove(raft *r, raft_id id, raft_index *index)
{
	return change_conf(r, CONF_REMOVE, id, NULL, 0, index);
}
