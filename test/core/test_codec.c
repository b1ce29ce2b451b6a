/*
 * test_codec.c
 *	  Unit tests of the codec (src/core/codec.c): round trips of every
 *	  message type, configurations and entries, the exact byte layout, and
 *	  rejection of malformed input (truncation at every offset, every single
 *	  bit flipped, out-of-range fields, oversized counts, trailing bytes).
 *
 * Malformed inputs are always decoded from a heap buffer of exactly their
 * length, so that the sanitizer build (make sanitize) catches any read past
 * the end.  A counting allocator checks that no error path leaks and that
 * a short malformed input never allocates a large array.
 */
#include "raft.h"
#include "testlib.h"

#include <stdbool.h>
#include <stdlib.h>

/* ---------- a counting, optionally failing allocator ---------- */

typedef struct counting_alloc
{
	long		live;			/* allocations not yet freed */
	long		count;			/* allocations made */
	size_t		max_size;		/* largest single request */
	long		fail_at;		/* fail the n-th allocation (1-based); 0: never */
} counting_alloc;

static void *
ca_alloc(void *ctx, size_t size)
{
	counting_alloc *ca = ctx;

	ca->count++;
	if (size > ca->max_size)
		ca->max_size = size;
	if (ca->fail_at != 0 && ca->count == ca->fail_at)
		return NULL;
	ca->live++;
	return malloc(size);
}

static void *
ca_realloc(void *ctx, void *ptr, size_t size)
{
	return realloc(ptr, size);
}

static void
ca_free(void *ctx, void *ptr)
{
	counting_alloc *ca = ctx;

	if (ptr != NULL)
		ca->live--;
	free(ptr);
}

static raft_allocator
ca_allocator(counting_alloc *ca)
{
	raft_allocator a;

	memset(ca, 0, sizeof(*ca));
	a.alloc = ca_alloc;
	a.realloc = ca_realloc;
	a.free = ca_free;
	a.ctx = ca;
	return a;
}

/* ---------- fixtures ---------- */

#define CLUSTER_ID 0x0123456789abcdefULL

static uint8_t payload_a[] = "hello, raft";
static uint8_t payload_b[] = {0x00, 0xff, 0x7f, 0x80};
static raft_entry fixture_entries[3];
static raft_snapshot_meta fixture_snap;
static raft_conf big_conf;

static void
fill_conf(raft_conf *conf, uint32_t n, uint16_t addr_len)
{
	uint32_t	i;

	memset(conf, 0, sizeof(*conf));
	conf->n = n;
	for (i = 0; i < n; i++)
	{
		raft_member *mb = &conf->members[i];

		mb->id = 1000 + (uint64_t) i * 7919;
		mb->voter = (i % 3) != 2;
		if (addr_len == 0xffff)
		{
			/* a realistic address */
			mb->addr_len = (uint16_t) snprintf(mb->addr, RAFT_MAX_ADDR,
											   "host=n%u port=%u", i, 5432 + i);
		}
		else
		{
			uint16_t	k;

			mb->addr_len = addr_len;
			for (k = 0; k < addr_len; k++)
				mb->addr[k] = (char) ('a' + (i + k) % 26);
		}
	}
}

/* A message of the given type with every scalar field set to a distinct value. */
static void
make_msg(raft_msg *m, uint8_t type, bool with_entries, bool with_snapshot)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = 3;
	m->to = 0x1122334455667788ULL;
	m->term = 42;
	m->index = 1000;
	m->log_term = 41;
	m->commit = 999;
	m->reject = (type % 2) == 0;
	m->transfer = (type % 3) == 0;
	m->hint_index = 77;
	m->hint_term = 40;
	m->seq = UINT64_MAX;
	m->ctx = 0x8000000000000001ULL;

	if (with_entries)
	{
		fixture_entries[0].term = 41;
		fixture_entries[0].index = 1001;
		fixture_entries[0].type = RAFT_ENTRY_NOOP;
		fixture_entries[0].len = 0;
		fixture_entries[0].data = NULL;
		fixture_entries[1].term = 42;
		fixture_entries[1].index = 1002;
		fixture_entries[1].type = RAFT_ENTRY_NORMAL;
		fixture_entries[1].len = sizeof(payload_a);
		fixture_entries[1].data = payload_a;
		fixture_entries[2].term = 42;
		fixture_entries[2].index = 1003;
		fixture_entries[2].type = RAFT_ENTRY_CONF;
		fixture_entries[2].len = sizeof(payload_b);
		fixture_entries[2].data = payload_b;
		m->n_entries = 3;
		m->entries = fixture_entries;
	}
	if (with_snapshot)
	{
		memset(&fixture_snap, 0, sizeof(fixture_snap));
		fixture_snap.index = 900;
		fixture_snap.term = 39;
		fill_conf(&fixture_snap.conf, 3, 0xffff);
		m->snapshot = &fixture_snap;
	}
}

/*
 * Encode m into a fresh heap buffer of exactly its size; a disagreement
 * between encoded_size and encode fails the test.
 */
static uint8_t *
encode_msg(const raft_msg *m, size_t *len)
{
	size_t		size = raft_msg_encoded_size(m);
	uint8_t    *buf = malloc(size);

	*len = raft_msg_encode(m, CLUSTER_ID, buf);
	if (*len != size)
		testlib_fail(__FILE__, __LINE__, "encoded %zu bytes, size said %zu",
					 *len, size);
	return buf;
}

