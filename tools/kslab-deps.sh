#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# kslab-deps.sh - install what building and testing kslab needs.
#
# Usage: tools/kslab-deps.sh [--bench]
#
# 1. Checks the Debian packages the project needs and installs the missing
#    ones (as root: apt-get update + apt-get install; otherwise prints the
#    command to run and exits 1).  --bench adds the peer allocators and Go
#    that tools/bench compares against.
# 2. Extracts the few files kslab uses from the kernel source package
#    (kselftest harness, checkpatch) into .cache/linux-6.1/ of the source
#    tree, once.  Every build directory (O=, build-<sanitizer>) shares it.
#
# Environment: KSLAB_EXTRA_PACKAGES adds package names to check (handy to
# exercise the install path).
set -euo pipefail

srctree=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kernel_tarball=/usr/src/linux-source-6.1.tar.xz
kernel_prefix=linux-source-6.1
cache=$srctree/.cache/linux-6.1
cache_files=(
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
)

# g++ and clang's clang++ build the C++ selftest of the public headers;
# libdw-dev: elfutils' libdw, which lib/symbolize.c names code addresses with
# python3, xz-utils, sqlite3, git: the real programs malloc_test runs under
# libkslab-malloc.so
packages=(gcc g++ make pkg-config liburcu-dev libdw-dev linux-source-6.1 cppcheck clang
	  python3 xz-utils sqlite3 git)
# --bench: the peer allocators, Go (finalizer bench), and the real programs
# tools/bench/run.sh runs on every allocator: redis (server, benchmark and
# cli) and GNU time, which measures sqlite3
bench_packages=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev golang-go
		redis-server redis-tools time)

usage()
{
	echo "usage: $0 [--bench]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--bench) packages+=("${bench_packages[@]}") ;;
	-h|--help) usage ;;
	*) echo "kslab-deps: unknown option '$1'" >&2; usage ;;
	esac
	shift
done
# shellcheck disable=SC2206 # word splitting of the list is intended
packages+=(${KSLAB_EXTRA_PACKAGES:-})

is_installed()
{
	[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

install_missing()
{
	local missing=() pkg

	for pkg in "${packages[@]}"; do
		is_installed "$pkg" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0

	if [ "$(id -u)" -ne 0 ]; then
		echo "kslab: missing packages; run: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "kslab: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
}

cache_complete()
{
	local f

	for f in "${cache_files[@]}"; do
		[ -f "$cache/$f" ] || return 1
	done
}

# Unpacking means decompressing the whole tarball (about ten seconds), so do
# it once, into a temporary directory renamed into place: an interrupted or
# concurrent run never leaves a half-filled cache behind.
extract_kernel_files()
{
	cache_complete && return 0
	mkdir -p "$(dirname "$cache")"
	tmp=$(mktemp -d "$cache.tmp.XXXXXX")	# global: the trap runs at exit
	trap 'rm -rf "$tmp"' EXIT
	echo "kslab: extracting kselftest harness and checkpatch from $kernel_tarball" >&2
	tar -xJf "$kernel_tarball" -C "$tmp" --strip-components=1 \
		"${cache_files[@]/#/$kernel_prefix/}"
	# A stale, incomplete cache (from an older list of files) is replaced.
	if [ -d "$cache" ] && ! cache_complete; then
		rm -rf "$cache"
	fi
	# Losing a race with a concurrent run is fine: its copy is just as good.
	mv -T "$tmp" "$cache" 2>/dev/null || cache_complete
}

install_missing
extract_kernel_files
