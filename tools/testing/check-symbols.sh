#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-symbols.sh LIBKSLAB.A LIBKSLAB.SO INCLUDE_DIR [MALLOC.SO MALLOC.O...]
#
# kslab's namespace: every global symbol the archive defines is either
# public API (a name declared in a public header) or carries the kslab_ or
# __kslab_ prefix (mm/slab_names.h maps the allocator's internal names),
# and the shared library exports public API only.  The malloc replacement
# (mm/malloc.c): its objects define the C library's allocation functions
# and kslab_-prefixed names only, and libkslab-malloc.so exports exactly
# those functions, nothing of kslab's.  Prints each offender and exits 1;
# prints one summary line and exits 0 otherwise.
set -euo pipefail

archive=$1
shared=$2
include=$3
malloc_so=${4:-}
malloc_objs=("${@:5}")

malloc_family=(malloc free calloc realloc reallocarray posix_memalign
	       aligned_alloc memalign valloc pvalloc malloc_usable_size)
MALLOC_FAMILY=" ${malloc_family[*]} "

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

if [ ${#malloc_objs[@]} -gt 0 ]; then
	while read -r sym; do
		case $sym in
		kslab_* | __kslab_*) continue ;;
		esac
		case "$MALLOC_FAMILY" in *" $sym "*) continue ;; esac
		echo "check-symbols: ${malloc_objs[*]} define '$sym': neither a malloc function nor kslab_-prefixed" >&2
		bad=1
	done < <(nm -g --defined-only "${malloc_objs[@]}" | awk 'NF == 3 { print $3 }' |
		 sed 's/^__odr_asan\.//' | sort -u)
fi

if [ -n "$malloc_so" ]; then
	exported=$(nm -D --defined-only "$malloc_so" | awk 'NF == 3 { print $3 }' | sort -u)
	for sym in $exported; do
		case "$MALLOC_FAMILY" in *" $sym "*) continue ;; esac
		echo "check-symbols: $malloc_so exports '$sym', which is not a malloc function (libkslab-malloc.map)" >&2
		bad=1
	done
	for sym in "${malloc_family[@]}"; do
		grep -qx -- "$sym" <<<"$exported" ||
			{ echo "check-symbols: $malloc_so does not export '$sym'" >&2; bad=1; }
	done
fi

[ "$bad" = 0 ] || exit 1
echo "check-symbols: $n global symbols in $(basename "$archive"), all public API or kslab_-prefixed${malloc_so:+; $(basename "$malloc_so") exports the ${#malloc_family[@]} malloc functions only}"
