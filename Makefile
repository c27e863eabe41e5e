# SPDX-License-Identifier: MIT
#
# kslab: a Linux-kernel-style slab allocator for userspace.
#
# Targets:
#   all (default)  libkslab.a, libkslab.so.0 (+ libkslab.so), kslab.pc,
#                  libkslab-malloc.so.0 (+ libkslab-malloc.so, the malloc
#                  replacement), kslab-malloc.pc, the selftests and the
#                  tools, in the output directory
#   test           build and run the selftests; the last line reads
#                  "selftests: N passed, M failed, K skipped"
#   run            build and run the finalizer demos in tools/finalizer-demo
#   bench          build tools/bench/bench and run tools/bench/run.sh
#   lint           checkpatch.pl and cppcheck over the C sources
#   install        libraries, include/kslab/*.h and the .pc files into
#                  $(DESTDIR)$(PREFIX); uninstall removes them again, with
#                  the directories install created (recorded in
#                  .install-dirs in the output directory)
#   deps           run tools/kslab-deps.sh: install missing packages, cache
#                  the kernel's kselftest harness and checkpatch in .cache/
#                  (make, test, lint and bench do this when something is
#                  missing)
#   clean          remove what was built in the output directory
#   distclean      clean, plus build-*/ and .cache/
#   help           print this text
#
# Variables:
#   O=dir          output directory; default: the source tree, or
#                  build-$(SANITIZE) when SANITIZE is set, so that objects
#                  built with different flags never mix
#   V=1            print full commands instead of "  CC      mm/slub.o"
#   SANITIZE=      address (ASan + UBSan) or thread (TSan)
#   CC=            the compiler: gcc (default) or clang
#   CXX=           the C++ compiler for the C++ selftest: by default g++, or
#                  clang++ when CC is clang
#   CFLAGS=, CXXFLAGS=, LDFLAGS=  appended to the project's own flags
#   T=name         with `test`: run only these selftests (space separated)
#   PREFIX=        install prefix, default /usr/local (LIBDIR, INCLUDEDIR
#                  default to $(PREFIX)/lib and $(PREFIX)/include)
#   DESTDIR=       staging root prepended to every installed path
#
# What gets built is listed in the Kbuild files, kernel style: obj-y in
# mm/Kbuild and lib/Kbuild, malloc-y (the malloc replacement's own
# objects) in mm/Kbuild, selftests-y in selftests/Kbuild, tools-y and
# bench-y in tools/Kbuild.  Adding a source file is a one-line change there.
# A program is built from <name>.c, or from <name>.cc with $(CXX); objects
# in <name>-objs (from .c or .cc files of its directory) are linked in too.
# Commands run from the source tree; only their outputs go to $(O).

MAKEFLAGS += -r --no-print-directory

srctree := $(patsubst %/,%,$(dir $(realpath $(lastword $(MAKEFILE_LIST)))))

ifeq ($(V),1)
  Q :=
  quiet :=
else
  Q := @
  quiet := quiet_
endif
ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
  quiet := silent_
endif

ifneq ($(CURDIR),$(srctree))
# Invoked with -f from elsewhere: start again from the source tree, keeping
# a relative O= relative to where the user stood.
__sub-make:
	$(Q)$(MAKE) -C $(srctree) $(MAKECMDGOALS) $(if $(O),O=$(abspath $(O)))
$(filter-out __sub-make,$(MAKECMDGOALS)): __sub-make
	@:
.PHONY: __sub-make
else

# ---------------------------------------------------------------------------
# Configuration

KSLAB_VERSION := 0.1.0

ifeq ($(origin CC),default)
  CC := gcc
endif
# The C++ compiler of the same family as CC: clang-14 gives clang++-14.
ifeq ($(origin CXX),default)
  cc-name := $(notdir $(CC))
  CXX := $(patsubst ./%,%,$(dir $(CC)))$(strip \
	 $(if $(findstring clang,$(cc-name)),$(subst clang,clang++,$(cc-name)), \
	 $(if $(findstring gcc,$(cc-name)),$(subst gcc,g++,$(cc-name)),g++)))
