/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  Outbound libpq connections from the Raft worker to its peers.
 *
 * This file owns, for every peer the worker talks to: one non-blocking
 * libpq connection, the queue of encoded messages waiting to leave, the
 * batches in flight on that connection, failure detection (connect and
 * call timeouts, libpq errors) and the reconnect backoff.  Nothing else in
 * raftable touches these connections; the worker only queues messages,
 * waits on the sockets transport_wait_events() names and calls
 * transport_poll() after every wait.
 *
 * Messages leave in batches.  A batch is a sequence of (uint32
 * little-endian length, message bytes), at most TP_BATCH_MAX bytes unless
 * one message alone is bigger, and travels as the single bytea argument
 * of one call of raftable._deliver() on the peer.  The connection is in
 * libpq pipeline mode: every call is followed by a pipeline sync, so a
 * failing call affects no other, and up to TP_MAX_INFLIGHT calls are in
 * flight at once.  Meanwhile new messages pile up in the peer's queue and
 * leave as the next batch, so the batch size adapts to the load.
 *
 * The Raft worker must never block: no PQexec, no PQconnectdb, no blocking
 * PQgetResult.  Connections are started with PQconnectStartParams and
 * advanced with PQconnectPoll only when their socket is ready; after that
 * the connection is in libpq's non-blocking mode and is served with
 * PQconsumeInput, PQisBusy/PQgetResult and PQflush.  (Host names are still
 * resolved synchronously inside PQconnectStartParams; that is libpq's
 * doing.  Use hostaddr, or IP addresses, where that matters.)
 *
 * Raft tolerates lost messages, so this layer drops rather than hoards:
 * a peer's queue is capped at TP_QUEUE_MAX bytes, and whatever is queued
 * for a peer whose connection fails is thrown away.  Raft retransmits.
 *
 * A peer's conninfo is the one its membership records (never with a
 * password: member.c refuses those), with our own role as the user
 * (peer.c): the worker hands it over ready.  Conninfos are not logged,
 * only libpq's error messages (PQerrorMessage, the server's error fields)
 * are.
 *
 * Everything here runs in the Raft background worker, and an ERROR would
 * kill it, so nothing here raises one: problems are logged at LOG.
 *
 * IDENTIFICATION
 *	  src/transport.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef HAVE_POLL_H
#include <poll.h>
#endif

#include "libpq-fe.h"

/* pipeline mode (PQenterPipelineMode, PQpipelineSync) came with libpq 14 */
#ifndef LIBPQ_HAS_PIPELINING
#error "raftable's transport needs libpq 14 or later (pipeline mode)"
#endif

#include "catalog/pg_type_d.h"
#include "pgstat.h"
#include "raftable.h"
#include "status.h"
#include "storage/latch.h"
#include "transport.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* batches in flight on one connection (calls sent, sync not yet back) */
#define TP_MAX_INFLIGHT		4

/* a batch stops growing here, unless its first message alone is bigger */
#define TP_BATCH_MAX		(4 * 1024 * 1024)

/* bytes (framing included) one peer's queue may hold; beyond: dropped */
#define TP_QUEUE_MAX		((size_t) 64 * 1024 * 1024)

/* initial queue buffer, and the size above which an empty one is freed */
#define TP_QUEUE_INITIAL	(64 * 1024)
#define TP_QUEUE_SHRINK		(8 * 1024 * 1024)

/* reconnect backoff: starts here, doubles up to the election timeout */
#define TP_BACKOFF_MIN_MS	50

/*
 * A connection attempt gets the election timeout, but never less than
 * this: starting a backend on a loaded machine can take longer than a
 * short election timeout (the setting goes down to 50 ms), and a deadline
 * shorter than any attempt would lock a live peer out for good.  It is
 * also libpq's own floor for connect_timeout (whole seconds, at least 1).
 */
#define TP_CONNECT_MIN_MS	1000

/* at most one log line per peer and kind of trouble in this period */
#define TP_LOG_INTERVAL_MS	10000

#define TP_FRAME_HEADER		4	/* the uint32 length before each message */

#define TP_DELIVER_SQL		"SELECT raftable._deliver($1::bytea)"
#define TP_DELIVER_STMT		"raftable_deliver"	/* prepared once per connection */

typedef enum TpState
{
	TP_IDLE,					/* no connection; next attempt at next_attempt */
	TP_CONNECTING,				/* PQconnectPoll in progress */
	TP_CONNECTED,				/* pipeline mode, calls may be in flight */
} TpState;

/*
 * Messages waiting for a peer: framed messages in buf[head, tail).  Our
 * own buffer rather than a StringInfo, because growing it must be able to
 * fail without an ERROR (we then drop the message, as when it is full).
 */
typedef struct TpQueue
{
	char	   *buf;
	size_t		cap;
	size_t		head;			/* first byte not yet handed to libpq */
	size_t		tail;			/* end of the queued data */
	int			nmsgs;			/* messages in buf[head, tail) */
} TpQueue;

/* a log line that is printed at most once per TP_LOG_INTERVAL_MS */
typedef struct TpRateLimit
{
	TimestampTz last;			/* 0: never printed */
	uint64		suppressed;		/* occurrences not printed since */
} TpRateLimit;

