# libflamingosync and the flamingo-sync CLI (src/client/, include/).
#   make client        build/libflamingosync.a, build/libflamingosync.so,
#                      build/flamingo-sync
#   make client-test   cmocka unit tests (envelope vectors, tampering, KDF
#                      limits, key wrap, the SSE parser) then the
#                      end-to-end suite
#                      (tests/client/*.test.mjs: two CLI devices against a
#                      real flamingo-syncd, zero-knowledge checks, watch
#                      on the event stream; a
#                      scripted hostile server; the passphrase prompt on
#                      a pty)
#   make client-unit / client-e2e   either half
#   make install       PREFIX=/usr/local DESTDIR= : header, libraries,
#                      flamingosync.pc, the CLI
# Library objects are position-independent and export only the FLS_API
# symbols of include/flamingosync.h from the shared library.

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CLIENT_SOVERSION := 0

CLIENT_PKGS := libcurl jansson libsodium
# libunistring (no pkg-config file): NFC for passphrases
UNISTRING_LIBS := -lunistring
CLIENT_LIBS := $(shell pkg-config --libs $(CLIENT_PKGS) 2>/dev/null) \
	$(UNISTRING_LIBS)
CLIENT_CLI_SRC := src/client/cli.c $(wildcard src/client/cli_*.c)
CLIENT_LIB_SRC := $(filter-out $(CLIENT_CLI_SRC),$(wildcard src/client/*.c)) \
	src/common/b64.c src/common/token.c src/common/datatype.c
CLIENT_OBJDIR := $(BUILD)/obj-client
CLIENT_LIB_OBJ := $(CLIENT_LIB_SRC:%.c=$(CLIENT_OBJDIR)/%.o)
CLIENT_CLI_OBJ := $(CLIENT_CLI_SRC:%.c=$(CLIENT_OBJDIR)/%.o)
CLIENT_CFLAGS = $(CFLAGS_ALL) -Iinclude -fPIC -fvisibility=hidden
CLIENT_LDLIBS = $(CLIENT_LIBS) -pthread $(LDLIBS) $(EXTRA_LDFLAGS)

CLIENT_A := $(BUILD)/libflamingosync.a
CLIENT_SO := $(BUILD)/libflamingosync.so
CLIENT_CLI := $(BUILD)/flamingo-sync
CLIENT_PC := $(BUILD)/flamingosync.pc

CLIENT_UNIT_SRC := $(wildcard tests/client/test_*.c)
CLIENT_UNIT_BIN := $(CLIENT_UNIT_SRC:tests/client/%.c=$(BUILD)/tests/client/%)
CLIENT_KEYTOOL := $(BUILD)/tests/client/fls-keytool
CLIENT_ROTATE := $(BUILD)/tests/client/fls-rotate
CLIENT_E2E := $(wildcard tests/client/*.test.mjs)

.PHONY: client client-test client-unit client-unit-bins client-e2e install

all: client

client: $(CLIENT_A) $(CLIENT_SO) $(CLIENT_CLI) $(CLIENT_PC)

$(CLIENT_OBJDIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -MMD -MP -c -o $@ $<

$(CLIENT_A): $(CLIENT_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(CLIENT_SO): $(CLIENT_LIB_OBJ)
	$(CC) $(CLIENT_CFLAGS) -shared \
		-Wl,-soname,libflamingosync.so.$(CLIENT_SOVERSION) \
		-o $@ $^ $(CLIENT_LDLIBS)

$(CLIENT_CLI): $(CLIENT_CLI_OBJ) $(CLIENT_A)
	$(CC) $(CLIENT_CFLAGS) -o $@ $^ $(CLIENT_LDLIBS)

# flamingosync.pc for the current PREFIX/LIBDIR/INCLUDEDIR (written again
# by every build and install, so a PREFIX given to `make install` counts).
define client_pc
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' \
		'includedir=$(INCLUDEDIR)' '' 'Name: flamingosync' \
		'Description: Flamingo Sync client library (end-to-end encrypted sync)' \
		'Version: 0.1.0' 'Requires.private: $(CLIENT_PKGS)' \
		'Libs: -L$${libdir} -lflamingosync' \
		'Libs.private: $(UNISTRING_LIBS)' \
		'Cflags: -I$${includedir}' > $(1)
endef

.PHONY: $(CLIENT_PC)
$(CLIENT_PC):
	@mkdir -p $(dir $@)
	$(call client_pc,$@)

$(BUILD)/tests/client/%: tests/client/%.c $(CLIENT_A)
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -Isrc -o $@ $^ $(CLIENT_LDLIBS) -lcmocka

client-unit-bins: $(CLIENT_UNIT_BIN) $(CLIENT_KEYTOOL) $(CLIENT_ROTATE)

client-unit: $(CLIENT_UNIT_BIN)
	@set -e; for t in $(CLIENT_UNIT_BIN); do echo "== $$t"; $$t; done

client-e2e: $(BUILD)/flamingo-syncd $(CLIENT_CLI) $(CLIENT_KEYTOOL) \
		$(CLIENT_ROTATE)
	FLAMINGO_SYNCD=$(abspath $(BUILD)/flamingo-syncd) \
		FLAMINGO_SYNC_CLI=$(abspath $(CLIENT_CLI)) \
		FLS_KEYTOOL=$(abspath $(CLIENT_KEYTOOL)) \
		FLS_ROTATE=$(abspath $(CLIENT_ROTATE)) \
		node --test --test-concurrency=2 $(CLIENT_E2E)
	python3 tests/client/test_prompt.py $(CLIENT_CLI)

client-test: client
	$(MAKE) --no-print-directory client-unit
	$(MAKE) --no-print-directory client-e2e

install: client
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	install -m 0644 include/flamingosync.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 0644 $(CLIENT_A) $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(CLIENT_SO) \
		$(DESTDIR)$(LIBDIR)/libflamingosync.so.$(CLIENT_SOVERSION)
	ln -sf libflamingosync.so.$(CLIENT_SOVERSION) \
		$(DESTDIR)$(LIBDIR)/libflamingosync.so
	$(call client_pc,$(DESTDIR)$(PKGCONFIGDIR)/flamingosync.pc)
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/flamingosync.pc
	install -m 0755 $(CLIENT_CLI) $(DESTDIR)$(BINDIR)/

-include $(shell find $(CLIENT_OBJDIR) -name '*.d' 2>/dev/null)
