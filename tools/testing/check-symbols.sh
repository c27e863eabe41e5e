#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-symbols.sh LIBKSLAB.A LIBKSLAB.SO INCLUDE_DIR
#
# kslab's namespace: every global symbol the archive defines is either
# public API (a name declared in a public header) or carries the kslab_ or
# __kslab_ prefix (mm/slab_names.h maps the allocator's internal names),
# and the shared library exports public API only.  Prints each offender
# and exits 1; prints one summary line and exits 0 otherwise.
set -euo pipefail

archive=$1
shared=$2
include=$3

public_name()
{
	grep -qw -- "$1" "$include"/kslab/*.h
}

bad=0
n=0
while read -r sym; do
	n=$((n + 1))
	# ASan's one-definition-rule markers stand for the variable they name
	sym=${sym#__odr_asan.}
	case $sym in
	kslab_* | __kslab_*) continue ;;
	esac
	if ! public_name "$sym"; then
		echo "check-symbols: $archive defines '$sym': neither public API nor kslab_-prefixed (add it to mm/slab_names.h or make it static)" >&2
		bad=1
	fi
done < <(nm -g --defined-only "$archive" | awk 'NF == 3 { print $3 }' | sort -u)

while read -r sym; do
	sym=${sym#__odr_asan.}
	if ! public_name "$sym"; then
		echo "check-symbols: $shared exports '$sym', which no public header declares (libkslab.map, visibility)" >&2
		bad=1
	fi
done < <(nm -D --defined-only "$shared" | awk 'NF == 3 { print $3 }' | sort -u)

[ "$bad" = 0 ] || exit 1
echo "check-symbols: $n global symbols in $(basename "$archive"), all public API or kslab_-prefixed"
