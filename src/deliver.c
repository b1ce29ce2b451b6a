/*-------------------------------------------------------------------------
 *
 * deliver.c
 *	  raftable._deliver(bytea), the receiving half of the transport: a
 *	  peer's batch of Raft messages, checked and queued for this node's
 *	  worker, and the answers the leader gives without its worker.
 *
 * Runs in the backend of the peer's connection (transport.c is the sending
 * half, in the other node's worker).  Nothing here touches the core: a
 * message is checked against the status the worker publishes and the peer
 * bindings (peer.c), then pushed into the worker's inbox (shmem.c); a
 * READ_INDEX this leader may answer alone is answered from the grant the
 * worker publishes (readindex.c).
 *
 * IDENTIFICATION
 *	  src/deliver.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "peer.h"
#include "raftable.h"
#include "readindex.h"
#include "status.h"
#include "transport.h"
#include "utils/timestamp.h"

RAFTABLE_FUNCTION(raftable_deliver);

/*
 * Whether to take messages from this node (is_member: it is in our
 * configuration).  Members of our configuration, and the leader we
 * follow, always.  Anyone else (with our cluster's id) only while we have
 * heard from no leader for an election timeout: nodes can hold different
 * configurations, and a member we do not know of yet may be the only one
 * able to win an election (in {A, B}, A adds C, the change commits on A
 * and C, A dies: C needs B's vote) and then lead us.  While a leader is
 * alive, a stranger cannot disturb us.
 */
static bool
deliver_sender_allowed(const RaftableStatus *st, uint64 from, bool is_member)
{
	if (from == st->leader_id || is_member)
		return true;
	return st->role != RAFT_LEADER &&
		(GetCurrentTimestamp() - st->leader_contact_at) / 1000 >= raftable_election_timeout;
}

/*
 * _deliver's result, a bytea built in a StringInfo: the varlena header,
 * the u64 (0 unless set), then the framed messages.
 */
static void
deliver_answer_start(StringInfo answer)
{
	if (answer->data != NULL)
		return;
	initStringInfo(answer);
	appendStringInfoSpaces(answer, VARHDRSZ + 8);
	memset(answer->data + VARHDRSZ, 0, 8);
}

/* answer a follower's READ_INDEX with the index this leader grants */
static void
deliver_answer_read(StringInfo answer, const RaftableStatus *st, uint64 to,
				uint64 ctx, uint64 index)
{
	raft_msg	r;
	size_t		len;
	uint8	   *buf;

	memset(&r, 0, sizeof(r));
	r.type = RAFT_MSG_READ_INDEX_RESP;
	r.from = st->node_id;
	r.to = to;
	r.ctx = ctx;
	r.index = index;
	len = raft_msg_encoded_size(&r);
	buf = palloc(len);
	raft_msg_encode(&r, st->cluster_id, buf);
	deliver_answer_start(answer);
	transport_frame_append(answer, buf, len);
	pfree(buf);
}

/*
 * raftable._deliver(batch bytea): messages from a peer.  Each is checked
 * (well-formed, this cluster, sent by the session's own member: see
 * peer.c, addressed to us, from a member or while we have no leader:
 * deliver_sender_allowed) and queued for the worker; the call returns at
 * once.  The sender check is made once per sender in a batch.
 *
 * It returns NULL when it has nothing to say; otherwise a u64 (little
 * endian) and then messages framed as in the batch.  The u64 is 0, or,
 * when a sender is not in this node's configuration and that
 * configuration is committed, the configuration's log index: the sender's
 * worker compares it with its own configuration's to learn that it was
 * removed while it could not be told (worker_check_removed).  The messages
 * are answers to READ_INDEX requests this leader may give without its
 * worker (readindex.c): they go back on the connection the request came
 * on, which saves a wake-up of each worker and a call the other way.
 */
Datum
raftable_deliver(PG_FUNCTION_ARGS)
{
	bytea	   *batch = PG_GETARG_BYTEA_PP(0);
	const uint8 *p = (const uint8 *) VARDATA_ANY(batch);
	size_t		left = VARSIZE_ANY_EXHDR(batch);
	RaftableStatus *st;
	bool		queued = false;
	bool		ignored = false;	/* one NOTICE per batch is enough */
	bool		checked = false;	/* the last sender checked, and how */
	uint64		checked_from = 0;
	bool		checked_ok = false;
	bool		checked_member = false;
	bool		stranger = false;	/* a sender not in our configuration */
	StringInfoData answer = {0};	/* the result, once there is one */

	raftable_require_served_database();
	st = raftable_status_get(false, 0);	/* every batch: not the members' details */
	raftable_require_cluster(st);
	while (left > 0)
	{
		const uint8 *msg = NULL;
		uint32		len = 0;
		int			frame;
		raft_msg	m;			/* the envelope: no entries, no snapshot */
		uint64		cluster_id,
					index;
		int			rc,
					level;

		frame = transport_frame_next(&p, &left, &msg, &len);
		if (frame == -1)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("malformed raftable message batch")));
		if (frame == -2)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("malformed raftable message batch"),
					 errdetail("A message claims %u bytes; %zu remain.", len, left - 4)));
		rc = raft_msg_peek(msg, len, &cluster_id, &m);
		if (rc != RAFT_OK)
			ereport(ERROR,
					(errhidestmt(true), errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("malformed raftable message"),
					 errdetail("%s", raft_strerror(rc))));
		/*
		 * Messages of another cluster, for another node, or from a stranger
		 * while we follow a leader are ignored, not errors: the NOTICE goes
		 * back to the sender (whose transport logs it, rate-limited)
		 * instead of an ERROR in this server's log for every batch.  A
		 * message whose sender is not the session's member is dropped the
		 * same way, and logged here too.
		 */
		level = ignored ? DEBUG1 : NOTICE;
		if (cluster_id == st->cluster_id && (!checked || m.from != checked_from))
		{
			checked = true;
			checked_from = m.from;
			checked_ok = peer_sender_ok(m.from, &checked_member);
			stranger |= !checked_member;
		}
		if (cluster_id != st->cluster_id)
		{
			ereport(level,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("raftable message for another cluster ignored"),
					 errdetail("This node is in cluster %llu; the message is for cluster %llu.",
							   (unsigned long long) st->cluster_id,
							   (unsigned long long) cluster_id)));
			ignored = true;
		}
		else if (!checked_ok)
		{
			peer_report_dropped(m.from, level);
			ignored = true;
		}
		else if (m.to != st->node_id || !deliver_sender_allowed(st, m.from, checked_member))
		{
			ereport(level,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("raftable message from node %llu to node %llu ignored",
							(unsigned long long) m.from, (unsigned long long) m.to),
					 errdetail("This is node %llu; it takes messages from members and from its leader.",
							   (unsigned long long) st->node_id)));
			ignored = true;
		}
		else if (m.type == RAFT_MSG_READ_INDEX && checked_member &&
				 readindex_granted(m.from, m.hint_term, &index))
			deliver_answer_read(&answer, st, m.from, m.ctx, index);
		else if (raftable_inbox_push(msg, len))
			queued = true;
	}
	if (queued)
		raftable_wake_worker();
	if (stranger && st->conf_committed)
	{
		deliver_answer_start(&answer);
		for (int i = 0; i < 8; i++)
			answer.data[VARHDRSZ + i] = (char) (st->conf_index >> (8 * i));
	}
	if (answer.data == NULL)
		PG_RETURN_NULL();
	SET_VARSIZE(answer.data, answer.len);
	PG_RETURN_BYTEA_P((bytea *) answer.data);
}
