/*-------------------------------------------------------------------------
 *
 * changeset.c
 *	  Encoding and decoding of the entries that carry table changes
 *	  (format in changeset.h).
 *
 * Writing is split: capture.c appends ops as rows are written, and puts
 * the header in front at commit, when the set of tables is known.  Reading
 * checks every length against what is left, so that a damaged entry stops
 * apply with an error instead of reading past its end.
 *
 * IDENTIFICATION
 *	  src/changeset.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "changeset.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/bytea.h"
#include "utils/datetime.h"
#include "utils/float.h"

static pg_tz *cs_utc = NULL;

void
cs_text_settings_push(CsTextSettings *saved)
{
	if (cs_utc == NULL)
		cs_utc = pg_tzset("UTC");
	saved->datestyle = DateStyle;
	saved->dateorder = DateOrder;
	saved->intervalstyle = IntervalStyle;
	saved->extra_float_digits = extra_float_digits;
	saved->bytea_output = bytea_output;
	saved->timezone = session_timezone;
	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	IntervalStyle = INTSTYLE_POSTGRES;
	extra_float_digits = 3;
	bytea_output = BYTEA_OUTPUT_HEX;
	if (cs_utc)
		session_timezone = cs_utc;
}

void
cs_text_settings_pop(const CsTextSettings *saved)
{
	DateStyle = saved->datestyle;
	DateOrder = saved->dateorder;
	IntervalStyle = saved->intervalstyle;
	extra_float_digits = saved->extra_float_digits;
	bytea_output = saved->bytea_output;
	session_timezone = (pg_tz *) saved->timezone;
}

void
cs_put_string(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);

	pq_sendint32(buf, (uint32) len);
	pq_sendbytes(buf, s, len);
}

void
cs_put_header(StringInfo buf, uint64 origin, uint64 xid, int ntables,
			  const CsTable *tables)
{
	pq_sendbyte(buf, CS_VERSION);
	pq_sendint64(buf, origin);
	pq_sendint64(buf, xid);
	pq_sendint32(buf, (uint32) ntables);
	for (int i = 0; i < ntables; i++)
	{
		pq_sendint32(buf, tables[i].oid);
		cs_put_string(buf, tables[i].schema);
		cs_put_string(buf, tables[i].name);
	}
}

/* ---------- reading ---------- */

static void
cs_need(CsReader *r, int n)
{
	if (n < 0 || r->buf.len - r->buf.cursor < n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed raftable change set"),
				 errdetail("%d bytes needed at offset %d of %d.",
						   n, r->buf.cursor, r->buf.len)));
}

static uint8
cs_byte(CsReader *r)
{
	cs_need(r, 1);
	return (uint8) r->buf.data[r->buf.cursor++];
}

static uint32
cs_u32(CsReader *r)
{
	uint32		v;

	cs_need(r, 4);
	memcpy(&v, r->buf.data + r->buf.cursor, 4);
	r->buf.cursor += 4;
	return pg_ntoh32(v);
}

static uint64
cs_u64(CsReader *r)
{
	uint64		v;

	cs_need(r, 8);
	memcpy(&v, r->buf.data + r->buf.cursor, 8);
	r->buf.cursor += 8;
	return pg_ntoh64(v);
}

static char *
cs_string(CsReader *r)
{
	uint32		len = cs_u32(r);
	char	   *s;

	cs_need(r, (int) Min(len, (uint32) PG_INT32_MAX));
	s = palloc(len + 1);
	memcpy(s, r->buf.data + r->buf.cursor, len);
	s[len] = '\0';
	r->buf.cursor += len;
	return s;
}

static void
cs_row(CsReader *r, CsRow *row)
{
	uint16		n;

	cs_need(r, 2);
	memcpy(&n, r->buf.data + r->buf.cursor, 2);
	r->buf.cursor += 2;
	row->natts = pg_ntoh16(n);
	cs_need(r, row->natts);		/* a byte each at least: bounds the palloc */
	row->values = palloc(sizeof(char *) * Max(row->natts, 1));
	for (int i = 0; i < row->natts; i++)
	{
		uint8		kind = cs_byte(r);

		if (kind == 'n')
			row->values[i] = NULL;
		else if (kind == 't')
			row->values[i] = cs_string(r);
		else
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed raftable change set"),
					 errdetail("Unknown column kind %d.", kind)));
	}
}

