// SPDX-License-Identifier: MIT
/*
 * The options table (lib/options.c, Documentation/admin-guide/options.rst)
 * as a program sees it on stderr at start-up, one behaviour per TEST: a
 * KSLAB_* variable that is no option is reported once, by name; an
 * option's invalid value is reported with the default that is used;
 * options, the scripts' variables and other names are not reported; and
 * KSLAB_VERBOSE=1 lists every option with its value and where it came
 * from.
 *
 * Options are read once, before main(), so each test runs this binary
 * again with an environment of its own: the test's variables and the
 * child-mode variable, on top of the caller's environment without its
 * KSLAB_* variables.  main() sends that run to child_main(), which uses
 * kslab, forks a child that uses it too, and exits; the test reads what it
 * wrote on stderr.  The child-mode variable is itself a KSLAB_TEST_* name,
 * which must not be reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kslab/kslab.h>

#include "kselftest_harness.h"
#include "kslab_test_util.h"
#include "lib/options.h"

#define CHILD_MODE_ENV		"KSLAB_TEST_OPTIONS_CHILD"
/* Bound for a child that uses kslab for a moment and exits. */
#define TIMEOUT_MS		20000
#define MAX_VARS		8

/* ---- the re-executed child ---------------------------------------------- */

/* Misuse of the heap: a pointer kslab never handed out, then a fine free. */
static int misuse_main(void)
{
	char on_stack[32] = "not from kslab";
	void *p = kmalloc(100, GFP_KERNEL);

	kfree(on_stack);
	kfree(p);
	fputs("went on\n", stderr);
	return 0;
}

/* kslab at work in this process and in a forked one: nothing more is said. */
static int child_main(void)
{
	void *p = kmalloc(100, GFP_KERNEL);
	int status;
	pid_t pid;

	if (!strcmp(getenv(CHILD_MODE_ENV), "misuse"))
		return misuse_main();

	if (!p)
		return 2;
	kfree(p);
	pid = fork();
	if (pid < 0)
		return 3;
	if (pid == 0) {
		p = kmalloc(200, GFP_KERNEL);
		kfree(p);
		_exit(p ? 0 : 4);
	}
	if (wait_child(pid, TIMEOUT_MS, &status) || !child_exited_cleanly(status))
		return 5;
	return 0;
}

/* ---- running it ------------------------------------------------------- */

static bool is_kslab_var(const char *var)
{
	return !strncmp(var, "KSLAB_", strlen("KSLAB_"));
}

/*
 * run_mode_with_env() - run this binary as a child in @mode with @vars
 * (NULL-terminated "NAME=value" strings) in its environment.
 * @status_out: receives the child's wait status; NULL: it must exit with 0
 *
 * Return: what the child wrote on stderr (free() it), or NULL when it
 * could not be run, did not end within TIMEOUT_MS or (@status_out NULL)
 * did not exit with 0.
 */
static char *run_mode_with_env(const char *mode, const char *const *vars,
			       int *status_out)
{
	char mode_var[64];
	char **envp, *text = NULL;
	size_t n = 0, i, k = 0;
	FILE *err;
	int status;
	pid_t pid;

	snprintf(mode_var, sizeof(mode_var), "%s=%s", CHILD_MODE_ENV, mode);

	while (environ[n])
		n++;
	envp = calloc(n + MAX_VARS + 2, sizeof(*envp));
	err = tmpfile();
	if (!envp || !err)
		goto out;
	for (i = 0; i < MAX_VARS && vars[i]; i++)
		envp[k++] = (char *)vars[i];
	envp[k++] = mode_var;
	for (i = 0; i < n; i++)
		if (!is_kslab_var(environ[i]))
			envp[k++] = environ[i];

	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		if (dup2(fileno(err), STDERR_FILENO) < 0)
			_exit(126);
		execle("/proc/self/exe", "options_test", (char *)NULL, envp);
		_exit(127);
	}
	if (wait_child(pid, TIMEOUT_MS, &status))
		goto out;
	if (status_out)
		*status_out = status;
	else if (!child_exited_cleanly(status))
		goto out;

	text = file_text(err);
out:
	if (err)
		fclose(err);
	free(envp);
	return text;
}

static char *run_with_env(const char *const *vars)
{
	return run_mode_with_env("1", vars, NULL);
}

/* The line of @text that starts with @start, copied into @line. */
static const char *line_starting(const char *text, const char *start,
				 char *line, size_t size)
{
	const char *p = strstr(text, start);

	while (p && p != text && p[-1] != '\n')
		p = strstr(p + 1, start);
	return first_line(p ? p : "", line, size);
}

/* ---- unknown names ------------------------------------------------------ */

/*
 * A misspelt or made-up KSLAB_* variable does nothing, so it is said once:
 * not again in the forked child, which does not read the environment.
 */
TEST(unknown_kslab_variable_is_reported_once_by_name)
{
	static const char *const vars[] = { "KSLAB_FOO=1", NULL };
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text, "kslab: unknown option KSLAB_FOO=1");
	EXPECT_EQ(1, text_count(text, "KSLAB_FOO"));
	EXPECT_EQ(1, text_count(text, "\n"));
	free(text);
}

TEST(unknown_variable_report_lists_every_known_option)
{
	static const char *const vars[] = { "KSLAB_FOO=1", NULL };
	char *text = run_with_env(vars);
	char line[4096];
	int i;

	ASSERT_NE(NULL, text);
	line_starting(text, "kslab: unknown option KSLAB_FOO=1", line,
		      sizeof(line));
	EXPECT_TEXT_CONTAINS(line, "known: ");
	for (i = 0; i < NR_KSLAB_OPTIONS; i++)
		EXPECT_TEXT_CONTAINS(line, kslab_option_name(i));
	free(text);
}

