/*
 * fuzz_codec.c
 *	  libFuzzer target for the codec (src/core/codec.c).
 *
 * Each input is decoded three ways: as a message, as a configuration and as
 * a standalone entry.  Decoding must never crash or read outside the input
 * (ASan/UBSan, which make fuzz builds in), must return only the documented
 * errors, and whenever it succeeds the value must re-encode to exactly the
 * input bytes: the encoding is canonical, so a message can be compared,
 * hashed or stored by its bytes.  Any violation aborts.  Leaks are caught by
 * libFuzzer's leak detection.
 *
 * Build and run: make fuzz FUZZ_SECONDS=N (test/core/core.mk).
 */
#include "raft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_codec: %s\n", what);
	abort();
}

/* compared against with memcmp: a byte loop over a conf is slow under ASan */
static const raft_conf zero_conf;

static bool
all_zero(const void *p, size_t len)
{
	return len <= sizeof(zero_conf) && memcmp(p, &zero_conf, len) == 0;
}

static void
fuzz_msg(const uint8_t *data, size_t size)
{
	raft_msg	m;
	uint64_t	cluster_id;
	uint8_t    *out;
	int			rc;

	rc = raft_msg_decode(data, size, &cluster_id, &m, NULL);
	{
		/* the envelope alone: the same verdict, the same fixed fields */
		raft_msg	env;
		raft_msg	want;
		uint64_t	peek_cid;

		memcpy(&want, &m, sizeof(want));
		want.entries = NULL;
		want.n_entries = 0;
		want.snapshot = NULL;
		if (raft_msg_peek(data, size, &peek_cid, &env) != rc && rc != RAFT_ENOMEM)
			fuzz_fail("msg: raft_msg_peek and raft_msg_decode disagree");
		if (rc == RAFT_OK &&
			(peek_cid != cluster_id || memcmp(&env, &want, sizeof(env)) != 0))
			fuzz_fail("msg: raft_msg_peek's envelope differs from the decoded message");
	}
	if (rc != RAFT_OK)
	{
		if (rc != RAFT_EMALFORMED && rc != RAFT_EVERSION && rc != RAFT_ENOMEM)
			fuzz_fail("msg: unexpected error code");
		if (!all_zero(&m, sizeof(m)) || cluster_id != 0)
			fuzz_fail("msg: output not zeroed after an error");
		return;
	}
	if (raft_msg_encoded_size(&m) != size)
		fuzz_fail("msg: encoded size differs from the input size");
	out = malloc(size);
	if (out == NULL)
		fuzz_fail("out of memory");
	if (raft_msg_encode(&m, cluster_id, out) != size)
		fuzz_fail("msg: encode wrote a different size");
	if (memcmp(out, data, size) != 0)
		fuzz_fail("msg: re-encoding differs from the input");
	free(out);
	raft_msg_free(&m, NULL);
	if (!all_zero(&m, sizeof(m)))
		fuzz_fail("msg: raft_msg_free did not zero the message");
}

static void
fuzz_conf(const uint8_t *data, size_t size)
{
	/* about 66 kB: too big for the stack of every fuzzer thread */
	static raft_conf conf;
	uint8_t    *out;
	int			rc;

	rc = raft_conf_decode(data, size, &conf);
	if (rc != RAFT_OK)
	{
		if (rc != RAFT_EMALFORMED && rc != RAFT_EVERSION)
			fuzz_fail("conf: unexpected error code");
		if (!all_zero(&conf, sizeof(conf)))
			fuzz_fail("conf: output not zeroed after an error");
		return;
	}
	if (raft_conf_encoded_size(&conf) != size)
		fuzz_fail("conf: encoded size differs from the input size");
	out = malloc(size);
	if (out == NULL)
		fuzz_fail("out of memory");
	if (raft_conf_encode(&conf, out) != size)
		fuzz_fail("conf: encode wrote a different size");
	if (memcmp(out, data, size) != 0)
		fuzz_fail("conf: re-encoding differs from the input");
	free(out);
}

static void
fuzz_entry(const uint8_t *data, size_t size)
{
	raft_entry	e;
	uint8_t    *out;
	int			rc;

	rc = raft_entry_decode(data, size, &e);
	if (rc != RAFT_OK)
	{
		if (rc != RAFT_EMALFORMED && rc != RAFT_EVERSION)
			fuzz_fail("entry: unexpected error code");
		if (!all_zero(&e, sizeof(e)))
			fuzz_fail("entry: output not zeroed after an error");
		return;
	}
	if (raft_entry_encoded_size(&e) != size)
		fuzz_fail("entry: encoded size differs from the input size");
	out = malloc(size);
	if (out == NULL)
		fuzz_fail("out of memory");
	if (raft_entry_encode(&e, out) != size)
		fuzz_fail("entry: encode wrote a different size");
	if (memcmp(out, data, size) != 0)
		fuzz_fail("entry: re-encoding differs from the input");
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_msg(data, size);
	fuzz_conf(data, size);
	fuzz_entry(data, size);
	return 0;
}