typedef struct TpPeer
{
	uint64		id;
	char	   *conninfo;		/* as we connect: our role as its user */
	bool		conninfo_ok;	/* PQconninfoParse accepts it */
	bool		has_dbname;		/* it names a database itself */

	TpState		state;
	PGconn	   *conn;			/* connecting or connected, else NULL */
	PostgresPollingStatusType poll_status;	/* TP_CONNECTING: what it waits
											 * for */
	bool		output_pending; /* TP_CONNECTED: last PQflush returned 1 */
	bool		prepare_pending;	/* TP_DELIVER_STMT's result not seen yet */
	bool		prepared;		/* TP_DELIVER_STMT exists there */
	TimestampTz connect_start;	/* TP_CONNECTING: since when */
	TimestampTz connected_at;	/* TP_CONNECTED: since when */
	TimestampTz next_attempt;	/* TP_IDLE: when to connect again */
	int			backoff_ms;		/* delay used after the last failure; 0:
								 * none yet, or the connection proved good */
	bool		proven;			/* this connection answered a call */

	TpQueue		queue;

	/* batches in flight, oldest first, as a ring */
	int			ninflight;
	int			inflight_first;
	TimestampTz inflight_sent[TP_MAX_INFLIGHT];

	/* trouble, reported without flooding the log */
	bool		failure_logged; /* a failure was logged since last success */
	uint64		dropped;		/* messages dropped, ever */
	TpRateLimit conn_log;		/* connection failures */
	TpRateLimit call_log;		/* ERROR results of _deliver */
	TpRateLimit drop_log;		/* queue full */
} TpPeer;

static MemoryContext tp_context = NULL;
static TpPeer *tp_peers[RAFT_MAX_MEMBERS];
static int	tp_npeers = 0;
static uint64 tp_socket_epoch = 0;	/* see transport_socket_epoch() */
static uint64 tp_self_id = 0;
static uint64 tp_messages_sent = 0;

/* the highest configuration index a peer answered "you are not in it" with */
static uint64 tp_left_out_at = 0;
static uint64 tp_left_out_by = 0;

static TpPeer *tp_find(uint64 id);
static void tp_free_peer(TpPeer *p);
static void tp_check_conninfo(TpPeer *p);
static void tp_start_connect(TpPeer *p, TimestampTz now);
static void tp_advance_connect(TpPeer *p, TimestampTz now);
static bool tp_socket_ready(PGconn *conn, PostgresPollingStatusType want);
static void tp_connected(TpPeer *p, TimestampTz now);
static void tp_serve(TpPeer *p, TimestampTz now);
static bool tp_read_results(TpPeer *p, TimestampTz now);
static bool tp_send_batch(TpPeer *p, TimestampTz now);
/* why a connection failed: each has its own whole message in tp_fail */
typedef enum TpFailure
{
	TP_FAIL_CONNECT,
	TP_FAIL_SETUP,
	TP_FAIL_PIPELINE,
	TP_FAIL_LOST,
	TP_FAIL_GAVE_UP,
	TP_FAIL_SEND
} TpFailure;

/* whole messages, for translators: node id, then libpq's reason */
static const char *const tp_failure_msgs[] = {
	[TP_FAIL_CONNECT] = gettext_noop("raftable: could not connect to node %llu: %s"),
	[TP_FAIL_SETUP] = gettext_noop("raftable: could not set up the connection to node %llu: %s"),
	[TP_FAIL_PIPELINE] = gettext_noop("raftable: could not enter pipeline mode on the connection to node %llu: %s"),
	[TP_FAIL_LOST] = gettext_noop("raftable: lost the connection to node %llu: %s"),
	[TP_FAIL_GAVE_UP] = gettext_noop("raftable: gave up on the connection to node %llu: %s"),
	[TP_FAIL_SEND] = gettext_noop("raftable: could not send to node %llu: %s"),
};

static void tp_fail(TpPeer *p, TimestampTz now, TpFailure why,
					const char *detail);
static void tp_close(TpPeer *p);
static void tp_drop_queue(TpPeer *p);
static bool tp_queue_append(TpQueue *q, const uint8 *msg, size_t len);
static void tp_queue_reset(TpQueue *q);
static bool tp_rate_ok(TpRateLimit *rl, TimestampTz now);
static int	tp_election_timeout(void);
static int	tp_connect_timeout_ms(void);
static bool tp_call_timed_out(TpPeer *p, TimestampTz now);
static void tp_chomp(char *dst, const char *src, size_t dstlen);
static void tp_notice_processor(void *arg, const char *message);
static int	tp_wait_events(TpPeer *p);


/* ---------------------------------------------------------------------
 * Public interface
 * ---------------------------------------------------------------------
 */

/*
 * Set up the transport's memory.  Everything the transport allocates
 * lives in its own context, so that leaks would show up there and
 * transport_shutdown() can release it all at once.  Calling it again
 * while initialized changes nothing (peers and connections stay).
 */
void
transport_init(void)
{
	if (tp_context != NULL)
		return;
	tp_context = AllocSetContextCreate(TopMemoryContext,
									   "raftable transport",
									   ALLOCSET_DEFAULT_SIZES);
	tp_npeers = 0;
}

/*
 * Close every connection and forget every peer, e.g. when the worker
 * leaves the cluster or exits.  The transport may be initialized again.
 */
void
transport_shutdown(void)
{
	int			i;

	for (i = 0; i < tp_npeers; i++)
		tp_free_peer(tp_peers[i]);
	tp_npeers = 0;

	if (tp_context != NULL)
	{
		MemoryContextDelete(tp_context);
		tp_context = NULL;
	}
}

/*
 * Our own node id, which peers see as application_name
 * "raftable-node-<id>" (in pg_stat_activity, and for their checks).  A
 * connection opened under an older id would show the wrong name, so open
 * connections are closed and reopened at once.
 */
