/*
 * testlib.h
 *	  A very small unit-test harness for the pure Raft core.
 *
 * Tests register themselves with TEST(name) from any test_*.c file linked
 * into the runner; testlib.c runs them all (or those whose name contains the
 * first command-line argument) and ends with the line CI reads:
 * "N passed, N failed".
 */
#ifndef RAFTABLE_TESTLIB_H
#define RAFTABLE_TESTLIB_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn) (void);

extern void testlib_register(const char *name, test_fn fn);
extern void testlib_fail(const char *file, int line, const char *fmt, ...)
			__attribute__((format(printf, 3, 4)));
extern int	testlib_failed_now;

#define TEST(name) \
	static void test_##name(void); \
	__attribute__((constructor)) static void register_##name(void) \
	{ testlib_register(#name, test_##name); } \
	static void test_##name(void)

/* Fail the current test and return from it. */
#define CHECK(cond) do { \
	if (!(cond)) { testlib_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); return; } \
} while (0)

#define CHECK_EQ(a, b) do { \
	unsigned long long _a = (unsigned long long) (a), _b = (unsigned long long) (b); \
	if (_a != _b) { \
		testlib_fail(__FILE__, __LINE__, "%s == %llu, expected %s == %llu", #a, _a, #b, _b); \
		return; \
	} \
} while (0)

#endif							/* RAFTABLE_TESTLIB_H */
