/*-------------------------------------------------------------------------
 *
 * readindex.h
 *	  Read index rounds (readindex.c): the backends' side and the worker's.
 *
 * IDENTIFICATION
 *	  src/readindex.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_READINDEX_H
#define RAFTABLE_READINDEX_H

#include "core/raft.h"
#include "status.h"

typedef enum RaftableReadCounter
{
	RAFTABLE_COUNT_STRONG,
	RAFTABLE_COUNT_EVENTUAL,
	RAFTABLE_COUNT_BOUNDED,
	RAFTABLE_COUNT_ROUNDS,
	RAFTABLE_COUNT_TIMEOUTS,
	RAFTABLE_COUNT_WAIT_US,
	RAFTABLE_READ_COUNTERS
} RaftableReadCounter;

extern void readindex_count(int counter, uint64 n);
extern void readindex_stats(RaftableStats *s);
extern Size readindex_shmem_size(void);
extern void readindex_shmem_init(void);
extern int64 readindex_now_us(void);
#define READINDEX_TIMED_OUT 1	/* readindex_round: no answer in time */
extern int	readindex_round(int64 deadline_us, uint64 *index);
extern bool readindex_proof(uint64 *index, int64 *age_us);
extern void readindex_start_rounds(raft *r, int64 stale_us);
extern void readindex_answer(uint64 round, uint64 index, int err);
extern void readindex_reset(void);
extern bool readindex_granted(uint64 from, uint64 hint_term, uint64 *index);
extern void readindex_publish_grant(const raft *r);

#endif							/* RAFTABLE_READINDEX_H */