void
transport_set_self(uint64 id)
{
	TimestampTz now;
	int			i;

	if (id == tp_self_id)
		return;
	tp_self_id = id;

	now = GetCurrentTimestamp();
	for (i = 0; i < tp_npeers; i++)
	{
		TpPeer	   *p = tp_peers[i];

		if (p->state != TP_IDLE)
		{
			tp_close(p);
			p->next_attempt = now;
		}
	}
}

/*
 * Add a peer, or update its conninfo.  The worker calls this for every
 * member, possibly on every cycle, so an unchanged conninfo is a no-op;
 * a changed one closes the old connection (a reconnect follows at once)
 * but keeps the queued messages, which are still for the same node.
 */
void
transport_set_peer(uint64 id, const char *conninfo)
{
	TpPeer	   *p;

	if (tp_context == NULL)
		transport_init();
	if (id == 0 || conninfo == NULL)
		return;

	p = tp_find(id);
	if (p != NULL)
	{
		if (strcmp(p->conninfo, conninfo) == 0)
			return;

		tp_close(p);
		pfree(p->conninfo);
		p->conninfo = MemoryContextStrdup(tp_context, conninfo);
		tp_check_conninfo(p);
		p->backoff_ms = 0;
		p->next_attempt = GetCurrentTimestamp();
		return;
	}

	if (tp_npeers >= RAFT_MAX_MEMBERS)
	{
		ereport(LOG,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("raftable: cannot talk to node %llu: too many peers",
						(unsigned long long) id)));
		return;
	}

	p = MemoryContextAllocZero(tp_context, sizeof(TpPeer));
	p->id = id;
	p->conninfo = MemoryContextStrdup(tp_context, conninfo);
	p->state = TP_IDLE;
	p->next_attempt = GetCurrentTimestamp();
	tp_check_conninfo(p);
	tp_peers[tp_npeers++] = p;
}

/*
 * Forget every peer not in ids[0..n), closing its connection and freeing
 * its queue: membership changed and those nodes are no longer ours to
 * talk to.
 */
void
transport_forget_peers_except(const uint64 *ids, int n)
{
	int			i = 0;

	while (i < tp_npeers)
	{
		TpPeer	   *p = tp_peers[i];
		bool		keep = false;
		int			j;

		for (j = 0; j < n; j++)
		{
			if (ids[j] == p->id)
			{
				keep = true;
				break;
			}
		}

		if (keep)
		{
			i++;
			continue;
		}

		tp_free_peer(p);
		tp_peers[i] = tp_peers[tp_npeers - 1];
		tp_npeers--;
	}
}

/*
 * Queue one encoded message for a peer.  It leaves with the next batch,
 * from transport_poll().  Messages for unknown peers, for peers whose
 * conninfo is unusable, and beyond the queue cap are dropped: Raft copes
 * with loss, while an unbounded queue would not cope with a dead peer.
 */
void
transport_send(uint64 to, const uint8 *msg, size_t len)
{
	TpPeer	   *p = tp_find(to);

	if (p == NULL || !p->conninfo_ok)
		return;

	if (len > TP_QUEUE_MAX - TP_FRAME_HEADER ||
		(p->queue.tail - p->queue.head) + TP_FRAME_HEADER + len > TP_QUEUE_MAX ||
		!tp_queue_append(&p->queue, msg, len))
	{
		TimestampTz now = GetCurrentTimestamp();

		p->dropped++;
		if (tp_rate_ok(&p->drop_log, now))
			ereport(LOG,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("raftable: dropping messages for node %llu: its send queue is full",
							(unsigned long long) p->id),
					 errdetail("%zu bytes are queued; %llu messages dropped for this node so far.",
							   p->queue.tail - p->queue.head,
							   (unsigned long long) p->dropped)));
	}
}

/*
 * The sockets the worker must wait on right now, with the events to wait
 * for on each (at most max of them); returns how many.  Readable always
 * (results, errors, EOF), writeable while connecting wants to write or
 * while libpq holds output the kernel would not take yet.
 */
int
transport_wait_events(pgsocket *socks, int *events, int max)
{
	int			n = 0;

	for (int i = 0; i < tp_npeers && n < max; i++)
	{
		TpPeer	   *p = tp_peers[i];
		int			ev = tp_wait_events(p);

		if (ev != 0)
		{
			socks[n] = PQsocket(p->conn);
			events[n] = ev;
			n++;
		}
	}
	return n;
}

/*
 * A number that changes whenever a socket transport_wait_events() names
 * may have been closed and another opened, perhaps under the same
 * descriptor number: the worker keeps one WaitEventSet across waits and
 * must build it anew then (epoll forgets a closed descriptor).  While a
 * connection is being made libpq may replace its socket at any step, so
 * the number changes on every call then.
 */
uint64
transport_socket_epoch(void)
{
	for (int i = 0; i < tp_npeers; i++)
	{
		if (tp_peers[i]->state == TP_CONNECTING)
			return ++tp_socket_epoch;
	}
	return tp_socket_epoch;
}

/*
 * Make all the progress that can be made without waiting: start due
 * connection attempts, advance those in progress, read results, detect
 * timeouts, hand queued batches to libpq and flush.  Called after every
 * wait, whatever woke the worker; it does nothing that could block.
 */
void
transport_poll(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < tp_npeers; i++)
	{
		TpPeer	   *p = tp_peers[i];

		if (p->state == TP_IDLE && p->conninfo_ok && now >= p->next_attempt)
			tp_start_connect(p, now);

		if (p->state == TP_CONNECTING)
			tp_advance_connect(p, now);

		if (p->state == TP_CONNECTED)
			tp_serve(p, now);
	}
}