/* A heap copy of len bytes, so that ASan sees the exact end of the input. */
static uint8_t *
dup_bytes(const uint8_t *src, size_t len)
{
	uint8_t    *p = malloc(len > 0 ? len : 1);

	if (len > 0)
		memcpy(p, src, len);
	return p;
}

static bool
is_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t		i;

	for (i = 0; i < len; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static bool
conf_equal(const raft_conf *a, const raft_conf *b)
{
	uint32_t	i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
	{
		const raft_member *x = &a->members[i];
		const raft_member *y = &b->members[i];

		if (x->id != y->id || x->voter != y->voter || x->addr_len != y->addr_len ||
			memcmp(x->addr, y->addr, x->addr_len) != 0)
			return false;
	}
	return true;
}

static bool
entry_equal(const raft_entry *a, const raft_entry *b)
{
	return a->term == b->term && a->index == b->index && a->type == b->type &&
		a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static bool
msg_equal(const raft_msg *a, const raft_msg *b)
{
	uint32_t	i;

	if (a->type != b->type || a->from != b->from || a->to != b->to ||
		a->term != b->term || a->index != b->index ||
		a->log_term != b->log_term || a->commit != b->commit ||
		a->reject != b->reject || a->transfer != b->transfer ||
		a->hint_index != b->hint_index || a->hint_term != b->hint_term ||
		a->seq != b->seq || a->ctx != b->ctx || a->n_entries != b->n_entries)
		return false;
	for (i = 0; i < a->n_entries; i++)
		if (!entry_equal(&a->entries[i], &b->entries[i]))
			return false;
	if ((a->snapshot == NULL) != (b->snapshot == NULL))
		return false;
	if (a->snapshot != NULL &&
		(a->snapshot->index != b->snapshot->index ||
		 a->snapshot->term != b->snapshot->term ||
		 !conf_equal(&a->snapshot->conf, &b->snapshot->conf)))
		return false;
	return true;
}

/* little-endian helpers for building and patching encodings by hand */
static void
le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static void
le32(uint8_t *p, uint32_t v)
{
	int			i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static void
le64(uint8_t *p, uint64_t v)
{
	int			i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

/* offsets in a message encoding (see the table in codec.c) */
#define OFF_VERSION		2
#define OFF_TYPE		3
#define OFF_CLUSTER		4
#define OFF_FROM		12
#define OFF_REJECT		60
#define OFF_TRANSFER	61
#define OFF_SEQ			78
#define OFF_NENTRIES	94
#define OFF_BODY		98		/* first entry, or the snapshot presence byte */
#define MSG_MIN			99

/*
 * Decode buf[0..len) (a heap copy of exactly len bytes) and expect rc; on
 * failure also expect *m zeroed, cluster id 0 and nothing left allocated.
 */
/*
 * raft_msg_peek() must judge buf as raft_msg_decode() did (rc) and, on
 * success, give the decoded message's envelope: every fixed field, no
 * entries and no snapshot.  Returns 1 if it does.
 */
static int
peek_agrees(const uint8_t *buf, size_t len, int rc, uint64_t cid,
			const raft_msg *d)
{
	raft_msg	env;
	raft_msg	want;
	uint64_t	pcid;

	if (raft_msg_peek(buf, len, &pcid, &env) != rc)
		return 0;
	if (rc != RAFT_OK)
		return is_zero(&env, sizeof(env)) && pcid == 0;
	memcpy(&want, d, sizeof(want));
	want.entries = NULL;
	want.n_entries = 0;
	want.snapshot = NULL;
	return pcid == cid && memcmp(&env, &want, sizeof(env)) == 0;
}

static void
expect_msg_decode(const uint8_t *src, size_t len, int expect_rc)
{
	uint8_t    *buf = dup_bytes(src, len);
	counting_alloc ca;
	raft_allocator a = ca_allocator(&ca);
	raft_msg	m;
	uint64_t	cid = 12345;
	int			rc;

	rc = raft_msg_decode(buf, len, &cid, &m, &a);
	CHECK_EQ(peek_agrees(buf, len, rc, cid, &m), 1);
	if (rc == RAFT_OK)
		raft_msg_free(&m, &a);
	free(buf);
	CHECK_EQ(rc, expect_rc);
	if (rc != RAFT_OK)
	{
		CHECK(is_zero(&m, sizeof(m)));
		CHECK_EQ(cid, 0);
	}
	CHECK_EQ(ca.live, 0);
}

/*
 * Round-trip m: encode, decode with both the counting and the default
 * allocator, compare, re-encode and compare bytes.
 */
static void
check_msg_roundtrip(const raft_msg *m)
{
	size_t		len,
				len2;
	uint8_t    *buf = encode_msg(m, &len);
	uint8_t    *buf2;
	counting_alloc ca;
	raft_allocator a = ca_allocator(&ca);
	raft_msg	d;
	uint64_t	cid = 0;
	uint32_t	i;

	CHECK(buf != NULL);
	CHECK_EQ(raft_msg_decode(buf, len, &cid, &d, &a), RAFT_OK);
	CHECK_EQ(cid, CLUSTER_ID);
	CHECK(msg_equal(m, &d));
	CHECK_EQ(ca.live, (d.n_entries > 0) + (d.snapshot != NULL));
	/* zero copy: payloads point into the encoding */
	for (i = 0; i < d.n_entries; i++)
	{
		if (d.entries[i].len == 0)
			CHECK(d.entries[i].data == NULL);
		else
			CHECK(d.entries[i].data > buf && d.entries[i].data + d.entries[i].len <= buf + len);
	}
	/* canonical */
	CHECK_EQ(raft_msg_encoded_size(&d), len);
	buf2 = malloc(len);
	len2 = raft_msg_encode(&d, cid, buf2);
	CHECK_EQ(len2, len);
	CHECK(memcmp(buf, buf2, len) == 0);
	free(buf2);
	raft_msg_free(&d, &a);
	CHECK(is_zero(&d, sizeof(d)));
	CHECK_EQ(ca.live, 0);

	/* the default allocator */
	CHECK_EQ(raft_msg_decode(buf, len, NULL, &d, NULL), RAFT_OK);
	CHECK(msg_equal(m, &d));
	raft_msg_free(&d, NULL);
	free(buf);
}

/* ---------- round trips ---------- */

TEST(codec_msg_roundtrip_every_type)
{
	uint8_t		type;
	int			variant;
	raft_msg	m;

	for (type = 1; type <= RAFT_MSG_TYPE_MAX; type++)
	{
		for (variant = 0; variant < 4; variant++)
		{
			bool		entries = (variant & 1) != 0;
			bool		snap = (variant & 2) != 0;

			/* a SNAPSHOT message always carries its metadata */
			if (type == RAFT_MSG_SNAPSHOT && !snap)
				continue;
			make_msg(&m, type, entries, snap);
			check_msg_roundtrip(&m);
			if (testlib_failed_now)
			{
				printf("    (type %u, entries %d, snapshot %d)\n", type, entries, snap);
				return;
			}
		}
	}
}

TEST(codec_msg_roundtrip_extremes)
{
	raft_msg	m;
	raft_snapshot_meta *snap = malloc(sizeof(*snap));
	raft_entry	e[1];

	/* all zero (but a valid type) */
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_HEARTBEAT;
	check_msg_roundtrip(&m);
	if (testlib_failed_now)
		goto out;

	/* all ones */
	memset(&m, 0xff, sizeof(m));
	m.type = RAFT_MSG_TYPE_MAX;
	m.reject = true;
	m.transfer = true;
	m.n_entries = 0;
	m.entries = NULL;
	m.snapshot = NULL;
	check_msg_roundtrip(&m);
	if (testlib_failed_now)
		goto out;

	/* a full-size snapshot conf and an empty-conf snapshot */
	make_msg(&m, RAFT_MSG_SNAPSHOT, false, false);
	memset(snap, 0, sizeof(*snap));
	snap->index = UINT64_MAX;
	snap->term = UINT64_MAX;
	fill_conf(&snap->conf, RAFT_MAX_MEMBERS, RAFT_MAX_ADDR);
	m.snapshot = snap;
	check_msg_roundtrip(&m);
	if (testlib_failed_now)
		goto out;
	snap->conf.n = 0;
	check_msg_roundtrip(&m);
	if (testlib_failed_now)
		goto out;

	/* one large entry */
	make_msg(&m, RAFT_MSG_APPEND, false, false);
	e[0].term = 1;
	e[0].index = 1;
	e[0].type = RAFT_ENTRY_NORMAL;
	e[0].len = 1 << 20;
	e[0].data = calloc(1, e[0].len);
	m.n_entries = 1;
	m.entries = e;
	check_msg_roundtrip(&m);
	free(e[0].data);
out:
	free(snap);
}

TEST(codec_msg_layout)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint8_t		expect[256];
	uint8_t    *p = expect;
	raft_entry	e;
	static raft_snapshot_meta snap;

	/* build the expected bytes by hand from the documented format */
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 3;
	m.index = 4;
	m.log_term = 5;
	m.commit = 6;
	m.reject = true;
	m.transfer = false;
	m.hint_index = 7;
	m.hint_term = 8;
	m.seq = 9;
	m.ctx = 10;
	e.term = 11;
	e.index = 12;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = 2;
	e.data = (uint8_t *) "xy";
	m.n_entries = 1;
	m.entries = &e;
	memset(&snap, 0, sizeof(snap));
	snap.index = 13;
	snap.term = 14;
	snap.conf.n = 1;
	snap.conf.members[0].id = 15;
	snap.conf.members[0].voter = true;
	snap.conf.members[0].addr_len = 3;
	memcpy(snap.conf.members[0].addr, "abc", 3);
	m.snapshot = &snap;

	*p++ = 0x52;
	*p++ = 0x46;
	*p++ = RAFT_CODEC_VERSION;
	*p++ = RAFT_MSG_APPEND;
	le64(p, CLUSTER_ID), p += 8;
	le64(p, 1), p += 8;
	le64(p, 2), p += 8;
	le64(p, 3), p += 8;
	le64(p, 4), p += 8;
	le64(p, 5), p += 8;
	le64(p, 6), p += 8;
	*p++ = 1;
	*p++ = 0;
	le64(p, 7), p += 8;
	le64(p, 8), p += 8;
	le64(p, 9), p += 8;
	le64(p, 10), p += 8;
	CHECK_EQ(p - expect, OFF_NENTRIES);
	le32(p, 1), p += 4;
	CHECK_EQ(p - expect, OFF_BODY);
	le64(p, 11), p += 8;
	le64(p, 12), p += 8;
	*p++ = RAFT_ENTRY_NORMAL;
	le32(p, 2), p += 4;
	*p++ = 'x';
	*p++ = 'y';
	*p++ = 1;
	le64(p, 13), p += 8;
	le64(p, 14), p += 8;
	le32(p, 1), p += 4;
	le64(p, 15), p += 8;
	*p++ = 1;
	le16(p, 3), p += 2;
	*p++ = 'a';
	*p++ = 'b';
	*p++ = 'c';

	buf = encode_msg(&m, &len);
	CHECK(buf != NULL);
	CHECK_EQ(len, (size_t) (p - expect));
	CHECK(memcmp(buf, expect, len) == 0);
	free(buf);

	/* the smallest message */
	memset(&m, 0, sizeof(m));
	m.type = RAFT_MSG_HEARTBEAT;
	CHECK_EQ(raft_msg_encoded_size(&m), MSG_MIN);
}

TEST(codec_msg_free_is_idempotent)
{
	raft_msg	m;

	memset(&m, 0, sizeof(m));
	raft_msg_free(&m, NULL);
	raft_msg_free(&m, NULL);
	raft_msg_free(NULL, NULL);
	CHECK(is_zero(&m, sizeof(m)));
}

TEST(codec_conf_roundtrip)
{
	static raft_conf d;
	uint32_t	sizes[] = {0, 1, 3, RAFT_MAX_MEMBERS};
	uint16_t	addr_lens[] = {0, 1, 0xffff, RAFT_MAX_ADDR};
	int			i,
				j;

	for (i = 0; i < 4; i++)
	{
		for (j = 0; j < 4; j++)
		{
			size_t		size,
						len;
			uint8_t    *buf,
					   *buf2;

			fill_conf(&big_conf, sizes[i], addr_lens[j]);
			size = raft_conf_encoded_size(&big_conf);
			buf = malloc(size + 1);
			len = raft_conf_encode(&big_conf, buf);
			CHECK_EQ(len, size);
			memset(&d, 0xaa, sizeof(d));
			CHECK_EQ(raft_conf_decode(buf, len, &d), RAFT_OK);
			CHECK(conf_equal(&big_conf, &d));
			/* unused addr bytes are zeroed: decoding is deterministic */
			if (d.n > 0)
				CHECK(is_zero(d.members[0].addr + d.members[0].addr_len,
							  RAFT_MAX_ADDR - d.members[0].addr_len));
			if (d.n < RAFT_MAX_MEMBERS)
				CHECK(is_zero(&d.members[d.n], sizeof(raft_member)));
			CHECK_EQ(raft_conf_encoded_size(&d), len);
			buf2 = malloc(len + 1);
			CHECK_EQ(raft_conf_encode(&d, buf2), len);
			CHECK(memcmp(buf, buf2, len) == 0);
			free(buf);
			free(buf2);
		}
	}
	/* the largest conf: version, 4 + 64 * (11 + 1024) bytes */
	fill_conf(&big_conf, RAFT_MAX_MEMBERS, RAFT_MAX_ADDR);
	CHECK_EQ(raft_conf_encoded_size(&big_conf), 1 + 4 + RAFT_MAX_MEMBERS * (11 + RAFT_MAX_ADDR));
}

TEST(codec_entry_roundtrip)
{
	uint8_t		types[] = {RAFT_ENTRY_NOOP, RAFT_ENTRY_NORMAL, RAFT_ENTRY_CONF};
	int			i;

	for (i = 0; i < 3; i++)
	{
		raft_entry	e,
					d;
		uint8_t    *buf,
				   *buf2;
		size_t		len;

		e.term = 7 + i;
		e.index = UINT64_MAX - i;
		e.type = types[i];
		e.len = i == 0 ? 0 : sizeof(payload_a);
		e.data = i == 0 ? NULL : payload_a;
		len = raft_entry_encoded_size(&e);
		CHECK_EQ(len, 22 + e.len);
		buf = malloc(len);
		CHECK_EQ(raft_entry_encode(&e, buf), len);
		CHECK_EQ(buf[0], RAFT_CODEC_VERSION);
		CHECK_EQ(raft_entry_decode(buf, len, &d), RAFT_OK);
		CHECK(entry_equal(&e, &d));
		if (e.len == 0)
			CHECK(d.data == NULL);
		else
			CHECK(d.data == buf + 22);
		buf2 = malloc(len);
		CHECK_EQ(raft_entry_encode(&d, buf2), len);
		CHECK(memcmp(buf, buf2, len) == 0);
		free(buf);
		free(buf2);
	}
}

/* ---------- rejection ---------- */

TEST(codec_msg_truncated_at_every_offset)
{
	raft_msg	m;
	size_t		len,
				cut;
	uint8_t    *buf;

	make_msg(&m, RAFT_MSG_APPEND, true, true);
	buf = encode_msg(&m, &len);
	CHECK(buf != NULL);
	for (cut = 0; cut < len; cut++)
	{
		expect_msg_decode(buf, cut, RAFT_EMALFORMED);
		if (testlib_failed_now)
		{
			printf("    (prefix of %zu bytes of %zu)\n", cut, len);
			break;
		}
	}
	expect_msg_decode(buf, len, RAFT_OK);
	free(buf);
}

TEST(codec_msg_decode_null_buffer)
{
	raft_msg	m;
	uint64_t	cid = 1;

	CHECK_EQ(raft_msg_decode(NULL, 0, &cid, &m, NULL), RAFT_EMALFORMED);
	CHECK(is_zero(&m, sizeof(m)));
	CHECK_EQ(cid, 0);
}

TEST(codec_conf_truncated_at_every_offset)
{
	size_t		size,
				cut;
	uint8_t    *buf;
	static raft_conf d;

	fill_conf(&big_conf, 5, 0xffff);
	size = raft_conf_encoded_size(&big_conf);
	buf = malloc(size);
	raft_conf_encode(&big_conf, buf);
	for (cut = 0; cut < size; cut++)
	{
		uint8_t    *pre = dup_bytes(buf, cut);
		int			rc = raft_conf_decode(pre, cut, &d);

		free(pre);
		CHECK_EQ(rc, RAFT_EMALFORMED);
		CHECK(is_zero(&d, sizeof(d)));
	}
	free(buf);
}

TEST(codec_entry_truncated_at_every_offset)
{
	raft_entry	e,
				d;
	size_t		len,
				cut;
	uint8_t    *buf;

	e.term = 5;
	e.index = 6;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = sizeof(payload_a);
	e.data = payload_a;
	len = raft_entry_encoded_size(&e);
	buf = malloc(len);
	raft_entry_encode(&e, buf);
	for (cut = 0; cut < len; cut++)
	{
		uint8_t    *pre = dup_bytes(buf, cut);
		int			rc = raft_entry_decode(pre, cut, &d);

		free(pre);
		CHECK_EQ(rc, RAFT_EMALFORMED);
		CHECK(is_zero(&d, sizeof(d)));
	}
	free(buf);
}

TEST(codec_msg_bad_magic)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	int			i;

	make_msg(&m, RAFT_MSG_VOTE, false, false);
	buf = encode_msg(&m, &len);
	for (i = 0; i < 2; i++)
	{
		buf[i] ^= 0x01;
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
		buf[i] ^= 0x01;
	}
	/* bad magic wins over a bad version: foreign bytes are not "too new" */
	buf[0] = 0;
	buf[OFF_VERSION] = 99;
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);
}

TEST(codec_bad_version)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint8_t		versions[] = {0, RAFT_CODEC_VERSION + 1, 255};
	raft_entry	e,
				d;
	uint8_t		ebuf[64];
	size_t		elen;
	int			i;

	make_msg(&m, RAFT_MSG_APPEND, true, true);
	buf = encode_msg(&m, &len);
	for (i = 0; i < 3; i++)
	{
		buf[OFF_VERSION] = versions[i];
		expect_msg_decode(buf, len, RAFT_EVERSION);
		/* a newer version may have a new type or layout: still EVERSION */
		buf[OFF_TYPE] = 200;
		expect_msg_decode(buf, MSG_MIN - 10, RAFT_EVERSION);
		buf[OFF_TYPE] = RAFT_MSG_APPEND;
	}
	free(buf);

	e.term = 1;
	e.index = 2;
	e.type = RAFT_ENTRY_NOOP;
	e.len = 0;
	e.data = NULL;
	elen = raft_entry_encode(&e, ebuf);
	for (i = 0; i < 3; i++)
	{
		ebuf[0] = versions[i];
		CHECK_EQ(raft_entry_decode(ebuf, elen, &d), RAFT_EVERSION);
		CHECK(is_zero(&d, sizeof(d)));
	}
}