static CsTable *
cs_table(CsReader *r)
{
	Oid			oid = cs_u32(r);

	for (int i = 0; i < r->ntables; i++)
		if (r->tables[i].oid == oid)
			return &r->tables[i];
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed raftable change set"),
			 errdetail("Table %u is not in the entry's header.", oid)));
	return NULL;				/* keep compiler quiet */
}

void
cs_read_header(CsReader *r, const char *data, int len)
{
	memset(r, 0, sizeof(*r));
	r->buf.data = (char *) data;
	r->buf.len = len;
	r->buf.maxlen = len;
	r->buf.cursor = 0;
	r->version = cs_byte(r);
	if (r->version < CS_VERSION_MIN || r->version > CS_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("raftable change set of unknown version %d", r->version),
				 errhint("Upgrade raftable on this node to the version the leader runs.")));
	r->origin = cs_u64(r);
	r->xid = cs_u64(r);
	r->ntables = (int) cs_u32(r);
	cs_need(r, r->ntables);		/* at least a byte each: bounds the palloc */
	r->tables = palloc0(sizeof(CsTable) * Max(r->ntables, 1));
	for (int i = 0; i < r->ntables; i++)
	{
		r->tables[i].oid = cs_u32(r);
		r->tables[i].schema = cs_string(r);
		r->tables[i].name = cs_string(r);
	}
}

/*
 * Version 1's DDL op: search_path, DateStyle, IntervalStyle, TimeZone and
 * the statement, with neither table, role nor command tag (apply.c finds
 * them from the statement).
 */
static void
cs_ddl_v1(CsReader *r, CsOp *op)
{
	static const char *const names[4] = {"search_path", "DateStyle", "IntervalStyle", "TimeZone"};

	op->nsettings = 4;
	op->setting_names = palloc(sizeof(char *) * 4);
	op->setting_values = palloc(sizeof(char *) * 4);
	for (int i = 0; i < 4; i++)
	{
		op->setting_names[i] = pstrdup(names[i]);
		op->setting_values[i] = cs_string(r);
	}
	op->str1 = cs_string(r);
}

/* the next op, or false at the end of the entry */
bool
cs_next_op(CsReader *r, CsOp *op)
{
	memset(op, 0, sizeof(*op));
	if (r->buf.cursor >= r->buf.len)
		return false;
	op->type = (CsOpType) cs_byte(r);
	switch (op->type)
	{
		case CS_INSERT:
			op->table = cs_table(r);
			cs_row(r, &op->row);
			break;
		case CS_UPDATE:
			op->table = cs_table(r);
			cs_row(r, &op->key);
			cs_row(r, &op->row);
			break;
		case CS_DELETE:
			op->table = cs_table(r);
			cs_row(r, &op->key);
			break;
		case CS_TRUNCATE:
		case CS_UNREPLICATE:
			op->table = cs_table(r);
			break;
		case CS_REPLICATE:
			op->table = cs_table(r);
			op->role = r->version >= 2 ? cs_string(r) : NULL;
			op->str1 = cs_string(r);
			break;
		case CS_DDL:
			if (r->version < 2)
			{
				cs_ddl_v1(r, op);
				break;
			}
			op->table = cs_table(r);
			op->role = cs_string(r);
			op->tag = cs_string(r);
			cs_need(r, 2);
			op->nsettings = (uint8) r->buf.data[r->buf.cursor] << 8 |
				(uint8) r->buf.data[r->buf.cursor + 1];
			r->buf.cursor += 2;
			cs_need(r, op->nsettings * 8);	/* two lengths each: bounds the palloc */
			op->setting_names = palloc(sizeof(char *) * Max(op->nsettings, 1));
			op->setting_values = palloc(sizeof(char *) * Max(op->nsettings, 1));
			for (int i = 0; i < op->nsettings; i++)
			{
				op->setting_names[i] = cs_string(r);
				op->setting_values[i] = cs_string(r);
			}
			op->str1 = cs_string(r);
			break;
		case CS_SEQUENCE:
			op->str1 = cs_string(r);
			op->str2 = cs_string(r);
			op->value = (int64) cs_u64(r);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed raftable change set"),
					 errdetail("Unknown operation %d at offset %d.",
							   op->type, r->buf.cursor - 1)));
	}
	return true;
}
