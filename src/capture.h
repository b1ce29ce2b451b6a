/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  The leader's write path (capture.c), in backends.
 *
 * IDENTIFICATION
 *	  src/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_CAPTURE_H
#define RAFTABLE_CAPTURE_H

#include "raftable.h"

extern void raftable_capture_init(void);
extern void capture_require_writable(void);
#define CAPTURE_DDL_NSETTINGS 6
extern const char *const capture_ddl_settings[CAPTURE_DDL_NSETTINGS];
extern void capture_ddl(Oid relid, const char *schema, const char *name,
						const char *tag, const char *sql);
extern void capture_replicate(Oid relid, const char *ddl);
extern void capture_unreplicate(Oid relid);

#endif							/* RAFTABLE_CAPTURE_H */
