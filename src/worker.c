/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The Raft background worker: one event loop around the pure core.
 *
 * Each iteration: tick the core with the current time, feed it the peer
 * messages the inbox holds and the requests backends left, then run Ready
 * cycles -- persist (storage.c), send (transport.c), apply, advance --
 * publish the status for the views, and wait on one WaitEventSet holding
 * the latch, postmaster death and every peer socket, until the core's next
 * deadline at the latest.
 *
 * The worker is the single writer of the log and the hard state.  It works
 * only while the extension exists in raftable.database: before CREATE
 * EXTENSION and after DROP EXTENSION it idles, checking once a second.
 *
 * Memory: worker_cxt lives as long as the process; cycle_cxt is reset at
 * every iteration.  The core allocates with malloc (raft.h's default
 * allocator) and is rebuilt from storage after RAFT_ENOMEM.
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "anchor.h"
#include "member.h"
#include "miscadmin.h"
#include "peer.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "proposal.h"
#include "raftable.h"
#include "readindex.h"
#include "request.h"
#include "shmem.h"
#include "snapshot.h"
#include "storage.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "transport.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* the largest message a peer may send: entries capped at max_msg_bytes */
#define WORKER_MAX_MSG_BYTES (8 * 1024 * 1024)

static MemoryContext worker_cxt;
static MemoryContext cycle_cxt;
static MemoryContext worker_core_cxt;	/* the Raft core's, see below */
static raft_allocator worker_core_allocator;
static raft *worker_raft;
static RaftableIdentity worker_id;
static uint8 *worker_msgbuf;
static instr_time worker_epoch;
static raft_index worker_conf_index;	/* configuration the transport knows */
static uint64 worker_member_since;	/* first index whose configuration holds
									 * us (0: none yet): see member_since */
static RaftableMemberInfo *worker_members;	/* its members, as the views show
											 * them (fixed parts only) */
static char (*worker_roles)[NAMEDATALEN];	/* the role each is bound to */
static int	worker_n_members;
static char worker_self_role[NAMEDATALEN];	/* ours: we connect as it */
static RaftableStats worker_stats_base; /* shared counters at core start */
static raft_hard_state worker_persisted_hs;	/* as storage holds it */
static bool worker_settle_needed;	/* proposals were appended */
static raft_status worker_settled;	/* the status proposals were settled at */
static raft_snapshot_meta *worker_snap_meta;	/* offered, being fetched */
static bool worker_snap_pending;

static uint64 worker_apply_told;	/* commit index the apply worker was
									 * last woken for */

static void worker_publish(void);
static void worker_set_member_since(uint64 index);
static void worker_wake_apply(uint64 commit);
static void worker_sync_peers(void);

/* ms since the worker started, from the monotonic clock */
static uint64
worker_now(void)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, worker_epoch);
	return (uint64) INSTR_TIME_GET_MILLISEC(now);
}

/*
 * The core's memory, in a context of its own ("raftable core") so that it
 * shows in MemoryContextStats.  A failed allocation returns NULL, as the
 * core expects: it then stops with RAFT_ENOMEM and the worker starts
 * over.  Each block carries its size, for realloc (PostgreSQL 15 has no
 * repalloc that returns NULL).
 */
#define WORKER_CORE_HDR MAXALIGN(sizeof(Size))

static void *
worker_core_alloc(void *ctx, size_t size)
{
	char	   *p = MemoryContextAllocExtended((MemoryContext) ctx, size + WORKER_CORE_HDR,
											   MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);

	if (p == NULL)
		return NULL;
	*(Size *) p = size;
	return p + WORKER_CORE_HDR;
}

static void
worker_core_free(void *ctx, void *ptr)
{
	if (ptr != NULL)
		pfree((char *) ptr - WORKER_CORE_HDR);
}

static void *
worker_core_realloc(void *ctx, void *ptr, size_t size)
{
	void	   *p = worker_core_alloc(ctx, size);

	if (p == NULL || ptr == NULL)
		return p;
	memcpy(p, ptr, Min(size, *(Size *) ((char *) ptr - WORKER_CORE_HDR)));
	worker_core_free(ctx, ptr);
	return p;
}

static void
worker_options(raft_options *opts)
{
	int			hb = Min(raftable_heartbeat_interval, raftable_election_timeout / 2);

	raft_options_default(opts, worker_id.node_id);
	opts->seed = worker_id.node_id ^ (uint64) MyProcPid ^ (uint64) GetCurrentTimestamp();
	opts->election_timeout = raftable_election_timeout;
	opts->heartbeat_interval = Max(hb, 1);
	opts->allocator = &worker_core_allocator;
}

/* drop the core and the connections: not in a cluster (any more) */
static void
worker_stop_raft(void)
{
	uint64		forgotten;

	if (worker_raft)
		raft_free(worker_raft);
	worker_raft = NULL;
	MemoryContextReset(worker_core_cxt);	/* nothing of it is left */
	worker_conf_index = 0;
	worker_set_member_since(0);
	worker_n_members = 0;
	worker_snap_pending = false;
	transport_forget_peers_except(NULL, 0);
	readindex_reset();		/* no round in flight will be answered */
	(void) transport_left_out(&forgotten);	/* about the cluster we leave */
}

/*
 * Wake the apply worker for a commit index it has not been woken for, once
 * the status shows it (the apply worker reads it there): one wake-up per
 * commit, not one per place that sees it (each would cost the apply
 * worker a loop, and the kernel a signal).
 */
