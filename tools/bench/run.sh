#!/bin/bash
# SPDX-License-Identifier: MIT
#
# run.sh: compare kslab with glibc malloc and the peer allocators (on
# 64-byte objects, and as a general-purpose malloc), kslab's kfree_rcu()
# with liburcu's call_rcu() + free(), kslab's finalizers with Go's, and
# kslab's ordered workqueue with a naive one.
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
# The general-purpose tests (large-*, larson, prodcons, mixed-8t, realloc,
# huge) run malloc_bench, found beside the bench binary, the same way:
# kmalloc()/krealloc()/kfree() against every peer's malloc/realloc/free.
# They get a table of their own with kslab over the best peer per row and
# the geometric means of those ratios.
#
# The RCU tests (rcu-*) run rcu_bench, found beside the bench binary, the
# same way with two sides and no preload: kslab (kfree_rcu) and urcu
# (glibc malloc, call_rcu() with a callback that frees); they get a table
# of their own (tools/bench/README says what each row means).
#
# The finalizer tests (fin-*) run finalizer_bench (kslab) and
# finalizer_bench_go (Go's runtime.SetFinalizer, built by `make bench` when
# go is installed), the workqueue test (wq-ordered) runs wq_bench with
# --impl=kslab and --impl=naive; all are found beside the bench binary, a
# missing one is skipped with a message, and they share the table
# "Finalizers and workqueue".
#
# The real-program tests (redis-lpush, redis-mix, redis-20k, sqlite) run
# Debian's redis-server and sqlite3 on every allocator through
# redis_bench.sh and sqlite_bench.sh, found beside this script: kslab
# through LD_PRELOAD of libkslab-malloc.so (BENCH_KSLAB_MALLOC, default
# the one beside the bench binary's tools/), the peers through theirs, and
# for redis also "own", redis as linked.  They get the table "Real
# programs": CPU time and peak RSS of the server (sqlite3: of the process),
# kslab over the best peer and over the program's own allocator.  The
# sqlite output of every allocator must equal glibc's; a difference fails
# the run.
#
# The table sets each kslab figure beside its target; it reports and does
# not judge the build: the exit status is 0 even when a target is missed,
# and non-zero only when a bench process crashed, hung or printed no result.
#
# Environment:
#   QUICK=1        smoke run: fewer iterations, one round
#   ROUNDS=N       rounds (default 3, QUICK 1)
#   BENCH_TESTS    tests to run (default "hot batch kmalloc xthread memory
#                  large-16k large-64k large-256k large-1m large-16k-2t
#                  large-64k-2t large-256k-2t large-1m-2t larson prodcons
#                  mixed-8t realloc huge rcu-e2e rcu-gp rcu-load rcu-bound
#                  fin-set fin-drain wq-ordered redis-lpush redis-mix
#                  redis-20k sqlite")
#   BENCH_KSLAB_MALLOC  libkslab-malloc.so for the real programs (default
#                  libkslab-malloc.so.0 of the bench binary's build tree)
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
large_tests="large-16k large-64k large-256k large-1m large-16k-2t large-64k-2t large-256k-2t large-1m-2t"
workload_tests="larson prodcons mixed-8t realloc huge"
real_all="redis-lpush redis-mix redis-20k sqlite"
tests=${BENCH_TESTS:-hot batch kmalloc xthread memory $large_tests $workload_tests rcu-e2e rcu-gp rcu-load rcu-bound fin-set fin-drain wq-ordered $real_all}
malloc_bench=$(dirname "$bench")/malloc_bench
rcu_bench=$(dirname "$bench")/rcu_bench
fin_bench=$(dirname "$bench")/finalizer_bench
go_bench=$(dirname "$bench")/finalizer_bench_go
wq_bench=$(dirname "$bench")/wq_bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
redis_bench=$here/redis_bench.sh
sqlite_bench=$here/sqlite_bench.sh
kslab_malloc=${BENCH_KSLAB_MALLOC:-$(dirname "$bench")/../../libkslab-malloc.so.0}
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

# malloc_bench's arguments for a quick smoke run: large-* is bounded by
# time per repetition, a workload by its time cap
malloc_args() {
	[ -n "$quick" ] || return 0
	case $1 in
	large-*)	echo "--reps 1 --budget-ms 20" ;;
	*)		echo "--budget-ms 300" ;;
	esac
}

# rcu_bench's arguments for each RCU test
rcu_args() {
	case $1 in
	rcu-e2e)	echo "--test=e2e ${quick:+--iters 200000 --reps 2}" ;;
	rcu-gp)		echo "--test=gp ${quick:+--iters 5}" ;;
	rcu-load)	echo "--test=load ${quick:+--duration 0.5}" ;;
	rcu-bound)	echo "--test=load --duration $([ -n "$quick" ] && echo 0.5 || echo 1)" ;;
	esac
}

# the finalizer benches' arguments (the C and the Go program take the same)
fin_args() {
	echo "--test=${1#fin-} ${quick:+--iters 200000 --reps 2}"
}

# wq_bench's arguments
wq_args() {
	echo "${quick:+--iters 200000 --reps 2}"
}