endif
ifeq ($(origin AR),default)
  AR := ar
endif
PKG_CONFIG ?= pkg-config

PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include

sanitize-address := -fsanitize=address,undefined -fno-omit-frame-pointer \
		    -fno-sanitize-recover=undefined
sanitize-thread := -fsanitize=thread
ifneq ($(SANITIZE),)
  ifeq ($(sanitize-$(SANITIZE)),)
    $(error SANITIZE=$(SANITIZE) is not known; use address or thread)
  endif
  O ?= build-$(SANITIZE)
endif
sanitize-flags := $(sanitize-$(SANITIZE))

# $(out) prefixes every output path: empty for an in-tree build.
objtree := $(if $(O),$(abspath $(O)),$(srctree))
out := $(if $(filter $(srctree),$(objtree)),,$(objtree)/)

# The kernel files tools/kslab-deps.sh extracts, shared by all output dirs.
kcache := .cache/linux-6.1
kselftest-dir := $(kcache)/tools/testing/selftests

# ---------------------------------------------------------------------------
# Dependencies: run tools/kslab-deps.sh only when something is missing, and
# before pkg-config is asked for liburcu's and libdw's flags below.

no-deps-goals := clean distclean help uninstall deps
ifneq ($(filter-out $(no-deps-goals),$(or $(MAKECMDGOALS),all)),)
  deps-missing := $(if $(wildcard $(kselftest-dir)/kselftest_harness.h),,kernel-files)
  deps-missing += $(if $(shell $(PKG_CONFIG) --exists liburcu 2>/dev/null && echo y),,liburcu)
  deps-missing += $(if $(shell command -v $(CXX) 2>/dev/null),,$(CXX))
  deps-missing += $(if $(shell $(PKG_CONFIG) --exists libdw 2>/dev/null && echo y),,libdw)
  ifneq ($(filter lint,$(MAKECMDGOALS)),)
    deps-missing += $(if $(shell command -v cppcheck 2>/dev/null),,cppcheck)
  endif
  # the real programs malloc_test runs under libkslab-malloc.so
  ifneq ($(filter test,$(MAKECMDGOALS)),)
    deps-missing += $(foreach p,python3 xz sqlite3 git,$(if $(wildcard /usr/bin/$(p)),,$(p)))
  endif
  ifneq ($(filter bench,$(MAKECMDGOALS)),)
    deps-args := --bench
    bench-peer-headers := /usr/include/jemalloc/jemalloc.h /usr/include/mimalloc.h \
			  /usr/include/gperftools/tcmalloc.h
    deps-missing += $(if $(filter-out $(wildcard $(bench-peer-headers)),$(bench-peer-headers)),bench-peers)
    deps-missing += $(if $(shell command -v go 2>/dev/null),,go)
  endif
  ifneq ($(strip $(deps-missing)),)
    $(info kslab: missing $(strip $(deps-missing)); running $(strip tools/kslab-deps.sh $(deps-args)))
    ifneq ($(shell bash tools/kslab-deps.sh $(deps-args) >&2; echo $$?),0)
      $(error tools/kslab-deps.sh failed)
    endif
  endif
endif

# liburcu for RCU reclaim; libdw (elfutils) for the names and source lines
# in reports (lib/symbolize.c).  kslab.pc lists the same two.
DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags liburcu libdw 2>/dev/null)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs liburcu libdw 2>/dev/null)

kslab-cflags := -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
		-D_GNU_SOURCE -Iinclude -I. -pthread $(DEPS_CFLAGS) $(sanitize-flags) $(CFLAGS)
# C++ sees the headers as a C++ program does: ISO C++17, default visibility.
kslab-cxxflags := -std=c++17 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -I. \
		  -pthread $(DEPS_CFLAGS) $(sanitize-flags) $(CXXFLAGS)