static void
worker_wake_apply(uint64 commit)
{
	if (commit == worker_apply_told)
		return;
	worker_apply_told = commit;
	raftable_wake_apply();
}

/*
 * Note the first log index whose configuration holds this node, and
 * publish it (shmem.h, member_since): 0 for none yet.  worker_check_removed
 * trusts only a node that was a member once, and reads.c trusts this
 * node's list of replicated tables only once it has applied that far.
 */
static void
worker_set_member_since(uint64 index)
{
	worker_member_since = index;
	pg_atomic_write_u64(&raftable_shared->member_since,
						worker_raft == NULL ? 0 :
						index == 0 ? PG_UINT64_MAX : index);
}

/*
 * The first index at which the snapshot or an entry of the log holds this
 * node in its configuration; 0 if none does.  A snapshot at index 0 is
 * the cluster this node created (create_cluster: it holds the node, and
 * it is the cluster's first state) or _join's (which leaves the node out
 * until the leader adds it).
 */
static uint64
worker_member_from(const raft_snapshot_meta *snap, const raft_entry *entries, size_t n)
{
	raft_conf  *conf = palloc(sizeof(raft_conf));

	if (raft_conf_find(&snap->conf, worker_id.node_id))
		return Max(snap->index, 1);
	for (size_t i = 0; i < n; i++)
		if (entries[i].type == RAFT_ENTRY_CONF &&
			raft_conf_decode(entries[i].data, entries[i].len, conf) == 0 &&
			raft_conf_find(conf, worker_id.node_id))
			return entries[i].index;
	return 0;
}

/*
 * Build the core from what storage holds.  Without an identity the node is
 * not in a cluster and runs no core.
 */
static void
worker_start_raft(void)
{
	raft_hard_state hs;
	raft_snapshot_meta *snap = palloc(sizeof(raft_snapshot_meta));
	raft_entry *entries;
	size_t		n;
	uint64		applied;
	uint64		member_from;
	raft_options opts;
	int			rc;
	char		why[256];

	worker_stop_raft();
	if (!storage_load(&worker_id, &hs, snap, &entries, &n, &applied))
	{
		storage_drop_stale_slots(0);
		return;
	}
	if (!worker_id.anchor.recorded)
		storage_record_anchor(&worker_id);
	else if (!anchor_holds(worker_id.node_id, &worker_id.anchor, why, sizeof(why)))
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("raftable: this data directory is a copy or was restored: node %llu forgets its identity in cluster %llu",
						(unsigned long long) worker_id.node_id,
						(unsigned long long) worker_id.cluster_id),
				 errdetail_internal("%s", why),
				 errhint("Its term and vote may be behind what the node promised, or the node it was copied from may still run: add it again with raftable.add_node() on the leader, and remove node %llu there first if this server replaces it.",
						 (unsigned long long) worker_id.node_id)));
		storage_reset();
		memset(&worker_id, 0, sizeof(worker_id));
		return;
	}
	else
		storage_drop_stale_slots(worker_id.node_id);
	member_from = worker_member_from(snap, entries, n);
	peer_role_of(worker_id.self_conninfo, worker_self_role);
	worker_options(&opts);
	worker_persisted_hs = hs;
	/* a snapshot may have put the tables ahead of the log: see snapshot.c */
	applied = Min(applied, hs.commit);
	if ((rc = raft_new(&opts, &worker_raft)) != 0 ||
		(rc = raft_restore(worker_raft, &hs, snap, entries, n, applied)) != 0)
		elog(ERROR, "raftable: cannot restore the Raft state: %s", raft_strerror(rc));
	worker_set_member_since(member_from);
	raft_tick(worker_raft, worker_now());
	transport_set_self(worker_id.node_id);
	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	worker_stats_base = raftable_shared->stats;
	LWLockRelease(raftable_shared->lock);
	ereport(LOG,
			(errmsg("raftable: node %llu of cluster %llu, term %llu, log (%llu, %llu]",
					(unsigned long long) worker_id.node_id,
					(unsigned long long) worker_id.cluster_id,
					(unsigned long long) hs.term, (unsigned long long) snap->index,
					(unsigned long long) (snap->index + n))));
}

/*
 * When the configuration changed: tell the transport who the peers are
 * and how to reach them (their conninfo, as our own role: peer.c), and
 * prepare the members' names, conninfos and bound roles for the views
 * and the backends' checks once, rather than at every publish.
 */
static void
worker_sync_peers(void)
{
	raft_status st;
	const raft_conf *conf;
	uint64		ids[RAFT_MAX_MEMBERS];
	int			n = 0;

	raft_get_status(worker_raft, &st);
	if (st.conf_index == worker_conf_index && worker_conf_index != 0)
		return;
	worker_conf_index = st.conf_index;
	if (worker_member_since == 0 && st.is_member && st.conf_index > 0)
		worker_set_member_since(st.conf_index);
	conf = raft_get_conf(worker_raft);
	worker_n_members = conf->n;
	for (uint32 i = 0; i < conf->n; i++)
	{
		const raft_member *m = &conf->members[i];
		RaftableMemberInfo *mi = &worker_members[i];
		char		conninfo[RAFTABLE_CONNINFO_LEN];

		memset(mi, 0, sizeof(*mi));
		mi->id = m->id;
		mi->voter = m->voter;
		mi->is_self = m->id == worker_id.node_id;
		raftable_member_addr_decode(m->addr, m->addr_len, mi->name,
									sizeof(mi->name), conninfo, sizeof(conninfo));
		raftable_strip_password(conninfo, mi->conninfo, sizeof(mi->conninfo));
		peer_role_of(conninfo, worker_roles[i]);
		if (mi->is_self)
			continue;
		transport_set_peer(m->id, peer_conninfo_as(conninfo, worker_self_role));
		ids[n++] = m->id;
	}
	transport_forget_peers_except(ids, n);
}

