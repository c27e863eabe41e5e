/* SPDX-License-Identifier: MIT */
/*
 * The kernel's compiler-attribute and access macros, for userspace.  All
 * of kslab uses these names so the code reads like the kernel's.
 */
#ifndef _KSLAB_LIB_COMPILER_H
#define _KSLAB_LIB_COMPILER_H

#include <sys/cdefs.h>	/* glibc's __always_inline */

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)

#ifndef __always_inline
#define __always_inline		inline __attribute__((__always_inline__))
#endif
#define noinline		__attribute__((__noinline__))
#define __aligned(x)		__attribute__((__aligned__(x)))
#define __cold			__attribute__((__cold__))
#define __printf(a, b)		__attribute__((__format__(printf, a, b)))
#define __maybe_unused		__attribute__((__unused__))
#define __constructor		__attribute__((__constructor__))
/* thread-locals reached without a call into the dynamic linker */
#define __initial_exec		__attribute__((__tls_model__("initial-exec")))

#ifndef container_of
#define container_of(ptr, type, member)					\
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/*
 * Accesses to words that another thread may read or write without the
 * owner's lock.  On x86-64 these are plain moves: no lock prefix, no
 * fence.  The acquire/release pair orders a publication: everything
 * written before smp_store_release() is visible to a reader whose
 * smp_load_acquire() saw the stored value.
 */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#endif /* _KSLAB_LIB_COMPILER_H */
