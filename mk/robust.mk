# Robustness suites (tests/robust/), black-box against the real server:
#   make robust             hostile input + slow/greedy clients (node --test),
#                           then crash-test-quick; well under 3 minutes
#   make crash-test         kill -9 crash loop under write load, 200 iterations
#   make crash-test-quick   the same, 30 iterations (the one for make test)
#   make crash-test CRASH_ITERATIONS=N CRASH_SEED=S   another length / replay
# Node.js 20 built-ins only; the sqlite3 CLI reads the database directly.

ROBUST_ENV = FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd)
ROBUST_TESTS := tests/robust/hostile.test.mjs tests/robust/slow-clients.test.mjs
CRASH_ITERATIONS ?= 200

.PHONY: robust robust-node crash-test crash-test-quick

# Both halves run even when the first fails; the target fails if either did.
robust: $(BUILD)/flamingo-syncd
	@rc=0; $(MAKE) --no-print-directory robust-node || rc=1; \
	$(MAKE) --no-print-directory crash-test-quick || rc=1; exit $$rc

# one file at a time: the slow-client timings want the cores to themselves
robust-node: $(BUILD)/flamingo-syncd
	$(ROBUST_ENV) node --test --test-concurrency=1 $(ROBUST_TESTS)

crash-test: $(BUILD)/flamingo-syncd
	$(ROBUST_ENV) CRASH_ITERATIONS=$(CRASH_ITERATIONS) \
		node tests/robust/crash-loop.mjs

crash-test-quick: $(BUILD)/flamingo-syncd
	$(ROBUST_ENV) CRASH_ITERATIONS=30 node tests/robust/crash-loop.mjs