/* decode and step every message the inbox holds */
static void
worker_drain_inbox(void)
{
	uint32		len;

	while ((len = raftable_inbox_pop(worker_msgbuf, WORKER_MAX_MSG_BYTES)) > 0)
	{
		raft_msg	m;
		uint64		cluster_id;

		if (worker_raft == NULL)
			continue;
		if (raft_msg_decode(worker_msgbuf, len, &cluster_id, &m,
							&worker_core_allocator) != 0)
			continue;			/* _deliver checked it; be safe anyway */
		if (cluster_id == worker_id.cluster_id && m.to == worker_id.node_id)
			raft_step(worker_raft, &m);
		raft_msg_free(&m, &worker_core_allocator);
	}
}

/*
 * The leader offered a snapshot: the apply worker copies the tables from
 * it (snapshot.c), through remote.c, which connects as our own role.
 * Offers that come while one is fetched are ignored; the leader repeats
 * its offer if the fetch fails.
 */
static void
worker_want_snapshot(const raft_snapshot_meta *meta, uint64 from)
{
	const raft_member *m = raft_conf_find(raft_get_conf(worker_raft), from);
	char		name[RAFTABLE_NAME_LEN];
	char		conninfo[RAFTABLE_CONNINFO_LEN];

	if (worker_snap_pending || m == NULL)
		return;
	raftable_member_addr_decode(m->addr, m->addr_len, name, sizeof(name),
								conninfo, sizeof(conninfo));
	memcpy(worker_snap_meta, meta, sizeof(raft_snapshot_meta));
	worker_snap_pending = true;
	snapshot_ask(meta->index, from, conninfo);
	ereport(LOG,
			(errmsg("raftable: node %llu offered a snapshot at log index %llu; copying the tables from it",
					(unsigned long long) from, (unsigned long long) meta->index)));
}

/* the apply worker answered: tell the core what is installed */
static void
worker_check_snapshot(void)
{
	bool		ok;
	uint64		installed;

	if (!worker_snap_pending || !snapshot_answered(&ok, &installed))
		return;
	worker_snap_pending = false;
	/* the tables must stand at least where the snapshot's log resumes */
	if (ok && installed >= worker_snap_meta->index)
		raft_snapshot_installed(worker_raft, worker_snap_meta);
}

/*
 * Queue a Ready's messages for the transport: all of them, or only those
 * that may precede the persist (early), or only the others.
 */
typedef enum WorkerSend
{
	WORKER_SEND_ALL,
	WORKER_SEND_EARLY,
	WORKER_SEND_LATE,
} WorkerSend;

static void
worker_send(const raft_ready *rd, WorkerSend which)
{
	for (size_t i = 0; i < rd->n_msgs; i++)
	{
		size_t		len;
		uint8	   *buf;

		if (which != WORKER_SEND_ALL &&
			raft_msg_may_precede_persist(&rd->msgs[i]) != (which == WORKER_SEND_EARLY))
			continue;
		len = raft_msg_encoded_size(&rd->msgs[i]);
		buf = palloc(len);
		raft_msg_encode(&rd->msgs[i], worker_id.cluster_id, buf);
		transport_send(rd->msgs[i].to, buf, len);
	}
}

/*
 * One Ready cycle: persist, send, advance.  Committed entries are the
 * apply worker's: it reads them from the log table once the commit index
 * it is shown passes them, so here they only need waking it.
 */
static bool
worker_cycle(void)
{
	raft_ready	rd;
	raft_status st;
	bool		early;
	bool		hs_needed;
	int			rc;

	if (!raft_has_ready(worker_raft))
		return false;
	if ((rc = raft_get_ready(worker_raft, &rd)) != 0)
		elog(ERROR, "raftable: Raft core failed: %s", raft_strerror(rc));
	/* before any message of this cycle leaves: see readindex.c */
	readindex_publish_grant(worker_raft);

	/* a configuration in this cycle may name a peer the messages are for */
	worker_sync_peers();

	/* a leader's appends leave before its own write, which they overlap */
	raft_get_status(worker_raft, &st);
	early = st.role == RAFT_LEADER;
	if (early && rd.n_msgs)
	{
		worker_send(&rd, WORKER_SEND_EARLY);
		transport_poll();		/* on the wire now, not after the flush */
	}

	/*
	 * Persist what must be durable.  The commit index is not: it is a fact
	 * the leader repeats, and apply keeps its own index; it is written with
	 * the term and vote when they change (saving a write, and often a
	 * flush, per commit on every node).
	 */
	hs_needed = rd.hs_changed && (rd.hs.term != worker_persisted_hs.term ||
								  rd.hs.vote != worker_persisted_hs.vote);
	if (rd.truncate_from || rd.snapshot_changed || rd.n_entries || hs_needed)
	{
		storage_persist(&rd, hs_needed);
		if (hs_needed)
			worker_persisted_hs = rd.hs;
	}
	worker_send(&rd, early ? WORKER_SEND_LATE : WORKER_SEND_ALL);
	for (size_t i = 0; i < rd.n_reads; i++)
		readindex_answer(rd.reads[i].ctx, rd.reads[i].index, rd.reads[i].err);
	raft_advance(worker_raft, &rd);
	if (rd.snapshot_wanted)
		worker_want_snapshot(rd.wanted, rd.wanted_from);
	return true;
}

