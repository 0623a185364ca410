/* survey.c - the start-up summary (see survey.h): one walk of the tree through lib/tree's
 * survey, a few refused checkpoints named with their reasons, and one summary line. It
 * gives up when the mount ends, and after SURVEY_MAX_DIRS directories. */
#include "survey.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "view/conf.h"

#define SURVEY_MAX_DIRS 100000
#define SURVEY_NAME_MAX 5 /* refused checkpoints named in the summary */

typedef struct walk {
	aprfs_mount *m;
	unsigned named;
} walk;

static void on_broken(const char *rel, const char *why, void *ctx)
{
	walk *w = ctx;

	if (w->named++ < SURVEY_NAME_MAX)
		aprfs_log(APRFS_LOG_INFO, "refused: %s", why); /* why names the file */
}

static int ended(void *ctx)
{
	return aprfs_cancelled(&((walk *)ctx)->m->ending);
}

static void *run(void *arg)
{
	aprfs_mount *m = arg;
	walk w = {m, 0};
	aprfs_tree_survey s = {0};
	char views[128];
	unsigned nv = 0;

	aprfs_tree_survey_run(m->tree, SURVEY_MAX_DIRS, on_broken, ended, &w, &s);
	aprfs_conf_variants_str(m->conf.variants, views, sizeof(views));
	for (unsigned v = m->conf.variants; v; v &= v - 1)
		nv++;
	aprfs_log(
	    APRFS_LOG_INFO,
	    "%s: %llu checkpoints in %llu directories%s: %llu served, %u views each (%s); "
	    "%llu refused%s",
	    aprfs_tree_root(m->tree), (unsigned long long)s.checkpoints,
	    (unsigned long long)s.dirs, s.complete ? "" : " (walk stopped early)",
	    (unsigned long long)s.served, nv, views, (unsigned long long)s.broken,
	    s.broken > SURVEY_NAME_MAX ? " (the first named above, all in the warnings)" : "");
	return NULL;
}

int aprfs_survey_start(pthread_t *thread, aprfs_mount *m)
{
	if (!aprfs_log_enabled(APRFS_LOG_INFO))
		return -1;
	return pthread_create(thread, NULL, run, m) == 0 ? 0 : -1;
}
