# libFuzzer targets (tests/fuzz/): request dispatch end to end, JSON body
# validation, base64, tokens / user codes / log redaction; and the client
# library's decoders of server-supplied data (envelope, KDF parameters,
# answer envelopes, the Server-Sent Events parser).
#   make fuzz FUZZ_SECONDS=N   build, then fuzz every target N s (default 60)
#                              from its committed seeds; new finds go to
#                              build/fuzz/corpus/<target>/, crashes to
#                              build/fuzz/artifacts/
#   make fuzz-replay           build, then run every target once over its
#                              committed corpus (a regression test; no
#                              fuzzing)
#   make fuzz-bins             just build build/fuzz/<target>
# Everything is compiled with clang into build/fuzz/ (never build/obj).

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_OBJDIR := $(FUZZ_DIR)/obj
FUZZ_TARGETS := fuzz_request fuzz_json fuzz_b64 fuzz_token fuzz_envelope \
	fuzz_kdf fuzz_answer fuzz_sse
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARN) -D_GNU_SOURCE -pthread -Isrc \
	-Iinclude $(PKG_CFLAGS) $(FUZZ_SAN)
FUZZ_LIB_OBJ := $(COMMON_SRC:%.c=$(FUZZ_OBJDIR)/%.o) \
	$(STORE_SRC:%.c=$(FUZZ_OBJDIR)/%.o) \
	$(SERVER_SRC:%.c=$(FUZZ_OBJDIR)/%.o) \
	$(FUZZ_OBJDIR)/gen/migrations_sqlite.o $(FUZZ_OBJDIR)/gen/web_assets.o

# libFuzzer options common to every run. -timeout bounds one input (the
# request target has its own, shorter, hang detection; see fuzz_request.c).
FUZZ_OPTS := -timeout=30 -rss_limit_mb=4096
FUZZ_ENV := ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)

.PHONY: fuzz fuzz-bins fuzz-replay

fuzz-bins: $(FUZZ_BINS)

# Library objects: coverage instrumentation without libFuzzer's main.
$(FUZZ_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c \
		-o $@ $<

$(FUZZ_OBJDIR)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
		-Wno-missing-variable-declarations -c -o $@ $<

# The client targets also link the client's crypto objects (libflamingosync
# sources, compiled here like the others).
FUZZ_CLIENT_OBJ := $(addprefix $(FUZZ_OBJDIR)/src/client/,envelope.o hkdf.o \
	keywrap.o)
$(FUZZ_DIR)/fuzz_envelope $(FUZZ_DIR)/fuzz_kdf: $(FUZZ_CLIENT_OBJ)
$(FUZZ_DIR)/fuzz_envelope $(FUZZ_DIR)/fuzz_kdf: FUZZ_EXTRA_LIBS = $(UNISTRING_LIBS)
$(FUZZ_DIR)/fuzz_answer: $(FUZZ_OBJDIR)/src/client/transport.o
$(FUZZ_DIR)/fuzz_sse: $(FUZZ_OBJDIR)/src/client/sse.o

$(FUZZ_BINS): $(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP \
		-MF $(FUZZ_OBJDIR)/$*.d -o $@ $< $(filter %.o,$^) $(LDLIBS_ALL) \
		$(FUZZ_EXTRA_LIBS)

# Each target: the committed seeds (read-only: libFuzzer writes new units
# only to the first corpus directory, the scratch one) plus the scratch
# finds of earlier runs. The full log is build/fuzz/<target>.log; shown are
# the start (INITED) and end (DONE) status lines and the final stats.
#
# fuzz_request runs with -detect_leaks=0: its server frees a connection
# after the client has seen the answer, so libFuzzer suspects nearly every
# input and spends half the run in LeakSanitizer scans (until it gives up
# after 1000). LeakSanitizer still checks the whole run at exit, with the
# server stopped: any leak fails `make fuzz` with its allocation stack.
fuzz: $(FUZZ_BINS)
	@mkdir -p $(FUZZ_DIR)/artifacts
	@failed=""; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		before=$$(ls $(FUZZ_DIR)/corpus/$$t | wc -l); \
		case $$t in \
		fuzz_request) extra=-detect_leaks=0;; \
		*) extra=;; \
		esac; \
		echo "== $$t: fuzzing $(FUZZ_SECONDS) s"; \
		if $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) $$extra \
		    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		    -dict=tests/fuzz/$$t.dict \
		    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
		    $(FUZZ_DIR)/corpus/$$t tests/fuzz/corpus/$$t \
		    > $(FUZZ_DIR)/$$t.log 2>&1; then \
			grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::' \
			    $(FUZZ_DIR)/$$t.log | sed 's/^/   /'; \
			grep -E '^fuzz_request:' $(FUZZ_DIR)/$$t.log | \
			    tail -n 5 | sed 's/^/   /'; \
			after=$$(ls $(FUZZ_DIR)/corpus/$$t | wc -l); \
			echo "   corpus: $$(ls tests/fuzz/corpus/$$t | wc -l)" \
			    "committed seeds, scratch $$before -> $$after" \
			    "($(FUZZ_DIR)/corpus/$$t)"; \
		else \
			echo "   FAILED: see $(FUZZ_DIR)/$$t.log and" \
			    "$(FUZZ_DIR)/artifacts/"; \
			tail -n 60 $(FUZZ_DIR)/$$t.log | sed 's/^/   | /'; \
			failed="$$failed $$t"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in:$$failed"; exit 1; fi

# Replays the committed corpus (every seed and every regression input) once
# through each target; any crash, leak, UB or hang fails.
fuzz-replay: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
		n=$$(ls tests/fuzz/corpus/$$t | wc -l); \
		echo "== $$t: replaying $$n inputs"; \
		if ! $(FUZZ_ENV) $(FUZZ_DIR)/$$t $(FUZZ_OPTS) \
		    tests/fuzz/corpus/$$t/* > $(FUZZ_DIR)/$$t.replay.log 2>&1; \
		then \
			tail -n 60 $(FUZZ_DIR)/$$t.replay.log | sed 's/^/   | /'; \
			echo "fuzz-replay: $$t failed (log:" \
			    "$(FUZZ_DIR)/$$t.replay.log)"; \
			exit 1; \
		fi; \
	done

-include $(shell find $(FUZZ_OBJDIR) -name '*.d' 2>/dev/null)
