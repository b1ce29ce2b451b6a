/*-------------------------------------------------------------------------
 *
 * request.h
 *	  The request slots (request.c): a backend asks the Raft worker for a
 *	  membership change or its configuration, and waits for the answer.
 *
 * IDENTIFICATION
 *	  src/request.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_REQUEST_H
#define RAFTABLE_REQUEST_H

#include "raftable.h"
#include "status.h"
#include "storage/lwlock.h"

extern Size request_shmem_size(void);
extern void request_shmem_init(LWLock *lock);

/* backends */
extern RaftableRequest *request_submit(const RaftableRequest *in);

/* the Raft worker */
typedef void (*RequestHandler) (RaftableRequest *req);
extern bool request_pending(void);
extern void request_serve(RequestHandler handle);
extern void request_answer(RaftableRequest *req, int rc, uint64 result,
						   const char *error);
extern void request_abandon_all(const char *why);

#endif							/* RAFTABLE_REQUEST_H */
