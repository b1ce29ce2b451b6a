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
#include "status.h"
#include "utils/elog.h"

extern TransactionId snapshot_install_xid;	/* the last install's */
extern uint64 snapshot_install(const char *conninfo, uint64 source_id,
							   uint64 min_index);
extern void snapshot_failed(const ErrorData *err);

/* the request between the Raft worker and the apply worker */
typedef struct SnapshotAsk
{
	uint64		generation;
	uint64		min_index;		/* the offered snapshot's index */
	uint64		source_id;
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* as recorded */
} SnapshotAsk;

extern void snapshot_ask(uint64 min_index, uint64 source_id,
						 const char *conninfo);
extern bool snapshot_answered(bool *ok, uint64 *installed);
extern bool snapshot_asked(SnapshotAsk *ask);
extern void snapshot_answer(const SnapshotAsk *ask, bool ok, uint64 installed);

#endif							/* RAFTABLE_SNAPSHOT_H */