# rcu-bound is the load test with a small back-pressure bound, so that the
# updaters reach it: it shows the bound holding, and what holding costs.
RCU_BOUND=16384

alloc_tests=
malloc_tests=
rcu_tests=
fin_tests=
wq_tests=
real_tests=
for test in $tests; do
	case $test in
	large-*|larson|prodcons|mixed-8t|realloc|huge)
		malloc_tests="$malloc_tests $test" ;;
	rcu-e2e|rcu-gp|rcu-load|rcu-bound)	rcu_tests="$rcu_tests $test" ;;
	rcu-*)	echo "run.sh: unknown RCU test $test" >&2; exit 2 ;;
	fin-set|fin-drain)	fin_tests="$fin_tests $test" ;;
	fin-*)	echo "run.sh: unknown finalizer test $test" >&2; exit 2 ;;
	wq-ordered)	wq_tests="$wq_tests $test" ;;
	wq-*)	echo "run.sh: unknown workqueue test $test" >&2; exit 2 ;;
	hot|batch|kmalloc|xthread|memory)	alloc_tests="$alloc_tests $test" ;;
	redis-lpush|redis-mix|redis-20k|sqlite)	real_tests="$real_tests $test" ;;
	redis-*)	echo "run.sh: unknown redis test $test" >&2; exit 2 ;;
	*)	echo "run.sh: unknown test $test (tools/bench/README lists them)" >&2; exit 2 ;;
	esac
done
if [ -n "$malloc_tests" ]; then
	if [ -x "$malloc_bench" ]; then
		known=$("$malloc_bench" --list | tr '\n' ' ')
		for test in $malloc_tests; do
			case " $known" in
			*" $test "*) ;;
			*)	echo "run.sh: unknown test $test; malloc_bench has: ${known% }" >&2
				exit 2 ;;
			esac
		done
	else
		echo "run.sh: skipping the general-purpose tests: $malloc_bench not found" >&2
		malloc_tests=
	fi
fi
if [ -n "$rcu_tests" ] && [ ! -x "$rcu_bench" ]; then
	echo "run.sh: skipping the RCU tests: $rcu_bench not found" >&2
	rcu_tests=
fi
# the finalizer tests: each side runs when its program is there
fin_sides=
fin_progs=()
nogo=
if [ -n "$fin_tests" ]; then
	if [ -x "$fin_bench" ]; then
		fin_sides=kslab
		fin_progs+=("$fin_bench")
	else
		echo "run.sh: skipping kslab's side of the finalizer tests: $fin_bench not found" >&2
	fi
	if [ -x "$go_bench" ]; then
		fin_sides="$fin_sides go"
		fin_progs+=("$go_bench")
	else
		echo "run.sh: skipping Go's side of the finalizer tests: $go_bench not found (make bench builds it when go is installed; Debian: golang-go)" >&2
		nogo=1
	fi
	[ -z "$fin_sides" ] && fin_tests=
fi
if [ -n "$wq_tests" ] && [ ! -x "$wq_bench" ]; then
	echo "run.sh: skipping the workqueue tests: $wq_bench not found" >&2
	wq_tests=
fi

# The real programs: each runs when it is installed and kslab's malloc
# replacement is built.  Their allocators: kslab, glibc, redis as linked
# ("own"), then the peers, but not the peer redis already links (the same
# allocator as "own"; its cells say "=own").  glibc's malloc comes first
# for redis by preloading libc.so.6 itself; sqlite3 uses it unpreloaded.
real_names=()
real_preloads=()
redis_links=
if [ -n "$real_tests" ]; then
	if [ ! -e "$kslab_malloc" ]; then
		echo "run.sh: skipping the real-program tests ($real_tests ): $kslab_malloc not found (make builds it; or set BENCH_KSLAB_MALLOC)" >&2
		real_tests=
	fi
	case $real_tests in
	*redis-*)
		if ! command -v redis-server > /dev/null || ! command -v redis-benchmark > /dev/null ||
		   ! command -v redis-cli > /dev/null; then
			echo "run.sh: skipping the redis tests: redis-server, redis-benchmark or redis-cli not found (Debian: redis-server, redis-tools; tools/kslab-deps.sh --bench)" >&2
			case "$real_tests " in
			*" sqlite "*)	real_tests=" sqlite" ;;
			*)	real_tests= ;;
			esac
		fi ;;
	esac
	case $real_tests in
	*sqlite*)
		if ! command -v sqlite3 > /dev/null || [ ! -x /usr/bin/time ]; then
			echo "run.sh: skipping sqlite: sqlite3 or /usr/bin/time not found (Debian: sqlite3, time)" >&2
			real_tests=${real_tests// sqlite/}
		fi ;;
	esac
	real_names=(kslab glibc)
	real_preloads=("$kslab_malloc" "")
	case $real_tests in
	*redis-*)
		real_names+=(own)
		real_preloads+=("")
		redis_links=$(ldd "$(command -v redis-server)" | awk '$2 == "=>" { print $3 }' |
			      xargs -r readlink -f) ;;
	esac
	for i in "${!names[@]}"; do
		[ "$i" -lt 2 ] && continue
		real_names+=("${names[$i]}")
		real_preloads+=("${preloads[$i]}")
	done
fi