kslab-ldflags := -pthread $(sanitize-flags) $(LDFLAGS)
# Sanitizer runtimes leave undefined references in a shared object (clang
# links them into executables only), so -z defs holds for plain builds.
# Each shared library's soname is its file name, its exports its .map.
so-ldflags = -shared -Wl,-soname,$(@F) -Wl,--version-script=$(filter %.map,$^) \
	     $(if $(SANITIZE),,-Wl,-z,defs)

# ---------------------------------------------------------------------------
# Read the Kbuild files.  $(1) is the directory, "" or ending in '/'.  Lists
# become paths relative to the source tree; LDLIBS_<prog> is kept per
# program as ldlibs-<dir><prog>.

kbuild-dirs :=
lib-objs :=
malloc-objs :=
selftests :=
tools :=
bench :=

define read-kbuild
obj-y :=
malloc-y :=
subdir-y :=
selftests-y :=
tools-y :=
bench-y :=
include $(srctree)/$(1)Kbuild
kbuild-dirs += $(1)
lib-objs += $$(addprefix $(1),$$(filter-out %/,$$(obj-y)))
malloc-objs += $$(addprefix $(1),$$(malloc-y))
selftests += $$(addprefix $(1),$$(selftests-y))
tools += $$(addprefix $(1),$$(tools-y))
bench += $$(addprefix $(1),$$(bench-y))
$$(foreach p,$$(selftests-y) $$(tools-y) $$(bench-y),$$(eval ldlibs-$(1)$$(p) := $$(LDLIBS_$$(p))))
$$(foreach p,$$(selftests-y) $$(tools-y) $$(bench-y),$$(eval objs-$(1)$$(p) := $$(addprefix $(1),$$($$(p)-objs))))
$$(foreach d,$$(filter %/,$$(obj-y)) $$(subdir-y),$$(eval $$(call read-kbuild,$(1)$$(d))))
endef
$(eval $(call read-kbuild,))

progs := $(selftests) $(tools) $(bench)
cxx-progs := $(foreach p,$(progs),$(if $(wildcard $(p).cc),$(p)))
prog-objs := $(foreach p,$(progs),$(objs-$(p)))
lib-files := libkslab.a libkslab.so.0 libkslab.so kslab.pc \
	     libkslab-malloc.so.0 libkslab-malloc.so kslab-malloc.pc

# ---------------------------------------------------------------------------
# Kernel-style command printing: $(call cmd,foo) echoes quiet_cmd_foo (or,
# with V=1, cmd_foo itself) and runs cmd_foo.

escsq = $(subst ','\'',$(1))
echo-cmd = $(if $($(quiet)cmd_$(1)),echo '  $(call escsq,$($(quiet)cmd_$(1)))';)
cmd = @set -e; $(echo-cmd) $(cmd_$(1))

# The output path as the user thinks of it, for the quiet lines.
rel = $(patsubst $(out)%,%,$@)

# The compiler and its flags, recorded so that changing them (CC=clang,
# CFLAGS=...) rebuilds everything; the file is only rewritten on a change.
# The C++ compiler has a file of its own: CXX= rebuilds only C++ units.
flags-file := $(out).build-flags
build-flags := $(CC) $(kslab-cflags) | $(kslab-ldflags) $(DEPS_LIBS)
cxx-flags-file := $(out).build-flags-cxx
cxx-build-flags := $(CXX) $(kslab-cxxflags)

record-flags = @mkdir -p $(@D); echo '$(call escsq,$(1))' | cmp -s - $@ || \
	       echo '$(call escsq,$(1))' > $@

$(flags-file): FORCE
	$(call record-flags,$(build-flags))

$(cxx-flags-file): FORCE
	$(call record-flags,$(cxx-build-flags))

# ---------------------------------------------------------------------------
# The library

