# test/core/core.mk
#	Build and run the tests of the pure Raft core (src/core/), which needs
#	no PostgreSQL: unit tests, the deterministic simulator, sanitizer runs
#	and the codec fuzzer.  Included by the top-level Makefile.
#
#	make core-check                 unit tests
#	make sim SEEDS=N [SIM_ARGS=..]  N simulator seeds (default 2000)
#	make sanitize                   unit tests + a simulator slice under ASan/UBSan
#	make fuzz FUZZ_SECONDS=N        libFuzzer on the codec (default 30 s)

CORE_BUILD    = build/core
CORE_SRCS     = $(wildcard src/core/*.c)
CORE_HDRS     = $(wildcard src/core/*.h) test/core/testlib.h test/core/harness.h
CORE_UNIT     = test/core/testlib.c test/core/harness.c $(wildcard test/core/test_*.c)
CORE_CC      ?= cc
CORE_CFLAGS   = -std=gnu99 -g -O2 -Wall -Wextra -Wno-unused-parameter -Werror -Isrc/core -Itest/core
SAN_CC        = clang
SAN_CFLAGS    = -std=gnu99 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all -Wall -Wno-unused-parameter -Isrc/core -Itest/core
SEEDS        ?= 2000
SAN_SEEDS    ?= 300
FUZZ_SECONDS ?= 30

.PHONY: core-check sim sanitize fuzz

$(CORE_BUILD):
	mkdir -p $@

$(CORE_BUILD)/unit: $(CORE_SRCS) $(CORE_UNIT) $(CORE_HDRS) | $(CORE_BUILD)
	$(CORE_CC) $(CORE_CFLAGS) -o $@ $(CORE_SRCS) $(CORE_UNIT)

$(CORE_BUILD)/sim: $(CORE_SRCS) test/core/sim.c $(CORE_HDRS) | $(CORE_BUILD)
	$(CORE_CC) $(CORE_CFLAGS) -o $@ $(CORE_SRCS) test/core/sim.c

$(CORE_BUILD)/unit-san: $(CORE_SRCS) $(CORE_UNIT) $(CORE_HDRS) | $(CORE_BUILD)
	$(SAN_CC) $(SAN_CFLAGS) -o $@ $(CORE_SRCS) $(CORE_UNIT)

$(CORE_BUILD)/sim-san: $(CORE_SRCS) test/core/sim.c $(CORE_HDRS) | $(CORE_BUILD)
	$(SAN_CC) $(SAN_CFLAGS) -o $@ $(CORE_SRCS) test/core/sim.c

$(CORE_BUILD)/fuzz-codec: $(CORE_SRCS) test/core/fuzz_codec.c $(CORE_HDRS) | $(CORE_BUILD)
	$(SAN_CC) -g -O1 -fsanitize=fuzzer,address,undefined -Isrc/core -o $@ $(CORE_SRCS) test/core/fuzz_codec.c

core-check: $(CORE_BUILD)/unit
	$(CORE_BUILD)/unit

sim: $(CORE_BUILD)/sim
	$(CORE_BUILD)/sim --seeds $(SEEDS) $(SIM_ARGS)

sanitize: $(CORE_BUILD)/unit-san $(CORE_BUILD)/sim-san
	$(CORE_BUILD)/unit-san
	$(CORE_BUILD)/sim-san --seeds $(SAN_SEEDS) $(SIM_ARGS)

fuzz: $(CORE_BUILD)/fuzz-codec
	mkdir -p $(CORE_BUILD)/fuzz-corpus
	$(CORE_BUILD)/fuzz-codec -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		$(CORE_BUILD)/fuzz-corpus test/core/fuzz-seeds
