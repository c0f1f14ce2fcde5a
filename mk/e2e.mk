# Dashboard tests (tests/e2e/): Debian's Chromium driven by playwright-core
# against a real server, each test file with its own server and browser.
#   make e2e            install what is missing (chromium, npm ci), build,
#                       run every file (two at a time); screenshots of each
#                       page at 1280 and 375 px go to build/e2e-screenshots/
#   make e2e-deps       just the installs (scripts/install-deps --test)
#   make e2e E2E_TESTS=tests/e2e/devices.test.mjs   one file

E2E_TESTS ?= $(wildcard tests/e2e/*.test.mjs)

.PHONY: e2e e2e-deps

e2e-deps:
	@scripts/install-deps --test

e2e: e2e-deps $(BUILD)/flamingo-syncd
	@rm -rf $(BUILD)/e2e-screenshots
	FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd) \
		node --test --test-concurrency=2 $(E2E_TESTS)