errlog=$(mktemp)
trap 'rm -f "$errlog" "$errlog.out" "$errlog.sql"' EXIT
if [ -n "$real_tests" ] && [ "${real_tests#*sqlite}" != "$real_tests" ]; then
	bash "$here/sqlite_workload.sh" "$([ -n "$quick" ] && echo 10000 || echo 100000)" \
		> "$errlog.sql" || exit 2
fi

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

# run_one <name> <label> <env> <program> <args...>: one process, its result
# line (test= set to <label>) appended to $out.  <env> is a VAR=value for
# the process, or empty.
run_one() {
	local name=$1 label=$2 envset=$3 prog=$4 rc line info
	shift 4
	env -u LD_PRELOAD ${envset:+"$envset"} \
		timeout "$timeout_s" "$prog" "$@" > "$errlog.out" 2> "$errlog"
	rc=$?
	line=$(grep '^result ' "$errlog.out" | sed "s/ test=[^ ]*/ test=$label/")
	info=$(grep '^info ' "$errlog.out" | sed "s/ test=[^ ]*/ test=$label/")
	if [ $rc -ne 0 ] || [ -z "$line" ]; then
		printf ' %s:FAILED' "$name" >&2
		echo >&2
		echo "run.sh: $name $label exited with $rc:" >&2
		tail -n 5 "$errlog" >&2
		echo "# FAILED test=$label alloc=$name rc=$rc" >> "$out"
		failed=1
		return
	fi
	case $line in
	*" impl=$name "*) ;;
	*)
		echo >&2
		echo "run.sh: $name $label did not run on $name: $line" >&2
		wrong=1
		echo "# WRONG-ALLOCATOR expected=$name $line" >> "$out"
		return
		;;
	esac
	echo "$line" >> "$out"
	[ -n "$info" ] && echo "$info" >> "$out"
	printf ' %s' "$name" >&2
}

start=$(date +%s)
for ((round = 1; round <= rounds; round++)); do
	for test in $alloc_tests; do
		printf 'round %d/%d %-9s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(test_args "$test")"
		for i in "${!names[@]}"; do
			name=${names[$i]}
			alloc=malloc
			[ "$name" = kslab ] && alloc=kslab
			run_one "$name" "$test" \
				"${preloads[$i]:+LD_PRELOAD=${preloads[$i]}}" \
				"$bench" --alloc=$alloc --test="$test" "${args[@]}"
		done
		echo >&2
	done
	for test in $malloc_tests; do
		printf 'round %d/%d %-13s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(malloc_args "$test")"
		for i in "${!names[@]}"; do
			name=${names[$i]}
			alloc=malloc
			[ "$name" = kslab ] && alloc=kslab
			run_one "$name" "$test" \
				"${preloads[$i]:+LD_PRELOAD=${preloads[$i]}}" \
				"$malloc_bench" --alloc=$alloc --test="$test" "${args[@]}"
		done
		echo >&2
	done
	for test in $rcu_tests; do
		printf 'round %d/%d %-9s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(rcu_args "$test")"
		if [ "$test" = rcu-bound ]; then
			run_one kslab "$test" "KSLAB_RCU_MAX_PENDING=$RCU_BOUND" \
				"$rcu_bench" --alloc=kslab "${args[@]}"
		else
			for side in kslab urcu; do
				run_one "$side" "$test" "" "$rcu_bench" \
					--alloc=$side "${args[@]}"
			done
		fi
		echo >&2
	done
	for test in $fin_tests; do
		printf 'round %d/%d %-9s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(fin_args "$test")"
		i=0
		for side in $fin_sides; do
			run_one "$side" "$test" "" "${fin_progs[$i]}" "${args[@]}"
			i=$((i + 1))
		done
		echo >&2
	done
	for test in $wq_tests; do
		printf 'round %d/%d %-9s' "$round" "$rounds" "$test" >&2
		read -r -a args <<< "$(wq_args "$test")"
		for side in kslab naive; do
			run_one "$side" "$test" "" "$wq_bench" --impl=$side \
				"${args[@]}"
		done
		echo >&2
	done
	for test in $real_tests; do
		printf 'round %d/%d %-11s' "$round" "$rounds" "$test" >&2
		for i in "${!real_names[@]}"; do
			name=${real_names[$i]}
			so=${real_preloads[$i]}
			if [ "$test" = sqlite ]; then
				[ "$name" = own ] && continue
				run_one "$name" "$test" "" "$sqlite_bench" \
					--alloc="$name" ${so:+--preload="$so"} \
					--sql="$errlog.sql"
				continue
			fi
			[ "$name" = glibc ] && so=$(readlink -f "$libdir/libc.so.6")
			if [ "$name" != glibc ] && [ -n "$so" ] && printf '%s\n' "$redis_links" |
					  grep -qxF "$(readlink -f "$so")"; then
				printf ' %s:=own' "$name" >&2
				echo "# SAME-AS-OWN test=$test alloc=$name" >> "$out"
				continue
			fi
			run_one "$name" "$test" "" "$redis_bench" \
				--alloc="$name" ${so:+--preload="$so"} \
				--test="$test" ${quick:+--quick}
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
if [ -n "$alloc_tests" ]; then
	awk -v names="${names[*]}" -v tests="$alloc_tests" '
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
	[ -n "$malloc_tests$rcu_tests$fin_tests$wq_tests" ] && echo