/*
 * How far behind the applied index a leader keeps entries that a live
 * follower still needs, whatever raftable.log_keep says: a node that has
 * just installed a snapshot must catch up from the log, or it would be
 * offered snapshot after snapshot while writes go on.
 */
#define WORKER_HOLD_ENTRIES(keep) (10 * Max((uint64) (keep), 1000))

/*
 * Compact when the applied log behind the snapshot grows past twice the
 * setting, so compaction happens in steps rather than at every entry.  A
 * leader keeps what its recently active peers have not got yet (nothing
 * goes while one of them is being sent a snapshot), within
 * WORKER_HOLD_ENTRIES.
 */
static void
worker_maybe_compact(void)
{
	raft_status st;
	uint64		applied;
	uint64		upto;

	raft_get_status(worker_raft, &st);
	applied = Min(pg_atomic_read_u64(&raftable_shared->apply.durable_index), st.commit);
	if (applied <= st.snapshot_index + 2 * (uint64) raftable_log_keep ||
		applied <= (uint64) raftable_log_keep)
		return;
	upto = Min(applied, st.stable_index) - raftable_log_keep;
	if (st.role == RAFT_LEADER)
	{
		const raft_conf *conf = raft_get_conf(worker_raft);
		uint64		floor = applied > WORKER_HOLD_ENTRIES(raftable_log_keep) ?
			applied - WORKER_HOLD_ENTRIES(raftable_log_keep) : 0;

		for (uint32 i = 0; i < conf->n; i++)
		{
			raft_progress pr;
			uint64		need;

			if (conf->members[i].id == worker_id.node_id ||
				raft_get_progress(worker_raft, conf->members[i].id, &pr) != 0 ||
				!pr.recent_active)
				continue;
			need = pr.state == RAFT_PR_SNAPSHOT ? st.snapshot_index : pr.match;
			upto = Min(upto, Max(need, floor));
		}
	}
	if (upto > st.snapshot_index)
		raft_compact(worker_raft, upto);
}

/*
 * Before a node is added: compact the log up to what is applied (and
 * flushed) and every recently active member holds, whatever log_keep
 * says, so that the new node starts from a snapshot of the tables as they
 * are, not by replaying old entries.  Those were checked against the
 * members of their time: one may name a role or an object that has since
 * been dropped everywhere, which the new node never had (add_node checks
 * only what the tables use now).
 */
static void
worker_compact_for_new_node(void)
{
	raft_status st;
	const raft_conf *conf = raft_get_conf(worker_raft);
	uint64		upto;

	raft_get_status(worker_raft, &st);
	upto = Min(pg_atomic_read_u64(&raftable_shared->apply.durable_index), st.commit);
	upto = Min(Min(upto, st.stable_index), st.applied);
	for (uint32 i = 0; i < conf->n; i++)
	{
		raft_progress pr;

		if (conf->members[i].id == worker_id.node_id ||
			raft_get_progress(worker_raft, conf->members[i].id, &pr) != 0 ||
			!pr.recent_active)
			continue;
		upto = Min(upto, pr.state == RAFT_PR_SNAPSHOT ? st.snapshot_index : pr.match);
	}
	if (upto > st.snapshot_index)
		raft_compact(worker_raft, upto);
}

static void
worker_create_cluster(RaftableRequest *req)
{
	RaftableIdentity id;
	raft_snapshot_meta *snap = palloc0(sizeof(raft_snapshot_meta));
	raft_conf  *conf = palloc0(sizeof(raft_conf));

	if (worker_raft)
	{
		request_answer(req, RAFT_EBUSY, 0, "this node is already in a cluster");
		return;
	}
	memset(&id, 0, sizeof(id));
	id.in_cluster = true;
	id.cluster_id = raftable_random_id();
	id.node_id = raftable_random_id();
	strlcpy(id.node_name, req->name, RAFTABLE_NAME_LEN);
	strlcpy(id.self_conninfo, req->conninfo, RAFTABLE_CONNINFO_LEN);
	conf->n = 1;
	conf->members[0].id = id.node_id;
	conf->members[0].voter = true;
	raftable_member_addr_encode(id.node_name, id.self_conninfo,
								conf->members[0].addr, &conf->members[0].addr_len);

	/*
	 * The identity and the one-member configuration become durable
	 * together (as the snapshot at index 0), so that a crash right after
	 * leaves a node that elects itself, not an identity without members.
	 */
	snap->conf = *conf;
	storage_save_identity(&id, snap);
	worker_start_raft();
	request_answer(req, RAFT_OK, id.node_id, NULL);
}

/*
 * Become a future member: take the identity the leader chose, and the
 * current membership as a snapshot at index 0, so that this node can
 * answer the leader before it has any log.
 */