/*
 * Milliseconds until the transport next needs transport_poll() without a
 * socket event: a reconnect falls due, a connection attempt or a call
 * times out.  0 when queued messages could leave right now (the worker
 * queued them after its last poll), -1 when nothing is pending.
 */
long
transport_next_timeout_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		result = -1;
	int			i;

	for (i = 0; i < tp_npeers; i++)
	{
		TpPeer	   *p = tp_peers[i];
		TimestampTz deadline;
		long		ms;

		switch (p->state)
		{
			case TP_IDLE:
				if (!p->conninfo_ok)
					continue;
				deadline = p->next_attempt;
				break;
			case TP_CONNECTING:
				deadline = TimestampTzPlusMilliseconds(p->connect_start,
													   tp_connect_timeout_ms());
				break;
			case TP_CONNECTED:
				if (p->queue.tail > p->queue.head &&
					p->ninflight < TP_MAX_INFLIGHT)
					return 0;
				if (p->ninflight == 0)
					continue;
				deadline = TimestampTzPlusMilliseconds(p->inflight_sent[p->inflight_first],
													   tp_election_timeout());
				break;
			default:
				continue;
		}

		/* rounds up, so we do not wake just before the deadline */
		ms = TimestampDifferenceMilliseconds(now, deadline);
		if (result < 0 || ms < result)
			result = ms;
	}
	return result;
}

/*
 * A peer is reachable while its connection is up and no call on it has
 * gone unanswered for longer than the election timeout.
 */
bool
transport_peer_reachable(uint64 id)
{
	TpPeer	   *p = tp_find(id);

	if (p == NULL || p->state != TP_CONNECTED)
		return false;
	return !tp_call_timed_out(p, GetCurrentTimestamp());
}

/* messages handed to libpq since the worker started */
/*
 * The highest configuration index a peer said we are not in (0: none
 * since the last call), and which peer said so; then forgets it.
 */
uint64
transport_left_out(uint64 *by)
{
	uint64		index = tp_left_out_at;

	*by = tp_left_out_by;
	tp_left_out_at = tp_left_out_by = 0;
	return index;
}

uint64
transport_messages_sent(void)
{
	return tp_messages_sent;
}


/* ---------------------------------------------------------------------
 * Peers
 * ---------------------------------------------------------------------
 */

static TpPeer *
tp_find(uint64 id)
{
	int			i;

	for (i = 0; i < tp_npeers; i++)
	{
		if (tp_peers[i]->id == id)
			return tp_peers[i];
	}
	return NULL;
}

/* close the connection and release everything the peer holds */
static void
tp_free_peer(TpPeer *p)
{
	tp_close(p);
	tp_queue_reset(&p->queue);
	if (p->conninfo != NULL)
		pfree(p->conninfo);
	pfree(p);
}

/*
 * Check once, when the conninfo is set, that libpq can parse it, and
 * whether it names a database.  A conninfo libpq rejects would fail every
 * attempt, and libpq's parse errors quote pieces of the string, so we say
 * only that it is invalid, and never try it.
 */
static void
tp_check_conninfo(TpPeer *p)
{
	PQconninfoOption *opts;
	PQconninfoOption *opt;
	char	   *err = NULL;

	p->conninfo_ok = false;
	p->has_dbname = false;

	opts = PQconninfoParse(p->conninfo, &err);
	if (opts == NULL)
	{
		if (err != NULL)
			PQfreemem(err);
		ereport(LOG,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("raftable: the conninfo of node %llu is invalid; not connecting to it",
						(unsigned long long) p->id)));
		return;
	}

	for (opt = opts; opt->keyword != NULL; opt++)
	{
		if (strcmp(opt->keyword, "dbname") == 0 &&
			opt->val != NULL && opt->val[0] != '\0')
			p->has_dbname = true;
	}
	PQconninfoFree(opts);
	p->conninfo_ok = true;
}


/* ---------------------------------------------------------------------
 * Connecting
 * ---------------------------------------------------------------------
 */

/*
 * Start a non-blocking connection attempt.  The conninfo (key=value or
 * URI) is expanded by libpq as the first "dbname"; the keywords after it
 * override what it says: our application_name, aggressive keepalives so
 * that a silently vanished peer is noticed within seconds, and a
 * connect_timeout (which libpq enforces only for blocking connects; we
 * enforce our own deadline in tp_advance_connect).  raftable.database is
 * the default database, since _deliver lives there.
 */
static void
tp_start_connect(TpPeer *p, TimestampTz now)
{
	const char *keys[10];
	const char *vals[10];
	char		appname[64];
	char		timeout[16];
	int			n = 0;

	snprintf(appname, sizeof(appname), "raftable-node-%llu",
			 (unsigned long long) tp_self_id);
	snprintf(timeout, sizeof(timeout), "%d",
			 Max(1, (tp_election_timeout() + 999) / 1000));

	keys[n] = "dbname";
	vals[n++] = p->conninfo;
	if (!p->has_dbname && raftable_database != NULL &&
		raftable_database[0] != '\0')
	{
		keys[n] = "dbname";
		vals[n++] = raftable_database;
	}
	keys[n] = "application_name";
	vals[n++] = appname;
	keys[n] = "keepalives";
	vals[n++] = "1";
	keys[n] = "keepalives_idle";
	vals[n++] = "1";
	keys[n] = "keepalives_interval";
	vals[n++] = "1";
	keys[n] = "keepalives_count";
	vals[n++] = "3";
	keys[n] = "connect_timeout";
	vals[n++] = timeout;
	keys[n] = NULL;
	vals[n] = NULL;
	Assert(n < lengthof(keys));

	p->conn = PQconnectStartParams(keys, vals, /* expand_dbname = */ 1);
	p->state = TP_CONNECTING;
	tp_socket_epoch++;
	p->connect_start = now;
	p->proven = false;
	p->output_pending = false;
	/* per libpq's protocol, the first thing to wait for is writability */
	p->poll_status = PGRES_POLLING_WRITING;

	if (p->conn == NULL)
	{
		tp_fail(p, now, TP_FAIL_CONNECT, "out of memory");
		return;
	}
	if (PQstatus(p->conn) == CONNECTION_BAD)
	{
		tp_fail(p, now, TP_FAIL_CONNECT, PQerrorMessage(p->conn));
		return;
	}
	PQsetNoticeProcessor(p->conn, tp_notice_processor, p);
}

