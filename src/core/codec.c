/*
 * codec.c
 *	  The wire and storage encoding of the pure Raft core: messages,
 *	  configurations and single log entries (the "codec" part of raft.h).
 *
 * This file owns the byte format and nothing else: no Raft logic, no global
 * state, no PostgreSQL.  Decoding is written for hostile input: every read is
 * bounds-checked, every count is checked against the bytes that remain
 * before anything is allocated, every field with a closed set of values is
 * checked against that set, and a byte string is accepted only if it is
 * exactly the encoding that raft_*_encode() would produce for the decoded
 * value.  Hence decode(b) succeeding implies encode(decode(b)) == b: the
 * encoding is canonical, which the fuzzer (test/core/fuzz_codec.c) checks.
 *
 * WIRE FORMAT, version 1 (RAFT_CODEC_VERSION)
 *
 * All integers are unsigned, fixed width and little-endian.  A "bool" is one
 * byte that is 0 (false) or 1 (true); any other value is malformed.  Sizes
 * are in bytes.
 *
 * Message (raft_msg_encode), 99 bytes plus entries and snapshot:
 *
 *	 off size field
 *	   0   2  magic: the bytes 0x52 0x46 ("RF")
 *	   2   1  version: RAFT_CODEC_VERSION
 *	   3   1  type: raft_msg_type, 1..RAFT_MSG_TYPE_MAX
 *	   4   8  cluster id (checked by the driver, never seen by the core)
 *	  12   8  from
 *	  20   8  to
 *	  28   8  term
 *	  36   8  index
 *	  44   8  log_term
 *	  52   8  commit
 *	  60   1  reject (bool)
 *	  61   1  transfer (bool)
 *	  62   8  hint_index
 *	  70   8  hint_term
 *	  78   8  seq
 *	  86   8  ctx
 *	  94   4  n_entries
 *	  98      n_entries times an entry body:
 *			   8  term
 *			   8  index
 *			   1  type: raft_entry_type, 0..2
 *			   4  len
 *			 len  data
 *	   ?   1  snapshot presence (bool)
 *			  if 1, the snapshot metadata:
 *			   8  index
 *			   8  term
 *			   ?  conf (below)
 *
 *	The message ends there: any byte after it is malformed.  A message of type
 *	RAFT_MSG_SNAPSHOT must carry the snapshot (the core would have nothing to
 *	act on); other types may, and the core ignores it.
 *
 * Configuration body (the tail of the snapshot metadata), 4 bytes plus
 * members:
 *
 *	   4  n: number of members, 0..RAFT_MAX_MEMBERS
 *		  n times a member:
 *	   8  id: nonzero, no two members with the same id
 *	   1  voter (bool)
 *	   2  addr_len: 0..RAFT_MAX_ADDR
 *	addr_len  addr
 *
 *	Members keep their order.  Inside a message the body is read as the
 *	message's version.  Standalone (raft_conf_encode: the data of a
 *	RAFT_ENTRY_CONF entry, which outlives any one release in the log) it is
 *	preceded by its own version byte, RAFT_CODEC_VERSION, and must fill the
 *	buffer exactly.
 *
 * Entry on its own (raft_entry_encode, for the driver's log storage, e.g. a
 * bytea column), 22 bytes plus data:
 *
 *	   1  version: RAFT_CODEC_VERSION
 *	   8  term
 *	   8  index
 *	   1  type: raft_entry_type, 0..2
 *	   4  len: exactly the bytes that follow
 *	 len  data
 *
 * ERRORS
 *
 * A wrong message magic, a truncated buffer, a value out of its range or
 * trailing bytes give RAFT_EMALFORMED; a version byte other than
 * RAFT_CODEC_VERSION gives RAFT_EVERSION (the magic is checked first, so a
 * message from something that is not raftable is malformed, not "too new");
 * a failed allocation gives RAFT_ENOMEM.  On any error the output is left
 * zeroed and nothing is allocated.
 *
 * OWNERSHIP
 *
 * Decoded entries' data point into the input buffer (zero copy), so the
 * buffer must outlive the decoded value; an entry of length 0 has data NULL.
 * A decoded message's entries array and snapshot metadata come from the
 * caller's allocator and are released by raft_msg_free() with the same one.
 *
 * Encoders trust their input: it must be a value the decoder would accept
 * (valid types, n <= RAFT_MAX_MEMBERS, addr_len <= RAFT_MAX_ADDR, entries
 * non-NULL when n_entries > 0).  Member counts and address lengths are
 * clamped to the arrays' bounds so that a bad conf can never make the
 * encoder read outside it, but the result is then not what was meant.
 *
 * IDENTIFICATION
 *	  src/core/codec.c
 */