fi

# The general-purpose table: the best process of each allocator (the
# lowest time and footprint, the highest throughput), kslab over the best
# peer on every row, and the geometric means of those ratios.
if [ -n "$malloc_tests" ]; then
	awk -v names="${names[*]}" -v tests="$malloc_tests" '
function field(key,    i) {
	for (i = 1; i <= NF; i++)
		if (index($i, key "=") == 1)
			return substr($i, length(key) + 2);
	return "";
}
# Keep v for row and impl if it beats the kept one; remember whether the
# process that gave it ran into its time cap.
function keep(row, impl, v, higher, capped,    k) {
	k = row SUBSEP impl;
	if (!(k in best) || (higher ? v > best[k] : v < best[k])) {
		best[k] = v;
		cap[k] = capped;
	}
}
# Three significant digits or more, so that microseconds and hundreds of
# thousands of nanoseconds both fit a column.
function num(v) {
	return sprintf(v >= 10000 ? "%.0f" : v >= 100 ? "%.1f" : "%.2f", v);
}
function times(r) {
	return sprintf(r >= 100 ? "%.0fx" : r >= 10 ? "%.1fx" : "%.2fx", r);
}
function line(row, unit, cells, bp, ratio) {
	printf "%-13s %-9s%s  %-9s %10s\n", row, unit, cells, bp, ratio;
}
BEGIN {
	# the figure of each workload: field, scale, unit, higher is better
	metric["larson"] = "ops_per_sec";	scale["larson"] = 1e-6;
	unit["larson"] = "Mops/s";		higher["larson"] = 1;
	metric["prodcons"] = "objs_per_sec";	scale["prodcons"] = 1e-6;
	unit["prodcons"] = "Mobj/s";		higher["prodcons"] = 1;
	metric["mixed-8t"] = "ops_per_sec";	scale["mixed-8t"] = 1e-6;
	unit["mixed-8t"] = "Mops/s";		higher["mixed-8t"] = 1;
	metric["realloc"] = "us_per_buf";	scale["realloc"] = 1;
	unit["realloc"] = "us/buf";		higher["realloc"] = 0;
	metric["huge"] = "us_per_block";	scale["huge"] = 1;
	unit["huge"] = "us/block";		higher["huge"] = 0;
	nt = split(tests, tl, " ");
	for (i = 1; i <= nt; i++)
		wanted[tl[i]] = 1;
}
/^result / {
	t = field("test"); impl = field("impl");
	if (!(t in wanted))
		next;
	if (t ~ /^large-/) {
		keep(t, impl, field("ns_per_op") + 0, 0, 0);
		next;
	}
	c = field("capped") == 1;
	keep(t, impl, field(metric[t]) * scale[t], higher[t], c);
	keep(t "-rss", impl, field("peak_rss_mib") + 0, 0, c);
}
/^# FAILED / { crashed[field("test") SUBSEP field("alloc")] = 1 }
/^# WRONG-ALLOCATOR / { wrong[field("test") SUBSEP field("expected")] = 1 }
END {
	n = split(names, alloc, " ");
	nrows = 0;
	for (i = 1; i <= nt; i++) {
		t = tl[i];
		rows[++nrows] = t;
		src[t] = t;
		if (t ~ /^large-/) {
			unit[t] = "ns/pair";
			kind[t] = "large";
			continue;
		}
		kind[t] = "work";
		rows[++nrows] = t "-rss";
		src[t "-rss"] = t;
		unit[t "-rss"] = "MiB peak";
		higher[t "-rss"] = 0;
		kind[t "-rss"] = "rss";
	}

	print "General-purpose allocation: kmalloc/krealloc/kfree against malloc/realloc/free";
	cells = "";
	for (a = 1; a <= n; a++)
		cells = cells sprintf(" %10s", alloc[a]);
	line("test", "unit", cells, "best-peer", "kslab/best");

	for (r = 1; r <= nrows; r++) {
		row = rows[r];
		bp = ""; bv = 0; cells = "";
		for (a = 1; a <= n; a++) {
			k = row SUBSEP alloc[a];
			if (!(k in best)) {
				k = src[row] SUBSEP alloc[a];
				cells = cells sprintf(" %10s", (k in crashed) ? "crash" : \
						      (k in wrong) ? "wrong" : "-");
				continue;
			}
			cells = cells sprintf(" %10s", num(best[k]) (cap[k] ? "*" : ""));
			if (a == 1)
				continue;
			if (bp == "" || (higher[row] ? best[k] > bv : best[k] < bv)) {
				bp = alloc[a]; bv = best[k];
			}
		}
		k = row SUBSEP "kslab";
		ratio = "-";
		if ((k in best) && bp != "" && bv > 0 && best[k] > 0) {
			ratio = times(best[k] / bv);
			# for the means, every ratio says how many times the
			# time or the memory kslab takes
			slow = higher[row] ? bv / best[k] : best[k] / bv;
			logsum[kind[row]] += log(slow);
			count[kind[row]]++;
		}
		line(row, unit[row], cells, bp == "" ? "-" : bp, ratio);
	}
	split("large work rss", kinds, " ");
	split("time time memory", what, " ");
	for (i = 1; i <= 3; i++) {
		g = kinds[i];
		if (!count[g])
			continue;
		cells = "";
		for (a = 1; a <= n; a++)
			cells = cells sprintf(" %10s", "");
		line("geomean-" g, what[i], cells, count[g] " rows",
		     times(exp(logsum[g] / count[g])));
	}
}' "$out"

	echo
	echo "large-*: ns per pair of one block allocated, one byte written per 4 KiB page,"
	echo "freed; -2t: two threads at once, ns per pair of each.  larson: slots replaced"
	echo "per second, 4 threads, objects handed over; prodcons: objects per second made"
	echo "on 2 threads and freed on 2 others; mixed-8t: replacements per second, 8"
	echo "threads, 8 B..256 KiB; realloc: us per buffer grown from 16 B to 4 MiB;"
	echo "huge: us per 5..25 MiB block; -rss: the process's peak resident MiB."
	echo "kslab/best: kslab's figure over the best peer's (for Mops/s and Mobj/s above"
	echo "1.0 is more throughput); geomean: the geometric mean of kslab's time (or"
	echo "memory) over the best peer's, so above 1.0 is slower or bigger; *: the"
	echo "process hit its time cap, the figure is from the part it did."
	[ -n "$rcu_tests$fin_tests$wq_tests" ] && echo