quiet_cmd_cc_o_c = CC      $(rel)
      cmd_cc_o_c = $(CC) $(kslab-cflags) -MMD -MP -c -o $@ $<

$(out)%.o: %.c $(flags-file)
	@mkdir -p $(@D)
	$(call cmd,cc_o_c)

quiet_cmd_cxx_o_cc = CXX     $(rel)
      cmd_cxx_o_cc = $(CXX) $(kslab-cxxflags) -MMD -MP -c -o $@ $<

$(out)%.o: %.cc $(cxx-flags-file)
	@mkdir -p $(@D)
	$(call cmd,cxx_o_cc)

# Built afresh with 'q' (append): objects of the same name from two
# directories both go in, where 'r' would keep only one.  D: deterministic.
quiet_cmd_ar = AR      $(rel)
      cmd_ar = rm -f $@; $(AR) qcsD $@ $(filter %.o,$^)

$(out)libkslab.a: $(addprefix $(out),$(lib-objs))
	$(call cmd,ar)

quiet_cmd_ld_so = LD      $(rel)
      cmd_ld_so = $(CC) $(so-ldflags) -o $@ $(filter %.o,$^) $(kslab-ldflags) $(DEPS_LIBS)

$(out)libkslab.so.0: $(addprefix $(out),$(lib-objs)) libkslab.map $(flags-file)
	$(call cmd,ld_so)

quiet_cmd_ln = LN      $(rel)
      cmd_ln = ln -sfn $(<F) $@

$(out)libkslab.so: $(out)libkslab.so.0
	$(call cmd,ln)

# The malloc replacement: the same objects as libkslab's, plus its own,
# exporting the C library's allocation functions only.
$(out)libkslab-malloc.so.0: $(addprefix $(out),$(lib-objs) $(malloc-objs)) \
			    libkslab-malloc.map $(flags-file)
	$(call cmd,ld_so)

$(out)libkslab-malloc.so: $(out)libkslab-malloc.so.0
	$(call cmd,ln)

# A .pc file from its template $< (kslab.pc.in, kslab-malloc.pc.in):
# $(1) prefix, $(2) libdir, $(3) includedir, $(4) extra Libs flags.
gen-pc = sed -e 's|@PREFIX@|$(1)|' -e 's|@LIBDIR@|$(2)|' -e 's|@INCLUDEDIR@|$(3)|' \
	     -e 's|@LIBS_EXTRA@ |$(if $(4),$(4) )|' -e 's|@VERSION@|$(KSLAB_VERSION)|' $<

# The uninstalled kslab.pc: headers from the source tree, the library from
# the output directory, found at run time through its rpath, so that a
# program built against a build directory (check-pc's among them) runs
# as it is.  The installed one has no rpath: see install-pc.
quiet_cmd_gen_pc = GEN     $(rel)
      cmd_gen_pc = $(call gen-pc,$(objtree),$(objtree),$(srctree)/include,-Wl$(comma)-rpath$(comma)$${libdir}) > $@
comma := ,

$(out)kslab.pc: kslab.pc.in Makefile
	@mkdir -p $(@D)
	$(call cmd,gen_pc)

$(out)kslab-malloc.pc: kslab-malloc.pc.in Makefile
	@mkdir -p $(@D)
	$(call cmd,gen_pc)

# ---------------------------------------------------------------------------
# Programs: each <dir>/<name>.c (or .cc) is one binary linked with its
# <name>-objs and libkslab.a.  Their dependency files are hidden
# (.<name>.d) so that a directory lists programs.

prog-dep = $(foreach p,$(1),$(dir $(p)).$(notdir $(p)).d)
# The program's extra objects, and the rest of its link line.
prog-link = $(addprefix $(out),$(objs-$(rel))) $(out)libkslab.a $(kslab-ldflags) \
	    $(DEPS_LIBS) $(ldlibs-$(rel))

quiet_cmd_ccld = CCLD    $(rel)
      cmd_ccld = $(CC) $(kslab-cflags) $(prog-cflags) -MMD -MP -MF $(call prog-dep,$@) -MT $@ -o $@ $< \
		 $(prog-link)