TEST(codec_msg_bad_type)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint8_t		types[] = {0, RAFT_MSG_TYPE_MAX + 1, 128, 255};
	int			i;

	make_msg(&m, RAFT_MSG_HEARTBEAT, false, false);
	buf = encode_msg(&m, &len);
	for (i = 0; i < 4; i++)
	{
		buf[OFF_TYPE] = types[i];
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
	}
	free(buf);
}

TEST(codec_msg_bad_bools)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint8_t		bad[] = {2, 0x80, 0xff};
	int			i;

	make_msg(&m, RAFT_MSG_SNAPSHOT, false, true);
	buf = encode_msg(&m, &len);
	CHECK(buf != NULL);
	expect_msg_decode(buf, len, RAFT_OK);
	for (i = 0; i < 3; i++)
	{
		uint8_t		save;

		save = buf[OFF_REJECT];
		buf[OFF_REJECT] = bad[i];
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
		buf[OFF_REJECT] = save;

		save = buf[OFF_TRANSFER];
		buf[OFF_TRANSFER] = bad[i];
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
		buf[OFF_TRANSFER] = save;

		/* snapshot presence */
		buf[OFF_BODY] = bad[i];
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
		buf[OFF_BODY] = 1;

		/* first member's voter flag: presence, index, term, n, id */
		save = buf[OFF_BODY + 1 + 16 + 4 + 8];
		buf[OFF_BODY + 1 + 16 + 4 + 8] = bad[i];
		expect_msg_decode(buf, len, RAFT_EMALFORMED);
		buf[OFF_BODY + 1 + 16 + 4 + 8] = save;
	}
	expect_msg_decode(buf, len, RAFT_OK);
	free(buf);
}

