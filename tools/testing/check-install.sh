#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-install.sh - make install and make uninstall into a staging
# directory, the check-install step of make test.
#
# Usage: tools/testing/check-install.sh MAKE CC PKG_CONFIG, from the
# source tree: the make that runs install and uninstall (MAKEFLAGS carry
# O= and SANITIZE= down to it), the compiler with the build's sanitizer
# flags, and pkg-config.  Arguments, not environment variables: make would
# take CC from the environment and rebuild with it.
#
# Three rounds, each into a fresh DESTDIR with PREFIX=/usr/local:
#  1. an empty staging root: install puts every file in place, the
#     installed kslab.pc has no rpath, a program built with it links
#     against libkslab.so, carries no RPATH/RUNPATH and runs with
#     LD_LIBRARY_PATH; the malloc replacement is installed with its
#     kslab-malloc.pc, whose preload variable names it: a program linked
#     with it through pkg-config gets its malloc() from it, and a system
#     program runs under LD_PRELOAD of it (both skipped in a sanitizer
#     build, whose runtime must come first in a process); uninstall
#     leaves the root as empty as it was, the directories install
#     created gone with the files;
#  2. a prefix whose include/ already exists, empty, and whose lib/ holds
#     a file of someone else's: after uninstall both are still there and
#     nothing else is;
#  3. a file of the user's put in include/kslab: uninstall leaves it, and
#     its directories, and removes everything else of kslab's; once the
#     file is gone, a second uninstall removes those directories too.
set -euo pipefail

make=${1:-make}
cc=${2:-cc}
pkg_config=${3:-pkg-config}
prefix=/usr/local

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail()
{
	echo "check-install: $*" >&2
	exit 1
}

# Everything under $1, one relative path a line.
snapshot()
{
	(cd "$1" && find . | LC_ALL=C sort)
}

same_tree()
{
	local what=$1 before=$2 after

	after=$(snapshot "$stage")
	if [ "$before" != "$after" ]; then
		diff <(echo "$before") <(echo "$after") | sed 's/^/check-install:   /' >&2
		fail "make uninstall: $what (< before make install, > after make uninstall)"
	fi
}

new_stage()
{
	stage=$work/stage$1
	root=$stage$prefix
	mkdir "$stage"
}

install_into()
{
	$make -s install DESTDIR="$stage" PREFIX="$prefix" >/dev/null ||
		fail "make install DESTDIR=$stage failed"
}

uninstall_from()
{
	$make -s uninstall DESTDIR="$stage" PREFIX="$prefix" >/dev/null ||
		fail "make uninstall DESTDIR=$stage failed"
}

check_installed_files()
{
	local f

	for f in lib/libkslab.a lib/libkslab.so.0 lib/libkslab.so \
		 lib/pkgconfig/kslab.pc include/kslab/kslab.h include/kslab/slab.h \
		 lib/libkslab-malloc.so.0 lib/libkslab-malloc.so \
		 lib/pkgconfig/kslab-malloc.pc; do
		[ -e "$root/$f" ] || fail "make install did not install $prefix/$f"
	done
}

# A program built as users build theirs, with the installed kslab.pc.
check_installed_pc()
{
	local pc=$root/lib/pkgconfig/kslab.pc flags prog=$work/prog

	if grep -n -e '-rpath' -e 'RPATH' "$pc" >&2; then
		fail "the installed kslab.pc forces an rpath"
	fi
	flags=$(PKG_CONFIG_PATH=$root/lib/pkgconfig \
		$pkg_config --define-variable=prefix="$root" --cflags --libs kslab) ||
		fail "pkg-config cannot read the installed kslab.pc"
	printf '%s\n' '#include <kslab/kslab.h>' '' 'int main(void)' '{' \
		'	void *p = kmalloc(16, GFP_KERNEL);' '' '	kfree(p);' \
		'	return p == NULL;' '}' |
		$cc -x c - $flags -o "$prog" ||
		fail "a program does not build with the installed kslab.pc: $flags"
	if readelf -d "$prog" | grep -E 'RPATH|RUNPATH' >&2; then
		fail "a program built with the installed kslab.pc carries an rpath"
	fi
	readelf -d "$prog" | grep -q 'NEEDED.*libkslab\.so\.0' ||
		fail "a program built with the installed kslab.pc does not use libkslab.so.0"
	LD_LIBRARY_PATH=$root/lib "$prog" ||
		fail "a program built with the installed kslab.pc does not run"
	rm -f "$prog"
}

# The malloc replacement, as kslab-malloc.pc has it: linked, and preloaded.
check_installed_malloc()
{
	local pc=$root/lib/pkgconfig/kslab-malloc.pc flags preload prog=$work/prog

	if grep -n -e '-rpath' -e 'RPATH' "$pc" >&2; then
		fail "the installed kslab-malloc.pc forces an rpath"
	fi
	preload=$(PKG_CONFIG_PATH=$root/lib/pkgconfig \
		  $pkg_config --define-variable=prefix="$root" --variable=preload kslab-malloc) ||
		fail "pkg-config cannot read the installed kslab-malloc.pc"
	[ -e "$preload" ] || fail "kslab-malloc.pc's preload variable names $preload, which is not installed"
	flags=$(PKG_CONFIG_PATH=$root/lib/pkgconfig \
		$pkg_config --define-variable=prefix="$root" --cflags --libs kslab-malloc)
	case $cc in
	*-fsanitize=*) return 0 ;;
	esac
	# kmalloc-16 serves malloc(1): glibc's smallest chunk holds 24 bytes
	printf '%s\n' '#include <malloc.h>' '#include <stdlib.h>' '' 'int main(void)' '{' \
		'	void *p = malloc(1);' '	size_t n = malloc_usable_size(p);' '' \
		'	free(p);' '	return n != 16;' '}' |
		$cc -x c - $flags -o "$prog" ||
		fail "a program does not build with the installed kslab-malloc.pc: $flags"
	readelf -d "$prog" | grep -q 'NEEDED.*libkslab-malloc\.so\.0' ||
		fail "a program built with the installed kslab-malloc.pc does not use libkslab-malloc.so.0"
	LD_LIBRARY_PATH=$root/lib "$prog" ||
		fail "a program linked with the installed libkslab-malloc.so does not get kslab's malloc()"
	[ "$(LD_PRELOAD=$preload sh -c 'echo preloaded')" = preloaded ] ||
		fail "sh does not run under LD_PRELOAD=$preload"
	rm -f "$prog"
}

# 1. An empty staging root.
new_stage 1
before=$(snapshot "$stage")
install_into
check_installed_files
check_installed_pc
check_installed_malloc
uninstall_from
same_tree "it did not remove exactly what make install created" "$before"

# 2. Directories and files that were there before.
new_stage 2
mkdir -p "$root/include" "$root/lib"
echo 'not kslab' >"$root/lib/other.txt"
before=$(snapshot "$stage")
install_into
uninstall_from
same_tree "it removed what was there before make install, or left kslab's" "$before"

# 3. The user's own file in include/kslab.
new_stage 3
before=$(snapshot "$stage")
install_into
echo '/* mine */' >"$root/include/kslab/mine.h"
uninstall_from
left=$(cd "$stage" && find . -type f -o -type l)
[ "$left" = ".$prefix/include/kslab/mine.h" ] ||
	fail "make uninstall beside a file of the user's in include/kslab left:" $left
[ ! -e "$root/lib" ] || fail "make uninstall left $prefix/lib, which make install created"
# Once the file is gone, uninstall removes the directories it kept for it.
rm "$root/include/kslab/mine.h"
uninstall_from
same_tree "a second run did not remove the directories make install created" "$before"