fi

# The RCU table.  Timings keep the best process (e2e, and the gp median);
# what a bound must hold for keeps the worst: the gp maximum and first
# sample, and for load and bound every figure comes from the process with
# the highest peak of objects waiting.
if [ -n "$rcu_tests" ]; then
	awk -v tests="$rcu_tests" '
function field(key,    i) {
	for (i = 1; i <= NF; i++)
		if (index($i, key "=") == 1)
			return substr($i, length(key) + 2);
	return "";
}
function keep(key, v, higher) {
	if (!(key in best) || (higher ? v > best[key] : v < best[key]))
		best[key] = v;
}
function missing(t, s) {
	return (t SUBSEP s) in crashed ? "crash" : "-";
}
# One cell: metric m of side s in test t; fmt "ms" shows 1 s as "stuck".
function cell(t, m, s, fmt,    k) {
	k = m SUBSEP s;
	if (!(k in best))
		return missing(t, s);
	if (fmt == "ms")
		return best[k] >= 1000 ? "stuck" : sprintf("%.2f", best[k]);
	return sprintf(fmt, best[k]);
}
function verdict(t, have, pass) {
	if (have)
		return pass ? "PASS" : "MISS";
	return (t SUBSEP "kslab") in crashed ? "CRASH" : "n/a";
}
function row(name, unit, k, u, g, target, v) {
	printf "%-10s %-8s %10s %10s %10s  %-20s %s\n", name, unit, k, u,
	       g, target, v;
}
# urcu over kslab for metric m (times: how many times cheaper kslab is)
function gain(m,    k, u) {
	k = m SUBSEP "kslab"; u = m SUBSEP "urcu";
	return (k in best) && (u in best) && best[k] > 0 ? \
	       sprintf("%.2fx", best[u] / best[k]) : "-";
}
/^result test=rcu-/ {
	t = substr(field("test"), 5); s = field("alloc");
	if (t == "e2e") {
		keep("e2e" SUBSEP s, field("ns_per_obj") + 0, 0);
		keep("call" SUBSEP s, field("call_ns") + 0, 0);
	} else if (t == "gp") {
		keep("gpfirst" SUBSEP s, field("first_ms") + 0, 1);
		keep("gpmed" SUBSEP s, field("median_ms") + 0, 0);
		keep("gpmax" SUBSEP s, field("max_ms") + 0, 1);
		best["stuck" SUBSEP s] += field("stuck");
		if (s == "urcu") {
			keep("syncmed" SUBSEP s, field("sync_median_ms") + 0, 0);
			keep("syncmax" SUBSEP s, field("sync_max_ms") + 0, 1);
		}
	} else {
		peak = field(s == "kslab" ? "peak_pending" : "sampled_peak") + 0;
		k = t SUBSEP s;
		if (!(k in worst) || peak > worst[k]) {
			worst[k] = peak;
			line[k] = $0;
		}
	}
}
/^# FAILED test=rcu-/ { crashed[substr(field("test"), 5) SUBSEP field("alloc")] = 1 }
# The value of field f in the worst process of side s in load test t.
function lf(t, s, f) {
	if (!((t SUBSEP s) in line))
		return t == "bound" && s == "urcu" ? "-" : missing(t, s);
	$0 = line[t SUBSEP s];
	return field(f);
}
function load_rows(t,    have_k, have_u, ko, uo, limit, ok) {
	have_k = (t SUBSEP "kslab") in line;
	have_u = (t SUBSEP "urcu") in line;
	ko = have_k ? lf(t, "kslab", "ops_per_sec") / 1e6 : 0;
	uo = have_u ? lf(t, "urcu", "ops_per_sec") / 1e6 : 0;
	row(t, "Mupd/s", have_k ? sprintf("%.2f", ko) : missing(t, "kslab"),
	    have_u ? sprintf("%.2f", uo) : lf(t, "urcu", ""),
	    have_k && have_u && uo > 0 ? sprintf("%.2fx", ko / uo) : "-", "",
	    have_k || have_u ? "" : verdict(t, 0, 0));
	if (!have_k && !have_u)
		return;
	# a freeing thread hands at most one batch (4 KiB of pointers) over
	# past the bound before it is held back
	limit = lf(t, "kslab", "max_pending") + lf(t, "kslab", "updaters") * 512;
	row(t "-peak", "objects", lf(t, "kslab", "peak_pending"),
	    lf(t, "urcu", "sampled_peak"), "",
	    have_k ? sprintf("<= %d+%dx512", lf(t, "kslab", "max_pending"),
			     lf(t, "kslab", "updaters")) : "",
	    verdict(t, have_k, lf(t, "kslab", "peak_pending") + 0 <= limit));
	row(t "-peak", "MiB", lf(t, "kslab", "peak_pending_mib"),
	    lf(t, "urcu", "sampled_peak_mib"), "", "", "");
	row(t "-rss", "MiB", lf(t, "kslab", "rss_peak_mib"),
	    lf(t, "urcu", "rss_peak_mib"), "", "", "");
	row(t "-thr", "times", lf(t, "kslab", "throttled"), "-", "", "", "");
	row(t "-gps", "count", lf(t, "kslab", "grace_periods"), "-", "", "", "");
	ok = (!have_k || lf(t, "kslab", "bad_reads") == 0) &&
	     (!have_u || lf(t, "urcu", "bad_reads") == 0);
	row(t "-bad", "reads", lf(t, "kslab", "bad_reads"),
	    lf(t, "urcu", "bad_reads"), "", "0", verdict(t, 1, ok));
}
END {
	print "RCU reclaim, 64-byte objects: kfree_rcu() against malloc + call_rcu(free), urcu-memb";
	row("test", "unit", "kslab", "urcu", "gain", "target", "verdict");
	if (index(tests, "rcu-e2e")) {
		row("e2e", "ns/obj", cell("e2e", "e2e", "kslab", "%.2f"),
		    cell("e2e", "e2e", "urcu", "%.2f"), gain("e2e"), ">= 8x fewer ns",
		    gain("e2e") == "-" ? verdict("e2e", 0, 0) : \
		    verdict("e2e", 1, best["e2e" SUBSEP "urcu"] >= 8 * best["e2e" SUBSEP "kslab"]));
		row("free-call", "ns/call", cell("e2e", "call", "kslab", "%.2f"),
		    cell("e2e", "call", "urcu", "%.2f"), gain("call"), "<= 15 ns",
		    verdict("e2e", ("call" SUBSEP "kslab") in best, best["call" SUBSEP "kslab"] <= 15));
	}
	if (index(tests, "rcu-gp")) {
		gp = ("syncmax" SUBSEP "urcu") in best ? best["syncmax" SUBSEP "urcu"] : 0;
		tgt = sprintf("<= %.2f (GP+20ms)", gp + 20);
		have = ("gpmax" SUBSEP "kslab") in best;
		row("gp-first", "ms", cell("gp", "gpfirst", "kslab", "ms"),
		    cell("gp", "gpfirst", "urcu", "ms"), "", tgt,
		    verdict("gp", have, best["gpfirst" SUBSEP "kslab"] <= gp + 20));
		row("gp-median", "ms", cell("gp", "gpmed", "kslab", "ms"),
		    cell("gp", "gpmed", "urcu", "ms"), "", "", "");
		row("gp-max", "ms", cell("gp", "gpmax", "kslab", "ms"),
		    cell("gp", "gpmax", "urcu", "ms"), "", tgt,
		    verdict("gp", have, best["gpmax" SUBSEP "kslab"] <= gp + 20));
		row("gp-stuck", "samples", cell("gp", "stuck", "kslab", "%d"),
		    cell("gp", "stuck", "urcu", "%d"), "", "0",
		    verdict("gp", have, best["stuck" SUBSEP "kslab"] == 0));
		row("sync-med", "ms", "-", cell("gp", "syncmed", "urcu", "%.3f"), "", "", "");
		row("sync-max", "ms", "-", cell("gp", "syncmax", "urcu", "%.3f"), "", "", "");
	}
	if (index(tests, "rcu-load"))
		load_rows("load");
	if (index(tests, "rcu-bound"))
		load_rows("bound");
}' "$out"

	echo
	echo "e2e: ns per object from the first free to the barrier's return (allocation"
	echo "not timed); free-call: the loop of free calls alone; gain: how many times"
	echo "better kslab does (ns: urcu/kslab; updates per second: kslab/urcu)."
	echo "gp: one free in an idle program until reclaimed; first: the first one of the"
	echo "process; stuck: not reclaimed within 1 s (first included); sync: bare"
	echo "synchronize_rcu(), GP in the target is its worst."
	echo "load: updaters replace and RCU-free objects under a reader; -peak: most"
	echo "objects waiting (kslab: peak_pending, urcu: sampled); -rss: resident peak"
	echo "over the start; bound: kslab alone with KSLAB_RCU_MAX_PENDING=$RCU_BOUND."
	[ -n "$fin_tests$wq_tests" ] && echo
