# Flamingo Sync — build, run and test.
#   make          build build/flamingo-syncd and the client (mk/client.mk)
#   make run      install what is missing, build, start on 127.0.0.1:3000
#   make test     install, build (warnings are errors) and run every suite

CC ?= cc
PKGS := libmicrohttpd jansson libsodium sqlite3 libcurl libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
	-Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual \
	-Wsign-compare -Wformat=2 -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT ?= -O2 -g
CFLAGS_ALL := -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -pthread \
	-Isrc $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS_ALL := $(PKG_LIBS) -pthread -lm $(LDLIBS) $(EXTRA_LDFLAGS)

BUILD ?= build
OBJ := $(BUILD)/obj

COMMON_SRC := $(wildcard src/common/*.c)
STORE_SRC := $(wildcard src/store/*.c)
SERVER_SRC := $(filter-out src/server/main.c,$(wildcard src/server/*.c))
MIGRATIONS_SQLITE := $(sort $(wildcard src/store/migrations/sqlite/*.sql))
WEB_FILES := $(shell find web -type f ! -name '.*' 2>/dev/null | LC_ALL=C sort)
GEN_SRC := $(BUILD)/gen/migrations_sqlite.c $(BUILD)/gen/web_assets.c

LIB_OBJ := $(COMMON_SRC:%.c=$(OBJ)/%.o) $(STORE_SRC:%.c=$(OBJ)/%.o) \
	$(SERVER_SRC:%.c=$(OBJ)/%.o) $(OBJ)/gen/migrations_sqlite.o \
	$(OBJ)/gen/web_assets.o

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all run test deps test-deps unit unit-bins api asan valgrind clean
all: $(BUILD)/flamingo-syncd

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

$(BUILD)/flamingo-syncd: $(OBJ)/src/server/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(OBJ)/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-variable-declarations -c -o $@ $<

$(BUILD)/gen/migrations_sqlite.c: $(MIGRATIONS_SQLITE) scripts/embed-sql
	@mkdir -p $(dir $@)
	scripts/embed-sql store_sqlite_migrations $(MIGRATIONS_SQLITE) > $@

# the dashboard (web/), compiled in with content types and ETags
$(BUILD)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web
	@mkdir -p $(dir $@)
	scripts/embed-web web > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) -lcmocka

run: deps
	$(MAKE) all
	$(BUILD)/flamingo-syncd --listen 127.0.0.1:3000 \
		--database sqlite:./flamingo-sync.db \
		--public-url http://127.0.0.1:3000

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

api: $(BUILD)/flamingo-syncd
	FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd) \
		node --test --test-concurrency=2 tests/api/

# AddressSanitizer + UndefinedBehaviorSanitizer: unit tests (server and
# client), the API suite and the client suites against a sanitized server
# and CLI (any report fails the run: the server exits non-zero and the
# suite checks every server's exit status; a CLI report fails its command).
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
SAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=86 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)
asan:
	$(MAKE) BUILD=build/asan CC=clang OPT="-O1 -g" WERROR=1 \
		EXTRA_CFLAGS="$(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)" \
		all unit-bins client-unit-bins
	@set -e; for t in $(UNIT_BIN:$(BUILD)/%=build/asan/%) \
		$(CLIENT_UNIT_BIN:$(BUILD)/%=build/asan/%); do \
		echo "== $$t (asan)"; $(SAN_ENV) $$t; done
	$(SAN_ENV) FLAMINGO_SYNCD=$(abspath build/asan/flamingo-syncd) \
		FLAMINGO_SYNC_CLI=$(abspath build/asan/flamingo-sync) \
		FLS_KEYTOOL=$(abspath build/asan/tests/client/fls-keytool) \
		FLS_ROTATE=$(abspath build/asan/tests/client/fls-rotate) \
		FLAMINGO_SYNCD_EXPECT_CLEAN_EXIT=1 \
		node --test --test-concurrency=2 tests/api/ \
		tests/robust/hostile.test.mjs $(CLIENT_E2E)

# The API suite against the server under valgrind memcheck: 0 errors,
# 0 bytes definitely lost (the server's exit status says so).
VALGRIND := valgrind --quiet --error-exitcode=87 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--track-origins=no --suppressions=$(abspath tests/valgrind.supp)
VALGRIND_TESTS ?= $(filter-out tests/api/expiry.test.mjs,\
	$(wildcard tests/api/*.test.mjs))
valgrind: all
	FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd) \
		FLAMINGO_SYNCD_WRAP="$(VALGRIND)" \
		FLAMINGO_SYNCD_EXPECT_CLEAN_EXIT=1 FLAMINGO_SLOW=1 \
		node --test --test-concurrency=2 $(VALGRIND_TESTS)

unit-bins: $(UNIT_BIN)

test: test-deps
	$(MAKE) WERROR=1 all $(UNIT_BIN)
	$(MAKE) WERROR=1 unit
	$(MAKE) WERROR=1 api
	$(MAKE) WERROR=1 unit-pg api-pg
	$(MAKE) WERROR=1 e2e
	$(MAKE) WERROR=1 client-test
	$(MAKE) asan
	$(MAKE) asan-pg
	$(MAKE) valgrind
	$(MAKE) WERROR=1 fuzz-replay
	$(MAKE) robust

clean:
	rm -rf $(BUILD)

# Hardening suites (fuzzing, crash loop, hostile input) live in mk/.
-include $(wildcard mk/*.mk)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
