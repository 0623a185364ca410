/* survey.h - the start-up summary a person reads with log_level=info: what the mount
 * found (checkpoints, views, the ones refused and why), from a walk of the tree on a
 * thread of its own so that mounting never waits for it. */
#ifndef APRFS_FS_SURVEY_H
#define APRFS_FS_SURVEY_H

#include <pthread.h>

#include "ops.h"

/* Start the walk when log_level is info or more; 0 if a thread was started. */
int aprfs_survey_start(pthread_t *thread, aprfs_mount *m);

#endif