fi

# The finalizer and workqueue table: the best process of each side (the
# fewest ns per object, the most items per second).
if [ -n "$fin_tests$wq_tests" ]; then
	awk -v tests="$fin_tests $wq_tests" -v nogo="$nogo" '
function field(key,    i) {
	for (i = 1; i <= NF; i++)
		if (index($i, key "=") == 1)
			return substr($i, length(key) + 2);
	return "";
}
function keep(key, v, higher) {
	if (!(key in best) || (higher ? v > best[key] : v < best[key]))
		best[key] = v;
}
function row(name, unit, k, p, g, target, v) {
	printf "%-10s %-8s %10s %14s %9s  %-20s %s\n", name, unit, k, p, g,
	       target, v;
}
# The kslab cell, and the peer cell: the figure and the name of the peer.
function kcell(t, m, fmt,    k) {
	k = t SUBSEP m SUBSEP "kslab";
	if (k in best)
		return sprintf(fmt, best[k]);
	return (t SUBSEP "kslab") in crashed ? "crash" : "-";
}
function pcell(t, m, peer, fmt,    k) {
	k = t SUBSEP m SUBSEP peer;
	if (k in best)
		return sprintf(fmt " %s", best[k], peer);
	if ((t SUBSEP peer) in crashed)
		return "crash " peer;
	return peer == "go" && nogo ? "no go" : "- " peer;
}
# gain: how many times better kslab does; ok: whether it meets "need".
function judge(t, m, peer, higher, need,    k, p) {
	k = t SUBSEP m SUBSEP "kslab"; p = t SUBSEP m SUBSEP peer;
	gain = "-";
	if ((k in best) && (p in best) && best[k] > 0 && best[p] > 0)
		gain = sprintf("%.2fx", higher ? best[k] / best[p] : best[p] / best[k]);
	if (!(k in best))
		return (t SUBSEP "kslab") in crashed ? "CRASH" : "n/a";
	if (need == "")
		return "";
	if (gain == "-")
		return "n/a";
	return (higher ? best[k] / best[p] : best[p] / best[k]) >= need ? "PASS" : "MISS";
}
/^result test=fin-/ {
	keep(field("test") SUBSEP "ns" SUBSEP field("alloc"), field("ns_per_obj") + 0, 0);
}
/^result test=wq-/ {
	t = field("test"); s = field("alloc"); v = field("items_per_s") / 1e6;
	if (!((t SUBSEP "items" SUBSEP s) in best) || v > best[t SUBSEP "items" SUBSEP s]) {
		best[t SUBSEP "items" SUBSEP s] = v;
		best[t SUBSEP "ns" SUBSEP s] = field("ns_per_item") + 0;
	}
}
/^info test=fin-.* alloc=go / { gover = field("go_version") }
/^# FAILED test=(fin|wq)-/ { crashed[field("test") SUBSEP field("alloc")] = 1 }
END {
	printf "Finalizers and workqueue: kmem_set_finalizer() against runtime.SetFinalizer%s,\n",
	       gover == "" ? "" : " (" gover ")";
	print "64-byte objects; the ordered workqueue against the naive one";
	row("test", "unit", "kslab", "peer", "gain", "target", "verdict");
	if (index(tests, "fin-set")) {
		v = judge("fin-set", "ns", "go", 0, 10);
		row("fin-set", "ns/obj", kcell("fin-set", "ns", "%.2f"),
		    pcell("fin-set", "ns", "go", "%.2f"), gain,
		    ">= 10x fewer ns", v);
	}
	if (index(tests, "fin-drain")) {
		v = judge("fin-drain", "ns", "go", 0, 2);
		row("fin-drain", "ns/obj", kcell("fin-drain", "ns", "%.2f"),
		    pcell("fin-drain", "ns", "go", "%.2f"), gain,
		    ">= 2x fewer ns", v);
	}
	if (index(tests, "wq-ordered")) {
		k = "wq-ordered" SUBSEP "items" SUBSEP "kslab";
		v = judge("wq-ordered", "items", "naive", 1, "");
		if (v == "")
			v = best[k] >= 15 ? "PASS" : "MISS";
		row("wq-ordered", "Mitem/s", kcell("wq-ordered", "items", "%.2f"),
		    pcell("wq-ordered", "items", "naive", "%.2f"), gain,
		    ">= 15 Mitem/s", v);
		judge("wq-ordered", "ns", "naive", 0, "");
		row("wq-ordered", "ns/item", kcell("wq-ordered", "ns", "%.2f"),
		    pcell("wq-ordered", "ns", "naive", "%.2f"), gain, "", "");
	}
}' "$out"

	echo
	echo "fin-set: ns per object of allocate + set a finalizer (Go: new + SetFinalizer);"
	echo "fin-drain: ns per object from the first free (Go: dropping the last"
	echo "reference) to every finalizer having run; gain: how many times better kslab"
	echo "does (ns: go/kslab, items per second: kslab/naive)."
	echo "wq-ordered: items per second through an ordered workqueue, kslab against naive."
