// SPDX-License-Identifier: MIT
/*
 * Kernel-style reports on stderr.  Every layer reports through these;
 * they call nothing of kslab's but the symbolizer (lib/symbolize.c) and
 * the options table (lib/options.c), so the implementation can report a
 * broken invariant without calling up.
 *
 * Two kinds of report.  slab_bug() and slab_report_bad_free() report
 * misuse or corruption: with KSLAB_ABORT_ON_ERROR=1 the process aborts
 * once the report is out, as glibc's malloc does on a double free; by
 * default kslab repairs what it can and goes on.  slab_warn() is a
 * one-line message and never aborts: kslab's own conditions (no memory
 * for a workqueue, a call that cannot wait) go through it, and so, until
 * they move to a misuse report, do the invalid-pointer and wrong-cache
 * reports of mm/slab_common.c and the flush-time double free of
 * mm/slub.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/options.h"
#include "lib/symbolize.h"
#include "mm/slab.h"

/*
 * The end of every report of misuse or corruption: stop here when the
 * user asked for it, with the report and the call trace already out.
 */
static void report_misuse_end(void)
{
	if (!kslab_option(OPT_ABORT_ON_ERROR))
		return;
	fputs("kslab: aborting (KSLAB_ABORT_ON_ERROR=1)\n", stderr);
	abort();
}

/**
 * slab_bug - report a broken invariant of a cache, kernel style
 * @name: the cache's name
 * @fmt: what went wrong
 *
 * The first line reads "BUG <name>: <what>".  With KSLAB_ABORT_ON_ERROR=1
 * the process aborts after the report.
 */
void slab_bug(const char *name, const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fprintf(stderr, "BUG %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n-----------------------------------------------------------------------------\n",
	      stderr);
	kslab_dump_stack(0);
	funlockfile(stderr);
	report_misuse_end();
}

/**
 * slab_warn - one-line warning on stderr prefixed with "kslab: "
 * @fmt: the message
 */
void slab_warn(const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fputs("kslab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/**
 * slab_report_bad_free - report a free that would corrupt a cache
 * @s: the cache
 * @obj: the object
 * @what: what is wrong with it
 *
 * With KSLAB_ABORT_ON_ERROR=1 the process aborts after the report.
 */
void slab_report_bad_free(struct kmem_cache *s, const void *obj,
			  const char *what)
{
	slab_misuse("%s: %s of object %p; ignored", s->name, what, obj);
}

/**
 * slab_misuse - report misuse of the heap by the caller, kernel style
 * @fmt: what the caller did
 *
 * One "kslab: " line and the caller's stack; then, with
 * KSLAB_ABORT_ON_ERROR=1, abort(), else the program goes on.  For bad
 * frees, wrong caches, double frees: not for kslab's own troubles
 * (slab_warn()).
 */
void slab_misuse(const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fputs("kslab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kslab_dump_stack(0);
	funlockfile(stderr);
	report_misuse_end();
}

