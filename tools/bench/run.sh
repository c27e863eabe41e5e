#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh: compare kslab with glibc malloc and the peer allocators.
#
# usage: tools/bench/run.sh <path-to-bench-binary>
#
# Every measurement is a separate process of the bench binary, one test and
# one allocator each.  The peers run "--alloc=malloc" with their shared
# object in LD_PRELOAD (glibc: no preload).  Allocators alternate process by
# process (kslab, glibc, jemalloc, mimalloc, tcmalloc, kslab, ...) for
# ROUNDS rounds, so a burst of load on the machine hits all of them alike,
# and the best figure of each allocator is kept: the lowest time and
# footprint, the highest throughput.  Every ratio compares figures of this
# one run.  A peer whose shared object is missing is skipped, and the table
# says so.
#
# The table sets each kslab figure beside its target; it reports and does
# not judge the build: the exit status is 0 even when a target is missed,
# and non-zero only when a bench process crashed, hung or printed no result.
#
# Environment:
#   QUICK=1        smoke run: fewer iterations, one round
#   ROUNDS=N       rounds (default 3, QUICK 1)
#   BENCH_TESTS    tests to run (default "hot batch kmalloc xthread memory")
#   BENCH_OUT      raw result lines (default results-<date>.txt beside the
#                  bench binary)
#   BENCH_LIBDIR   where the peers' shared objects are
#                  (default /usr/lib/<arch>-linux-gnu)
#   BENCH_TIMEOUT  seconds before one bench process counts as hung (300)

set -u -o pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 <path-to-bench-binary>" >&2
	exit 2
fi
bench=$1

quick=${QUICK:-0}
[ "$quick" = 0 ] && quick=
rounds=${ROUNDS:-$([ -n "$quick" ] && echo 1 || echo 3)}
tests=${BENCH_TESTS:-hot batch kmalloc xthread memory}
libdir=${BENCH_LIBDIR:-/usr/lib/$(uname -m)-linux-gnu}
timeout_s=${BENCH_TIMEOUT:-300}
out=${BENCH_OUT:-$(dirname "$bench")/results-$(date +%Y%m%d-%H%M%S).txt}

# name and preloaded object of every allocator, kslab first
names=(kslab glibc)
preloads=("" "")
skipped=
for peer in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 \
	    tcmalloc:libtcmalloc_minimal.so.4; do
	name=${peer%%:*}
	so=$libdir/${peer#*:}
	if [ -e "$so" ]; then
		names+=("$name")
		preloads+=("$so")
	else
		echo "run.sh: skipping $name: $so not found" >&2
		skipped="$skipped $name"
	fi
done

# per-test iteration arguments for a quick smoke run
test_args() {
	[ -n "$quick" ] || return 0
	case $1 in
	hot|kmalloc)	echo "--iters 5000000 --reps 2" ;;
	batch)		echo "--iters 200000 --reps 2" ;;
	xthread)	echo "--iters 1000000 --reps 2" ;;
	memory)		echo "--iters 1000000" ;;
	esac
}

errlog=$(mktemp)
trap 'rm -f "$errlog" "$errlog.out"' EXIT

cpus=$(nproc)
read -r load _ < /proc/loadavg
if awk -v l="$load" -v c="$cpus" 'BEGIN { exit !(l > c / 2) }'; then
	echo "run.sh: load average $load on $cpus CPUs: the figures will be noisy" >&2
fi
[ "$cpus" -lt 2 ] && echo "run.sh: one CPU: xthread is not cross-core" >&2

{
	echo "# kslab bench $(date -u +%Y-%m-%dT%H:%M:%SZ) rounds=$rounds quick=${quick:-0}"
	echo "# host $(uname -srm), $cpus cpus, load average $load at start"
} > "$out" || exit 2

failed=0
wrong=0
start=$(date +%s)
for ((round = 1; round <= rounds; round++)); do
	for test in $tests; do
		printf 'round %d/%d %-8s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(test_args "$test")"
		for i in "${!names[@]}"; do
			name=${names[$i]}
			alloc=malloc
			[ "$name" = kslab ] && alloc=kslab
			env -u LD_PRELOAD ${preloads[$i]:+LD_PRELOAD=${preloads[$i]}} \
				timeout "$timeout_s" "$bench" --alloc=$alloc \
				--test="$test" "${args[@]}" \
				> "$errlog.out" 2> "$errlog"
			rc=$?
			line=$(grep '^result ' "$errlog.out")
			info=$(grep '^info ' "$errlog.out")
			if [ $rc -ne 0 ] || [ -z "$line" ]; then
				printf ' %s:FAILED' "$name" >&2
				echo >&2
				echo "run.sh: $name $test exited with $rc:" >&2
				tail -n 5 "$errlog" >&2
				echo "# FAILED test=$test alloc=$name rc=$rc" >> "$out"
				failed=1
				continue
			fi
			case $line in
			*" impl=$name "*) ;;
			*)
				echo >&2
				echo "run.sh: $name $test did not run on $name: $line" >&2
				wrong=1
				echo "# WRONG-ALLOCATOR expected=$name $line" >> "$out"
				continue
				;;
			esac
			echo "$line" >> "$out"
			[ -n "$info" ] && echo "$info" >> "$out"
			printf ' %s' "$name" >&2
		done
		echo >&2
	done