TEST(codec_snapshot_msg_needs_snapshot)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;

	make_msg(&m, RAFT_MSG_HEARTBEAT, false, false);
	buf = encode_msg(&m, &len);
	buf[OFF_TYPE] = RAFT_MSG_SNAPSHOT;
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);
}

TEST(codec_bad_entry_type)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	raft_entry	e,
				d;
	uint8_t		ebuf[64];
	size_t		elen;

	make_msg(&m, RAFT_MSG_APPEND, true, false);
	buf = encode_msg(&m, &len);
	/* first entry's type: after term and index */
	buf[OFF_BODY + 16] = 3;
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	buf[OFF_BODY + 16] = 0xff;
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);

	e.term = 1;
	e.index = 2;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = 1;
	e.data = payload_a;
	elen = raft_entry_encode(&e, ebuf);
	ebuf[1 + 16] = 3;
	CHECK_EQ(raft_entry_decode(ebuf, elen, &d), RAFT_EMALFORMED);
	CHECK(is_zero(&d, sizeof(d)));
}

TEST(codec_huge_n_entries_short_buffer)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint32_t	counts[] = {UINT32_MAX, 0x80000000u, 1u << 20, 4, 2};
	int			i;

	make_msg(&m, RAFT_MSG_APPEND, false, false);
	buf = encode_msg(&m, &len);
	for (i = 0; i < 5; i++)
	{
		counting_alloc ca;
		raft_allocator a = ca_allocator(&ca);
		raft_msg	d;
		uint8_t    *copy;

		le32(buf + OFF_NENTRIES, counts[i]);
		copy = dup_bytes(buf, len);
		CHECK_EQ(raft_msg_decode(copy, len, NULL, &d, &a), RAFT_EMALFORMED);
		free(copy);
		/* rejected before any allocation */
		CHECK_EQ(ca.count, 0);
		CHECK(is_zero(&d, sizeof(d)));
	}
	free(buf);

	/*
	 * A count that fits the remaining bytes at one byte per entry but not
	 * at the fixed 21 bytes each: still rejected before allocating.
	 */
	make_msg(&m, RAFT_MSG_APPEND, false, false);
	buf = encode_msg(&m, &len);
	le32(buf + OFF_NENTRIES, 100);
	{
		counting_alloc ca;
		raft_allocator a = ca_allocator(&ca);
		raft_msg	d;
		uint8_t    *padded = malloc(len + 500);

		memset(padded, 0xff, len + 500);
		memcpy(padded, buf, len);
		CHECK_EQ(raft_msg_decode(padded, len + 500, NULL, &d, &a), RAFT_EMALFORMED);
		CHECK_EQ(ca.count, 0);
		free(padded);
	}
	free(buf);

	/*
	 * A count one too large for the entries actually present: what is
	 * allocated is bounded by the input size and then released.
	 */
	make_msg(&m, RAFT_MSG_APPEND, true, false);
	buf = encode_msg(&m, &len);
	le32(buf + OFF_NENTRIES, 4);
	{
		counting_alloc ca;
		raft_allocator a = ca_allocator(&ca);
		raft_msg	d;
		uint8_t    *padded = malloc(len + 21);

		/* 0xff padding: not a valid entry type, so the 4th entry fails */
		memset(padded, 0xff, len + 21);
		memcpy(padded, buf, len);
		CHECK_EQ(raft_msg_decode(padded, len + 21, NULL, &d, &a), RAFT_EMALFORMED);
		CHECK(ca.max_size <= 4 * sizeof(raft_entry));
		CHECK_EQ(ca.live, 0);
		free(padded);
	}
	free(buf);
}

