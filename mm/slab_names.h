/* SPDX-License-Identifier: MIT */
/*
 * The link names of the allocator's internal functions and variables.
 *
 * Inside mm/ the code keeps the kernel's names (__kmem_cache_create(),
 * slab_free_hook(), slab_mutex, ...), which is what a reader who knows
 * mm/slub.c looks for.  In libkslab.a and libkslab.so every global symbol
 * is public API or carries the __kslab_ prefix, so a program that links
 * kslab statically never collides with them: each internal name below is
 * mapped to its prefixed link name, as liburcu maps rcu_read_lock() to
 * its flavor's urcu_memb_read_lock().  `make test` checks the archive
 * (tools/testing/check-symbols.sh): a new global without the prefix or a
 * line here fails it.
 */
#ifndef _KSLAB_MM_SLAB_NAMES_H
#define _KSLAB_MM_SLAB_NAMES_H

#define __kmem_cache_create	__kslab_kmem_cache_create
#define __kmem_cache_decay	__kslab_kmem_cache_decay
#define __kmem_cache_fork_lock	__kslab_kmem_cache_fork_lock
#define __kmem_cache_fork_unlock	__kslab_kmem_cache_fork_unlock
#define __kmem_cache_get_info	__kslab_kmem_cache_get_info
#define __kmem_cache_release	__kslab_kmem_cache_release
#define __kmem_cache_shrink	__kslab_kmem_cache_shrink
#define __kmem_cache_shutdown	__kslab_kmem_cache_shutdown
#define __slab_alloc	__kslab_slab_alloc
#define __slab_alloc_large	__kslab_slab_alloc_large
#define __slab_decay_ms	__kslab_slab_decay_ms
#define __slab_free	__kslab_slab_free
#define __slab_free_large	__kslab_slab_free_large
#define __slab_meta_decay	__kslab_slab_meta_decay
#define __slab_meta_shrink	__kslab_slab_meta_shrink
#define __slab_thread_release	__kslab_slab_thread_release
#define __slab_unmap_retired	__kslab_slab_unmap_retired
#define fin_dying_objects	__kslab_fin_dying_objects
#define fin_lock	__kslab_fin_lock
#define fin_objects_fork_child	__kslab_fin_objects_fork_child
#define fin_objects_fork_parent	__kslab_fin_objects_fork_parent
#define fin_objects_fork_prepare	__kslab_fin_objects_fork_prepare
#define fin_queue_collection	__kslab_fin_queue_collection
#define fin_ready	__kslab_fin_ready
#define fin_ref_finalizer	__kslab_fin_ref_finalizer
#define fin_slot_reset	__kslab_fin_slot_reset
#define fin_stats	__kslab_fin_stats
#define fin_take_cleanups	__kslab_fin_take_cleanups
#define finalizer_atfork_child	__kslab_finalizer_atfork_child
#define finalizer_atfork_parent	__kslab_finalizer_atfork_parent
#define finalizer_atfork_prepare	__kslab_finalizer_atfork_prepare
#define finalizer_cache_destroy	__kslab_finalizer_cache_destroy
#define finalizer_exit	__kslab_finalizer_exit
#define finalizer_free_flush	__kslab_finalizer_free_flush
#define finalizer_free_hook	__kslab_finalizer_free_hook
#define finalizer_init	__kslab_finalizer_init
#define finalizer_thread_exit	__kslab_finalizer_thread_exit
#define finalizer_thread_gone	__kslab_finalizer_thread_gone
#define kmalloc_aligned	__kslab_kmalloc_aligned
#define kvfree_rcu_barrier_until	__kslab_kvfree_rcu_barrier_until
#define __slab_realloc_large	__kslab_slab_realloc_large
#define page_alloc_free_bytes	__kslab_page_alloc_free_bytes
#define page_alloc_trim	__kslab_page_alloc_trim
#define page_alloc_init	__kslab_page_alloc_init
#define page_alloc_fork_prepare	__kslab_page_alloc_fork_prepare
#define page_alloc_fork_parent	__kslab_page_alloc_fork_parent
#define page_alloc_decay	__kslab_page_alloc_decay
#define page_alloc_fork_child	__kslab_page_alloc_fork_child
#define pagemap_fork_child	__kslab_pagemap_fork_child
#define pagemap_fork_parent	__kslab_pagemap_fork_parent
#define pagemap_fork_prepare	__kslab_pagemap_fork_prepare
#define pagemap_register	__kslab_pagemap_register
#define pagemap_root	__kslab_pagemap_root
#define pagemap_unregister	__kslab_pagemap_unregister
#define rcu_atfork_child_inner	__kslab_rcu_atfork_child_inner
#define rcu_atfork_child_outer	__kslab_rcu_atfork_child_outer
#define rcu_atfork_parent_inner	__kslab_rcu_atfork_parent_inner
#define rcu_atfork_parent_outer	__kslab_rcu_atfork_parent_outer
#define rcu_atfork_prepare_inner	__kslab_rcu_atfork_prepare_inner
#define rcu_atfork_prepare_outer	__kslab_rcu_atfork_prepare_outer
#define rcu_init	__kslab_rcu_init
#define rcu_inside_read_section	__kslab_rcu_inside_read_section
#define rcu_retire_slabs	__kslab_rcu_retire_slabs
#define rcu_thread_exit	__kslab_rcu_thread_exit
#define rcu_thread_gone	__kslab_rcu_thread_gone
#define slab_alloc_slow	__kslab_slab_alloc_slow
#define slab_bug	__kslab_slab_bug
#define slab_caches	__kslab_slab_caches
#define slab_caches_init	__kslab_slab_caches_init
#define slab_fork_child	__kslab_slab_fork_child
#define slab_fork_parent	__kslab_slab_fork_parent
#define slab_fork_prepare	__kslab_slab_fork_prepare
#define slab_free_after_gp	__kslab_slab_free_after_gp
#define slab_free_deferred	__kslab_slab_free_deferred
#define slab_free_hook_rcu	__kslab_slab_free_hook_rcu
#define slab_free_slow	__kslab_slab_free_slow
#define slab_free_unhooked	__kslab_slab_free_unhooked
#define slab_init	__kslab_slab_init
#define slab_map	__kslab_slab_map
#define slab_mark_cache_hooked	__kslab_slab_mark_cache_hooked
#define slab_meta_alloc	__kslab_slab_meta_alloc
#define slab_meta_caches	__kslab_slab_meta_caches
#define slab_meta_fork_child	__kslab_slab_meta_fork_child
#define slab_meta_fork_parent	__kslab_slab_meta_fork_parent
#define slab_meta_fork_prepare	__kslab_slab_meta_fork_prepare
#define slab_meta_free	__kslab_slab_meta_free
#define slab_meta_zalloc	__kslab_slab_meta_zalloc
#define slab_mutex	__kslab_slab_mutex
#define slab_next_decay_ms	__kslab_slab_next_decay_ms
#define slab_rcu_barrier	__kslab_slab_rcu_barrier
#define slab_rcu_pending	__kslab_slab_rcu_pending
#define slab_misuse	__kslab_slab_misuse
#define slab_report_bad_free	__kslab_slab_report_bad_free
#define slab_thread_exit	__kslab_slab_thread_exit
#define slab_thread_gone	__kslab_slab_thread_gone
#define slab_unmap	__kslab_slab_unmap
#define slab_warn	__kslab_slab_warn

#endif /* _KSLAB_MM_SLAB_NAMES_H */
