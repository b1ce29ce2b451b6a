/*-------------------------------------------------------------------------
 *
 * ddl.h
 *	  DDL on replicated tables (ddl.c): replicated, or refused.
 *
 * IDENTIFICATION
 *	  src/ddl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_DDL_H
#define RAFTABLE_DDL_H

#include "raftable.h"

extern void raftable_ddl_init(void);
extern bool raftable_table_is_replicated(Oid relid);
extern bool raftable_any_replicated(void);
extern void ddl_check_replay(const char *sql, const char *tag, Oid relid);
extern Oid	ddl_replay_target(const char *sql, const char **tag);
extern void ddl_create_table(const char *schema, const char *name,
							 const char *owner, const char *script);

#endif							/* RAFTABLE_DDL_H */