static void
worker_join(RaftableRequest *req)
{
	RaftableIdentity id;
	raft_snapshot_meta *snap = palloc0(sizeof(raft_snapshot_meta));

	if (worker_raft)
	{
		request_answer(req, RAFT_EBUSY, 0, "this node is already in a cluster");
		return;
	}
	if (raft_conf_decode(req->members, req->members_len, &snap->conf) != 0)
	{
		request_answer(req, RAFT_EMALFORMED, 0, "malformed membership");
		return;
	}
	memset(&id, 0, sizeof(id));
	id.in_cluster = true;
	id.cluster_id = req->cluster_id;
	id.node_id = req->node_id;
	strlcpy(id.node_name, req->name, RAFTABLE_NAME_LEN);
	strlcpy(id.self_conninfo, req->conninfo, RAFTABLE_CONNINFO_LEN);
	storage_save_identity(&id, snap);
	worker_start_raft();
	request_answer(req, RAFT_OK, id.node_id, NULL);
}

/* forget the cluster: the tables become ordinary local tables */
static void
worker_forget_cluster(void)
{
	worker_stop_raft();
	storage_reset();
	memset(&worker_id, 0, sizeof(worker_id));
}

static void
worker_leave(RaftableRequest *req)
{
	if (worker_raft == NULL || req->cluster_id != worker_id.cluster_id ||
		req->node_id != worker_id.node_id)
	{
		request_answer(req, RAFT_EINVAL, 0, "not this node's cluster identity");
		return;
	}
	worker_forget_cluster();
	request_answer(req, RAFT_OK, 0, NULL);
}

/*
 * A node removed while it was down (or cut off) never got remove_node's
 * notice; it learns it here and leaves, instead of campaigning forever.
 * Two signs, each conclusive only for a node that was a member once
 * (worker_member_since: _join's configuration leaves the node out until the
 * leader adds it, and the first entries or snapshot a new node receives
 * may too):
 *
 * - its own configuration leaves it out and is committed;
 * - a peer answered our messages with the index of its committed
 *   configuration, which leaves us out, and that index is above our own
 *   configuration's.  Changes are made one at a time, each after the last
 *   committed, and a removed node's id is never added again; so a
 *   committed configuration after ours that lacks us means we were
 *   removed (or our own was never committed, and we were never in).
 *   A peer behind us (its committed configuration older than ours) proves
 *   nothing, and is ignored.
 */
static void
worker_check_removed(void)
{
	raft_status st;
	uint64		by;
	uint64		left_out_at = transport_left_out(&by);

	raft_get_status(worker_raft, &st);
	if (worker_member_since == 0 || st.conf_index == 0)
		return;
	if (!st.is_member && st.commit >= st.conf_index)
		ereport(LOG,
				(errmsg("raftable: this node was removed from cluster %llu; it leaves the cluster",
						(unsigned long long) worker_id.cluster_id),
				 errdetail("Its committed configuration (log index %llu) leaves it out.",
						   (unsigned long long) st.conf_index)));
	else if (left_out_at > st.conf_index)
		ereport(LOG,
				(errmsg("raftable: this node was removed from cluster %llu; it leaves the cluster",
						(unsigned long long) worker_id.cluster_id),
				 errdetail("Node %llu's committed configuration (log index %llu) leaves it out; this node's is at log index %llu.",
						   (unsigned long long) by, (unsigned long long) left_out_at,
						   (unsigned long long) st.conf_index)));
	else
		return;
	worker_forget_cluster();
}

/* the most up-to-date live voter, for a transfer without a target */
static uint64
worker_best_transferee(void)
{
	const raft_conf *conf = raft_get_conf(worker_raft);
	uint64		best = 0;
	raft_index	best_match = 0;

	for (uint32 i = 0; i < conf->n; i++)
	{
		raft_progress pr;

		if (!conf->members[i].voter || conf->members[i].id == worker_id.node_id)
			continue;
		/* the most up-to-date among those we are talking to now */
		if (raft_get_progress(worker_raft, conf->members[i].id, &pr) == 0 &&
			pr.recent_active && transport_peer_reachable(conf->members[i].id) &&
			(best == 0 || pr.match > best_match))
		{
			best = conf->members[i].id;
			best_match = pr.match;
		}
	}
	return best;
}

static void
worker_handle_request(RaftableRequest *req)
{
	raft_index	idx = 0;
	int			rc;

	switch (req->type)
	{
		case RAFTABLE_REQ_CREATE_CLUSTER:
			worker_create_cluster(req);
			return;
		case RAFTABLE_REQ_JOIN:
			worker_join(req);
			return;
		case RAFTABLE_REQ_LEAVE:
			worker_leave(req);
			return;
	}
	if (worker_raft == NULL)
	{
		request_answer(req, RAFT_EINVAL, 0, "this node is not in a cluster");
		return;
	}
	switch (req->type)
	{
		case RAFTABLE_REQ_ADD_LEARNER:
			{
				char		addr[RAFT_MAX_ADDR];
				uint16		addr_len;

				raftable_member_addr_encode(req->name, req->conninfo, addr, &addr_len);
				worker_compact_for_new_node();
				rc = raft_add_learner(worker_raft, req->node_id, addr, addr_len, &idx);
				break;
			}
		case RAFTABLE_REQ_REMOVE:
			rc = raft_remove(worker_raft, req->node_id, &idx);
			break;
		case RAFTABLE_REQ_GET_CONF:
			req->members_len = raft_conf_encode(raft_get_conf(worker_raft),
												req->members);
			rc = RAFT_OK;
			break;
		case RAFTABLE_REQ_TRANSFER:
			if (req->node_id == 0)
				req->node_id = worker_best_transferee();
			rc = req->node_id ? raft_transfer_leader(worker_raft, req->node_id) : RAFT_EINVAL;
			idx = req->node_id;
			break;
		default:
			rc = RAFT_EINVAL;
			break;
	}
	request_answer(req, rc, idx, rc ? raft_strerror(rc) : NULL);
}