/*
 * Advance a connection attempt as far as it goes without waiting.
 * PQconnectPoll must only be called once the socket is ready in the
 * direction it last asked for (called early, it would take a connect()
 * still in progress for a finished one), so we check readiness ourselves
 * rather than rely on which events woke the worker.
 */
static void
tp_advance_connect(TpPeer *p, TimestampTz now)
{
	int			steps = 0;

	/* a handful of steps at most: never spin here, whatever libpq says */
	while (p->state == TP_CONNECTING && steps++ < 16)
	{
		if (!tp_socket_ready(p->conn, p->poll_status))
			break;

		p->poll_status = PQconnectPoll(p->conn);
		if (p->poll_status == PGRES_POLLING_OK)
		{
			tp_connected(p, now);
			return;
		}
		if (p->poll_status == PGRES_POLLING_FAILED)
		{
			tp_fail(p, now, TP_FAIL_CONNECT, PQerrorMessage(p->conn));
			return;
		}
	}

	if (p->state == TP_CONNECTING &&
		TimestampDifferenceExceeds(p->connect_start, now,
								   tp_connect_timeout_ms()))
	{
		char		detail[128];

		snprintf(detail, sizeof(detail),
				 "connection attempt not finished after %d ms",
				 tp_connect_timeout_ms());
		tp_fail(p, now, TP_FAIL_CONNECT, detail);
	}
}

/*
 * Is the connecting socket ready for what PQconnectPoll waits for?  A
 * zero-timeout poll(); error and hang-up conditions count as ready, so
 * that PQconnectPoll gets to report them.  (poll() rather than
 * WaitLatchOrSocket: no descriptor to create, and nothing that can throw.)
 */
static bool
tp_socket_ready(PGconn *conn, PostgresPollingStatusType want)
{
	pgsocket	sock = PQsocket(conn);

	if (sock == PGINVALID_SOCKET)
		return true;			/* let PQconnectPoll find out what is wrong */

#ifdef HAVE_POLL_H
	{
		struct pollfd pfd;
		int			rc;

		pfd.fd = sock;
		pfd.events = (want == PGRES_POLLING_READING) ? POLLIN : POLLOUT;
		pfd.revents = 0;
		do
		{
			rc = poll(&pfd, 1, 0);
		} while (rc < 0 && errno == EINTR);

		/* on a poll() failure, let PQconnectPoll look at the socket */
		return rc != 0;
	}
#else
	{
		int			event;
		int			rc;

		if (want == PGRES_POLLING_READING)
			event = WL_SOCKET_READABLE;
		else if (PQstatus(conn) == CONNECTION_STARTED)
			event = WL_SOCKET_CONNECTED;	/* not WRITEABLE on Windows */
		else
			event = WL_SOCKET_WRITEABLE;

		rc = WaitLatchOrSocket(NULL,
							   event | WL_TIMEOUT | WL_POSTMASTER_DEATH,
							   sock, 0, PG_WAIT_EXTENSION);
		return (rc & event) != 0;
	}
#endif
}

/*
 * The connection is up: switch it to non-blocking mode and pipeline mode,
 * in which it stays until it is closed.
 */
static void
tp_connected(TpPeer *p, TimestampTz now)
{
	if (PQsetnonblocking(p->conn, 1) != 0)
	{
		tp_fail(p, now, TP_FAIL_SETUP,
				PQerrorMessage(p->conn));
		return;
	}
	if (PQenterPipelineMode(p->conn) != 1)
	{
		tp_fail(p, now, TP_FAIL_PIPELINE,
				PQerrorMessage(p->conn));
		return;
	}

	p->state = TP_CONNECTED;
	p->connected_at = now;
	p->ninflight = 0;
	p->inflight_first = 0;
	p->output_pending = false;

	/*
	 * Prepare the call once, so that the peer does not parse and plan it
	 * for every batch.  Batches use it at once; if the peer refuses it
	 * (raftable not created there yet), they fall back to the plain call
	 * until the next connection.
	 */
	{
		Oid			types[1] = {BYTEAOID};

		if (PQsendPrepare(p->conn, TP_DELIVER_STMT, TP_DELIVER_SQL, 1, types) != 1 ||
			PQpipelineSync(p->conn) != 1)
		{
			tp_fail(p, now, TP_FAIL_SETUP,
					PQerrorMessage(p->conn));
			return;
		}
		p->inflight_sent[0] = now;
		p->ninflight = 1;
		p->prepare_pending = true;
		p->prepared = true;
	}

	if (p->failure_logged)
	{
		ereport(LOG,
				(errmsg("raftable: connected to node %llu again",
						(unsigned long long) p->id)));
		p->failure_logged = false;
	}
	else
		ereport(DEBUG1,
				(errmsg_internal("raftable: connected to node %llu",
								 (unsigned long long) p->id)));
}


