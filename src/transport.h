/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  Outbound libpq connections to the peers (transport.c), worker only;
 *	  the batch framing is shared with raftable._deliver.
 *
 * IDENTIFICATION
 *	  src/transport.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_TRANSPORT_H
#define RAFTABLE_TRANSPORT_H

#include "raftable.h"
#include "lib/stringinfo.h"

/*
 * Outbound connections to the peers, one per peer, non-blocking.  The
 * worker queues encoded messages with transport_send(); they leave in
 * batches, one SQL call of raftable._deliver(bytea) per batch, several
 * calls in flight per connection (libpq pipeline mode).  A batch is a
 * sequence of (uint32 little-endian length, message bytes).
 */
extern int	transport_frame_next(const uint8 **p, size_t *left,
								 const uint8 **msg, uint32 *len);
extern void transport_frame_append(StringInfo buf, const uint8 *msg, uint32 len);
extern void transport_init(void);
extern void transport_shutdown(void);

/* this node's id: sent as application_name "raftable-node-<id>" */
extern void transport_set_self(uint64 id);

/* peers to talk to: id and conninfo as recorded; others dropped */
extern void transport_set_peer(uint64 id, const char *conninfo);
extern void transport_forget_peers_except(const uint64 *ids, int n);

extern void transport_send(uint64 to, const uint8 *msg, size_t len);

/* the sockets to wait on, and when they may have been replaced */
extern int	transport_wait_events(pgsocket *socks, int *events, int max);
extern uint64 transport_socket_epoch(void);

/* after a wait: progress connects, flush queues, read results, timeouts */
extern void transport_poll(void);
extern long transport_next_timeout_ms(void);	/* -1: none */

extern bool transport_peer_reachable(uint64 id);
extern uint64 transport_messages_sent(void);
extern uint64 transport_left_out(uint64 *by);

#endif							/* RAFTABLE_TRANSPORT_H */