/*
 * Tell the core how far the apply worker got, and the entry it is stuck on
 * if any: followers report both to the leader, which shows every member's
 * (write_ack = all waits on the first; raftable.nodes shows the second).
 */
static void
worker_report_applied(void)
{
	uint64		applied;
	uint64		stalled_at;
	int			code;

	LWLockAcquire(raftable_shared->lock, LW_SHARED);
	applied = pg_atomic_read_u64(&raftable_shared->apply.applied_index);
	stalled_at = raftable_shared->apply.stalled_at;
	code = raftable_shared->apply.stall_code;
	LWLockRelease(raftable_shared->lock);
	raft_set_apply_stall(worker_raft, stalled_at, (uint64) (uint32) code);
	raft_set_applied(worker_raft, applied);
}

/* a dead connection to our leader brings the election timer forward */
static void
worker_watch_leader(void)
{
	raft_status st;

	raft_get_status(worker_raft, &st);
	if (st.role == RAFT_FOLLOWER && st.lead != RAFT_NONE &&
		!transport_peer_reachable(st.lead))
		raft_peer_unreachable(worker_raft, st.lead);
}

/*
 * On the leader, promote a learner to voter once it holds everything
 * committed (add_node's promise, with or without its wait).  One change at
 * a time: the core refuses while another is uncommitted, and we try again
 * at the next iteration.
 */
static void
worker_promote_learners(void)
{
	const raft_conf *conf = raft_get_conf(worker_raft);
	raft_status st;

	raft_get_status(worker_raft, &st);
	if (st.role != RAFT_LEADER || st.commit < st.conf_index)
		return;
	for (uint32 i = 0; i < conf->n; i++)
	{
		raft_progress pr;

		if (conf->members[i].voter ||
			raft_get_progress(worker_raft, conf->members[i].id, &pr) != 0 ||
			pr.match < st.commit)
			continue;
		if (raft_promote(worker_raft, conf->members[i].id, NULL) == RAFT_OK)
			ereport(LOG,
					(errmsg("raftable: node %llu caught up; promoting it to voter",
							(unsigned long long) conf->members[i].id)));
		return;
	}
}

/*
 * Serve the requests backends left.  Each is copied out, handled without
 * the lock (it may run a transaction), and its answer copied back if the
 * slot still holds the same request.  While the extension does not exist
 * every request is answered with an error.
 */
/* a request while the extension does not exist: refused */
static void
worker_refuse_request(RaftableRequest *req)
{
	request_answer(req, RAFT_EINVAL, 0,
				   psprintf("the raftable extension does not exist in database \"%s\"",
							raftable_database));
}

/*
 * Append the change sets of committing transactions (proposal.c).  All
 * proposals of one iteration go out in the same Ready cycle: one log
 * append, one flush and one replication round for all of them (group
 * commit).
 */
static void
worker_handle_proposals(void)
{
	if (proposal_take(worker_raft))
		worker_settle_needed = true;
}

/*
 * Tell the backends waiting on appended entries what became of them: the
 * commit index reached theirs (committed), or this node is no longer the
 * leader of the term it appended them in (outcome unknown).  Each is woken
 * through its own latch: a commit wakes just the transactions it commits.
 */
static void
worker_settle_proposals(bool exiting)
{
	raft_status st;

	memset(&st, 0, sizeof(st));
	if (worker_raft && !exiting)
		raft_get_status(worker_raft, &st);
	if (!exiting && !worker_settle_needed && st.commit == worker_settled.commit &&
		st.term == worker_settled.term && st.role == worker_settled.role)
		return;
	worker_settle_needed = false;
	worker_settled = st;
	/* before any writer hears its entry committed: see readindex.c */
	readindex_publish_grant(exiting ? NULL : worker_raft);

	proposal_settle(&st, exiting);
}

/* apply a settings reload to the running core, leadership kept */
static void
worker_reload(void)
{
	raft_options opts;

	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	if (worker_raft == NULL)
		return;
	worker_options(&opts);
	if (raft_set_timeouts(worker_raft, opts.election_timeout,
						  opts.heartbeat_interval) != RAFT_OK)
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("raftable: timeouts unchanged: heartbeat %llu ms is not below the election timeout %llu ms",
						(unsigned long long) opts.heartbeat_interval,
						(unsigned long long) opts.election_timeout)));
}

static void
worker_on_exit(int code, Datum arg)
{
	transport_shutdown();
	if (raftable_shared == NULL)
		return;
	LWLockReleaseAll();			/* an error may have left ours held */
	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	raftable_shared->worker_latch = NULL;
	raftable_shared->worker_pid = 0;
	raftable_shared->status.worker_running = false;
	raftable_shared->status.role = -1;
	LWLockRelease(raftable_shared->lock);
	/* answer what we leave behind, so no backend waits for nothing */
	request_abandon_all("the raftable worker exited");
	ConditionVariableBroadcast(&raftable_shared->status_cv);
	worker_settle_proposals(true);
}

static long
worker_timeout_ms(bool active)
{
	long		t = 1000;

	if (worker_raft)
	{
		uint64		now = worker_now();
		uint64		d = raft_next_deadline(worker_raft);

		t = d > now ? (long) Min(d - now, 1000) : 0;
	}
	if (active)
	{
		long		tt = transport_next_timeout_ms();

		if (tt >= 0 && tt < t)
			t = tt;
	}
	return t;
}

