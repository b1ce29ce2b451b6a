/*-------------------------------------------------------------------------
 *
 * proposal.h
 *	  The proposal slots (proposal.c): a committing transaction hands its
 *	  change set to the Raft worker and waits for the entry's fate.
 *
 * IDENTIFICATION
 *	  src/proposal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_PROPOSAL_H
#define RAFTABLE_PROPOSAL_H

#include "core/raft.h"
#include "raftable.h"
#include "storage/lwlock.h"

/* what a slot's holder learns; the states are proposal.c's */
typedef enum ProposalOutcome
{
	PROPOSAL_WITHDRAWN,			/* the worker never took it: nothing happened */
	PROPOSAL_REFUSED,			/* not appended: rc says why */
	PROPOSAL_APPENDED,			/* in the log at (index, term) */
	PROPOSAL_COMMITTED,			/* committed */
	PROPOSAL_LOST,				/* leadership lost first: outcome unknown */
	PROPOSAL_TIMED_OUT,			/* taken, no answer within the timeout */
} ProposalOutcome;

extern Size proposal_shmem_size(void);
extern void proposal_shmem_init(LWLock *lock);

/* backends */
extern ProposalOutcome proposal_append(const char *data, int len, int *rc,
									   uint64 *index, uint64 *term);
extern ProposalOutcome proposal_wait_committed(void);
extern void proposal_release(bool aborted);
extern uint64 proposal_writable_from(uint64 term, uint64 term_start_index);

/* the Raft worker */
extern bool proposal_take(raft *r);
extern void proposal_settle(const raft_status *st, bool exiting);

#endif							/* RAFTABLE_PROPOSAL_H */
