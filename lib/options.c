// SPDX-License-Identifier: MIT
/*
 * The options table.  Every tunable of kslab is one row here: its name,
 * its default and the environment variable that overrides it.  The
 * environment is read once, by kslab_options_init() from the library
 * constructor (or lazily on first use), never on a hot path.  A value
 * that does not parse as a non-negative integer within the row's range
 * is reported once and the default is kept.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/options.h"

struct option_desc {
	const char *env;
	long def;
	long min;
	long max;
};

static const struct option_desc option_table[NR_KSLAB_OPTIONS] = {
	/* at most 254: a magazine must fit a 2 KiB metadata object */
	[OPT_MAGAZINE_OBJECTS]	    = { "KSLAB_MAGAZINE_OBJECTS", 0, 0, 254 },
	[OPT_DEPOT_MAGAZINES]	    = { "KSLAB_DEPOT_MAGAZINES", 16, 0, 1 << 20 },
	[OPT_EMPTY_SLABS]	    = { "KSLAB_EMPTY_SLABS", 2, 0, 1 << 20 },
	[OPT_SLAB_DECAY_MS]	    = { "KSLAB_SLAB_DECAY_MS", 500, 0, 3600000 },
	[OPT_RCU_MAX_PENDING]	    = { "KSLAB_RCU_MAX_PENDING", 1 << 20, 1024, 1L << 40 },
	[OPT_RCU_BATCH_DELAY_MS]    = { "KSLAB_RCU_BATCH_DELAY_MS", 10, 1, 1000 },
	[OPT_FINALIZER_WATCHDOG_MS] = { "KSLAB_FINALIZER_WATCHDOG_MS", 10000, 1, LONG_MAX },
	[OPT_FINALIZE_AT_EXIT]	    = { "KSLAB_FINALIZE_AT_EXIT", 0, 0, LONG_MAX },
	[OPT_GC_PATIENCE_MS]	    = { "KSLAB_GC_PATIENCE_MS", 10, 0, 60000 },
};

static long option_value[NR_KSLAB_OPTIONS];
static pthread_once_t options_once = PTHREAD_ONCE_INIT;

static long parse_option(const struct option_desc *d)
{
	const char *s = getenv(d->env);
	char *end;
	long v;

	if (!s || !*s)
		return d->def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < d->min || v > d->max) {
		fprintf(stderr,
			"kslab: ignoring %s=%s (want an integer in [%ld, %ld]); using %ld\n",
			d->env, s, d->min, d->max, d->def);
		return d->def;
	}
	return v;
}

static void options_read(void)
{
	int i;

	for (i = 0; i < NR_KSLAB_OPTIONS; i++)
		option_value[i] = parse_option(&option_table[i]);
}

/**
 * kslab_options_init - read every option from the environment, once
 *
 * Context: any thread; later calls return at once.
 */
void kslab_options_init(void)
{
	pthread_once(&options_once, options_read);
}

/**
 * kslab_option - the value of one tunable
 * @opt: which one
 *
 * Return: the environment's value if it was valid, else the default.
 */
long kslab_option(enum kslab_option opt)
{
	kslab_options_init();
	return option_value[opt];
}

/**
 * kslab_option_name - the environment variable behind a tunable
 * @opt: which one
 *
 * Return: a static string such as "KSLAB_EMPTY_SLABS".
 */
const char *kslab_option_name(enum kslab_option opt)
{
	return option_table[opt].env;
}