/* ---------------------------------------------------------------------
 * Serving a connection
 * ---------------------------------------------------------------------
 */

/*
 * One round on a connected peer: read what arrived, check the oldest call
 * against its deadline, send as many batches as the in-flight limit
 * allows, and push libpq's output buffer towards the kernel.
 */
static void
tp_serve(TpPeer *p, TimestampTz now)
{
	int			rc;

	/*
	 * Always read, not only when the worker saw the socket readable: it is
	 * one cheap non-blocking recv, it notices a closed connection even when
	 * nothing is expected, and it does not depend on TLS buffering.
	 */
	if (PQconsumeInput(p->conn) == 0)
	{
		tp_fail(p, now, TP_FAIL_LOST, PQerrorMessage(p->conn));
		return;
	}
	if (!tp_read_results(p, now))
		return;

	if (tp_call_timed_out(p, now))
	{
		char		detail[128];

		snprintf(detail, sizeof(detail),
				 "no answer to a message batch within %d ms",
				 tp_election_timeout());
		tp_fail(p, now, TP_FAIL_GAVE_UP, detail);
		return;
	}

	while (p->ninflight < TP_MAX_INFLIGHT && p->queue.tail > p->queue.head)
	{
		if (!tp_send_batch(p, now))
			return;
	}

	rc = PQflush(p->conn);
	if (rc < 0)
	{
		tp_fail(p, now, TP_FAIL_SEND, PQerrorMessage(p->conn));
		return;
	}
	p->output_pending = (rc == 1);

	/* a connection that has lasted a while counts as good, even if idle */
	if (!p->proven &&
		TimestampDifferenceExceeds(p->connected_at, now,
								   tp_election_timeout()))
	{
		p->proven = true;
		p->backoff_ms = 0;
	}
}

/* a frame's header: the message's length, u32 little endian */
static inline uint32
tp_frame_len(const uint8 *h)
{
	return (uint32) h[0] | ((uint32) h[1] << 8) | ((uint32) h[2] << 16) |
		((uint32) h[3] << 24);
}

static inline void
tp_frame_put_len(uint8 *h, uint32 len)
{
	for (int i = 0; i < TP_FRAME_HEADER; i++)
		h[i] = (uint8) (len >> (8 * i));
}

/*
 * A batch's framing, also used by _deliver's result: each message as a u32
 * length (little endian), then its bytes.  transport_frame_next() takes
 * the next one off (*p, *left): 1 with (*msg, *len); 0 at the end; -1 when
 * fewer than 4 bytes are left, -2 when the length claims more than is left
 * (*len says how much).
 */
int
transport_frame_next(const uint8 **p, size_t *left, const uint8 **msg, uint32 *len)
{
	const uint8 *b = *p;

	if (*left == 0)
		return 0;
	if (*left < TP_FRAME_HEADER)
		return -1;
	*len = tp_frame_len(b);
	if (*len > *left - TP_FRAME_HEADER)
		return -2;
	*msg = b + TP_FRAME_HEADER;
	*p += TP_FRAME_HEADER + *len;
	*left -= TP_FRAME_HEADER + *len;
	return 1;
}

/* append one framed message to buf */
void
transport_frame_append(StringInfo buf, const uint8 *msg, uint32 len)
{
	uint8		h[TP_FRAME_HEADER];

	tp_frame_put_len(h, len);
	appendBinaryStringInfo(buf, (const char *) h, TP_FRAME_HEADER);
	appendBinaryStringInfo(buf, (const char *) msg, len);
}

/*
 * _deliver's result (see raftable_deliver): NULL, or a u64, the index of
 * the peer's committed configuration when we are not in it (else 0), and
 * then the peer's answers to our READ_INDEX requests, framed as batches
 * are.  Those go to the worker through the inbox, as if delivered; only
 * that type, and only from this peer, is taken.  A peer of release 0.1
 * answers an empty void.
 */
static void
tp_note_answer(TpPeer *p, const PGresult *res)
{
	const uint8 *v;
	const uint8 *msg;
	size_t		left;
	uint32		len;
	uint64		index = 0;
	bool		pushed = false;

	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0) ||
		PQgetlength(res, 0, 0) < 8)
		return;
	v = (const uint8 *) PQgetvalue(res, 0, 0);
	left = PQgetlength(res, 0, 0) - 8;
	for (int i = 0; i < 8; i++)
		index |= (uint64) v[i] << (8 * i);
	if (index > tp_left_out_at)
	{
		tp_left_out_at = index;
		tp_left_out_by = p->id;
	}
	v += 8;
	while (transport_frame_next(&v, &left, &msg, &len) == 1)
	{
		raft_msg	m;
		uint64		cluster_id;

		if (raft_msg_decode(msg, len, &cluster_id, &m, NULL) == RAFT_OK)
		{
			if (m.type == RAFT_MSG_READ_INDEX_RESP && m.from == p->id &&
				raftable_inbox_push(msg, len))
				pushed = true;
			raft_msg_free(&m, NULL);
		}
	}
	if (pushed)
		SetLatch(MyLatch);		/* the worker drains the inbox next */
}

/*
 * Collect every result libpq has complete.  In pipeline mode each of our
 * calls yields its result, then a NULL, then PGRES_PIPELINE_SYNC for the
 * sync after it, which is what marks the batch done.  Returns false if the
 * connection was closed.
 */
