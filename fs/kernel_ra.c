/* kernel_ra.c - raising the kernel's page-cache read-ahead on the mount to 1 MiB, the
 * size of one FUSE read, so a sequential reader gets few large requests. Best effort:
 * it needs root, and changes nothing else. */
#include "kernel_ra.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "base/log.h"

#define WANT_KB 1024u

/* The kernel starts a FUSE mount at 128 KiB and INIT can only lower it; the bdi's sysfs
 * knob can raise it, but only after INIT, or INIT's reply would lower it again. A stat of
 * the mount root is answered only once INIT is done, so this thread starts with one. */
static void *raise_readahead(void *arg)
{
	const char *mountpoint = arg;
	char path[96];
	struct stat st;
	unsigned kb = 0;
	int written;
	FILE *f;

	if (stat(mountpoint, &st) != 0)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "r");
	if (!f)
		return NULL;
	if (fscanf(f, "%u", &kb) != 1)
		kb = 0;
	fclose(f);
	if (kb >= WANT_KB)
		return NULL;
	f = fopen(path, "w");
	if (!f)
		return NULL;
	/* sysfs reports a refused value at write-back, so fclose's result counts. */
	written = fprintf(f, "%u\n", WANT_KB) > 0;
	written = fclose(f) == 0 && written;
	if (written)
		aprfs_log(APRFS_LOG_INFO, "kernel read-ahead raised from %u to %u KiB", kb,
			  WANT_KB);
	return NULL;
}

int aprfs_kernel_ra_start(pthread_t *thread, const char *mountpoint)
{
	return pthread_create(thread, NULL, raise_readahead, (void *)mountpoint);
}
