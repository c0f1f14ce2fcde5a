# make bench: load benchmarks against the ceiling of this machine (not part
# of make test). Builds an optimised server and the raw store program into
# build/bench/, then runs bench/run.mjs inside a private, durable
# PostgreSQL cluster (the server cases run on SQLite and on PostgreSQL),
# which writes bench/results/latest.md. BENCH_ARGS passes options (--rounds N,
# --seconds S, --streams N; --streams 0 skips the event streams).

BENCH_DIR := build/bench
BENCH_ARGS ?=

.PHONY: bench bench-bins

bench-bins:
	$(MAKE) BUILD=$(BENCH_DIR) OPT="-O2 -g -DNDEBUG" WERROR=1 all
	$(MAKE) $(BENCH_DIR)/raw_store

$(BENCH_DIR)/raw_store: bench/raw_store.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(LDLIBS_ALL)

bench:
	@scripts/install-deps --bench
	$(MAKE) bench-bins
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || true; \
		PG_TEST_DURABLE=1 scripts/pg-test-cluster run -- \
		node bench/run.mjs $(BENCH_ARGS)
