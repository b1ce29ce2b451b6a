/*
 * harness.c
 *	  The hand-driven cluster of harness.h.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
h_default_options(raft_options *o, raft_id id)
{
	raft_options_default(o, id);
	o->seed = 42;
	o->election_timeout = 100;
	o->heartbeat_interval = 10;
	o->max_inflight = 8;
	o->max_msg_bytes = 4096;
}

raft_conf
h_conf(int voters, int learners)
{
	raft_conf	c;

	memset(&c, 0, sizeof(c));
	for (int i = 0; i < voters + learners; i++)
	{
		c.members[i].id = i + 1;
		c.members[i].voter = i < voters;
		c.members[i].addr_len = (uint16_t) snprintf(c.members[i].addr,
													 RAFT_MAX_ADDR, "node%d", i + 1);
	}
	c.n = voters + learners;
	return c;
}

static void
h_boot(h_net *net, raft_id id)
{
	h_node	   *nd = &net->nodes[id];

	if (raft_new(&nd->opts, &nd->r) != 0)
		abort();
	if (raft_restore(nd->r, &nd->hs, &nd->snap, nd->log, nd->n_log,
					 nd->applied) != 0)
		abort();
	raft_tick(nd->r, nd->now);
	nd->up = true;
}

h_net *
h_new_opts(int n, int voters, bool pre_vote, bool check_quorum)
{
	h_net	   *net = calloc(1, sizeof(h_net));
	raft_conf	conf = h_conf(voters, 0);

	net->n = n;
	net->cluster_id = 0xC1A5;
	for (int i = 1; i <= n; i++)
	{
		h_node	   *nd = &net->nodes[i];

		h_default_options(&nd->opts, i);
		nd->opts.pre_vote = pre_vote;
		nd->opts.check_quorum = check_quorum;
		nd->opts.seed = 1000 + i;
		h_boot(net, i);
		if (i <= voters)
			raft_bootstrap(nd->r, &conf);
		h_cycle(net, i);
	}
	return net;
}

h_net *
h_new(int n, int voters)
{
	return h_new_opts(n, voters, true, true);
}

static void
h_free_log(h_node *nd)
{
	for (size_t i = 0; i < nd->n_log; i++)
		free(nd->log[i].data);
	free(nd->log);
	nd->log = NULL;
	nd->n_log = 0;
}

void
h_drop_wire(h_net *net)
{
	for (size_t i = 0; i < net->n_wire; i++)
		free(net->wire[i].buf);
	net->n_wire = 0;
}

void
h_free(h_net *net)
{
	for (int i = 1; i <= net->n; i++)
	{
		raft_free(net->nodes[i].r);
		h_free_log(&net->nodes[i]);
	}
	h_drop_wire(net);
	free(net);
}

raft *
h_r(h_net *net, raft_id id)
{
	return net->nodes[id].r;
}

/* the disk: apply the persistence rules of raft_ready */
static void
h_persist(h_node *nd, const raft_ready *rd)
{
	size_t		k;

	if (rd->truncate_from)
	{
		k = 0;
		while (k < nd->n_log && nd->log[k].index < rd->truncate_from)
			k++;
		for (size_t i = k; i < nd->n_log; i++)
			free(nd->log[i].data);
		nd->n_log = k;
	}
	if (rd->snapshot_changed)
	{
		size_t		drop = 0;

		nd->snap = *rd->snapshot;
		while (drop < nd->n_log && nd->log[drop].index <= nd->snap.index)
			free(nd->log[drop++].data);
		memmove(nd->log, nd->log + drop, (nd->n_log - drop) * sizeof(raft_entry));
		nd->n_log -= drop;
	}
	if (rd->n_entries)
	{
		raft_index	first = rd->entries[0].index;

		k = 0;
		while (k < nd->n_log && nd->log[k].index < first)
			k++;
		for (size_t i = k; i < nd->n_log; i++)
			free(nd->log[i].data);
		nd->n_log = k;
		nd->log = realloc(nd->log, (nd->n_log + rd->n_entries) * sizeof(raft_entry));
		for (size_t i = 0; i < rd->n_entries; i++)
		{
			raft_entry *e = &nd->log[nd->n_log++];

			*e = rd->entries[i];
			e->data = NULL;
			if (e->len)
			{
				e->data = malloc(e->len);
				memcpy(e->data, rd->entries[i].data, e->len);
			}
		}
	}
	if (rd->hs_changed)
		nd->hs = rd->hs;
}