static bool
tp_read_results(TpPeer *p, TimestampTz now)
{
	int			nulls = 0;

	while (!PQisBusy(p->conn))
	{
		PGresult   *res = PQgetResult(p->conn);

		if (res == NULL)
		{
			/*
			 * The end of one call's results; or, with nothing in flight (or
			 * twice in a row, which would mean our count is off), nothing
			 * more to read.
			 */
			if (p->ninflight == 0 || ++nulls >= 2)
				break;
			continue;
		}
		nulls = 0;

		switch (PQresultStatus(res))
		{
			case PGRES_PIPELINE_SYNC:
				if (p->ninflight > 0)
				{
					p->inflight_first = (p->inflight_first + 1) % TP_MAX_INFLIGHT;
					p->ninflight--;
				}
				p->proven = true;
				p->backoff_ms = 0;
				break;

			case PGRES_COMMAND_OK:
				p->prepare_pending = false; /* only the prepare says that */
				break;

			case PGRES_TUPLES_OK:
				tp_note_answer(p, res);
				break;

			case PGRES_PIPELINE_ABORTED:
				break;

			default:
				if (p->prepare_pending)
				{
					p->prepare_pending = false;
					p->prepared = false;
				}

				/*
				 * The peer refused the batch: not our cluster, extension not
				 * (yet) created, no permission...  The connection itself may
				 * be fine; Raft will try again.
				 */
				if (tp_rate_ok(&p->call_log, now))
				{
					const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
					const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
					char		buf[512];

					tp_chomp(buf, msg != NULL ? msg : PQresultErrorMessage(res),
							 sizeof(buf));
					ereport(LOG,
							(errcode(ERRCODE_CONNECTION_FAILURE),
							 errmsg("raftable: node %llu refused messages: %s",
									(unsigned long long) p->id, buf),
							 p->call_log.suppressed > 0 ?
							 errdetail("SQLSTATE %s; %llu similar errors not logged.",
									   sqlstate != NULL ? sqlstate : "?",
									   (unsigned long long) p->call_log.suppressed) :
							 errdetail("SQLSTATE %s.",
									   sqlstate != NULL ? sqlstate : "?")));
					p->call_log.suppressed = 0;
				}
				break;
		}
		PQclear(res);
	}

	if (PQstatus(p->conn) == CONNECTION_BAD)
	{
		tp_fail(p, now, TP_FAIL_LOST, PQerrorMessage(p->conn));
		return false;
	}
	return true;
}

/*
 * Hand the next batch to libpq: whole messages from the head of the
 * queue, up to TP_BATCH_MAX bytes (the first message goes even if it is
 * bigger), as one binary bytea parameter, followed by a pipeline sync.
 * libpq copies the data, so the queue space is free right after.  Returns
 * false if the connection was closed.
 */
static bool
tp_send_batch(TpPeer *p, TimestampTz now)
{
	TpQueue    *q = &p->queue;
	size_t		end = q->head;
	int			nmsgs = 0;
	const char *values[1];
	int			lengths[1];
	int			formats[1];
	Oid			types[1];
	int			slot;

	while (end < q->tail)
	{
		size_t		frame = TP_FRAME_HEADER + tp_frame_len((const uint8 *) q->buf + end);

		if (nmsgs > 0 && end - q->head + frame > TP_BATCH_MAX)
			break;
		end += frame;
		nmsgs++;
	}

	types[0] = BYTEAOID;
	values[0] = q->buf + q->head;
	lengths[0] = (int) (end - q->head);
	formats[0] = 1;				/* binary */

	if ((p->prepared ?
		 PQsendQueryPrepared(p->conn, TP_DELIVER_STMT, 1, values, lengths, formats, 1) :
		 PQsendQueryParams(p->conn, TP_DELIVER_SQL, 1, types, values,
						   lengths, formats, 1)) != 1 ||
		PQpipelineSync(p->conn) != 1)
	{
		tp_fail(p, now, TP_FAIL_SEND, PQerrorMessage(p->conn));
		return false;
	}

	slot = (p->inflight_first + p->ninflight) % TP_MAX_INFLIGHT;
	p->inflight_sent[slot] = now;
	p->ninflight++;
	tp_messages_sent += nmsgs;

	q->head = end;
	q->nmsgs -= nmsgs;
	if (q->head == q->tail)
	{
		q->head = q->tail = 0;
		q->nmsgs = 0;
		/* do not keep a huge buffer around after a burst */
		if (q->cap > TP_QUEUE_SHRINK)
			tp_queue_reset(q);
	}
	return true;
}

/*
 * The oldest batch in flight has waited longer than the election timeout:
 * the peer (or the path to it) is as good as dead for Raft's purposes.
 */
static bool
tp_call_timed_out(TpPeer *p, TimestampTz now)
{
	if (p->ninflight == 0)
		return false;
	return TimestampDifferenceExceeds(p->inflight_sent[p->inflight_first], now,
									  tp_election_timeout());
}


/* ---------------------------------------------------------------------
 * Failure and backoff
 * ---------------------------------------------------------------------
 */

/*
 * The connection (or the attempt) failed: log why (rate-limited), close
 * it, drop what was queued (Raft retransmits, and the queue must not grow
 * while the peer is away), and schedule the next attempt after a backoff
 * that starts at TP_BACKOFF_MIN_MS and doubles up to the election timeout,
 * starting over once a connection has proved good.
 */