TEST(each_unknown_variable_is_reported)
{
	static const char *const vars[] = {
		"KSLAB_EMPTYSLABS=3", "KSLAB_NO_SUCH_OPTION=", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text, "kslab: unknown option KSLAB_EMPTYSLABS=3");
	EXPECT_TEXT_CONTAINS(text, "kslab: unknown option KSLAB_NO_SUCH_OPTION=");
	EXPECT_EQ(2, text_count(text, "unknown option"));
	free(text);
}

/*
 * Options, the variables of kslab's scripts (KSLAB_TEST_*, which the
 * child-mode variable is, and KSLAB_EXTRA_PACKAGES) and names that only
 * look alike: nothing to say.
 */
TEST(options_and_script_variables_are_not_reported)
{
	static const char *const vars[] = {
		"KSLAB_EMPTY_SLABS=3", "KSLAB_TEST_TIMEOUT=60",
		"KSLAB_EXTRA_PACKAGES=gdb", "KSLABFOO=1", "MY_KSLAB_FOO=1", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_EMPTY(text);
	free(text);
}

/* ---- invalid values ----------------------------------------------------- */

TEST(invalid_value_is_reported_with_the_default_used)
{
	static const char *const vars[] = {
		"KSLAB_EMPTY_SLABS=lots", "KSLAB_MAGAZINE_OBJECTS=255", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text,
			     "kslab: ignoring KSLAB_EMPTY_SLABS=lots (want an integer in [0, 1048576]); using 2\n");
	EXPECT_TEXT_CONTAINS(text,
			     "kslab: ignoring KSLAB_MAGAZINE_OBJECTS=255 (want an integer in [0, 254]); using 0\n");
	EXPECT_EQ(2, text_count(text, "\n"));
	EXPECT_EQ(0, text_count(text, "unknown option"));
	free(text);
}

/* ---- KSLAB_VERBOSE ------------------------------------------------------ */

TEST(verbose_lists_every_option_once)
{
	static const char *const vars[] = { "KSLAB_VERBOSE=1", NULL };
	char *text = run_with_env(vars);
	char needle[128];
	int i;

	ASSERT_NE(NULL, text);
	for (i = 0; i < NR_KSLAB_OPTIONS; i++) {
		snprintf(needle, sizeof(needle), "kslab: option %s=",
			 kslab_option_name(i));
		EXPECT_EQ(1, text_count(text, needle))
			TH_LOG("%s listed %u times in:\n%s", kslab_option_name(i),
			       text_count(text, needle), text);
	}
	EXPECT_EQ(NR_KSLAB_OPTIONS, text_count(text, "\n"));
	free(text);
}

TEST(verbose_says_whether_a_value_is_the_default_or_from_the_environment)
{
	static const char *const vars[] = {
		"KSLAB_VERBOSE=1", "KSLAB_EMPTY_SLABS=3", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text, "kslab: option KSLAB_EMPTY_SLABS=3 (environment)\n");
	EXPECT_TEXT_CONTAINS(text, "kslab: option KSLAB_VERBOSE=1 (environment)\n");
	EXPECT_TEXT_CONTAINS(text, "kslab: option KSLAB_DEPOT_MAGAZINES=16 (default)\n");
	EXPECT_TEXT_CONTAINS(text, "kslab: option KSLAB_SLAB_DECAY_MS=500 (default)\n");
	free(text);
}

TEST(verbose_shows_the_default_in_effect_for_an_invalid_value)
{
	static const char *const vars[] = {
		"KSLAB_VERBOSE=1", "KSLAB_EMPTY_SLABS=lots", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text, "kslab: ignoring KSLAB_EMPTY_SLABS=lots");
	EXPECT_TEXT_CONTAINS(text,
			     "kslab: option KSLAB_EMPTY_SLABS=2 (default; the environment's value is invalid)\n");
	free(text);
}

TEST(verbose_zero_lists_nothing)
{
	static const char *const vars[] = {
		"KSLAB_VERBOSE=0", "KSLAB_EMPTY_SLABS=3", NULL
	};
	char *text = run_with_env(vars);

	ASSERT_NE(NULL, text);
	EXPECT_TEXT_EMPTY(text);
	free(text);
}

/* ---- KSLAB_ABORT_ON_ERROR --------------------------------------------- */

TEST(misuse_is_reported_and_the_program_goes_on_by_default)
{
	static const char *const vars[] = { NULL };
	int status = -1;
	char *text = run_mode_with_env("misuse", vars, &status);

	ASSERT_NE(NULL, text);
	EXPECT_TRUE(child_exited_cleanly(status)) TH_LOG("status %#x", status);
	EXPECT_TEXT_CONTAINS(text, "invalid pointer");
	EXPECT_TEXT_CONTAINS(text, "went on");
	free(text);
}

TEST(abort_on_error_aborts_after_the_report_of_an_invalid_free)
{
	static const char *const vars[] = { "KSLAB_ABORT_ON_ERROR=1", NULL };
	int status = -1;
	char *text = run_mode_with_env("misuse", vars, &status);

	ASSERT_NE(NULL, text);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
		TH_LOG("status %#x", status);
	EXPECT_TEXT_CONTAINS(text, "invalid pointer");
	EXPECT_EQ(NULL, strstr(text, "went on"));
	free(text);
}

/*
 * TEST_HARNESS_MAIN under another name: a run of this binary started by
 * run_with_env() (CHILD_MODE_ENV set) goes to child_main() instead.
 */
#define main harness_main
TEST_HARNESS_MAIN
#undef main

int main(int argc, char **argv)
{
	if (getenv(CHILD_MODE_ENV))
		return child_main();
	return harness_main(argc, argv);
}
