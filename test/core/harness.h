/*
 * harness.h
 *	  A hand-driven cluster for the core's unit tests.
 *
 * Unlike the simulator, nothing here happens by itself: a test ticks a node,
 * delivers messages, cuts links, and then looks at the result, so that each
 * test reads as a short trace of one Raft rule.  Messages travel encoded
 * (the real codec) and every node has a "disk" that survives crashes.
 */
#ifndef RAFTABLE_HARNESS_H
#define RAFTABLE_HARNESS_H

#include "raft.h"

#define H_MAX_NODES 8
#define H_MAX_MSGS 4096
#define H_MAX_APPLIED 4096
#define H_MAX_READS 256

typedef struct h_wire
{
	raft_id		from;
	raft_id		to;
	uint8_t		type;
	uint8_t    *buf;
	size_t		len;
} h_wire;

typedef struct h_node
{
	raft	   *r;
	raft_options opts;
	bool		up;
	/* disk */
	raft_hard_state hs;
	raft_snapshot_meta snap;
	raft_entry *log;
	size_t		n_log;
	raft_index	applied;
	/* what the driver saw */
	raft_entry	applied_ents[H_MAX_APPLIED];	/* data not kept */
	size_t		n_applied;
	raft_read_state reads[H_MAX_READS];
	size_t		n_reads;
	bool		snapshot_wanted;
	raft_snapshot_meta wanted;
	uint64_t	now;
} h_node;

typedef struct h_net
{
	int			n;				/* nodes are ids 1..n */
	h_node		nodes[H_MAX_NODES + 1];
	h_wire		wire[H_MAX_MSGS];
	size_t		n_wire;
	bool		cut[H_MAX_NODES + 1][H_MAX_NODES + 1];	/* from -> to dropped */
	bool		drop_type[RAFT_MSG_TYPE_MAX + 1];	/* lose all of a type */
	uint64_t	cluster_id;
	uint64_t	sent_by_type[RAFT_MSG_TYPE_MAX + 1];
	bool		tracing;		/* record delivered messages in trace */
	char		trace[16384];
	size_t		trace_len;
} h_net;

/* options used by every node; tests may change them before h_start() */
extern void h_default_options(raft_options *o, raft_id id);

/* n nodes, voters 1..voters bootstrapped with that configuration */
extern h_net *h_new(int n, int voters);
extern h_net *h_new_opts(int n, int voters, bool pre_vote, bool check_quorum);
extern void h_free(h_net *net);
extern raft *h_r(h_net *net, raft_id id);

/* run one Ready cycle on a node (persist, send, apply); false if none */
extern bool h_cycle(h_net *net, raft_id id);

/* deliver queued messages (and cycle nodes) until nothing moves */
extern void h_settle(h_net *net);

/* deliver only the messages queued now, one round, without cycling */
extern size_t h_deliver_once(h_net *net);

/* advance a node's clock by ms and tick it */
extern void h_tick(h_net *net, raft_id id, uint64_t ms);

/* advance every node's clock by ms (in heartbeat steps), settling as we go */
extern void h_run(h_net *net, uint64_t ms);

/* make id time out and campaign, then settle */
extern void h_campaign(h_net *net, raft_id id);

extern void h_isolate(h_net *net, raft_id id);
extern void h_heal(h_net *net);
extern void h_crash(h_net *net, raft_id id);
extern void h_restart(h_net *net, raft_id id);
extern void h_drop_wire(h_net *net);

/* the leader of the newest term among up nodes, or 0 */
extern raft_id h_leader(h_net *net);

extern raft_conf h_conf(int voters, int learners);

/* the first queued message of that type (from/to 0: any), scalars only */
extern bool h_peek(h_net *net, uint8_t type, raft_id from, raft_id to,
				   raft_msg *out);
extern size_t h_count(h_net *net, uint8_t type, raft_id from, raft_id to);
extern raft_msg h_msg(uint8_t type, raft_id from, raft_id to, raft_term term);
extern raft_status h_status(h_net *net, raft_id id);

/* one line describing a message, as the traces show it */
extern void h_format_msg(const raft_msg *m, char *buf, size_t len);

#endif							/* RAFTABLE_HARNESS_H */
