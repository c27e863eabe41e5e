// SPDX-License-Identifier: MIT
/*
 * Kernel-style reports on stderr.  Every layer reports through these;
 * they call nothing of kslab's but the symbolizer (lib/symbolize.c), so
 * the implementation can report a broken invariant without calling up.
 */
#include <stdarg.h>
#include <stdio.h>

#include "lib/symbolize.h"
#include "mm/slab.h"

/**
 * slab_bug - report a broken invariant of a cache, kernel style
 * @name: the cache's name
 * @fmt: what went wrong
 *
 * The first line reads "BUG <name>: <what>".
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
 */
void slab_report_bad_free(struct kmem_cache *s, const void *obj,
			  const char *what)
{
	slab_warn("%s: %s of object %p; ignored", s->name, what, obj);
	kslab_dump_stack(0);
}

