#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sqlite_bench.sh: Debian's sqlite3 CLI on one allocator, running the SQL
# script of sqlite_workload.sh on an in-memory database; prints one
# "result" line for run.sh (tools/bench/README, "Real programs").
#
# usage: sqlite_bench.sh --alloc=<name> [--preload=<so>] --sql=<file>
#
# The preload goes to sqlite3 only.  GNU time (/usr/bin/time, Debian's
# time) measures the process: wall and CPU time (user + system) and peak
# resident memory.  out_sha= is the SHA-256 of sqlite3's output, which
# run.sh compares with glibc's: every allocator must give the same.
# impl= is kslab only when KSLAB_VERBOSE=1 made sqlite3 print kslab's
# option lines on its stderr; for the peers it is the name given.

set -u -o pipefail

alloc=
preload=
sql=
for arg; do
	case $arg in
	--alloc=*)	alloc=${arg#--alloc=} ;;
	--preload=*)	preload=${arg#--preload=} ;;
	--sql=*)	sql=${arg#--sql=} ;;
	*)	echo "sqlite_bench: unknown argument $arg" >&2; exit 2 ;;
	esac
done
if [ -z "$alloc" ] || [ ! -r "$sql" ]; then
	echo "usage: $0 --alloc=<name> [--preload=<so>] --sql=<file>" >&2
	exit 2
fi
for prog in sqlite3 /usr/bin/time; do
	if ! command -v "$prog" > /dev/null; then
		echo "sqlite_bench: $prog not found (Debian: sqlite3, time)" >&2
		exit 2
	fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/kslab-sqlite.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT

/usr/bin/time -f 'time %e %U %S %M' -o "$dir/time" \
	env -u LD_PRELOAD KSLAB_VERBOSE=1 ${preload:+LD_PRELOAD=$preload} \
	sqlite3 -bail :memory: < "$sql" > "$dir/out" 2> "$dir/err"
rc=$?
if [ $rc -ne 0 ]; then
	echo "sqlite_bench: sqlite3 exited with $rc:" >&2
	tail -n 5 "$dir/err" >&2
	exit 1
fi
if grep -v '^kslab: option ' "$dir/err" | grep -q .; then
	echo "sqlite_bench: sqlite3 wrote to stderr:" >&2
	grep -v '^kslab: option ' "$dir/err" | tail -n 5 >&2
	exit 1
fi

impl=$alloc
if [ "$alloc" = kslab ] && ! grep -q '^kslab: option ' "$dir/err"; then
	impl=unknown
fi
read -r _ wall user sys maxrss < "$dir/time"
sha=$(sha256sum < "$dir/out")
echo "result test=sqlite impl=$impl alloc=$alloc" \
     "$(awk -v w="$wall" -v u="$user" -v s="$sys" -v m="$maxrss" \
	'BEGIN { printf "cpu_ms=%.0f wall_ms=%.0f peak_rss_mib=%.1f", (u + s) * 1000, w * 1000, m / 1024 }')" \
     "lines=$(wc -l < "$dir/out") out_sha=${sha%% *}"