TEST(codec_entry_len_bounded)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	raft_entry	e,
				d;
	uint8_t		ebuf[64];
	size_t		elen;

	/* last entry of a message: its len reaches past the presence byte */
	make_msg(&m, RAFT_MSG_APPEND, true, false);
	buf = encode_msg(&m, &len);
	le32(buf + len - 1 - sizeof(payload_b) - 4, sizeof(payload_b) + 1);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	le32(buf + len - 1 - sizeof(payload_b) - 4, UINT32_MAX);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);

	e.term = 1;
	e.index = 2;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = 5;
	e.data = payload_a;
	elen = raft_entry_encode(&e, ebuf);
	le32(ebuf + 18, 6);
	CHECK_EQ(raft_entry_decode(ebuf, elen, &d), RAFT_EMALFORMED);
	le32(ebuf + 18, UINT32_MAX);
	CHECK_EQ(raft_entry_decode(ebuf, elen, &d), RAFT_EMALFORMED);
	/* shorter than the bytes present: trailing bytes */
	le32(ebuf + 18, 4);
	CHECK_EQ(raft_entry_decode(ebuf, elen, &d), RAFT_EMALFORMED);
	CHECK(is_zero(&d, sizeof(d)));
}

/*
 * Build a conf encoding by hand: n members with the given ids and address
 * length, claiming n_claimed members.
 */