$(addprefix $(out),$(filter-out $(cxx-progs),$(progs))): $(out)%: %.c $(out)libkslab.a $(flags-file)
	@mkdir -p $(@D)
	$(call cmd,ccld)

quiet_cmd_cxxld = CXXLD   $(rel)
      cmd_cxxld = $(CXX) $(kslab-cxxflags) $(prog-cflags) -MMD -MP -MF $(call prog-dep,$@) -MT $@ -o $@ $< \
		  $(prog-link)

$(addprefix $(out),$(cxx-progs)): $(out)%: %.cc $(out)libkslab.a $(flags-file) $(cxx-flags-file)
	@mkdir -p $(@D)
	$(call cmd,cxxld)

$(foreach p,$(progs),$(if $(objs-$(p)),$(eval $(out)$(p): $(addprefix $(out),$(objs-$(p))))))

# The kselftest harness is written for -Wall: its macros trip these -Wextra
# warnings in perfectly ordinary tests.
$(addprefix $(out),$(selftests)): prog-cflags := -I$(kselftest-dir) \
	-Wno-unused-parameter -Wno-sign-compare -Wno-empty-body

-include $(wildcard $(addprefix $(out),$(lib-objs:.o=.d) $(malloc-objs:.o=.d) $(prog-objs:.o=.d) \
		   $(call prog-dep,$(progs))))

# ---------------------------------------------------------------------------
# Top-level targets

.DEFAULT_GOAL := all
all: lib selftests tools

lib: $(addprefix $(out),$(lib-files))
selftests: $(addprefix $(out),$(selftests))
tools: $(addprefix $(out),$(tools))

# make test [T=name...]
test-names := $(notdir $(selftests))
ifneq ($(T),)
  ifneq ($(filter-out $(test-names),$(notdir $(T))),)
    $(error T=$(T): not a selftest; known: $(test-names))
  endif
  test-progs := $(addprefix $(out),$(filter $(addprefix %/,$(notdir $(T))),$(selftests)))
else
  test-progs := $(addprefix $(out),$(selftests))
endif

test: lib check-pc check-symbols check-layers check-install $(test-progs)
	$(Q)bash tools/testing/run-selftests.sh $(test-progs)

# A program built the way users build theirs (pkg-config, as README.md says),
# linked with libkslab.so through kslab.pc and run without LD_LIBRARY_PATH.
define pc_check_prog
#include <kslab/kslab.h>

int main(void)
{
	void *p = kmalloc(16, GFP_KERNEL);

	kfree(p);
	return p == NULL;
}
endef
check-pc: export KSLAB_TEST_PC_CHECK_PROG := $(pc_check_prog)

quiet_cmd_check_pc = CHECK   kslab.pc
      cmd_check_pc = pc=$$(PKG_CONFIG_PATH=$(objtree) $(PKG_CONFIG) --cflags --libs kslab); \
		     printf '%s\n' "$$KSLAB_TEST_PC_CHECK_PROG" | \
		     $(CC) $(sanitize-flags) -x c - $$pc -o $(objtree)/.pc-check && \
		     $(objtree)/.pc-check || { \
			echo "kslab.pc: a program using kmalloc() via pkg-config and" \
			     "libkslab.so failed to link or run; is the API exported" \
			     "(default visibility, libkslab.map)?" >&2; exit 1; }; \
		     rm -f $(objtree)/.pc-check

check-pc: lib
	$(call cmd,check_pc)

# Every global symbol of the library is public API or kslab_-prefixed;
# the malloc replacement exports the C library's names only.
quiet_cmd_check_symbols = CHECK   symbols
      cmd_check_symbols = bash tools/testing/check-symbols.sh \
			  $(out)libkslab.a $(out)libkslab.so.0 include \
			  $(out)libkslab-malloc.so.0 $(addprefix $(out),$(malloc-objs))

