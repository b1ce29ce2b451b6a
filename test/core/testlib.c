/*
 * testlib.c
 *	  Runner for the core unit tests registered with TEST().
 */
#include "testlib.h"

#include <stdarg.h>
#include <stdlib.h>

#define TESTLIB_MAX 1024

static struct
{
	const char *name;
	test_fn		fn;
}			testlib_tests[TESTLIB_MAX];
static int	testlib_ntests;
int			testlib_failed_now;

void
testlib_register(const char *name, test_fn fn)
{
	if (testlib_ntests == TESTLIB_MAX)
	{
		fprintf(stderr, "testlib: too many tests\n");
		exit(2);
	}
	testlib_tests[testlib_ntests].name = name;
	testlib_tests[testlib_ntests].fn = fn;
	testlib_ntests++;
}

void
testlib_fail(const char *file, int line, const char *fmt,...)
{
	va_list		ap;

	fprintf(stdout, "    %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	testlib_failed_now = 1;
}

static int
testlib_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int
main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	int			passed = 0,
				failed = 0;

	/* constructors run in link order; sort by name for a stable report */
	qsort(testlib_tests, testlib_ntests, sizeof(testlib_tests[0]), testlib_cmp);
	for (int i = 0; i < testlib_ntests; i++)
	{
		if (filter && !strstr(testlib_tests[i].name, filter))
			continue;
		testlib_failed_now = 0;
		testlib_tests[i].fn();
		if (testlib_failed_now)
		{
			printf("not ok - %s\n", testlib_tests[i].name);
			failed++;
		}
		else
		{
			printf("ok - %s\n", testlib_tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
