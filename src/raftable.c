/*-------------------------------------------------------------------------
 *
 * raftable.c
 *	  Entry point of the raftable extension: the module magic block,
 *	  _PG_init, and the SQL-callable functions that have no more specific
 *	  home yet.
 *
 * _PG_init is where raftable's GUCs, shared memory and background workers
 * get registered, which is why the library belongs in
 * shared_preload_libraries.  For now it only reserves the "raftable." GUC
 * prefix.
 *
 * The Raft protocol itself lives in src/core/, which does not include
 * postgres.h; this file and its future siblings are the PostgreSQL side.
 *
 * IDENTIFICATION
 *	  src/raftable.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

/*
 * Version of this library.  Must equal default_version in raftable.control:
 * the tests compare raftable.version() with the installed extension version.
 */
#define RAFTABLE_VERSION "0.1"

void		_PG_init(void);

PG_FUNCTION_INFO_V1(raftable_version);

/*
 * Module load callback.
 */
void
_PG_init(void)
{
	/*
	 * Settings named raftable.* that no one defines are typos: refuse them
	 * (and drop those already read from the configuration file, with a
	 * WARNING) instead of keeping them as placeholders.
	 */
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("raftable");
#else
	EmitWarningsOnPlaceholders("raftable");
#endif
}

/*
 * raftable.version() RETURNS text
 */
Datum
raftable_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(RAFTABLE_VERSION));
}
