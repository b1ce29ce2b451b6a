/*-------------------------------------------------------------------------
 *
 * waits.h
 *	  What each backend waits on raftable for (waits.c, raftable.waits).
 *
 * IDENTIFICATION
 *	  src/waits.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_WAITS_H
#define RAFTABLE_WAITS_H

#include "raftable.h"

typedef enum RaftableWaitKind
{
	RAFTABLE_WAIT_NONE = 0,
	RAFTABLE_WAIT_COMMIT,
	RAFTABLE_WAIT_READ_INDEX,
	RAFTABLE_WAIT_READ_AFTER_INDEX,
	RAFTABLE_WAIT_SNAPSHOT,
} RaftableWaitKind;

extern Size waits_shmem_size(void);
extern void waits_shmem_init(void);
extern void raftable_report_wait(int kind, uint64 index);

#endif							/* RAFTABLE_WAITS_H */
