# PostgreSQL: the store's second backend and its test suites.
#   make unit-pg    the store unit tests (tests/unit/test_store.c) against
#                   a private PostgreSQL 15 cluster
#   make api-pg     the whole API suite with every server on its own fresh
#                   database of a private cluster, plus the suites that
#                   only make sense there (tests/api-pg/: several instances
#                   on one database, PostgreSQL stopped under a server)
#   make test-pg    both
#   make asan-pg    the store unit tests and the API suites on PostgreSQL
#                   with the AddressSanitizer + UBSan build of make asan
# The cluster (scripts/pg-test-cluster) lives in a temporary directory, on
# its own unix socket and port, and is removed afterwards (also on failure
# or ctrl-C). Nothing else on the machine is touched.

PG_CLUSTER := scripts/pg-test-cluster
MIGRATIONS_PG := $(sort $(wildcard src/store/migrations/pg/*.sql))

.PHONY: unit-pg api-pg test-pg asan-pg

# The embedded PostgreSQL migrations, linked wherever the store is (the
# link recipes use $^ or FUZZ_LIB_OBJ, so these extra prerequisites are
# linked in too).
$(BUILD)/gen/migrations_pg.c: $(MIGRATIONS_PG) scripts/embed-sql
	@mkdir -p $(dir $@)
	scripts/embed-sql store_pg_migrations $(MIGRATIONS_PG) > $@

$(BUILD)/flamingo-syncd $(UNIT_BIN): $(OBJ)/gen/migrations_pg.o

FUZZ_LIB_OBJ += $(FUZZ_OBJDIR)/gen/migrations_pg.o
$(FUZZ_BINS): $(FUZZ_OBJDIR)/gen/migrations_pg.o
$(FUZZ_OBJDIR)/gen/migrations_pg.o: $(BUILD)/gen/migrations_pg.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link \
		-Wno-missing-variable-declarations -c -o $@ $<

unit-pg: $(BUILD)/tests/test_store
	$(PG_CLUSTER) run -- sh -c 'STORE_TEST_URL="$$PG_TEST_URL" \
		$(BUILD)/tests/test_store'

api-pg: $(BUILD)/flamingo-syncd
	$(PG_CLUSTER) run -- env FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd) \
		FLAMINGO_STORE=postgres \
		node --test --test-concurrency=2 tests/api/ tests/api-pg/

test-pg: unit-pg api-pg

# Needs make asan's build (build/asan); any sanitizer report fails the run
# (the unit test aborts; every server must exit 0).
asan-pg:
	$(MAKE) BUILD=build/asan CC=clang OPT="-O1 -g" WERROR=1 \
		EXTRA_CFLAGS="$(SAN_FLAGS)" EXTRA_LDFLAGS="$(SAN_FLAGS)" \
		all build/asan/tests/test_store
	$(PG_CLUSTER) run -- sh -c '$(SAN_ENV) STORE_TEST_URL="$$PG_TEST_URL" \
		build/asan/tests/test_store'
	$(PG_CLUSTER) run -- env $(SAN_ENV) \
		FLAMINGO_SYNCD=$(abspath build/asan/flamingo-syncd) \
		FLAMINGO_SYNCD_EXPECT_CLEAN_EXIT=1 FLAMINGO_STORE=postgres \
		node --test --test-concurrency=2 tests/api/ tests/api-pg/
