/*-------------------------------------------------------------------------
 *
 * member.h
 *	  Members' names and conninfos (member.c), and the check that roles
 *	  exist on every member (membership.c).
 *
 * IDENTIFICATION
 *	  src/member.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RAFTABLE_MEMBER_H
#define RAFTABLE_MEMBER_H

#include "raftable.h"
#include "nodes/pg_list.h"

/* membership.c */
extern void raftable_require_everywhere(List *roles, Oid relid);

/* member.c */
extern void member_check_conninfo(const char *conninfo);
extern void member_check_name(const char *name);
extern char *member_default_name(const char *conninfo);
extern uint64 raftable_random_id(void);
extern void raftable_strip_password(const char *conninfo, char *out,
									size_t outlen);
extern void raftable_member_addr_encode(const char *name, const char *conninfo,
										char *addr, uint16 *addr_len);
extern void raftable_member_addr_decode(const char *addr, uint16 addr_len,
										char *name, size_t namelen,
										char *conninfo, size_t conninfolen);

#endif							/* RAFTABLE_MEMBER_H */