check-symbols: lib
	$(call cmd,check_symbols)

# Calls between the archive's members, and from the malloc replacement's
# objects into them, run one way: down the layers, plus the named hooks
# (tools/testing/check-layers.sh, mm/slab_common.c).
quiet_cmd_check_layers = CHECK   layers
      cmd_check_layers = bash tools/testing/check-layers.sh $(out)libkslab.a \
			 $(addprefix $(out),$(malloc-objs))

check-layers: lib
	$(call cmd,check_layers)

# make install, a program built with the installed kslab.pc, and make
# uninstall, into a staging DESTDIR (tools/testing/check-install.sh).
quiet_cmd_check_install = CHECK   install, uninstall
      cmd_check_install = bash tools/testing/check-install.sh '$(MAKE)' \
			  '$(strip $(CC) $(sanitize-flags))' '$(PKG_CONFIG)'

# '+': a recursive make, which shares the jobserver.
check-install: lib
	+$(call cmd,check_install)

# make run: Go's finalizer examples on kslab, each after a one-line header.
# The blocking one leaves B's finalizer stuck and exits 0 with kslab's exit
# report on stderr.  Options are read once at start-up, so the watchdog's
# short threshold goes on the command line.
demo-dir := $(out)tools/finalizer-demo
run: $(addprefix $(demo-dir)/,simple blocking watchdog handoff)
	@echo '== simple: runtime.SetFinalizer + runtime.GC, as kmem_set_finalizer + kmem_gc'
	$(Q)$(demo-dir)/simple
	@echo '== blocking: the finalizer of B never returns: C runs, A waits behind B'
	$(Q)$(demo-dir)/blocking
	@echo '== watchdog: the same stall, reported after KSLAB_FINALIZER_WATCHDOG_MS=100'
	$(Q)KSLAB_FINALIZER_WATCHDOG_MS=100 $(demo-dir)/watchdog
	@echo '== handoff: B hands its slow work to system_unbound_wq; every finalizer runs'
	$(Q)$(demo-dir)/handoff

