# DSpark build.
#   make            release build: build/dspark and the test binaries
#   make asan       AddressSanitizer + UBSan build in build-asan/
#   make test       build, then run every test (unit and integration)
#   make test-asan  unit tests and six integration tests on the sanitizer build
#   make deps       install the Debian packages the build and tests need
#   make check      deps, then test and test-asan (the README's test command)
#   make demo       deps, build, then run examples/cc-clean.json locally
#   make install    copy build/dspark to $(PREFIX)/bin (PREFIX=/usr/local)
#
# Sources are picked up by folder, so a new .c file needs no Makefile edit.
# tests/unit/test_*.c each become one test binary.

CC ?= gcc
CXX ?= g++
PKGS := libcurl libcrypto libssl libzstd zlib libcjson libutf8proc libpcre2-8 gumbo libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE $(WARN) -g -pthread $(PKG_CFLAGS) -I.
CXXFLAGS_COMMON := -std=c++11 $(WARN) -g -pthread -I.
LIBS := $(PKG_LIBS) -lcld2 -lstdc++ -lpthread -lm

OPT := -O2
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(wildcard core/*.c storage/*.c tasks/*.c planner/*.c runtime/*.c)
LIB_SRCS := $(filter-out runtime/main.c,$(LIB_SRCS))
LIB_CXX_SRCS := $(wildcard tasks/*.cc)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
TEST_SUPPORT := $(wildcard tests/unit/support/*.c)

.DEFAULT_GOAL := all

# $(1) = build dir, $(2) = extra flags
define build_rules
$(1)/obj/%.o: %.c $(wildcard */*.h) $(wildcard tests/unit/*.h)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS_COMMON) $(2) -c $$< -o $$@

$(1)/obj/%.o: %.cc
	@mkdir -p $$(dir $$@)
	$$(CXX) $$(CXXFLAGS_COMMON) $(2) -c $$< -o $$@

$(1)/libdspark.a: $(patsubst %.c,$(1)/obj/%.o,$(LIB_SRCS)) $(patsubst %.cc,$(1)/obj/%.o,$(LIB_CXX_SRCS))
	@rm -f $$@
	ar rcs $$@ $$^

$(1)/dspark: $(1)/obj/runtime/main.o $(1)/libdspark.a
	$$(CC) $(2) -o $$@ $$^ $$(LIBS)

$(1)/tests/%: $(1)/obj/tests/unit/%.o $(patsubst %.c,$(1)/obj/%.o,$(TEST_SUPPORT)) $(1)/libdspark.a
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) -o $$@ $$^ $$(LIBS)
endef

# Build directories; set BUILD=build-x to keep a separate tree.
BUILD ?= build
BUILD_ASAN ?= build-asan

$(eval $(call build_rules,$(BUILD),$(OPT)))
$(eval $(call build_rules,$(BUILD_ASAN),-O1 $(SAN)))

TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
ASAN_TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD_ASAN)/tests/%,$(TEST_SRCS))

.PHONY: all asan test test-asan deps check demo install clean
.SECONDARY:

all: $(BUILD)/dspark $(TEST_BINS)

asan: $(BUILD_ASAN)/dspark $(ASAN_TEST_BINS)

test: all
	tests/run.sh $(BUILD)

# The sanitizer run covers every unit test and the integration tests that
# drive the whole binary through a job (workers are sanitized processes too).
ASAN_INTEGRATION := main_job store_cli job_workers_identical job_dedup report job_input_cache

test-asan: asan
	DSPARK_TEST_INTEGRATION="$(ASAN_INTEGRATION)" tests/run.sh $(BUILD_ASAN)

deps:
	scripts/install-deps.sh

check: deps
	$(MAKE) test
	$(MAKE) test-asan

demo: deps
	$(MAKE) $(BUILD)/dspark
	DSPARK_BIN=$(BUILD)/dspark scripts/demo.sh

PREFIX ?= /usr/local

install: $(BUILD)/dspark
	install -D -m 755 $(BUILD)/dspark $(DESTDIR)$(PREFIX)/bin/dspark

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