#include "raft.h"

#include <stdlib.h>
#include <string.h>

#define CODEC_MAGIC0		0x52	/* 'R' */
#define CODEC_MAGIC1		0x46	/* 'F' */

/* fixed sizes, from the table above */
#define MSG_FIXED_SIZE		98	/* magic .. n_entries */
#define MSG_MIN_SIZE		(MSG_FIXED_SIZE + 1)	/* + snapshot presence */
#define ENTRY_BODY_FIXED	21	/* term, index, type, len */
#define ENTRY_HDR_SIZE		1	/* version, standalone entries only */
#define CONF_FIXED_SIZE		4	/* n */
#define MEMBER_FIXED_SIZE	11	/* id, voter, addr_len */
#define SNAP_FIXED_SIZE		16	/* index, term; the conf follows */

#define ENTRY_TYPE_MAX		RAFT_ENTRY_CONF

/* ---------- writing ---------- */

static uint8_t *
put_u8(uint8_t *p, uint8_t v)
{
	p[0] = v;
	return p + 1;
}

static uint8_t *
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	return p + 2;
}

static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
	int			i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
	return p + 4;
}

static uint8_t *
put_u64(uint8_t *p, uint64_t v)
{
	int			i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
	return p + 8;
}

/*
 * Bools are written as exactly 0 or 1 whatever the in-memory representation,
 * so that the decoder can insist on 0/1 and the encoding stays canonical.
 */
static uint8_t *
put_bool(uint8_t *p, bool v)
{
	return put_u8(p, v ? 1 : 0);
}

/*
 * The member count and address lengths the encoder uses.  Clamped so that an
 * invalid conf (a caller bug) cannot make the encoder read past the arrays;
 * size and encode must clamp identically so that they agree.
 */
static uint32_t
conf_count(const raft_conf *conf)
{
	return conf->n > RAFT_MAX_MEMBERS ? RAFT_MAX_MEMBERS : conf->n;
}

static uint16_t
member_addr_len(const raft_member *mb)
{
	return mb->addr_len > RAFT_MAX_ADDR ? RAFT_MAX_ADDR : mb->addr_len;
}

static size_t
conf_size(const raft_conf *conf)
{
	size_t		size = CONF_FIXED_SIZE;
	uint32_t	n = conf_count(conf);
	uint32_t	i;

	for (i = 0; i < n; i++)
		size += MEMBER_FIXED_SIZE + member_addr_len(&conf->members[i]);
	return size;
}

static uint8_t *
conf_write(const raft_conf *conf, uint8_t *p)
{
	uint32_t	n = conf_count(conf);
	uint32_t	i;

	p = put_u32(p, n);
	for (i = 0; i < n; i++)
	{
		const raft_member *mb = &conf->members[i];
		uint16_t	alen = member_addr_len(mb);

		p = put_u64(p, mb->id);
		p = put_bool(p, mb->voter);
		p = put_u16(p, alen);
		if (alen > 0)
			memcpy(p, mb->addr, alen);
		p += alen;
	}
	return p;
}

