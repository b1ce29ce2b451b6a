/*
 * peer.h
 *	  Peer identity (peer.c): the role each member is bound to, the
 *	  conninfo this node uses to reach a peer, and the checks the peer
 *	  entry points make of their caller.
 */
#ifndef RAFTABLE_PEER_H
#define RAFTABLE_PEER_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* shared memory, laid out by shmem.c's hooks */
extern Size peer_shmem_size(void);
extern void peer_shmem_init(void);

/* one key='value' pair of a conninfo, quoted as libpq reads it */
extern void peer_append_option(StringInfo buf, const char *keyword,
							   const char *val);

/* the role a conninfo names (its user keyword): "" when none */
extern void peer_role_of(const char *conninfo, char role[NAMEDATALEN]);

/*
 * A peer's conninfo as this node uses it: the peer's, with role as its
 * user ("" removes the user: libpq's default user applies).  palloc'd.
 */
extern char *peer_conninfo_as(const char *conninfo, const char *role);

/*
 * The worker publishes this node's own role, each member's bound role
 * (roles[i] for the i-th member of the status it publishes), the leader
 * it hears of (0: none now) and whether a committed configuration leaves
 * this node out, holding raftable_shared->lock exclusively; or, out of
 * any cluster, nothing.
 */
extern void peer_publish(const char *self_role,
						 const char (*roles)[NAMEDATALEN], int n,
						 uint64 leader, bool removed);
extern void peer_publish_none(void);

/* this node's own role, as the worker last published it */
extern void peer_self_role(char role[NAMEDATALEN]);

/*
 * _deliver: may this session send messages as node `from`?  Sets
 * *is_member: whether `from` is in the configuration the worker published.
 */
extern bool peer_sender_ok(uint64 from, bool *is_member);

/* _deliver dropped a message from `from`: NOTICE at level, LOG (limited) */
extern void peer_report_dropped(uint64 from, int level);

/* remove_node: ERROR if this session is a member's role removing another */
extern void peer_check_remove(uint64 id);

/* _leave: ERROR unless this session may tell this node it was removed */
extern void peer_check_leave(void);

#endif							/* RAFTABLE_PEER_H */