done
rm -f "$errlog.out"
elapsed=$(( $(date +%s) - start ))

echo
echo "kslab bench: $rounds round(s), best of each, ${elapsed}s, load average $load at start"
echo "raw lines: $out"
[ -n "$skipped" ] && echo "skipped (shared object not found):$skipped"
echo

# Fold the raw lines into one table: best figure per test and allocator.
awk -v names="${names[*]}" -v tests="$tests" '
function field(key,    i, kv) {
	for (i = 1; i <= NF; i++)
		if (index($i, key "=") == 1)
			return substr($i, length(key) + 2);
	return "";
}
function keep(row, impl, v, higher,    k) {
	k = row SUBSEP impl;
	if (!(k in best) || (higher ? v > best[k] : v < best[k]))
		best[k] = v;
}
/^result / {
	t = field("test"); impl = field("impl");
	if (t == "xthread") {
		keep("xthread", impl, field("ops_per_sec") / 1e6, 1);
	} else if (t == "memory") {
		keep("memory", impl, field("overhead_pct") + 0, 0);
		keep("mem-free", impl, field("after_free_mib") + 0, 0);
	} else {
		keep(t, impl, field("ns_per_op") + 0, 0);
	}
}
/^# FAILED / { crashed[field("test") SUBSEP field("alloc")] = 1 }
/^# WRONG-ALLOCATOR / { wrong[field("test") SUBSEP field("expected")] = 1 }
END {
	n = split(names, alloc, " ");
	unit["hot"] = "ns/pair";	target["hot"] = 0.7;
	unit["batch"] = "ns/obj";	target["batch"] = 1.0;
	unit["kmalloc"] = "ns/pair";	target["kmalloc"] = 1.0;
	unit["xthread"] = "Mobj/s";	target["xthread"] = 1.0;
	unit["memory"] = "% over";	target["memory"] = 3;
	unit["mem-free"] = "MiB left";	target["mem-free"] = 16;

	nt = split(tests, tl, " ");
	nrows = 0;
	for (i = 1; i <= nt; i++) {
		rows[++nrows] = tl[i];
		if (tl[i] == "memory")
			rows[++nrows] = "mem-free";
	}

	printf "%-9s %-9s", "test", "unit";
	for (a = 1; a <= n; a++)
		printf " %9s", alloc[a];
	printf "  %-9s %10s  %-14s %s\n", "best-peer", "kslab/best", "target", "verdict";

	for (r = 1; r <= nrows; r++) {
		row = rows[r]; src = row == "mem-free" ? "memory" : row;
		higher = row == "xthread";
		absolute = row == "memory" || row == "mem-free";
		printf "%-9s %-9s", row, unit[row];
		bp = ""; bv = 0;
		for (a = 1; a <= n; a++) {
			k = row SUBSEP alloc[a];
			if (!(k in best)) {
				k = src SUBSEP alloc[a];
				printf " %9s", (k in crashed) ? "crash" : (k in wrong) ? "wrong" : "-";
				continue;
			}
			printf " %9.2f", best[k];
			if (a == 1)
				continue;
			if (bp == "" || (higher ? best[k] > bv : best[k] < bv)) {
				bp = alloc[a]; bv = best[k];
			}
		}
		k = row SUBSEP "kslab";
		have = k in best;
		ratio = "-";
		if (have && bp != "" && !absolute && bv > 0)
			ratio = sprintf("%.2fx", best[k] / bv);
		if (row == "xthread")
			tgt = sprintf(">= %.1fx", target[row]);
		else if (row == "memory")
			tgt = sprintf("<= %g%%", target[row]);
		else if (row == "mem-free")
			tgt = sprintf("<= %g MiB", target[row]);
		else
			tgt = sprintf("<= %.1fx", target[row]);

		if (!have)
			verdict = ((src SUBSEP "kslab") in crashed) ? "CRASH" : "n/a";
		else if (absolute)
			verdict = best[k] <= target[row] ? "PASS" : "MISS";
		else if (ratio == "-")
			verdict = "n/a";
		else if (higher)
			verdict = best[k] / bv >= target[row] ? "PASS" : "MISS";
		else
			verdict = best[k] / bv <= target[row] ? "PASS" : "MISS";
		printf "  %-9s %10s  %-14s %s\n", bp == "" ? "-" : bp, ratio, tgt, verdict;
	}
}' "$out"

echo
echo "hot/kmalloc: ns per alloc+free pair; batch: ns per object (alloc + free);"
echo "xthread: million objects per second moved producer -> consumer;"
echo "memory: resident growth over N*64 bytes with N objects live;"
echo "mem-free: resident MiB above the start after freeing all and shrinking."

if [ $wrong -ne 0 ]; then
	echo "run.sh: some preloads did not take; those cells say \"wrong\"" >&2
fi
if [ $failed -ne 0 ]; then
	echo "run.sh: some bench processes failed (see above)" >&2
	exit 1
fi
exit 0