/* the part of an entry shared by messages and standalone entries */
static uint8_t *
entry_body_write(const raft_entry *e, uint8_t *p)
{
	p = put_u64(p, e->term);
	p = put_u64(p, e->index);
	p = put_u8(p, e->type);
	p = put_u32(p, e->len);
	if (e->len > 0)
		memcpy(p, e->data, e->len);
	return p + e->len;
}

/* ---------- reading ---------- */

/*
 * A cursor over the input.  Every read goes through rd_take(), which is the
 * one place that checks bounds; pos never exceeds len.
 */
typedef struct codec_reader
{
	const uint8_t *buf;
	size_t		len;
	size_t		pos;
} codec_reader;

static size_t
rd_left(const codec_reader *r)
{
	return r->len - r->pos;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL. */
static const uint8_t *
rd_take(codec_reader *r, size_t n)
{
	const uint8_t *p;

	if (n > rd_left(r))
		return NULL;
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static bool
rd_u8(codec_reader *r, uint8_t *v)
{
	const uint8_t *p = rd_take(r, 1);

	if (p == NULL)
		return false;
	*v = p[0];
	return true;
}

static bool
rd_u16(codec_reader *r, uint16_t *v)
{
	const uint8_t *p = rd_take(r, 2);

	if (p == NULL)
		return false;
	*v = (uint16_t) (p[0] | ((uint16_t) p[1] << 8));
	return true;
}

static bool
rd_u32(codec_reader *r, uint32_t *v)
{
	const uint8_t *p = rd_take(r, 4);
	uint32_t	x = 0;
	int			i;

	if (p == NULL)
		return false;
	for (i = 3; i >= 0; i--)
		x = (x << 8) | p[i];
	*v = x;
	return true;
}

static bool
rd_u64(codec_reader *r, uint64_t *v)
{
	const uint8_t *p = rd_take(r, 8);
	uint64_t	x = 0;
	int			i;

	if (p == NULL)
		return false;
	for (i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	*v = x;
	return true;
}

/* Only 0 and 1 are bools: anything else would not re-encode to itself. */
static bool
rd_bool(codec_reader *r, bool *v)
{
	uint8_t		b;

	if (!rd_u8(r, &b) || b > 1)
		return false;
	*v = (b == 1);
	return true;
}

/*
 * Read a conf into *conf, which the caller has zeroed (so that the unused
 * tail of each addr is zero and a half-read conf holds no garbage); with
 * conf NULL, only check it.
 */
static int
conf_read(codec_reader *r, raft_conf *conf)
{
	uint32_t	n;
	uint32_t	i,
				j;
	raft_member one;			/* conf NULL: checked, not kept */
	uint64_t	ids[RAFT_MAX_MEMBERS];

	if (!rd_u32(r, &n) || n > RAFT_MAX_MEMBERS)
		return RAFT_EMALFORMED;
	/* cheap early rejection; each member is read with full checks below */
	if ((size_t) n * MEMBER_FIXED_SIZE > rd_left(r))
		return RAFT_EMALFORMED;

	for (i = 0; i < n; i++)
	{
		raft_member *mb = conf != NULL ? &conf->members[i] : &one;
		const uint8_t *addr;

		if (!rd_u64(r, &mb->id) || mb->id == RAFT_NONE)
			return RAFT_EMALFORMED;
		if (!rd_bool(r, &mb->voter))
			return RAFT_EMALFORMED;
		if (!rd_u16(r, &mb->addr_len) || mb->addr_len > RAFT_MAX_ADDR)
			return RAFT_EMALFORMED;
		addr = rd_take(r, mb->addr_len);
		if (addr == NULL)
			return RAFT_EMALFORMED;
		if (mb->addr_len > 0 && conf != NULL)
			memcpy(mb->addr, addr, mb->addr_len);

		/* ids identify members: a duplicate would make lookups ambiguous */
		for (j = 0; j < i; j++)
		{
			if (ids[j] == mb->id)
				return RAFT_EMALFORMED;
		}
		ids[i] = mb->id;
	}
	if (conf != NULL)
		conf->n = n;
	return RAFT_OK;
}

/* Read an entry body; data points into the input. */
static int
entry_body_read(codec_reader *r, raft_entry *e)
{
	const uint8_t *data;

	if (!rd_u64(r, &e->term) || !rd_u64(r, &e->index))
		return RAFT_EMALFORMED;
	if (!rd_u8(r, &e->type) || e->type > ENTRY_TYPE_MAX)
		return RAFT_EMALFORMED;
	if (!rd_u32(r, &e->len))
		return RAFT_EMALFORMED;
	data = rd_take(r, e->len);
	if (data == NULL)
		return RAFT_EMALFORMED;
	/*
	 * raft_entry.data is not const, but the core never writes through it;
	 * the uintptr_t detour keeps -Wcast-qual quiet about dropping const.
	 */
	e->data = e->len > 0 ? (uint8_t *) (uintptr_t) data : NULL;
	return RAFT_OK;
}

/* ---------- allocation ---------- */

static void *
codec_alloc(const raft_allocator *a, size_t size)
{
	if (a == NULL)
		return malloc(size);
	return a->alloc(a->ctx, size);
}

/*
 * A zeroed array of count elements.  The product cannot overflow on a 64-bit
 * size_t after the caller's check against the input length, but can on a
 * 32-bit one; such a count fails like an allocation.
 */
static void *
codec_alloc_array(const raft_allocator *a, size_t count, size_t elem_size)
{
	void	   *ptr;

	if (elem_size != 0 && count > SIZE_MAX / elem_size)
		return NULL;
	ptr = codec_alloc(a, count * elem_size);
	if (ptr != NULL)
		memset(ptr, 0, count * elem_size);
	return ptr;
}

static void
codec_free(const raft_allocator *a, void *ptr)
{
	if (ptr == NULL)
		return;
	if (a == NULL)
		free(ptr);
	else
		a->free(a->ctx, ptr);
}

/* ---------- messages ---------- */

size_t
raft_msg_encoded_size(const raft_msg *m)
{
	size_t		size = MSG_MIN_SIZE;
	uint32_t	i;

	for (i = 0; i < m->n_entries; i++)
		size += ENTRY_BODY_FIXED + (size_t) m->entries[i].len;
	if (m->snapshot != NULL)
		size += SNAP_FIXED_SIZE + conf_size(&m->snapshot->conf);
	return size;
}

size_t
raft_msg_encode(const raft_msg *m, uint64_t cluster_id, uint8_t *buf)
{
	uint8_t    *p = buf;
	uint32_t	i;

	p = put_u8(p, CODEC_MAGIC0);
	p = put_u8(p, CODEC_MAGIC1);
	p = put_u8(p, RAFT_CODEC_VERSION);
	p = put_u8(p, m->type);
	p = put_u64(p, cluster_id);
	p = put_u64(p, m->from);
	p = put_u64(p, m->to);
	p = put_u64(p, m->term);
	p = put_u64(p, m->index);
	p = put_u64(p, m->log_term);
	p = put_u64(p, m->commit);
	p = put_bool(p, m->reject);
	p = put_bool(p, m->transfer);
	p = put_u64(p, m->hint_index);
	p = put_u64(p, m->hint_term);
	p = put_u64(p, m->seq);
	p = put_u64(p, m->ctx);
	p = put_u32(p, m->n_entries);
	for (i = 0; i < m->n_entries; i++)
		p = entry_body_write(&m->entries[i], p);
	if (m->snapshot != NULL)
	{
		p = put_bool(p, true);
		p = put_u64(p, m->snapshot->index);
		p = put_u64(p, m->snapshot->term);
		p = conf_write(&m->snapshot->conf, p);
	}
	else
		p = put_bool(p, false);
	return (size_t) (p - buf);
}

/*
 * The body of raft_msg_decode() and raft_msg_peek(); on error the caller
 * releases whatever *m holds so far, so this can simply return.  With
 * peek, entries and the snapshot are checked alike but not kept.
 */
static int
msg_read(codec_reader *r, uint64_t *cluster_id, raft_msg *m,
		 const raft_allocator *a, bool peek)
{
	uint8_t		magic0,
				magic1,
				version;
	uint32_t	n;
	uint32_t	i;
	bool		has_snapshot;
	int			rc;

	if (!rd_u8(r, &magic0) || !rd_u8(r, &magic1) ||
		magic0 != CODEC_MAGIC0 || magic1 != CODEC_MAGIC1)
		return RAFT_EMALFORMED;
	if (!rd_u8(r, &version))
		return RAFT_EMALFORMED;
	if (version != RAFT_CODEC_VERSION)
		return RAFT_EVERSION;
	if (!rd_u8(r, &m->type) || m->type < 1 || m->type > RAFT_MSG_TYPE_MAX)
		return RAFT_EMALFORMED;

	if (!rd_u64(r, cluster_id) ||
		!rd_u64(r, &m->from) ||
		!rd_u64(r, &m->to) ||
		!rd_u64(r, &m->term) ||
		!rd_u64(r, &m->index) ||
		!rd_u64(r, &m->log_term) ||
		!rd_u64(r, &m->commit) ||
		!rd_bool(r, &m->reject) ||
		!rd_bool(r, &m->transfer) ||
		!rd_u64(r, &m->hint_index) ||
		!rd_u64(r, &m->hint_term) ||
		!rd_u64(r, &m->seq) ||
		!rd_u64(r, &m->ctx) ||
		!rd_u32(r, &n))
		return RAFT_EMALFORMED;

	/*
	 * Every entry takes at least its fixed part, and the presence byte
	 * follows them: a count the remaining bytes cannot hold is malformed.
	 * Checked before allocating, so that a few bytes of garbage can never
	 * ask for gigabytes.
	 */
	if (rd_left(r) == 0 || n > (rd_left(r) - 1) / ENTRY_BODY_FIXED)
		return RAFT_EMALFORMED;
	if (n > 0 && peek)
	{
		raft_entry	e;

		for (i = 0; i < n; i++)
		{
			rc = entry_body_read(r, &e);
			if (rc != RAFT_OK)
				return rc;
		}
	}
	else if (n > 0)
	{
		m->entries = codec_alloc_array(a, n, sizeof(raft_entry));
		if (m->entries == NULL)
			return RAFT_ENOMEM;
		for (i = 0; i < n; i++)
		{
			rc = entry_body_read(r, &m->entries[i]);
			if (rc != RAFT_OK)
				return rc;
			/* counted as we go so that n_entries never covers garbage */
			m->n_entries = i + 1;
		}
	}

	if (!rd_bool(r, &has_snapshot))
		return RAFT_EMALFORMED;
	if (has_snapshot)
	{
		uint64_t	snap_index,
					snap_term;

		/* read the fixed part first: no allocation for a truncated one */
		if (!rd_u64(r, &snap_index) || !rd_u64(r, &snap_term) ||
			rd_left(r) < CONF_FIXED_SIZE)
			return RAFT_EMALFORMED;
		if (peek)
			rc = conf_read(r, NULL);
		else
		{
			m->snapshot = codec_alloc(a, sizeof(raft_snapshot_meta));
			if (m->snapshot == NULL)
				return RAFT_ENOMEM;
			memset(m->snapshot, 0, sizeof(raft_snapshot_meta));
			m->snapshot->index = snap_index;
			m->snapshot->term = snap_term;
			rc = conf_read(r, &m->snapshot->conf);
		}
		if (rc != RAFT_OK)
			return rc;
	}
	else if (m->type == RAFT_MSG_SNAPSHOT)
		return RAFT_EMALFORMED;

	if (rd_left(r) != 0)
		return RAFT_EMALFORMED;
	return RAFT_OK;
}

/* decode (or, with peek, check) one message: see raft.h */
static int
msg_decode(const uint8_t *buf, size_t len, uint64_t *cluster_id, raft_msg *m,
		   const raft_allocator *a, bool peek)
{
	codec_reader r;
	uint64_t	cid = 0;
	int			rc;

	memset(m, 0, sizeof(*m));
	r.buf = buf;
	r.len = buf == NULL ? 0 : len;
	r.pos = 0;

	rc = msg_read(&r, &cid, m, a, peek);
	if (rc != RAFT_OK)
	{
		raft_msg_free(m, a);	/* with peek, nothing to free: zeroes it */
		cid = 0;
	}
	if (cluster_id != NULL)
		*cluster_id = cid;
	return rc;
}

int
raft_msg_decode(const uint8_t *buf, size_t len, uint64_t *cluster_id,
				raft_msg *m, const raft_allocator *a)
{
	return msg_decode(buf, len, cluster_id, m, a, false);
}

int
raft_msg_peek(const uint8_t *buf, size_t len, uint64_t *cluster_id,
			  raft_msg *envelope)
{
	return msg_decode(buf, len, cluster_id, envelope, NULL, true);
}

/*
 * Release what raft_msg_decode() allocated, with the allocator it was given.
 * The entries' data belong to the decoded buffer and are not freed.  Leaves
 * *m zeroed, so freeing twice is harmless.
 */
void
raft_msg_free(raft_msg *m, const raft_allocator *a)
{
	if (m == NULL)
		return;
	codec_free(a, m->entries);
	codec_free(a, m->snapshot);
	memset(m, 0, sizeof(*m));
}

/* ---------- configurations ---------- */

size_t
raft_conf_encoded_size(const raft_conf *conf)
{
	return 1 + conf_size(conf);
}

size_t
raft_conf_encode(const raft_conf *conf, uint8_t *buf)
{
	uint8_t    *p = put_u8(buf, RAFT_CODEC_VERSION);

	return (size_t) (conf_write(conf, p) - buf);
}

/*
 * Open a standalone encoding (a configuration or a single entry): one
 * version byte, then a body that must fill the buffer exactly.
 */
static int
open_standalone(codec_reader *r, const uint8_t *buf, size_t len)
{
	uint8_t		version;

	r->buf = buf;
	r->len = buf == NULL ? 0 : len;
	r->pos = 0;
	if (!rd_u8(r, &version))
		return RAFT_EMALFORMED;
	return version == RAFT_CODEC_VERSION ? RAFT_OK : RAFT_EVERSION;
}

static int
close_standalone(const codec_reader *r, int rc, void *out, size_t outsize)
{
	if (rc == RAFT_OK && rd_left(r) != 0)
		rc = RAFT_EMALFORMED;
	if (rc != RAFT_OK)
		memset(out, 0, outsize);
	return rc;
}

int
raft_conf_decode(const uint8_t *buf, size_t len, raft_conf *conf)
{
	codec_reader r;
	int			rc;

	memset(conf, 0, sizeof(*conf));
	rc = open_standalone(&r, buf, len);
	if (rc == RAFT_OK)
		rc = conf_read(&r, conf);
	return close_standalone(&r, rc, conf, sizeof(*conf));
}

/* ---------- single entries ---------- */

size_t
raft_entry_encoded_size(const raft_entry *e)
{
	return ENTRY_HDR_SIZE + ENTRY_BODY_FIXED + (size_t) e->len;
}

size_t
raft_entry_encode(const raft_entry *e, uint8_t *buf)
{
	uint8_t    *p = buf;

	p = put_u8(p, RAFT_CODEC_VERSION);
	p = entry_body_write(e, p);
	return (size_t) (p - buf);
}

int
raft_entry_decode(const uint8_t *buf, size_t len, raft_entry *e)
{
	codec_reader r;
	int			rc;

	memset(e, 0, sizeof(*e));
	rc = open_standalone(&r, buf, len);
	if (rc == RAFT_OK)
		rc = entry_body_read(&r, e);
	return close_standalone(&r, rc, e, sizeof(*e));
}
