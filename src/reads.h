/*-------------------------------------------------------------------------
 *
 * reads.h
 *	  The read path (reads.c): every read obeys its consistency level.
 *
 * IDENTIFICATION
 *	  src/reads.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_READS_H
#define RAFTABLE_READS_H

#include "raftable.h"

extern void reads_define_settings(void);
extern void reads_init(void);
extern void reads_report_last_write(uint64 index);

#endif							/* RAFTABLE_READS_H */