static size_t
build_conf(uint8_t *out, uint32_t n_claimed, uint32_t n, const uint64_t *ids,
		   uint16_t addr_len)
{
	uint8_t    *p = out;
	uint32_t	i;

	*p++ = RAFT_CODEC_VERSION;
	le32(p, n_claimed), p += 4;
	for (i = 0; i < n; i++)
	{
		le64(p, ids[i]), p += 8;
		*p++ = 1;
		le16(p, addr_len), p += 2;
		memset(p, 'z', addr_len), p += addr_len;
	}
	return (size_t) (p - out);
}

/* Decode a conf from an exact heap copy and expect rc. */
static void
expect_conf_decode(const uint8_t *src, size_t len, int expect_rc)
{
	static raft_conf d;
	uint8_t    *buf = dup_bytes(src, len);
	int			rc = raft_conf_decode(buf, len, &d);

	free(buf);
	CHECK_EQ(rc, expect_rc);
	if (rc != RAFT_OK)
		CHECK(is_zero(&d, sizeof(d)));
}

TEST(codec_conf_addr_len)
{
	uint64_t	ids[1] = {1};
	uint8_t    *out = malloc(4 + 11 + 70000);
	size_t		len;

	len = build_conf(out, 1, 1, ids, RAFT_MAX_ADDR);
	expect_conf_decode(out, len, RAFT_OK);
	len = build_conf(out, 1, 1, ids, RAFT_MAX_ADDR + 1);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	len = build_conf(out, 1, 1, ids, 0xffff);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	/* addr_len larger than what follows */
	len = build_conf(out, 1, 1, ids, 10);
	expect_conf_decode(out, len - 1, RAFT_EMALFORMED);
	free(out);
}

