#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-layers.sh LIBKSLAB.A [OBJECT...]
#
# kslab's layers (the picture at the top of mm/slab_common.c): calls run
# from a higher layer to a lower one, never back, with two named kinds of
# exception:
#
#   - the hooks: the generic layer (slab_common.o) runs the features only
#     through slab_free_hook(), slab_post_alloc_hook() and the cache-level
#     hooks, whose targets are listed in hooks below;
#   - the lifecycle: any layer may make sure kslab is started and that
#     its thread is registered (lifecycle below); lifecycle.o itself
#     drives every layer's init, fork and exit steps.
#
# The edges are read from the archive: a member that leaves a symbol
# undefined calls (or reads) the member that defines it.  Prints each
# edge that breaks the rule and exits 1; prints a summary and exits 0
# otherwise.  Each OBJECT (the malloc replacement's, linked into
# libkslab-malloc.so beside the archive's members) is checked as one more
# member; the archive's calls to malloc(), free() and the rest are calls
# into the C library, whichever object serves them, not edges to it.
set -euo pipefail

archive=$1
shift
if [ $# -gt 0 ]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	cp "$archive" "$work/all.a"
	ar qc "$work/all.a" "$@"
	members=$work/all.a
else
	members=$archive
fi

# layer of each member, highest first; equal layers are one module
declare -A layer=(
	[malloc.o]=10
	[lifecycle.o]=9
	[finalizer.o]=8 [finalizer_queue.o]=8
	[kfree_rcu.o]=7
	[slab_common.o]=6
	[slub.o]=5
	[page_alloc.o]=4
	[pagemap.o]=3 [report.o]=3
	[workqueue.o]=2
	[options.o]=1 [symbolize.o]=1
)

hooks=(__kslab_finalizer_free_hook __kslab_finalizer_free_flush
       __kslab_finalizer_cache_destroy __kslab_slab_rcu_barrier
       __kslab_slab_rcu_pending __kslab_rcu_retire_slabs)
lifecycle=(kslab_init kslab_thread_register kslab_self kslab_threads
	   kslab_threads_lock)
libc_malloc=(malloc free calloc realloc reallocarray posix_memalign
	     aligned_alloc memalign valloc pvalloc malloc_usable_size)
HOOKS=" ${hooks[*]} "
LIBC_MALLOC=" ${libc_malloc[*]} "
LIFECYCLE=" ${lifecycle[*]} "

declare -A owner
while read -r member sym; do
	owner[$sym]=$member
done < <(nm -A -g --defined-only "$members" 2>/dev/null |
	 awk '{ split($1, a, ":"); print a[2], $NF }')

bad=0
edges=0
declare -A seen
while read -r member sym; do
	to=${owner[$sym]:-}
	[ -n "$to" ] && [ "$to" != "$member" ] || continue
	case "$LIBC_MALLOC" in *" $sym "*) continue ;; esac
	from_l=${layer[$member]:-}
	to_l=${layer[$to]:-}
	if [ -z "$from_l" ] || [ -z "$to_l" ]; then
		echo "check-layers: no layer for ${from_l:+$to}${from_l:-$member} (add it to tools/testing/check-layers.sh)" >&2
		bad=1
		continue
	fi
	key="$member $to"
	[ -n "${seen[$key]:-}" ] || { seen[$key]=1; edges=$((edges + 1)); }
	[ "$from_l" -ge "$to_l" ] && continue
	case "$LIFECYCLE" in *" $sym "*) [ "$to" = lifecycle.o ] && continue ;; esac
	case "$HOOKS" in *" $sym "*) [ "$member" = slab_common.o ] && continue ;; esac
	echo "check-layers: ${member%.o} calls up into ${to%.o}: $sym" >&2
	bad=1
done < <(nm -A -u "$members" 2>/dev/null |
	 awk '{ split($1, a, ":"); print a[2], $NF }' | sort -u)

[ "$bad" = 0 ] || exit 1
echo "check-layers: $edges edges between $(basename "$archive")'s members${1:+ and $*}, all downward, hooks or lifecycle"