# The Go side of the finalizer bench, built by the go tool (Debian's
# golang-go, standard library only, no network) beside the C benches; its
# build cache goes under the output directory, so no home is needed.
# Without go, run.sh runs kslab's side alone and says so.
go-bench := $(out)tools/bench/finalizer_bench_go
go-bench-src := $(wildcard tools/bench/go/*.go) tools/bench/go/go.mod
have-go := $(shell command -v go 2>/dev/null)

quiet_cmd_go_build = GO      $(rel)
      cmd_go_build = cd tools/bench/go && \
		     env GOCACHE=$(objtree)/.cache/go-build GOPATH=$(objtree)/.cache/go \
			 GOENV=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
			 go build -buildvcs=false -trimpath -o $(abspath $@) .

$(go-bench): $(go-bench-src)
	@mkdir -p $(@D)
	$(call cmd,go_build)

bench: $(addprefix $(out),$(bench)) $(if $(have-go),$(go-bench))
	$(if $(have-go),,@echo 'bench: go not found (Debian: golang-go): the finalizer tests run without the Go side')
	$(Q)bash $(srctree)/tools/bench/run.sh $(objtree)/tools/bench/bench

.PHONY: clean-go-bench
clean: clean-go-bench
clean-go-bench:
	$(Q)rm -f $(go-bench)

# ---------------------------------------------------------------------------
# make lint: the kernel's checkpatch.pl (from linux-source-6.1, cached by
# tools/kslab-deps.sh) and cppcheck.  Ignored checkpatch types:
#   SPDX_LICENSE_TAG   kslab writes /* SPDX-... */ in every file, checkpatch
#                      wants the kernel's // form in .c files
#   FILE_PATH_CHANGES  asks whether MAINTAINERS needs an update: no such file
# and for two groups of files only:
#   include/kslab/*.h  NEW_TYPEDEFS: the API contract defines gfp_t and
#                      slab_flags_t as typedefs
#   lib/compiler.h     PREFER_DEFINED_ATTRIBUTE_MACRO, COMPLEX_MACRO,
#                      MEMORY_BARRIER: it is where the attribute and barrier
#                      macros checkpatch asks for are defined

lint-dirs := mm lib include tools selftests
ifneq ($(filter lint,$(MAKECMDGOALS)),)
  lint-files := $(wildcard $(shell \
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files --cached --others --exclude-standard -- \
			$(foreach d,$(lint-dirs),'$(d)/*.c' '$(d)/*.h'); \
	else \
		find $(lint-dirs) -name '*.[ch]'; \
	fi))
endif

checkpatch := perl $(kcache)/scripts/checkpatch.pl --no-tree --terse --show-types \
	      --ignore SPDX_LICENSE_TAG,FILE_PATH_CHANGES
cppcheck := cppcheck --quiet --error-exitcode=1 \
	    --enable=warning,style,performance,portability --inline-suppr \
	    --suppress=missingIncludeSystem -D_GNU_SOURCE -Iinclude -I. \
	    -I$(kselftest-dir) --suppress='*:$(kcache)/*'

lint-api-files := $(filter include/kslab/%,$(lint-files))
lint-compiler-files := $(filter lib/compiler.h,$(lint-files))
lint-plain-files := $(filter-out $(lint-api-files) $(lint-compiler-files),$(lint-files))

# Both tools always run; either one failing fails the target.
quiet_cmd_lint = LINT    $(words $(lint-files)) files: checkpatch, cppcheck
      cmd_lint = status=0; \
		 $(checkpatch) -f $(lint-plain-files) || status=1; \
		 $(if $(lint-api-files),$(checkpatch),true) --ignore NEW_TYPEDEFS \
			-f $(lint-api-files) || status=1; \
		 $(if $(lint-compiler-files),$(checkpatch),true) \
			--ignore PREFER_DEFINED_ATTRIBUTE_MACRO,COMPLEX_MACRO,MEMORY_BARRIER \
			-f $(lint-compiler-files) || status=1; \
		 $(cppcheck) $(filter %.c,$(lint-files)) || status=1; \
		 exit $$status

lint:
	$(call cmd,lint)

# ---------------------------------------------------------------------------
# Install

# $(call cmd,install,<mode>,<dest>) installs the first prerequisite.
quiet_cmd_install = INSTALL $(3)
      cmd_install = install -D -m $(2) $< $(3)
quiet_cmd_install_ln = INSTALL $(3)
      cmd_install_ln = ln -sfn $(2) $(3)
quiet_cmd_install_headers = INSTALL $(2)/*.h
      cmd_install_headers = install -d $(2) && install -m 644 include/kslab/*.h $(2)
# The installed kslab.pc, as pkg-config has it: no rpath.  A program built
# against a prefix the dynamic loader does not search finds the library
# through LD_LIBRARY_PATH, ldconfig, or an rpath its own build adds.
quiet_cmd_install_pc = INSTALL $(2)
      cmd_install_pc = $(call gen-pc,$(PREFIX),$(pc-libdir),$(pc-includedir),) > $(2)

# Paths under the prefix are written relative to it, as pkg-config likes.
pc-libdir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
pc-includedir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

dest-lib := $(DESTDIR)$(LIBDIR)
dest-inc := $(DESTDIR)$(INCLUDEDIR)/kslab
installed-libs := libkslab.a libkslab.so.0 libkslab.so pkgconfig/kslab.pc \
		  libkslab-malloc.so.0 libkslab-malloc.so pkgconfig/kslab-malloc.pc
installed-headers := $(notdir $(wildcard include/kslab/*.h))

# Each directory install creates is appended to $(install-log), so that
# uninstall removes what install created and nothing else: a directory
# that was there before (an empty /usr/local/include, say) stays.
install-log := $(objtree)/.install-dirs

quiet_cmd_install_dir = INSTALL $(2)/
      cmd_install_dir = d=$(2); new=; \
			while [ ! -d "$$d" ]; do new="$$d $$new"; d=$$(dirname "$$d"); done; \
			for d in $$new; do mkdir "$$d"; echo "$$d" >> $(install-log); done

install: install-a install-so install-headers install-pc install-malloc
install-dirs:
	$(call cmd,install_dir,$(dest-lib)/pkgconfig)
	$(call cmd,install_dir,$(dest-inc))
install-a: $(out)libkslab.a install-dirs
	$(call cmd,install,644,$(dest-lib)/libkslab.a)
install-so: $(out)libkslab.so.0 install-dirs
	$(call cmd,install,755,$(dest-lib)/libkslab.so.0)
	$(call cmd,install_ln,libkslab.so.0,$(dest-lib)/libkslab.so)
install-headers: install-dirs
	$(call cmd,install_headers,$(dest-inc))
install-pc: kslab.pc.in install-dirs
	$(call cmd,install_pc,$(dest-lib)/pkgconfig/kslab.pc)
install-malloc: install-malloc-so install-malloc-pc
install-malloc-so: $(out)libkslab-malloc.so.0 install-dirs
	$(call cmd,install,755,$(dest-lib)/libkslab-malloc.so.0)
	$(call cmd,install_ln,libkslab-malloc.so.0,$(dest-lib)/libkslab-malloc.so)
install-malloc-pc: kslab-malloc.pc.in install-dirs
	$(call cmd,install_pc,$(dest-lib)/pkgconfig/kslab-malloc.pc)

# The files by name; include/kslab, kslab's own, once it is empty; then
# the directories install recorded on these paths, deepest first, each
# only if empty.  Records of other DESTDIRs and prefixes, and of
# directories still in use, are kept.
quiet_cmd_uninstall = UNINSTALL $(DESTDIR)$(PREFIX)
      cmd_uninstall = rm -f $(addprefix $(dest-lib)/,$(installed-libs)) \
			    $(addprefix $(dest-inc)/,$(installed-headers)); \
		      rmdir $(dest-inc) 2>/dev/null || true; \
		      if [ -f $(install-log) ]; then \
			tac $(install-log) | while read -r d; do \
				case "$(dest-lib)/pkgconfig/ $(dest-inc)/" in \
				"$$d/"* | *" $$d/"*) rmdir "$$d" 2>/dev/null || true ;; \
				esac; \
			done; \
			while read -r d; do [ ! -d "$$d" ] || echo "$$d"; done \
				< $(install-log) > $(install-log).new; \
			mv $(install-log).new $(install-log); \
			[ -s $(install-log) ] || rm -f $(install-log); \
		      fi

uninstall:
	$(call cmd,uninstall)

# ---------------------------------------------------------------------------
# Housekeeping

deps:
	$(Q)bash tools/kslab-deps.sh

quiet_cmd_clean = CLEAN   $(or $(O),.)
      cmd_clean = rm -f $(addprefix $(out),$(lib-files) .build-flags .build-flags-cxx .pc-check \
			$(progs) $(call prog-dep,$(progs))); \
		  find $(wildcard $(addprefix $(out),$(kbuild-dirs))) /dev/null \
			-type f \( -name '*.o' -o -name '*.d' \) -delete

clean:
	$(call cmd,clean)

distclean: clean
	$(Q)rm -rf $(wildcard build-*/) .cache

help:
	@sed -n '3,/^$$/s/^# \{0,1\}//p' Makefile

FORCE:

.PHONY: all lib selftests tools test check-pc check-symbols check-layers check-install run bench \
	lint install install-dirs install-a install-so install-headers install-pc \
	install-malloc install-malloc-so install-malloc-pc \
	uninstall deps clean distclean help FORCE
.DELETE_ON_ERROR:

endif # CURDIR == srctree