TEST(codec_conf_too_many_members)
{
	uint64_t	ids[RAFT_MAX_MEMBERS + 1];
	uint8_t    *out = malloc(4 + (RAFT_MAX_MEMBERS + 1) * 11 + 16);
	size_t		len;
	int			i;

	for (i = 0; i <= RAFT_MAX_MEMBERS; i++)
		ids[i] = 100 + i;
	len = build_conf(out, RAFT_MAX_MEMBERS, RAFT_MAX_MEMBERS, ids, 0);
	expect_conf_decode(out, len, RAFT_OK);
	len = build_conf(out, RAFT_MAX_MEMBERS + 1, RAFT_MAX_MEMBERS + 1, ids, 0);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	len = build_conf(out, UINT32_MAX, 1, ids, 0);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	/* more members claimed than present */
	len = build_conf(out, 3, 2, ids, 0);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	free(out);
}

TEST(codec_conf_bad_ids)
{
	uint64_t	dup[3] = {1, 2, 1};
	uint64_t	dup_adjacent[2] = {UINT64_MAX, UINT64_MAX};
	uint64_t	zero[2] = {1, 0};
	uint64_t	ok[3] = {3, 2, 1};
	uint8_t		out[256];
	size_t		len;

	len = build_conf(out, 3, 3, ok, 2);
	expect_conf_decode(out, len, RAFT_OK);
	len = build_conf(out, 3, 3, dup, 2);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	len = build_conf(out, 2, 2, dup_adjacent, 0);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
	len = build_conf(out, 2, 2, zero, 0);
	expect_conf_decode(out, len, RAFT_EMALFORMED);
}

TEST(codec_conf_in_snapshot_is_checked)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	size_t		first_id = OFF_BODY + 1 + 16 + 4;
	size_t		second_id;

	make_msg(&m, RAFT_MSG_SNAPSHOT, false, true);
	buf = encode_msg(&m, &len);
	second_id = first_id + 11 + fixture_snap.conf.members[0].addr_len;
	/* duplicate id */
	memcpy(buf + second_id, buf + first_id, 8);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	/* zero id */
	memset(buf + second_id, 0, 8);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);

	/* too many members, addr too long */
	make_msg(&m, RAFT_MSG_SNAPSHOT, false, true);
	buf = encode_msg(&m, &len);
	le32(buf + OFF_BODY + 1 + 16, RAFT_MAX_MEMBERS + 1);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	le32(buf + OFF_BODY + 1 + 16, 3);
	le16(buf + first_id + 9, RAFT_MAX_ADDR + 1);
	expect_msg_decode(buf, len, RAFT_EMALFORMED);
	free(buf);
}

TEST(codec_trailing_garbage)
{
	raft_msg	m;
	size_t		len;
	uint8_t    *buf;
	uint8_t    *longer;
	uint8_t		cbuf[128];
	size_t		clen;
	raft_conf  *conf = malloc(sizeof(raft_conf));
	raft_entry	e,
				d;
	int			variant;

	for (variant = 0; variant < 4; variant++)
	{
		make_msg(&m, RAFT_MSG_SNAPSHOT, (variant & 1) != 0, true);
		if ((variant & 2) != 0)
		{
			m.type = RAFT_MSG_APPEND;
			m.snapshot = NULL;
		}
		buf = encode_msg(&m, &len);
		longer = calloc(1, len + 8);
		memcpy(longer, buf, len);
		expect_msg_decode(longer, len, RAFT_OK);
		expect_msg_decode(longer, len + 1, RAFT_EMALFORMED);
		expect_msg_decode(longer, len + 8, RAFT_EMALFORMED);
		free(longer);
		free(buf);
	}

	fill_conf(conf, 2, 5);
	clen = raft_conf_encode(conf, cbuf);
	cbuf[clen] = 0;
	expect_conf_decode(cbuf, clen, RAFT_OK);
	expect_conf_decode(cbuf, clen + 1, RAFT_EMALFORMED);
	free(conf);

	e.term = 1;
	e.index = 2;
	e.type = RAFT_ENTRY_NORMAL;
	e.len = 3;
	e.data = payload_a;
	clen = raft_entry_encode(&e, cbuf);
	cbuf[clen] = 0;
	CHECK_EQ(raft_entry_decode(cbuf, clen, &d), RAFT_OK);
	CHECK_EQ(raft_entry_decode(cbuf, clen + 1, &d), RAFT_EMALFORMED);
	CHECK(is_zero(&d, sizeof(d)));
}

