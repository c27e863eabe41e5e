// SPDX-License-Identifier: MIT
/*
 * The options table.  Every tunable of kslab is one row here: its name,
 * its default and the environment variable that overrides it.  The
 * environment is read once, by kslab_options_init() from the library
 * constructor (or lazily on first use), never on a hot path.
 *
 * Mistakes are reported once, on stderr, when the environment is read:
 * a value that does not parse as a non-negative integer within the row's
 * range (the default is kept), and a KSLAB_* variable that names no row,
 * such as a misspelt option.  Names that kslab's own scripts and tests
 * read (script_vars[]) are not options and not reported.  With
 * KSLAB_VERBOSE=1 every option is then listed with its value and where
 * the value came from.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/compiler.h"
#include "lib/options.h"

#define ENV_PREFIX	"KSLAB_"

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
	[OPT_WQ_WATCHDOG_MS]	    = { "KSLAB_WQ_WATCHDOG_MS", 30000, 1, LONG_MAX },
	[OPT_ABORT_ON_ERROR]	    = { "KSLAB_ABORT_ON_ERROR", 0, 0, 1 },
	[OPT_VERBOSE]		    = { "KSLAB_VERBOSE", 0, 0, 1 },
};

/*
 * KSLAB_* names that belong to kslab's build and test scripts, not to
 * the library (Documentation/admin-guide/options.rst).  One ending in '_'
 * is a prefix: KSLAB_TEST_* is reserved for the selftests and their
 * runner.
 */
static const char *const script_vars[] = {
	"KSLAB_TEST_",
	"KSLAB_EXTRA_PACKAGES",
};

enum option_origin {
	ORIGIN_DEFAULT,
	ORIGIN_ENV,
	ORIGIN_INVALID,		/* set, rejected: the default is used */
};

static const char *const origin_text[] = {
	[ORIGIN_DEFAULT] = "default",
	[ORIGIN_ENV]	 = "environment",
	[ORIGIN_INVALID] = "default; the environment's value is invalid",
};

static long option_value[NR_KSLAB_OPTIONS];
static enum option_origin option_origin[NR_KSLAB_OPTIONS];
static pthread_once_t options_once = PTHREAD_ONCE_INIT;

static enum option_origin parse_option(const struct option_desc *d,
				       long *value)
{
	const char *s = getenv(d->env);
	char *end;
	long v;

	*value = d->def;
	if (!s || !*s)
		return ORIGIN_DEFAULT;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < d->min || v > d->max) {
		fprintf(stderr,
			"kslab: ignoring %s=%s (want an integer in [%ld, %ld]); using %ld\n",
			d->env, s, d->min, d->max, d->def);
		return ORIGIN_INVALID;
	}
	*value = v;
	return ORIGIN_ENV;
}

/* Whether "NAME=value" names a row of the table or a script's variable. */
static bool env_name_known(const char *var, size_t len)
{
	size_t i, n;

	for (i = 0; i < NR_KSLAB_OPTIONS; i++) {
		n = strlen(option_table[i].env);
		if (n == len && !memcmp(var, option_table[i].env, n))
			return true;
	}
	for (i = 0; i < ARRAY_SIZE(script_vars); i++) {
		bool prefix;

		n = strlen(script_vars[i]);
		prefix = script_vars[i][n - 1] == '_';
		if ((prefix ? len >= n : len == n) &&
		    !memcmp(var, script_vars[i], n))
			return true;
	}
	return false;
}

static void report_unknown(const char *var)
{
	int i;

	fprintf(stderr, "kslab: unknown option %s ignored (known:", var);
	for (i = 0; i < NR_KSLAB_OPTIONS; i++)
		fprintf(stderr, "%s %s", i ? "," : "", option_table[i].env);
	fputs(")\n", stderr);
}

/* Every KSLAB_* variable that is not an option, once each. */
static void check_unknown_names(void)
{
	char **env;

	for (env = environ; env && *env; env++) {
		const char *var = *env;
		const char *eq = strchr(var, '=');
		size_t len = eq ? (size_t)(eq - var) : strlen(var);

		if (strncmp(var, ENV_PREFIX, strlen(ENV_PREFIX)))
			continue;
		if (!env_name_known(var, len))
			report_unknown(var);
	}
}

static void print_options(void)
{
	int i;

	for (i = 0; i < NR_KSLAB_OPTIONS; i++)
		fprintf(stderr, "kslab: option %s=%ld (%s)\n",
			option_table[i].env, option_value[i],
			origin_text[option_origin[i]]);
}

static void options_read(void)
{
	int i;

	flockfile(stderr);
	for (i = 0; i < NR_KSLAB_OPTIONS; i++)
		option_origin[i] = parse_option(&option_table[i],
						&option_value[i]);
	check_unknown_names();
	if (option_value[OPT_VERBOSE])
		print_options();
	funlockfile(stderr);
}

/**
 * kslab_options_init - read every option from the environment, once
 *
 * Reports invalid values and unknown KSLAB_* names on stderr, and with
 * KSLAB_VERBOSE=1 lists every option in effect.
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
