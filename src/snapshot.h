/*-------------------------------------------------------------------------
 *
 * snapshot.h
 *	  Snapshot installation (snapshot.c), in the apply worker.
 *
 * IDENTIFICATION
 *	  src/snapshot.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_SNAPSHOT_H
#define RAFTABLE_SNAPSHOT_H

#include "raftable.h"
#include "utils/elog.h"

extern TransactionId snapshot_install_xid;	/* the last install's */
extern uint64 snapshot_install(const char *conninfo, uint64 source_id,
							   uint64 min_index);
extern void snapshot_failed(const ErrorData *err);

#endif							/* RAFTABLE_SNAPSHOT_H */