TEST(codec_allocation_failure)
{
	raft_msg	m,
				d;
	size_t		len;
	uint8_t    *buf;
	long		fail_at;

	make_msg(&m, RAFT_MSG_APPEND, true, true);
	buf = encode_msg(&m, &len);
	/* the entries array, then the snapshot */
	for (fail_at = 1; fail_at <= 2; fail_at++)
	{
		counting_alloc ca;
		raft_allocator a = ca_allocator(&ca);

		ca.fail_at = fail_at;
		CHECK_EQ(raft_msg_decode(buf, len, NULL, &d, &a), RAFT_ENOMEM);
		CHECK(is_zero(&d, sizeof(d)));
		CHECK_EQ(ca.live, 0);
	}
	free(buf);
}

/*
 * Flip each bit of a valid encoding in turn: decoding must either fail
 * cleanly, or succeed on a value that re-encodes to exactly the flipped
 * bytes (the encoding is canonical, so no two byte strings decode alike).
 */
static void
flip_every_bit_msg(const raft_msg *m)
{
	size_t		len,
				bit;
	uint8_t    *orig = encode_msg(m, &len);
	uint8_t    *re = malloc(len);
	long		ok = 0;

	CHECK(orig != NULL);
	for (bit = 0; bit < len * 8; bit++)
	{
		uint8_t    *buf = dup_bytes(orig, len);
		counting_alloc ca;
		raft_allocator a = ca_allocator(&ca);
		raft_msg	d;
		uint64_t	cid;
		int			rc;

		buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		rc = raft_msg_decode(buf, len, &cid, &d, &a);
		CHECK_EQ(peek_agrees(buf, len, rc, cid, &d), 1);
		if (rc == RAFT_OK)
		{
			ok++;
			CHECK_EQ(raft_msg_encoded_size(&d), len);
			CHECK_EQ(raft_msg_encode(&d, cid, re), len);
			CHECK(memcmp(re, buf, len) == 0);
			raft_msg_free(&d, &a);
		}
		else
		{
			CHECK(rc == RAFT_EMALFORMED || rc == RAFT_EVERSION);
			CHECK(is_zero(&d, sizeof(d)));
		}
		CHECK_EQ(ca.live, 0);
		free(buf);
	}
	/* most bits are payload or integers: flipping them must be accepted */
	CHECK(ok > 0);
	free(orig);
	free(re);
}

TEST(codec_msg_flip_every_bit)
{
	raft_msg	m;
	uint8_t		type;

	for (type = 1; type <= RAFT_MSG_TYPE_MAX; type++)
	{
		make_msg(&m, type, type == RAFT_MSG_APPEND, type == RAFT_MSG_SNAPSHOT);
		flip_every_bit_msg(&m);
		if (testlib_failed_now)
			return;
	}
	make_msg(&m, RAFT_MSG_APPEND, true, true);
	flip_every_bit_msg(&m);
}

TEST(codec_conf_and_entry_flip_every_bit)
{
	size_t		len,
				bit;
	uint8_t    *orig,
			   *re;
	static raft_conf d;
	raft_entry	e,
				de;

	fill_conf(&big_conf, 4, 0xffff);
	big_conf.members[2].addr_len = 0;
	len = raft_conf_encoded_size(&big_conf);
	orig = malloc(len);
	re = malloc(len);
	raft_conf_encode(&big_conf, orig);
	for (bit = 0; bit < len * 8; bit++)
	{
		uint8_t    *buf = dup_bytes(orig, len);
		int			rc;

		buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		rc = raft_conf_decode(buf, len, &d);
		if (rc == RAFT_OK)
		{
			CHECK_EQ(raft_conf_encoded_size(&d), len);
			CHECK_EQ(raft_conf_encode(&d, re), len);
			CHECK(memcmp(re, buf, len) == 0);
		}
		else
		{
			/* a flipped version byte is a version error */
			CHECK_EQ(rc, bit < 8 ? RAFT_EVERSION : RAFT_EMALFORMED);
			CHECK(is_zero(&d, sizeof(d)));
		}
		free(buf);
	}
	free(orig);
	free(re);

	e.term = 99;
	e.index = 100;
	e.type = RAFT_ENTRY_CONF;
	e.len = sizeof(payload_b);
	e.data = payload_b;
	len = raft_entry_encoded_size(&e);
	orig = malloc(len);
	re = malloc(len);
	raft_entry_encode(&e, orig);
	for (bit = 0; bit < len * 8; bit++)
	{
		uint8_t    *buf = dup_bytes(orig, len);
		int			rc;

		buf[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		rc = raft_entry_decode(buf, len, &de);
		if (rc == RAFT_OK)
		{
			CHECK_EQ(raft_entry_encoded_size(&de), len);
			CHECK_EQ(raft_entry_encode(&de, re), len);
			CHECK(memcmp(re, buf, len) == 0);
		}
		else
		{
			CHECK(rc == RAFT_EMALFORMED || rc == RAFT_EVERSION);
			CHECK(is_zero(&de, sizeof(de)));
		}
		free(buf);
	}
	free(orig);
	free(re);
}