/*
 * Sleep until the latch is set, a peer socket is ready or the next
 * deadline.  The WaitEventSet lives across waits (in worker_cxt): building
 * one costs an epoll descriptor and a system call per socket, several
 * times the rest of a read-index round's work in this process.  It is
 * built anew when the sockets may have changed (transport_socket_epoch),
 * and a socket whose events changed is only modified.
 */
static void
worker_wait(bool active)
{
	static WaitEventSet *wes = NULL;
	static uint64 wes_epoch = 0;
	static int	wes_n = -1;		/* sockets in wes; -1: no wes */
	static pgsocket wes_socks[RAFT_MAX_MEMBERS];
	static int	wes_events[RAFT_MAX_MEMBERS];
	pgsocket	socks[RAFT_MAX_MEMBERS];
	int			events[RAFT_MAX_MEMBERS];
	WaitEvent	fired[RAFT_MAX_MEMBERS + 2];
	int			n = 0;
	uint64		epoch = 0;

	if (active)
	{
		n = transport_wait_events(socks, events, RAFT_MAX_MEMBERS);
		epoch = transport_socket_epoch();
	}

	if (wes == NULL || epoch != wes_epoch || n != wes_n ||
		memcmp(socks, wes_socks, n * sizeof(pgsocket)) != 0)
	{
		if (wes != NULL)
			FreeWaitEventSet(wes);
		wes = CreateWaitEventSet(worker_cxt, RAFT_MAX_MEMBERS + 2);
		AddWaitEventToSet(wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (int i = 0; i < n; i++)
			AddWaitEventToSet(wes, events[i], socks[i], NULL, NULL);
		wes_epoch = epoch;
		wes_n = n;
		memcpy(wes_socks, socks, n * sizeof(pgsocket));
		memcpy(wes_events, events, n * sizeof(int));
	}
	else
	{
		/* positions 0 and 1 are the latch and postmaster death */
		for (int i = 0; i < n; i++)
		{
			if (events[i] != wes_events[i])
			{
				ModifyWaitEvent(wes, i + 2, events[i], NULL);
				wes_events[i] = events[i];
			}
		}
	}

	(void) WaitEventSetWait(wes, worker_timeout_ms(active), fired,
							lengthof(fired), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

void
raftable_worker_main(Datum arg)
{
	bool		active = false;
	Oid			worker_ext = InvalidOid;
	TimestampTz last_check = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(raftable_database, NULL, 0);

	/* "persisted" must mean flushed: the Raft log is in these tables */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	raftable_worker_session();

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "raftable worker",
									   ALLOCSET_DEFAULT_SIZES);
	cycle_cxt = AllocSetContextCreate(worker_cxt, "raftable cycle",
									  ALLOCSET_DEFAULT_SIZES);
	worker_core_cxt = AllocSetContextCreate(worker_cxt, "raftable core",
											ALLOCSET_DEFAULT_SIZES);
	worker_core_allocator.alloc = worker_core_alloc;
	worker_core_allocator.realloc = worker_core_realloc;
	worker_core_allocator.free = worker_core_free;
	worker_core_allocator.ctx = worker_core_cxt;
	worker_msgbuf = MemoryContextAlloc(worker_cxt, WORKER_MAX_MSG_BYTES);
	worker_members = MemoryContextAlloc(worker_cxt,
										sizeof(RaftableMemberInfo) * RAFT_MAX_MEMBERS);
	worker_roles = MemoryContextAlloc(worker_cxt, NAMEDATALEN * RAFT_MAX_MEMBERS);
	worker_snap_meta = MemoryContextAlloc(worker_cxt, sizeof(raft_snapshot_meta));
	INSTR_TIME_SET_CURRENT(worker_epoch);
	transport_init();

	LWLockAcquire(raftable_shared->lock, LW_EXCLUSIVE);
	raftable_shared->worker_pid = MyProcPid;
	raftable_shared->worker_latch = MyLatch;
	raftable_shared->status.worker_running = true;
	LWLockRelease(raftable_shared->lock);
	before_shmem_exit(worker_on_exit, (Datum) 0);

	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
			worker_reload();
		MemoryContextReset(cycle_cxt);
		old = MemoryContextSwitchTo(cycle_cxt);

		/*
		 * The extension may come and go: look once a second, and at once
		 * when a request waits while we idle (right after CREATE EXTENSION).
		 */
		if (TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), 1000) ||
			(!active && request_pending()))
		{
			Oid			ext = storage_extension_oid();

			last_check = GetCurrentTimestamp();
			if (active && ext != worker_ext)
			{
				/* dropped, perhaps created again: its tables are new */
				active = false;
				worker_stop_raft();
				memset(&worker_id, 0, sizeof(worker_id));
				ereport(LOG,
						(errmsg("raftable: extension dropped; the worker idles")));
			}
			if (!active && OidIsValid(ext))
			{
				active = true;
				worker_ext = ext;
				worker_start_raft();
			}
			if (!active)
				worker_set_member_since(0); /* no extension, no cluster */
		}
		if (active)
		{
			if (worker_raft)
				raft_tick(worker_raft, worker_now());
			worker_drain_inbox();
			/* a commit the messages brought wakes its waiters first */
			if (worker_raft)
				worker_settle_proposals(false);
			request_serve(worker_handle_request);
			worker_handle_proposals();
			if (worker_raft)
				readindex_start_rounds(worker_raft,
									   (int64) raftable_election_timeout * 1000);
			if (worker_raft)
			{
				worker_check_snapshot();
				while (worker_cycle())
					;
				worker_settle_proposals(false);
				worker_sync_peers();
				worker_report_applied();
				worker_watch_leader();
				worker_promote_learners();
				worker_maybe_compact();
				/*
				 * A round answered above frees the way for the next one,
				 * which readers already asked for without waking us again.
				 */
				readindex_start_rounds(worker_raft,
									   (int64) raftable_election_timeout * 1000);
				/* persist and send what those did before the status shows it */
				while (worker_cycle())
					;
			}
			transport_poll();
			if (worker_raft)
				worker_check_removed();
		}
		else
		{
			worker_drain_inbox();	/* discard */
			request_serve(worker_refuse_request);
			worker_handle_proposals();	/* refused: no core */
			worker_settle_proposals(false);
		}
		worker_publish();
		MemoryContextSwitchTo(old);
		worker_wait(active);
	}
}

