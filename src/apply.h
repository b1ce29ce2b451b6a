/*-------------------------------------------------------------------------
 *
 * apply.h
 *	  The apply worker (apply.c): what other modules ask of it.
 *
 * IDENTIFICATION
 *	  src/apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_APPLY_H
#define RAFTABLE_APPLY_H

#include "raftable.h"
#include "utils/snapshot.h"

extern bool raftable_applying;	/* this process applies: capture nothing */
extern bool raftable_applied_visible(uint64 index, Snapshot snapshot);

#endif							/* RAFTABLE_APPLY_H */