bool
h_cycle(h_net *net, raft_id id)
{
	h_node	   *nd = &net->nodes[id];
	raft_ready	rd;

	if (!nd->up || !raft_has_ready(nd->r))
		return false;
	if (raft_get_ready(nd->r, &rd) != 0)
		abort();
	h_persist(nd, &rd);
	for (size_t i = 0; i < rd.n_msgs; i++)
	{
		const raft_msg *m = &rd.msgs[i];
		h_wire	   *w;

		net->sent_by_type[m->type]++;
		if (net->n_wire == H_MAX_MSGS)
			abort();
		w = &net->wire[net->n_wire++];
		w->from = m->from;
		w->to = m->to;
		w->type = m->type;
		w->len = raft_msg_encoded_size(m);
		w->buf = malloc(w->len);
		raft_msg_encode(m, net->cluster_id, w->buf);
	}
	for (size_t i = 0; i < rd.n_committed; i++)
	{
		if (nd->n_applied < H_MAX_APPLIED)
		{
			nd->applied_ents[nd->n_applied] = rd.committed[i];
			nd->applied_ents[nd->n_applied].data = NULL;
			nd->n_applied++;
		}
		nd->applied = rd.committed[i].index;
	}
	for (size_t i = 0; i < rd.n_reads && nd->n_reads < H_MAX_READS; i++)
		nd->reads[nd->n_reads++] = rd.reads[i];
	if (rd.snapshot_wanted)
	{
		nd->snapshot_wanted = true;
		nd->wanted = *rd.wanted;
	}
	raft_advance(nd->r, &rd);
	return true;
}

size_t
h_deliver_once(h_net *net)
{
	size_t		n = net->n_wire,
				delivered = 0;
	h_wire	   *batch = malloc(sizeof(h_wire) * (n ? n : 1));

	memcpy(batch, net->wire, sizeof(h_wire) * n);
	net->n_wire = 0;
	for (size_t i = 0; i < n; i++)
	{
		h_wire	   *w = &batch[i];
		h_node	   *nd = &net->nodes[w->to];
		raft_msg	m;
		uint64_t	cid;

		if (w->to >= 1 && (int) w->to <= net->n && nd->up &&
			!net->cut[w->from][w->to] && !net->drop_type[w->type])
		{
			if (raft_msg_decode(w->buf, w->len, &cid, &m, NULL) != 0)
				abort();
			if (net->tracing)
			{
				char		line[256];

				h_format_msg(&m, line, sizeof(line));
				net->trace_len += snprintf(net->trace + net->trace_len,
										   sizeof(net->trace) - net->trace_len,
										   "%s\n", line);
			}
			raft_step(nd->r, &m);
			raft_msg_free(&m, NULL);
			delivered++;
		}
		free(w->buf);
	}
	free(batch);
	return delivered;
}

void
h_settle(h_net *net)
{
	for (int round = 0; round < 1000; round++)
	{
		bool		moved = false;

		for (int i = 1; i <= net->n; i++)
			while (h_cycle(net, i))
				moved = true;
		if (net->n_wire == 0 && !moved)
			return;
		h_deliver_once(net);
	}
	fprintf(stderr, "h_settle: no quiescence\n");
	abort();
}

void
h_tick(h_net *net, raft_id id, uint64_t ms)
{
	h_node	   *nd = &net->nodes[id];

	nd->now += ms;
	if (nd->up)
		raft_tick(nd->r, nd->now);
}

void
h_run(h_net *net, uint64_t ms)
{
	uint64_t	step = 5;

	for (uint64_t t = 0; t < ms; t += step)
	{
		for (int i = 1; i <= net->n; i++)
			h_tick(net, i, step);
		h_settle(net);
	}
}

void
h_campaign(h_net *net, raft_id id)
{
	h_node	   *nd = &net->nodes[id];
	uint64_t	d = raft_next_deadline(nd->r);

	if (d > nd->now)
		h_tick(net, id, d - nd->now);
	else
		h_tick(net, id, 0);
	h_settle(net);
}

void
h_isolate(h_net *net, raft_id id)
{
	for (int i = 1; i <= H_MAX_NODES; i++)
	{
		net->cut[id][i] = true;
		net->cut[i][id] = true;
	}
}

void
h_heal(h_net *net)
{
	memset(net->cut, 0, sizeof(net->cut));
}

void
h_crash(h_net *net, raft_id id)
{
	h_node	   *nd = &net->nodes[id];

	raft_free(nd->r);
	nd->r = NULL;
	nd->up = false;
}

void
h_restart(h_net *net, raft_id id)
{
	h_boot(net, id);
}

