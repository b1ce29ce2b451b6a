/*
 * changeset.h
 *	  What a log entry of table changes holds (RAFT_ENTRY_NORMAL data).
 *
 * One committed transaction on the leader becomes one entry:
 *
 *	 header	 version u8, origin node u64, origin full xid u64,
 *			 ntables u32, then per table: leader's oid u32, schema, name
 *	 ops	 until the end, each a tag byte and its fields:
 *			 'I' oid, new row			 'U' oid, old key, new row
 *			 'D' oid, old key			 'T' oid (TRUNCATE)
 *			 'A' oid, owner, ddl script	 (replicate_table: create the table,
 *										  owned by that role; its rows
 *										  follow as 'I')
 *			 'Z' oid					 (unreplicate_table)
 *			 'X' oid, role, command tag, settings, statement
 *										 (DDL on a replicated table: the
 *										  role that ran it, and the
 *										  settings its text depends on, as
 *										  u16 count and name/value pairs)
 *			 'S' schema, name, value	 (an owned sequence's high-water mark)
 *
 * Strings are u32 length and bytes; integers are in network order
 * (libpq/pqformat.h).  A row is u16 count and per column 'n' (null) or
 * 't' with a string: the text output of each live, non-generated column in
 * column order, written under fixed settings (cs_text_settings_push) and
 * read back under the same ones, so that the writer's DateStyle, TimeZone
 * or extra_float_digits cannot change what the other nodes store.  A key is the primary key's columns in the index's order.
 * Text keeps the format independent of type OIDs and binary layouts, which
 * may differ between nodes.  Tables are named by the leader's oid inside
 * one entry only; the header maps it to a name, the same on every node
 * since renames of replicated tables are refused.
 */
#ifndef RAFTABLE_CHANGESET_H
#define RAFTABLE_CHANGESET_H

#include "lib/stringinfo.h"

/*
 * 2: DDL carries its table, role, command tag and settings; A its owner.
 * Version 1 entries (raftable 0.1) are still read: a node upgraded with
 * such entries in its log applies them.
 */
#define CS_VERSION 2
#define CS_VERSION_MIN 1

typedef enum CsOpType
{
	CS_INSERT = 'I',
	CS_UPDATE = 'U',
	CS_DELETE = 'D',
	CS_TRUNCATE = 'T',
	CS_REPLICATE = 'A',
	CS_UNREPLICATE = 'Z',
	CS_DDL = 'X',
	CS_SEQUENCE = 'S',
} CsOpType;

typedef struct CsTable
{
	Oid			oid;			/* on the leader that wrote the entry */
	char	   *schema;
	char	   *name;
} CsTable;

/* a row or key: values[i] is a NUL-terminated text, or NULL for null */
typedef struct CsRow
{
	int			natts;
	char	  **values;
} CsRow;

typedef struct CsOp
{
	CsOpType	type;
	CsTable    *table;			/* I U D T A Z X (X: NULL in version 1) */
	CsRow		key;			/* U D */
	CsRow		row;			/* I U */
	char	   *str1;			/* A: ddl script; X: statement; S: schema */
	char	   *str2;			/* S: sequence name */
	char	   *role;			/* A: the table's owner; X: who ran it
								 * (NULL in version 1) */
	char	   *tag;			/* X: its command tag */
	int			nsettings;		/* X */
	char	  **setting_names;
	char	  **setting_values;
	int64		value;			/* S */
} CsOp;

typedef struct CsReader
{
	StringInfoData buf;
	uint8		version;
	uint64		origin;
	uint64		xid;
	int			ntables;
	CsTable    *tables;
} CsReader;

/* writing: ops into a buffer; the header in front at the end */
extern void cs_put_string(StringInfo buf, const char *s);
extern void cs_put_header(StringInfo buf, uint64 origin, uint64 xid,
						  int ntables, const CsTable *tables);

/*
 * The settings row values are written and read under: DateStyle ISO, YMD;
 * IntervalStyle postgres; TimeZone UTC; extra_float_digits 3; bytea_output
 * hex.  push switches this backend to them (saving what was set), pop
 * restores; they do not go through the GUC machinery, so that a row costs
 * a few assignments.  The apply worker and a snapshot's source session
 * set the same as GUCs, for the whole session.
 */
typedef struct CsTextSettings
{
	int			datestyle;
	int			dateorder;
	int			intervalstyle;
	int			extra_float_digits;
	int			bytea_output;
	void	   *timezone;		/* pg_tz * */
} CsTextSettings;

extern void cs_text_settings_push(CsTextSettings *saved);
extern void cs_text_settings_pop(const CsTextSettings *saved);

/* reading; malformed data raises ERROR (ERRCODE_DATA_CORRUPTED) */
extern void cs_read_header(CsReader *r, const char *data, int len);
extern bool cs_next_op(CsReader *r, CsOp *op);

#endif							/* RAFTABLE_CHANGESET_H */
