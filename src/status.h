/*-------------------------------------------------------------------------
 *
 * status.h
 *	  What the worker publishes and what backends ask of it, as the rest of
 *	  raftable sees it: the status, members and counters (copies), the
 *	  requests' type, waking the workers, and the checks every SQL entry
 *	  point makes.  Implemented in shmem.c, over a layout (shmem.h) that
 *	  only the modules owning a part of it include.
 *
 * IDENTIFICATION
 *	  src/status.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_STATUS_H
#define RAFTABLE_STATUS_H

#include "core/raft.h"
#include "raftable.h"
#include "storage/condition_variable.h"
#include "utils/timestamp.h"

#define RAFTABLE_NAME_LEN	64		/* node names, NUL included */
#define RAFTABLE_CONNINFO_LEN 1024	/* conninfo with the password removed */
#define RAFTABLE_MAX_CONF_BYTES (1 + 4 + RAFT_MAX_MEMBERS * (11 + RAFT_MAX_ADDR))

/* one member as the views show it */
typedef struct RaftableMemberInfo
{
	uint64		id;
	char		name[RAFTABLE_NAME_LEN];
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* password stripped */
	bool		voter;
	bool		is_self;
	bool		reachable;		/* a connection to it is up (self: true) */
	bool		progress_known; /* leader only: match/lag below are real */
	uint64		match_index;
	uint64		lag_entries;
	uint64		applied_index;	/* as it last reported; 0: unknown */
	int64		last_contact_ms;	/* -1: never */
	uint64		stalled_at;		/* the entry its apply is stuck on; 0: none
								 * or unknown */
	int			stall_code;		/* ... its SQLSTATE */
} RaftableMemberInfo;

/* what the worker publishes after every cycle */
typedef struct RaftableStatus
{
	bool		worker_running;
	bool		in_cluster;		/* this node has a cluster identity */
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[RAFTABLE_NAME_LEN];
	int			role;			/* raft_role, or -1 for "none" */
	char		role_name[16];	/* as the views show it */
	bool		is_voter;
	uint64		term;
	uint64		leader_id;
	uint64		commit_index;
	uint64		applied_index;
	uint64		last_log_index;
	uint64		snapshot_index;
	uint64		term_start_index;	/* leader: first entry of its term */
	uint64		conf_index;		/* the configuration in force: its index */
	bool		conf_committed; /* ... and whether it is committed */
	TimestampTz leader_contact_at;	/* last contact with a leader; the view
									 * shows its age at read time */
	int			n_members;
	RaftableMemberInfo members[RAFT_MAX_MEMBERS];
} RaftableStatus;

/* cumulative since the postmaster started (the worker adds its deltas) */
typedef struct RaftableStats
{
	uint64		elections;
	uint64		leader_changes;
	uint64		proposals;
	uint64		commits;
	uint64		entries_applied;
	uint64		strong_reads;
	uint64		eventual_reads;
	uint64		bounded_reads;
	uint64		read_index_rounds;
	uint64		read_timeouts;
	uint64		write_timeouts;
	uint64		messages_sent;
	uint64		messages_received;
	uint64		snapshots_sent;
	uint64		snapshots_received;
	uint64		read_wait_us;	/* shown in ms */
} RaftableStats;

typedef enum RaftableRequestType
{
	RAFTABLE_REQ_CREATE_CLUSTER = 1,
	RAFTABLE_REQ_JOIN,			/* become a (future) member: identity only */
	RAFTABLE_REQ_LEAVE,			/* forget the cluster identity */
	RAFTABLE_REQ_ADD_LEARNER,	/* the worker promotes it once caught up */
	RAFTABLE_REQ_REMOVE,
	RAFTABLE_REQ_TRANSFER,
	RAFTABLE_REQ_GET_CONF,		/* the members with full conninfo */
} RaftableRequestType;

/* a request from a backend to the worker, and its answer */
typedef struct RaftableRequest
{
	bool		in_use;
	bool		done;
	uint64		generation;		/* which request the slot holds */
	int			type;			/* RaftableRequestType */
	uint64		node_id;
	uint64		cluster_id;
	char		name[RAFTABLE_NAME_LEN];
	char		conninfo[RAFTABLE_CONNINFO_LEN];	/* as recorded (never a password) */
	uint32		members_len;	/* JOIN: raft_conf_encode()d members */
	uint8		members[RAFTABLE_MAX_CONF_BYTES];
	/* answer */
	int			rc;				/* RAFT_OK or RAFT_E* */
	uint64		result;			/* node id, log index, ... */
	char		error[256];		/* detail when rc != 0 */
} RaftableRequest;

/* _PG_init: ask for the shared memory */
extern void raftable_shmem_request(void);

/* the shared memory is there (raftable is preloaded, and started) */
extern bool raftable_shmem_ready(void);

extern bool raftable_inbox_push(const uint8 *msg, uint32 len);
extern uint32 raftable_inbox_pop(uint8 *buf, uint32 bufsize);
extern void raftable_wake_worker(void);
extern void raftable_wake_apply(void);
extern RaftableStatus *raftable_status_copy(bool with_members);
extern RaftableStatus *raftable_status_get(bool with_members, int wait_ms);
extern const RaftableMemberInfo *raftable_status_member(const RaftableStatus *st,
														uint64 id);
extern void raftable_require_served_database(void);
extern void raftable_require_cluster(const RaftableStatus *st);
extern void raftable_require_leader(const RaftableStatus *st);
extern void raftable_error_not_leader(int sqlstate, const char *msg) pg_attribute_noreturn();


/* broadcast whenever the status changes (commit, role, applied, ...) */
extern ConditionVariable *raftable_status_cv(void);
extern bool raftable_in_cluster(void);
extern bool raftable_tables_known(void);
extern uint64 raftable_applied_index(void);
extern void raftable_stats_copy(RaftableStats *s);
extern void raftable_count_write_timeout(void);
extern void raftable_apply_error(bool full, char *buf, size_t len);

#endif							/* RAFTABLE_STATUS_H */
