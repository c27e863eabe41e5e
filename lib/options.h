/* SPDX-License-Identifier: MIT */
/*
 * Tunables: one table of named options, each with a default and a
 * KSLAB_* environment variable, read once at start-up.  See
 * Documentation/admin-guide/options.rst for the list.
 */
#ifndef _KSLAB_LIB_OPTIONS_H
#define _KSLAB_LIB_OPTIONS_H

#pragma GCC visibility push(hidden)

enum kslab_option {
	OPT_MAGAZINE_OBJECTS,	/* objects per per-thread magazine, 0: by size */
	OPT_DEPOT_MAGAZINES,	/* full magazines a cache's depot keeps */
	OPT_EMPTY_SLABS,	/* empty slabs a cache keeps for good */
	OPT_SLAB_DECAY_MS,	/* how long other empty slabs are kept */
	OPT_RCU_MAX_PENDING,	/* objects waiting before frees are held back */
	OPT_RCU_BATCH_DELAY_MS,	/* age at which a partial batch is collected */
	OPT_FINALIZER_WATCHDOG_MS, /* a finalizer running longer is reported */
	OPT_FINALIZE_AT_EXIT,	/* ms the queue may run on at exit */
	OPT_GC_PATIENCE_MS,	/* kmem_gc(): how long a finalizer may stall it */
	OPT_WQ_WATCHDOG_MS,	/* a work item running longer is reported */
	OPT_ABORT_ON_ERROR,	/* 1: abort() after a report of misuse */
	OPT_VERBOSE,		/* 1: list every option at start-up */
	NR_KSLAB_OPTIONS
};

long kslab_option(enum kslab_option opt);
const char *kslab_option_name(enum kslab_option opt);
void kslab_options_init(void);

#pragma GCC visibility pop

#endif /* _KSLAB_LIB_OPTIONS_H */