raft_id
h_leader(h_net *net)
{
	raft_id		lead = 0;
	raft_term	term = 0;

	/* a deposed leader may not know yet: the newest term wins */
	for (int i = 1; i <= net->n; i++)
	{
		raft_status st;

		if (!net->nodes[i].up)
			continue;
		raft_get_status(net->nodes[i].r, &st);
		if (st.role == RAFT_LEADER && st.term >= term)
		{
			lead = i;
			term = st.term;
		}
	}
	return lead;
}

bool
h_peek(h_net *net, uint8_t type, raft_id from, raft_id to, raft_msg *out)
{
	for (size_t i = 0; i < net->n_wire; i++)
	{
		h_wire	   *w = &net->wire[i];
		uint64_t	cid;

		if (w->type != type || (from && w->from != from) || (to && w->to != to))
			continue;
		raft_msg	m;

		if (raft_msg_decode(w->buf, w->len, &cid, &m, NULL) != 0)
			abort();
		*out = m;
		raft_msg_free(&m, NULL);
		out->entries = NULL;	/* keep only the scalar fields */
		out->snapshot = NULL;
		return true;
	}
	return false;
}

size_t
h_count(h_net *net, uint8_t type, raft_id from, raft_id to)
{
	size_t		n = 0;

	for (size_t i = 0; i < net->n_wire; i++)
		if (net->wire[i].type == type && (!from || net->wire[i].from == from) &&
			(!to || net->wire[i].to == to))
			n++;
	return n;
}

raft_msg
h_msg(uint8_t type, raft_id from, raft_id to, raft_term term)
{
	raft_msg	m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.from = from;
	m.to = to;
	m.term = term;
	return m;
}

raft_status
h_status(h_net *net, raft_id id)
{
	raft_status st;

	raft_get_status(net->nodes[id].r, &st);
	return st;
}

static const char *const h_type_names[] = {
	"?", "APP", "APP_RESP", "HB", "HB_RESP", "VOTE", "VOTE_RESP",
	"PREVOTE", "PREVOTE_RESP", "SNAP", "TIMEOUT_NOW", "READ", "READ_RESP", "APPLIED"
};

void
h_format_msg(const raft_msg *m, char *buf, size_t len)
{
	int			n;

	n = snprintf(buf, len, "%llu->%llu %s t%llu",
				 (unsigned long long) m->from, (unsigned long long) m->to,
				 h_type_names[m->type], (unsigned long long) m->term);
	switch (m->type)
	{
		case RAFT_MSG_APPEND:
			snprintf(buf + n, len - n, " prev=%llu/t%llu commit=%llu ents=%u",
					 (unsigned long long) m->index, (unsigned long long) m->log_term,
					 (unsigned long long) m->commit, m->n_entries);
			break;
		case RAFT_MSG_APPEND_RESP:
			if (m->reject)
				snprintf(buf + n, len - n, " reject=%llu hint=%llu/t%llu",
						 (unsigned long long) m->index,
						 (unsigned long long) m->hint_index,
						 (unsigned long long) m->hint_term);
			else
				snprintf(buf + n, len - n, " match=%llu", (unsigned long long) m->index);
			break;
		case RAFT_MSG_HEARTBEAT:
			snprintf(buf + n, len - n, " commit=%llu seq=%llu",
					 (unsigned long long) m->commit, (unsigned long long) m->seq);
			break;
		case RAFT_MSG_HEARTBEAT_RESP:
			snprintf(buf + n, len - n, " seq=%llu", (unsigned long long) m->seq);
			break;
		case RAFT_MSG_VOTE:
		case RAFT_MSG_PREVOTE:
			snprintf(buf + n, len - n, " last=%llu/t%llu%s",
					 (unsigned long long) m->index, (unsigned long long) m->log_term,
					 m->transfer ? " transfer" : "");
			break;
		case RAFT_MSG_VOTE_RESP:
		case RAFT_MSG_PREVOTE_RESP:
			snprintf(buf + n, len - n, "%s", m->reject ? " reject" : " grant");
			break;
		case RAFT_MSG_READ_INDEX:
			snprintf(buf + n, len - n, " ctx=%llu", (unsigned long long) m->ctx);
			break;
		case RAFT_MSG_APPLIED:
			snprintf(buf + n, len - n, " idx=%llu", (unsigned long long) m->index);
			break;
		case RAFT_MSG_READ_INDEX_RESP:
			snprintf(buf + n, len - n, " ctx=%llu idx=%llu%s",
					 (unsigned long long) m->ctx, (unsigned long long) m->index,
					 m->reject ? " reject" : "");
			break;
		case RAFT_MSG_SNAPSHOT:
			if (m->snapshot)
				snprintf(buf + n, len - n, " snap=%llu/t%llu",
						 (unsigned long long) m->snapshot->index,
						 (unsigned long long) m->snapshot->term);
			break;
		default:
			break;
	}
}
