/*-------------------------------------------------------------------------
 *
 * storage.h
 *	  The durable Raft log, hard state and snapshot (storage.c), worker only.
 *
 * IDENTIFICATION
 *	  src/storage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_STORAGE_H
#define RAFTABLE_STORAGE_H

#include "anchor.h"
#include "core/raft.h"
#include "status.h"

typedef struct RaftableIdentity
{
	bool		in_cluster;
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[RAFTABLE_NAME_LEN];
	char		self_conninfo[RAFTABLE_CONNINFO_LEN];
	RaftableAnchor anchor;
} RaftableIdentity;

extern Oid	storage_extension_oid(void);
extern bool storage_load(RaftableIdentity *id, raft_hard_state *hs,
						 raft_snapshot_meta *snap, raft_entry **entries,
						 size_t *n, uint64 *applied);
extern void storage_save_identity(const RaftableIdentity *id,
								  const raft_snapshot_meta *snap);
extern void storage_reset(void);
extern void storage_record_anchor(RaftableIdentity *id);
extern void storage_drop_stale_slots(uint64 keep_id);
extern void storage_persist(const raft_ready *rd, bool hs);

#endif							/* RAFTABLE_STORAGE_H */