static void
tp_fail(TpPeer *p, TimestampTz now, TpFailure why, const char *detail)
{
	if (tp_rate_ok(&p->conn_log, now))
	{
		char		buf[512];
		unsigned long long id = (unsigned long long) p->id;
		unsigned long long suppressed = (unsigned long long) p->conn_log.suppressed;

		tp_chomp(buf, detail != NULL ? detail : "", sizeof(buf));
		ereport(LOG,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg(tp_failure_msgs[why], id, buf),
				 suppressed > 0 ? errdetail("%llu similar failures not logged.", suppressed) : 0));
		p->conn_log.suppressed = 0;
		p->failure_logged = true;
	}

	if (p->proven)
		p->backoff_ms = 0;
	tp_close(p);
	tp_drop_queue(p);

	if (p->backoff_ms <= 0)
		p->backoff_ms = TP_BACKOFF_MIN_MS;
	else
		p->backoff_ms = Min(p->backoff_ms * 2,
							Max(tp_election_timeout(), TP_BACKOFF_MIN_MS));
	p->next_attempt = TimestampTzPlusMilliseconds(now, p->backoff_ms);
}

/* close the connection, if any; what is in flight is lost */
static void
tp_close(TpPeer *p)
{
	if (p->conn != NULL)
	{
		PQfinish(p->conn);
		p->conn = NULL;
		tp_socket_epoch++;
	}
	p->state = TP_IDLE;
	p->ninflight = 0;
	p->inflight_first = 0;
	p->output_pending = false;
	p->proven = false;
}

static void
tp_drop_queue(TpPeer *p)
{
	p->dropped += p->queue.nmsgs;
	tp_queue_reset(&p->queue);
}


/* ---------------------------------------------------------------------
 * Queues
 * ---------------------------------------------------------------------
 */

/*
 * Append one framed message.  Returns false, keeping the queue as it was,
 * if memory for it cannot be had; the caller drops the message then.
 */
static bool
tp_queue_append(TpQueue *q, const uint8 *msg, size_t len)
{
	size_t		need = TP_FRAME_HEADER + len;
	uint8	   *h;

	if (q->tail + need > q->cap)
	{
		size_t		used = q->tail - q->head;

		if (used + need <= q->cap && q->head > 0)
		{
			/* enough room once what was sent is squeezed out */
			memmove(q->buf, q->buf + q->head, used);
		}
		else
		{
			size_t		newcap = Max(q->cap, TP_QUEUE_INITIAL);
			char	   *newbuf;

			while (newcap < used + need)
				newcap *= 2;
			newcap = Min(newcap, TP_QUEUE_MAX);
			if (newcap < used + need)
				return false;

			newbuf = MemoryContextAllocExtended(tp_context, newcap,
												MCXT_ALLOC_HUGE |
												MCXT_ALLOC_NO_OOM);
			if (newbuf == NULL)
				return false;
			if (used > 0)
				memcpy(newbuf, q->buf + q->head, used);
			if (q->buf != NULL)
				pfree(q->buf);
			q->buf = newbuf;
			q->cap = newcap;
		}
		q->head = 0;
		q->tail = used;
	}

	h = (uint8 *) q->buf + q->tail;
	tp_frame_put_len(h, (uint32) len);
	if (len > 0)
		memcpy(h + TP_FRAME_HEADER, msg, len);
	q->tail += need;
	q->nmsgs++;
	return true;
}

/* empty the queue and give its memory back */
static void
tp_queue_reset(TpQueue *q)
{
	if (q->buf != NULL)
		pfree(q->buf);
	q->buf = NULL;
	q->cap = 0;
	q->head = q->tail = 0;
	q->nmsgs = 0;
}


/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */

/*
 * The events to wait for on a peer's socket, or 0 if it has none to wait
 * on.
 */
static int
tp_wait_events(TpPeer *p)
{
	int			events;

	if (p->state == TP_IDLE || p->conn == NULL ||
		PQsocket(p->conn) == PGINVALID_SOCKET)
		return 0;

	events = WL_SOCKET_READABLE;
	if (p->state == TP_CONNECTING)
	{
		if (p->poll_status == PGRES_POLLING_WRITING)
			events |= (PQstatus(p->conn) == CONNECTION_STARTED) ?
				WL_SOCKET_CONNECTED : WL_SOCKET_WRITEABLE;
	}
	else if (p->output_pending)
		events |= WL_SOCKET_WRITEABLE;
	return events;
}

/*
 * May this kind of log line be printed now?  Counts the ones it holds
 * back, so the next printed line can say how many there were.
 */
static bool
tp_rate_ok(TpRateLimit *rl, TimestampTz now)
{
	if (rl->last != 0 &&
		!TimestampDifferenceExceeds(rl->last, now, TP_LOG_INTERVAL_MS))
	{
		rl->suppressed++;
		return false;
	}
	rl->last = now;
	return true;
}

/* the election timeout in ms, never below 1 (it may change on SIGHUP) */
static int
tp_election_timeout(void)
{
	return Max(raftable_election_timeout, 1);
}

static int
tp_connect_timeout_ms(void)
{
	return Max(tp_election_timeout(), TP_CONNECT_MIN_MS);
}

/* copy a libpq message without its trailing newlines */
static void
tp_chomp(char *dst, const char *src, size_t dstlen)
{
	size_t		n;

	strlcpy(dst, src, dstlen);
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
		dst[--n] = '\0';
}

/*
 * Notices from a peer's backend would otherwise go to the worker's stderr.
 * _deliver raises none in normal operation; what comes is worth a look,
 * e.g. the FATAL a backend sends when it is terminated while idle, which
 * libpq hands to the notice processor.  Rate-limited like call errors.
 */
static void
tp_notice_processor(void *arg, const char *message)
{
	TpPeer	   *p = (TpPeer *) arg;
	char		buf[512];

	if (!tp_rate_ok(&p->call_log, GetCurrentTimestamp()))
		return;
	tp_chomp(buf, message, sizeof(buf));
	ereport(LOG,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("raftable: message from node %llu: %s",
					(unsigned long long) p->id, buf)));
}
