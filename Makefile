# aprfs build. Targets:
#   make [all]        build/libaprfs.a, build/aprfs, unit tests, tools (make B=DIR: in DIR)
#   make test         (or make check) every test on build/: unit, kernels on every ISA, bats, ARM
#                     under qemu when the cross tools are present, cppcheck, clang-format
#   make check-asan   everything built with ASan+UBSan in build-asan/; unit tests + bats on it
#   make fuzz         each libFuzzer harness of tests/fuzz/ (clang, build-fuzz/) for
#                     FUZZ_SECONDS (default 60) on a scratch copy of its seed corpus
#   make bench        the benchmark figures
#   make lint         cppcheck;  make format: clang-format -i;  make clean: every build dir
# scripts/test.sh (CI) runs test, check-asan and fuzz FUZZ_SECONDS=20. See the README.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
PKGS    := fuse3 liblz4 libcjson libisal zlib libxxhash
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# -ffp-contract=off: no fused multiply-adds behind our back, so every ISA rounds alike.
ALL_CFLAGS := -std=gnu11 $(CFLAGS) -ffp-contract=off $(WARN) -pthread -D_FILE_OFFSET_BITS=64 $(PKG_CFLAGS) -Ilib
LDLIBS  := $(PKG_LIBS) -pthread -lm

# Build directory: `make B=build-clang CC=clang` keeps a second build beside this one.
B ?= build
# lib/ in layers, low to high (a folder includes only itself and lower folders; checked
# by scripts/check-layers.sh): base format quant kernels source plan cache file view report.
LIB_DIRS  := base format quant kernels kernels/x86 kernels/arm source plan cache file view report
LIB_SRCS  := $(sort $(foreach d,$(LIB_DIRS),$(wildcard lib/$(d)/*.c)))
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o)
# cli/: the subcommands other than mounting (argv parsing); fs/: the FUSE adapter. The
# aprfs binary is both over libaprfs.a.
CLI_SRCS  := $(sort $(wildcard cli/*.c))
CLI_OBJS  := $(CLI_SRCS:%.c=$(B)/%.o)
FS_SRCS   := $(sort $(wildcard fs/*.c))
FS_OBJS   := $(FS_SRCS:%.c=$(B)/%.o)
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
TOOL_SRCS := $(sort $(wildcard tests/gen/*.c tests/bench/*.c))
TOOL_BINS := $(patsubst %.c,$(B)/tools/%,$(notdir $(TOOL_SRCS)))

.PHONY: all test check unit bats bench clean format lint check-asan fuzz fuzz-build
all: $(B)/libaprfs.a $(B)/aprfs $(B)/aprfs.1 $(UNIT_BINS) $(TOOL_BINS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ISA_CFLAGS) -MMD -MP -c $< -o $@

# Only the SIMD kernel files are compiled for their ISA (their tables are used only on a
# CPU that has it). No FMA: see lib/kernels/x86/avx2.c.
$(B)/lib/kernels/x86/avx2.o: ISA_CFLAGS := -mavx2 -mf16c
$(B)/lib/kernels/x86/avx512.o: ISA_CFLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mf16c

$(B)/libaprfs.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

# cli/ and fs/ find cmd.h with -Icli; lib/ never includes it.
$(FS_OBJS) $(CLI_OBJS): ALL_CFLAGS += -Icli

$(B)/aprfs: $(FS_OBJS) $(CLI_OBJS) $(B)/libaprfs.a
	$(CC) $(ALL_CFLAGS) -o $@ $(FS_OBJS) $(CLI_OBJS) $(B)/libaprfs.a $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libaprfs.a tests/unit/check.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(B)/libaprfs.a $(LDLIBS)

$(B)/tools/%: tests/gen/%.c $(B)/libaprfs.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libaprfs.a $(LDLIBS)

$(B)/tools/%: tests/bench/%.c $(B)/libaprfs.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libaprfs.a $(LDLIBS)

# tests/gen's shared headers (synth.h, ggml_encode.h, gen_util.h) are compiled into tools and unit tests.
$(TOOL_BINS) $(UNIT_BINS): $(wildcard tests/gen/*.h)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; timeout 300 $$t; done

bats: all
	d=$$(mktemp -d) && timeout 2600 scripts/run-bats.sh $$d; rc=$$?; rm -rf "$$d"; exit $$rc

test check: all
	scripts/run-tests.sh

bench: all
	scripts/bench.sh

format:
	clang-format -i $(LIB_SRCS) $(CLI_SRCS) $(FS_SRCS) $(UNIT_SRCS) $(TOOL_SRCS) $(wildcard lib/*/*.h lib/*/*/*.h cli/*.h fs/*.h tests/unit/*.h tests/gen/*.h) $(FUZZ_SRCS) $(wildcard tests/fuzz/*.h)

lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr -Ilib -Icli $(LIB_SRCS) $(CLI_SRCS) $(FS_SRCS)

clean:
	rm -rf $(B) $(ASAN_B) $(FUZZ_B)

# ---- sanitizers ----
# check-asan: lib, daemon, unit tests and tools built by gcc with ASan+UBSan (UB aborts) in
# $(ASAN_B), then scripts/run-asan.sh runs the unit tests and the bats suites on them and
# fails on any sanitizer report from any process (daemons included, leaks at exit too).
ASAN_B      := build-asan
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	       -fno-sanitize-recover=undefined
check-asan:
	$(MAKE) B=$(ASAN_B) CFLAGS="$(ASAN_CFLAGS)" all
	scripts/run-asan.sh $(ASAN_B)

# ---- fuzzing ----
# fuzz: scripts/run-fuzz.sh checks for clang and libFuzzer, builds (fuzz-build) and runs
# each harness tests/fuzz/fuzz_NAME.c for FUZZ_SECONDS on a scratch copy of
# tests/fuzz/corpus/NAME/; any crash, leak, UB or hang fails it, with a replayable input.
# fuzz-build: the harnesses in $(FUZZ_B)/, the whole library built by clang and
# instrumented for coverage + ASan + UBSan.
FUZZ_B       := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRCS    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
		-fno-sanitize-recover=undefined
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-fuzz.sh
fuzz-build:
	$(MAKE) B=$(FUZZ_B) CC=clang CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" \
	  $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_B)/fuzz/%)
$(B)/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(B)/libaprfs.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(B)/libaprfs.a $(LDLIBS)

-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- install -------------------------------------------------------------------------
# `make install [PREFIX=/usr/local] [DESTDIR=...]`: the binary, the man page, the example
# configuration and the systemd template unit (PREFIX substituted), as a Debian package
# would lay them out; `make uninstall` removes exactly those files and the directories
# install had to create (scripts/install.sh keeps their list), so the prefix is as before.
PREFIX  ?= /usr/local

.PHONY: install uninstall man
man: $(B)/aprfs.1

# The VARIANTS table rows come from the variant table itself (aprfs variants --scd).
$(B)/aprfs.1: doc/aprfs.1.scd $(B)/aprfs
	@mkdir -p $(dir $@)
	$(B)/aprfs variants --scd >$@.rows
	sed -e '/^@VARIANTS@$$/{r $@.rows' -e 'd}' $< | scdoc >$@
	rm -f $@.rows

install: $(B)/aprfs $(B)/aprfs.1
	scripts/install.sh install "$(DESTDIR)" "$(PREFIX)" "$(B)"

uninstall:
	scripts/install.sh uninstall "$(DESTDIR)" "$(PREFIX)" "$(B)"
