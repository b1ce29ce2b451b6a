/*-------------------------------------------------------------------------
 *
 * anchor.h
 *	  The identity's ties to its data directory (anchor.c), worker only.
 *
 * IDENTIFICATION
 *	  src/anchor.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_ANCHOR_H
#define RAFTABLE_ANCHOR_H

#include "raftable.h"

typedef struct RaftableAnchor
{
	bool		recorded;		/* false: an identity from release 0.1 */
	uint64		system_identifier;
	uint32		timeline;
	char		slot[NAMEDATALEN];	/* "": none (slots unavailable) */
} RaftableAnchor;

extern void anchor_take(uint64 node_id, RaftableAnchor *a);
extern bool anchor_holds(uint64 node_id, const RaftableAnchor *a, char *why,
						 size_t len);
extern void anchor_drop_slots(uint64 keep_id);

#endif							/* RAFTABLE_ANCHOR_H */
