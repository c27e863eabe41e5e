#!/bin/bash
# SPDX-License-Identifier: MIT
#
# redis_bench.sh: one redis-server process on one allocator, driven by
# redis-benchmark through a unix socket; prints one "result" line for
# run.sh (tools/bench/README, "Real programs").
#
# usage: redis_bench.sh --alloc=<name> [--preload=<so>] --test=<test> [--quick]
#
#   --alloc    the column the run belongs to: kslab, glibc, own (redis as
#              linked, no preload), jemalloc, mimalloc, tcmalloc
#   --preload  the shared object preloaded into redis-server only (never
#              into redis-benchmark or redis-cli); glibc's is libc.so.6
#              itself, which then comes before the libjemalloc.so.2 that
#              Debian's redis links in the symbol search order
#   --test     redis-lpush, redis-mix or redis-20k
#   --quick    small request counts
#
# The server listens on a unix socket in a fresh temporary directory and
# on no TCP port (--port 0), so it never meets another redis; it keeps
# nothing on disk (--save '' --appendonly no).  It is stopped by its PID,
# and the trap stops it on any exit, a timeout's SIGTERM included.
#
# Figures: the server's CPU time (utime + stime from /proc/PID/stat, after
# the workload minus before it, so start-up is left out) and its peak
# resident memory (VmHWM from /proc/PID/status, just before it is stopped).
#
# impl= names the allocator that really served the server, as far as it
# can be told: kslab when KSLAB_VERBOSE=1 made the server print kslab's
# option lines on its stderr; otherwise, for a jemalloc-built redis, the
# preloaded allocator when jemalloc's own count of allocated bytes
# (INFO memory, allocator_allocated) stayed below a tenth of redis's
# used_memory, and jemalloc when it did not.  mem_allocator is fixed when
# redis is built, so it says jemalloc whatever serves malloc().

set -u -o pipefail

alloc=
preload=
test=
quick=
for arg; do
	case $arg in
	--alloc=*)	alloc=${arg#--alloc=} ;;
	--preload=*)	preload=${arg#--preload=} ;;
	--test=*)	test=${arg#--test=} ;;
	--quick)	quick=1 ;;
	*)	echo "redis_bench: unknown argument $arg" >&2; exit 2 ;;
	esac
done
if [ -z "$alloc" ] || [ -z "$test" ]; then
	echo "usage: $0 --alloc=<name> [--preload=<so>] --test=<test> [--quick]" >&2
	exit 2
fi

# redis-benchmark's arguments and request count of each test: pipelined
# (-P) so that the server's work, not the round trips, dominates
case $test in
redis-lpush)
	requests=$([ -n "$quick" ] && echo 10000 || echo 100000)
	args=(-t "lpush,lrange_100,lrange_300" -d 64 -P 16) ;;
redis-mix)
	requests=$([ -n "$quick" ] && echo 20000 || echo 300000)
	args=(-t "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop" -r 100000
	      -d 64 -P 16) ;;
redis-20k)
	requests=$([ -n "$quick" ] && echo 5000 || echo 60000)
	args=(-t "set,get" -d 20000 -r 5000 -P 4) ;;
*)	echo "redis_bench: unknown test $test" >&2; exit 2 ;;
esac

for prog in redis-server redis-benchmark redis-cli; do
	if ! command -v "$prog" > /dev/null; then
		echo "redis_bench: $prog not found (Debian: redis-server, redis-tools)" >&2
		exit 2
	fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/kslab-redis.XXXXXX") || exit 2
sock=$dir/redis.sock
pid=

stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2> /dev/null
		wait "$pid" 2> /dev/null
		pid=
	fi
}
trap 'stop_server; rm -rf "$dir"' EXIT
trap 'exit 143' TERM INT HUP

# CPU time of process $1 in milliseconds: utime + stime, fields 14 and 15
# of /proc/PID/stat counted after the ")" that closes the command name
cpu_ms() {
	local stat rest
	stat=$(< "/proc/$1/stat") || return 1
	rest=${stat##*) }
	# shellcheck disable=SC2086 # the fields are meant to split
	set -- $rest
	echo $(( (${12} + ${13}) * 1000 / $(getconf CLK_TCK) ))
}

# field $1 of `redis-cli INFO memory`
info_field() {
	redis-cli -s "$sock" INFO memory | tr -d '\r' | sed -n "s/^$1://p"
}

env -u LD_PRELOAD KSLAB_VERBOSE=1 ${preload:+LD_PRELOAD=$preload} \
	redis-server --port 0 --bind 127.0.0.1 --unixsocket "$sock" \
	--save '' --appendonly no --daemonize no --dir "$dir" \
	--logfile "$dir/log" > "$dir/out" 2> "$dir/err" &
pid=$!

for _ in $(seq 100); do
	[ -S "$sock" ] && redis-cli -s "$sock" ping > /dev/null 2>&1 && break
	if ! kill -0 "$pid" 2> /dev/null; then
		break
	fi
	sleep 0.05
done
if ! redis-cli -s "$sock" ping > /dev/null 2>&1; then
	echo "redis_bench: redis-server did not start:" >&2
	tail -n 5 "$dir/err" "$dir/log" >&2
	exit 1
fi

cpu0=$(cpu_ms "$pid") || exit 1
t0=$(date +%s%N)
if ! redis-benchmark -s "$sock" -q -n "$requests" "${args[@]}" > "$dir/bench" 2>&1; then
	echo "redis_bench: redis-benchmark failed:" >&2
	tail -n 5 "$dir/bench" >&2
	exit 1
fi
t1=$(date +%s%N)
cpu1=$(cpu_ms "$pid") || exit 1
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
used=$(info_field used_memory)
jemalloc_allocated=$(info_field allocator_allocated)
mem_allocator=$(info_field mem_allocator)
stop_server

if grep -q '^kslab: option ' "$dir/err"; then
	impl=kslab
elif [ "${mem_allocator#jemalloc}" != "$mem_allocator" ]; then
	if [ "${jemalloc_allocated:-0}" -ge $(( ${used:-0} / 10 )) ]; then
		impl=jemalloc
	else
		impl=$alloc
	fi
else
	# not built with jemalloc: the preload cannot be told from the inside
	impl=$alloc
fi
[ "$alloc" = own ] && [ "$impl" = jemalloc ] && impl=own

# the sum of requests per second over redis-benchmark's tests, for
# context (client and server share the CPUs)
rps=$(tr '\r' '\n' < "$dir/bench" |
      awk '/requests per second/ { for (i = 1; i <= NF; i++) if ($i == "requests") s += $(i - 1) }
	   END { printf "%.0f", s }')
echo "result test=$test impl=$impl alloc=$alloc cpu_ms=$((cpu1 - cpu0))" \
     "peak_rss_mib=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" \
     "wall_ms=$(( (t1 - t0) / 1000000 )) requests=$requests"
echo "info test=$test alloc=$alloc mem_allocator=$mem_allocator" \
     "used_memory=$used jemalloc_allocated=$jemalloc_allocated rps_sum=$rps"
