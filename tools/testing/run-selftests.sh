#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-selftests.sh - run kselftest binaries and total their results.
#
# Usage: tools/testing/run-selftests.sh BINARY...
#
# Each binary's TAP output is passed through, indented with "# ", followed
# by "ok N selftests: NAME" or "not ok ...".  The totals come from each
# harness's "# Totals: pass:P fail:F xfail:XF xpass:XP skip:S error:E" line
# (xfail counts as passed; xpass and error as failed).  A binary without
# that line counts as one test: failed if it exited non-zero, and so does a
# binary that exits non-zero after reporting no failure (for instance a
# sanitizer's report at exit).  The last line is
#   selftests: N passed, M failed, K skipped
# and the exit status is non-zero when M > 0.
#
# Environment: KSLAB_TEST_TIMEOUT, seconds per binary (default 300).
set -uo pipefail

timeout_s=${KSLAB_TEST_TIMEOUT:-300}
KSFT_SKIP=4

# Stop at the first sanitizer report; a user's own settings come last and win.
# TSan's deadlock detector follows at most 64 locks held by one thread and
# aborts beyond; fork() holds every lock of kslab (one per cache, one per
# large size class: the order at the top of mm/lifecycle.c), so it is off.
# Races are still reported.
export TSAN_OPTIONS="halt_on_error=1:detect_deadlocks=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

passed=0
failed=0
skipped=0
num=0

# Run $1 with its output in a log file of its own, $log, shown as it
# comes; sets $rc.  The output goes through a file, not a pipe: a test
# child left behind by a timeout would otherwise hold the pipe open.  The
# file is new and empty before tail opens it, so tail never sees a
# previous suite's lines nor a truncation, and a child left behind by an
# earlier suite writes into that suite's file, not this one.
run_one()
{
	local pid

	log="$logdir/$num.log"
	: >"$log"
	# The subshell's stderr only takes bash's "Aborted" notice for a
	# binary killed by a signal: the result line reports it.
	(timeout -k 10 "$timeout_s" "$1" </dev/null >>"$log" 2>&1; exit $?) 2>/dev/null &
	pid=$!
	tail -s 0.2 -n +1 -f --pid="$pid" "$log" | sed 's/^/# /'
	wait "$pid"
	rc=$?
}

echo "TAP version 13"
echo "1..$#"
for bin in "$@"; do
	num=$((num + 1))
	name=${bin##*/}
	echo "# selftest: $name"
	if [ ! -x "$bin" ]; then
		echo "not ok $num selftests: $name # not built"
		failed=$((failed + 1))
		continue
	fi
	run_one "$bin"

	bad=0
	directive=
	totals=$(sed -n 's/^# Totals: pass:\([0-9]*\) fail:\([0-9]*\) xfail:\([0-9]*\) xpass:\([0-9]*\) skip:\([0-9]*\) error:\([0-9]*\).*/\1 \2 \3 \4 \5 \6/p' "$log" | tail -n 1)
	if [ -n "$totals" ]; then
		read -r pass fail xfail xpass skip error <<<"$totals"
		passed=$((passed + pass + xfail))
		failed=$((failed + fail + xpass + error))
		skipped=$((skipped + skip))
		[ $((fail + xpass + error)) -eq 0 ] || bad=1
		if [ $bad -eq 0 ] && [ $rc -ne 0 ] && [ $rc -ne $KSFT_SKIP ]; then
			failed=$((failed + 1))
			bad=1
			directive=" # exit status $rc after the totals"
		fi
	else
		case $rc in
		0) passed=$((passed + 1)) ;;
		"$KSFT_SKIP") skipped=$((skipped + 1)); directive=" # SKIP" ;;
		*) failed=$((failed + 1)); bad=1; directive=" # exit status $rc, no totals" ;;
		esac
	fi
	if [ $rc -eq 124 ]; then
		directive=" # TIMEOUT after ${timeout_s}s"
	elif [ $rc -gt 128 ]; then
		directive=" # killed by signal $((rc - 128))"
	fi
	if [ $bad -eq 0 ]; then
		echo "ok $num selftests: $name$directive"
	else
		echo "not ok $num selftests: $name$directive"
	fi
done

echo "selftests: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