fi

# The real-program table: the lowest CPU time and the lowest peak RSS of
# each allocator over the rounds, kslab over the best of the others and
# over the program's own allocator (redis: as linked; sqlite3: glibc).  An
# sqlite output that differs from glibc's is a failure.
mismatch=0
if [ -n "$real_tests" ]; then
	[ -n "$alloc_tests$malloc_tests$rcu_tests$fin_tests$wq_tests" ] && echo
	awk -v names="${real_names[*]}" -v tests="$real_tests" '
function field(key,    i) {
	for (i = 1; i <= NF; i++)
		if (index($i, key "=") == 1)
			return substr($i, length(key) + 2);
	return "";
}
function keep(k, v) {
	if (!(k in best) || v < best[k])
		best[k] = v;
}
function times(r) {
	return sprintf(r >= 10 ? "%.1fx" : "%.2fx", r);
}
/^result test=(redis-|sqlite)/ {
	t = field("test"); a = field("alloc");
	keep(t "-cpu" SUBSEP a, field("cpu_ms") + 0);
	keep(t "-rss" SUBSEP a, field("peak_rss_mib") + 0);
	if (t == "sqlite")
		sha[a] = sha[a] " " field("out_sha");
}
/^# FAILED test=(redis-|sqlite)/ { crashed[field("test") SUBSEP field("alloc")] = 1 }
/^# WRONG-ALLOCATOR / {
	split(field("expected"), e, " ");
	$0 = substr($0, index($0, "result "));
	wrong[field("test") SUBSEP e[1]] = 1;
}
/^# SAME-AS-OWN / { same[field("test") SUBSEP field("alloc")] = 1 }
END {
	n = split(names, alloc, " ");
	print "Real programs: redis-server (CPU time and peak RSS of the server) and sqlite3";
	print "(of the process), the best process of each allocator";
	printf "%-17s %-4s", "test", "unit";
	for (a = 1; a <= n; a++)
		printf " %9s", alloc[a];
	printf "  %-9s %10s %10s\n", "best-peer", "kslab/best", "kslab/own";
	nt = split(tests, tl, " ");
	for (i = 1; i <= nt; i++) {
		t = tl[i];
		ownname = t == "sqlite" ? "glibc" : "own";
		for (m = 1; m <= 2; m++) {
			row = t (m == 1 ? "-cpu" : "-rss");
			printf "%-17s %-4s", row, m == 1 ? "ms" : "MiB";
			bp = ""; bv = 0;
			for (a = 1; a <= n; a++) {
				k = row SUBSEP alloc[a];
				if (k in best) {
					printf " %9s", m == 1 ? sprintf("%d", best[k]) : sprintf("%.1f", best[k]);
					if (a > 1 && (bp == "" || best[k] < bv)) {
						bp = alloc[a]; bv = best[k];
					}
					continue;
				}
				c = t SUBSEP alloc[a];
				printf " %9s", (c in crashed) ? "crash" : (c in wrong) ? "wrong" : \
				       (c in same) ? "=own" : (t == "sqlite" && alloc[a] == "own") ? "=glibc" : "-";
			}
			k = row SUBSEP "kslab"; o = row SUBSEP ownname;
			r1 = (k in best) && bv > 0 ? times(best[k] / bv) : "-";
			r2 = (k in best) && (o in best) && best[o] > 0 ? times(best[k] / best[o]) : "-";
			printf "  %-9s %10s %10s\n", bp == "" ? "-" : bp, r1, r2;
		}
	}
	bad = 0;
	if (index(tests, "sqlite")) {
		ref = "glibc" in sha ? sha["glibc"] : "";
		for (a = 1; a <= n; a++) {
			if (!(alloc[a] in sha))
				continue;
			split(sha[alloc[a]], s, " ");
			if (ref == "") {
				ref = " " s[1];
			}
			split(ref, r, " ");
			for (j in s)
				if (s[j] != r[1]) {
					printf "sqlite: FAILED: the output under %s differs from glibc'"'"'s\n", alloc[a];
					bad = 1;
					break;
				}
		}
		if (!bad)
			print "sqlite: the output is the same under every allocator";
	}
	exit bad ? 3 : 0;
}' "$out" || mismatch=1

	echo
	echo "-cpu: the server's CPU time (user + system) during the workload (sqlite3: the"
	echo "whole process); -rss: peak resident MiB (VmHWM; sqlite3: GNU time's maximum"
	echo "RSS).  own: redis as Debian links it (jemalloc 5.3, libjemalloc.so.2), whose"
	echo "malloc() the preloads replace; =own: that peer is redis's own allocator."
	echo "kslab/best: kslab over the best other allocator, below 1.0 is less;"
	echo "kslab/own: kslab over the program's own (redis: own; sqlite3: glibc)."
fi

if [ $mismatch -ne 0 ]; then
	echo "run.sh: sqlite's output differed between allocators" >&2
	failed=1
fi
if [ $wrong -ne 0 ]; then
	echo "run.sh: some preloads did not take; those cells say \"wrong\"" >&2
fi
if [ $failed -ne 0 ]; then
	echo "run.sh: some bench processes failed (see above)" >&2
	exit 1
fi
exit 0