/* ---------- publishing the status for the views ---------- */

static const char *
worker_role(const raft_status *st)
{
	if (st->role == RAFT_LEADER)
		return "leader";
	if (!st->is_member)
		return "none";
	if (st->role == RAFT_CANDIDATE || st->role == RAFT_PRECANDIDATE)
		return "candidate";
	return st->is_voter ? "follower" : "learner";
}

static void
worker_publish(void)
{
	RaftableShared *sh = raftable_shared;
	RaftableStatus *out;
	raft_status st;
	bool		changed;

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	out = &sh->status;
	if (worker_raft == NULL)
	{
		changed = out->in_cluster || out->role != -1;
		memset(out, 0, offsetof(RaftableStatus, members));
		out->worker_running = true;
		out->role = -1;
		strlcpy(out->role_name, "none", sizeof(out->role_name));
		peer_publish_none();
		LWLockRelease(sh->lock);
		if (changed)
		{
			ConditionVariableBroadcast(&sh->status_cv);
			worker_apply_told = 0;
			raftable_wake_apply();	/* to see the identity go */
		}
		return;
	}
	raft_get_status(worker_raft, &st);
	changed = out->commit_index != st.commit || out->term != st.term ||
		out->leader_id != st.lead || out->role != (int) st.role ||
		out->last_log_index != st.last_index;
	out->worker_running = true;
	out->in_cluster = true;
	out->cluster_id = worker_id.cluster_id;
	out->node_id = worker_id.node_id;
	strlcpy(out->node_name, worker_id.node_name, RAFTABLE_NAME_LEN);
	out->role = st.is_member || st.role == RAFT_LEADER ? (int) st.role : -1;
	out->is_voter = st.is_voter;
	out->term = st.term;
	out->leader_id = st.lead;
	out->commit_index = st.commit;
	out->term_start_index = st.term_start_index;
	out->conf_index = st.conf_index;
	out->conf_committed = st.commit >= st.conf_index;
	out->last_log_index = st.last_index;
	out->snapshot_index = st.snapshot_index;
	out->leader_contact_at = st.role == RAFT_LEADER ? 0 :
		GetCurrentTimestamp() - (TimestampTz) st.leader_contact_ms * 1000;
	strlcpy(out->role_name, worker_role(&st), sizeof(out->role_name));
	{
		out->n_members = worker_n_members;
		peer_publish(worker_self_role, (const char (*)[NAMEDATALEN]) worker_roles,
					 worker_n_members, st.lead,
					 !st.is_member && st.commit >= st.conf_index);
		for (int i = 0; i < worker_n_members; i++)
		{
			RaftableMemberInfo *mi = &out->members[i];
			raft_progress pr;
			uint64		was = mi->applied_index;

			*mi = worker_members[i];
			mi->reachable = mi->is_self || transport_peer_reachable(mi->id);
			mi->progress_known = raft_get_progress(worker_raft, mi->id, &pr) == 0;
			mi->match_index = mi->progress_known ? pr.match : 0;
			mi->lag_entries = mi->progress_known && st.last_index > pr.match ?
				st.last_index - pr.match : 0;
			mi->last_contact_ms = mi->progress_known ? (int64) pr.last_contact_ms : -1;
			mi->applied_index = mi->progress_known ? pr.applied : 0;
			mi->stalled_at = mi->progress_known ? pr.stalled_at : 0;
			mi->stall_code = mi->progress_known ? (int) (uint32) pr.stall_code : 0;
			changed |= mi->applied_index != was;	/* write_ack = all waits */
		}
	}
	{
		const raft_stats *cs = raft_get_stats(worker_raft);
		RaftableStats *s = &sh->stats;
		RaftableStats *b = &worker_stats_base;

		s->elections = b->elections + cs->elections;
		s->leader_changes = b->leader_changes + cs->leader_changes;
		s->proposals = b->proposals + cs->proposals;
		s->commits = b->commits + cs->commits;
		s->messages_sent = b->messages_sent + cs->msgs_sent;
		s->messages_received = b->messages_received + cs->msgs_received;
		s->snapshots_sent = b->snapshots_sent + cs->snapshots_sent;
		s->snapshots_received = b->snapshots_received + cs->snapshots_received;
	}
	LWLockRelease(sh->lock);
	if (changed)
	{
		ConditionVariableBroadcast(&sh->status_cv);
		worker_wake_apply(st.commit);
	}
}
