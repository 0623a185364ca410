/* fuzz_conf.c - libFuzzer harness of the mount's options: aprfs_conf_load() on a config file
 * whose text is the input, then aprfs_conf_apply_opt() on the input split at NULs and commas
 * (as libfuse splits -o). Asserts every option stays in range and a refusal changes nothing. */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "file/aprfile.h"
#include "fuzz.h"
#include "view/conf.h"

#define FUZZ_MAX_LEN 4096
#define ALL_VARIANTS ((1u << APRFS_VARIANT_COUNT) - 1)

/* The ranges conf.h promises, whatever was applied. */
static void check_conf(const aprfs_conf *c)
{
	char list[128];
	aprfs_conf back;
	aprfs_err err = {0};

	FUZZ_CHECK(c->variants && !(c->variants & ~ALL_VARIANTS), "variants %#x", c->variants);
	FUZZ_CHECK(c->cache_mb >= 1 && c->cache_mb <= 1u << 20, "cache_mb %u", c->cache_mb);
	FUZZ_CHECK(c->threads >= 1 && c->threads <= 256, "threads %u", c->threads);
	FUZZ_CHECK(c->nf4_block >= 2 && c->nf4_block <= 1u << 20 && c->nf4_block % 2 == 0,
		   "nf4_block %u", c->nf4_block);
	FUZZ_CHECK(c->readahead_mb <= 4096, "readahead_mb %u", c->readahead_mb);
	FUZZ_CHECK(c->log_level >= APRFS_LOG_ERROR && c->log_level <= APRFS_LOG_DEBUG,
		   "log_level %d", c->log_level);
	FUZZ_CHECK(memchr(c->fuse_opts, 0, sizeof(c->fuse_opts)), "fuse_opts unterminated");
	/* The variant list as printed for the log reads back as the same set. */
	aprfs_conf_variants_str(c->variants, list, sizeof(list));
	back = *c;
	back.variants = 0;
	FUZZ_CHECK(aprfs_conf_set(&back, "variants", list, &err) == 0 &&
		       back.variants == c->variants,
		   "variants '%s' do not read back: %s", list, err.msg);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	aprfs_conf c;
	aprfs_err err = {0};
	int rc;

	if (fd < 0) {
		fd = memfd_create("aprfs.conf", MFD_CLOEXEC);
		FUZZ_CHECK(fd >= 0, "memfd_create");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && pwrite(fd, data, size, 0) == (ssize_t)size,
		   "writing the config file");
	aprfs_conf_default(&c);
	rc = aprfs_conf_load(&c, path, &err);
	if (rc)
		fuzz_check_refusal(rc, &err, path);
	check_conf(&c);
}

/* Items in order, as the command line gives them; a refused item leaves the options
 * exactly as they were (but for the "previous item was variants=" flag). */
static void fuzz_opts(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *item = buf;
	aprfs_conf c, before;
	aprfs_err err = {0};

	FUZZ_CHECK(buf != NULL, "out of memory");
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (size_t i = 0; i < size; i++)
		if (buf[i] == ',')
			buf[i] = '\0';
	aprfs_conf_default(&c);
	while (item <= buf + size) {
		size_t len = strlen(item);
		int rc;

		before = c;
		rc = aprfs_conf_apply_opt(&c, item, &err);
		FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EINVAL, "'%s': rc %d", item, rc);
		if (rc <= 0) {
			c.variants_open = before.variants_open;
			FUZZ_CHECK(memcmp(&c, &before, sizeof(c)) == 0,
				   "'%s' (rc %d) changed options", item, rc);
		}
		if (rc < 0)
			FUZZ_CHECK(err.code == EINVAL && err.msg[0], "'%s': no message", item);
		check_conf(&c);
		item += len + 1;
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_LEN)
		return 0;
	fuzz_file(data, size);
	fuzz_opts(data, size);
	return 0;
}
