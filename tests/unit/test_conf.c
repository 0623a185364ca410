/* test_conf.c - mount options: defaults, `-o` items (including the comma-split variants
 * list), the disk cache's options, the config file (comments, blanks, errors with line
 * numbers), bad values and unknown keys refused, and aprfs.conf.example parsing cleanly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/diskcache.h"
#include "check.h"
#include "file/aprfile.h"
#include "view/conf.h"

static uint32_t bit(const char *v)
{
	return 1u << aprfs_variant_index(v);
}

static const char *write_tmp(const char *text)
{
	static char path[512];
	const char *t = getenv("TMPDIR");
	FILE *f;

	snprintf(path, sizeof(path), "%s/test_conf.XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		exit(2);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void)
{
	aprfs_conf c;

	aprfs_conf_default(&c);
	CHECK(c.variants == (1u << APRFS_VARIANT_COUNT) - 1, "all nine variants");
	CHECK(c.cache_mb == 256 && c.nf4_block == 64 && c.readahead_mb == 16);
	CHECK(c.threads == (uint32_t)sysconf(_SC_NPROCESSORS_ONLN), "threads = cores");
	CHECK(c.log_level == APRFS_LOG_WARN && c.fuse_opts[0] == '\0');
	CHECK(c.cache_dir[0] == '\0' && aprfs_conf_disk_budget(&c) == 0, "no disk cache");
}

/* The disk cache: off without cache_dir; a default budget with it; disk_cache_mb alone is
 * a mistake the mount refuses. */
static void test_disk_cache(void)
{
	aprfs_conf c;
	aprfs_err err = {0};

	aprfs_conf_default(&c);
	CHECK(aprfs_conf_apply_opt(&c, "cache_dir=/var/cache/aprfs", &err) == 1 &&
	      strcmp(c.cache_dir, "/var/cache/aprfs") == 0);
	CHECK(aprfs_conf_check(&c, &err) == 0);
	CHECK(aprfs_conf_disk_budget(&c) == (uint64_t)APRFS_DISKCACHE_DEFAULT_MB << 20);
	CHECK(aprfs_conf_apply_opt(&c, "disk_cache_mb=500", &err) == 1 &&
	      aprfs_conf_disk_budget(&c) == 500ull << 20);
	CHECK(aprfs_conf_apply_opt(&c, "disk_cache_mb=16777216", &err) == 1 &&
		  aprfs_conf_disk_budget(&c) == 16777216ull << 20,
	      "16 TiB fits");

	aprfs_conf_default(&c);
	CHECK(aprfs_conf_apply_opt(&c, "disk_cache_mb=500", &err) == 1);
	CHECK(aprfs_conf_check(&c, &err) == -EINVAL && strstr(err.msg, "cache_dir"), "%s",
	      err.msg);
	CHECK(aprfs_conf_disk_budget(&c) == 0);

	const char *p = write_tmp("cache_dir = /srv/aprfs cache\ndisk_cache_mb = 2048\n");
	aprfs_conf_default(&c);
	CHECK(aprfs_conf_load(&c, p, &err) == 0, "%s", err.msg);
	CHECK(strcmp(c.cache_dir, "/srv/aprfs cache") == 0 && c.disk_cache_mb == 2048);
	unlink(p);
}

static void test_opts(void)
{
	aprfs_conf c;
	aprfs_err err = {0};
	char buf[128];

	aprfs_conf_default(&c);
	CHECK(aprfs_conf_apply_opt(&c, "cache_mb=64", &err) == 1 && c.cache_mb == 64);
	CHECK(aprfs_conf_apply_opt(&c, "threads=3", &err) == 1 && c.threads == 3);
	CHECK(aprfs_conf_apply_opt(&c, "nf4_block=128", &err) == 1 && c.nf4_block == 128);
	CHECK(aprfs_conf_apply_opt(&c, "readahead_mb=0", &err) == 1 && c.readahead_mb == 0);
	CHECK(aprfs_conf_apply_opt(&c, "log_level=debug", &err) == 1 &&
	      c.log_level == APRFS_LOG_DEBUG);
	CHECK(aprfs_conf_apply_opt(&c, "ro", &err) == 0, "ro is libfuse's");
	CHECK(aprfs_conf_apply_opt(&c, "allow_other", &err) == 0);
	CHECK(aprfs_conf_apply_opt(&c, "max_read=131072", &err) == 0);

	/* libfuse hands "-o variants=q8,q4,nf4" over as three items. */
	CHECK(aprfs_conf_apply_opt(&c, "variants=q8", &err) == 1 && c.variants == bit("q8"));
	CHECK(aprfs_conf_apply_opt(&c, "q4", &err) == 1);
	CHECK(aprfs_conf_apply_opt(&c, "nf4", &err) == 1);
	CHECK(c.variants == (bit("q8") | bit("q4") | bit("nf4")));
	aprfs_conf_variants_str(c.variants, buf, sizeof(buf));
	CHECK(strcmp(buf, "q8,q4,nf4") == 0, "%s", buf);
	CHECK(aprfs_conf_apply_opt(&c, "ro", &err) == 0);
	CHECK(aprfs_conf_apply_opt(&c, "f16", &err) == 0, "the list ended at ro");
	CHECK(c.variants == (bit("q8") | bit("q4") | bit("nf4")));
	CHECK(aprfs_conf_apply_opt(&c, "variants=f16:bf16", &err) == 1 &&
	      c.variants == (bit("f16") | bit("bf16")));
	CHECK(aprfs_conf_apply_opt(&c, "variants=all", &err) == 1 &&
	      c.variants == (1u << APRFS_VARIANT_COUNT) - 1);
}

static void test_bad_values(void)
{
	static const char *const bad[] = {
	    "cache_mb=",
	    "cache_mb=abc",
	    "cache_mb=-5",
	    "cache_mb=0",
	    "cache_mb=12abc",
	    "cache_mb= 12",
	    "cache_mb=99999999999999999999",
	    "threads=0",
	    "threads=100000",
	    "nf4_block=0",
	    "nf4_block=63",
	    "nf4_block=-64",
	    "readahead_mb=x",
	    "log_level=loud",
	    "variants=q5",
	    "variants=",
	    "variants=q8,,x",
	    "log_level",
	    "cache_mb",
	    "disk_cache_mb=0",
	    "disk_cache_mb=16777217",
	    "disk_cache_mb=1G",
	    "cache_dir=",
	    "cache_dir",
	};
	aprfs_conf c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aprfs_err err = {0};

		aprfs_conf_default(&c);
		CHECK(aprfs_conf_apply_opt(&c, bad[i], &err) == -EINVAL && err.msg[0],
		      "'%s' refused", bad[i]);
		CHECK(c.cache_mb == 256 && c.nf4_block == 64, "'%s' left defaults", bad[i]);
	}
	aprfs_err err = {0};
	CHECK(aprfs_conf_set(&c, "bogus", "1", &err) == -EINVAL && strstr(err.msg, "bogus"));
	CHECK(aprfs_conf_set(&c, "nf4_block", "63", &err) == -EINVAL &&
	      strstr(err.msg, "even"));
}

static void test_file(void)
{
	aprfs_conf c;
	aprfs_err err = {0};
	const char *p;

	aprfs_conf_default(&c);
	p = write_tmp("# a comment\n\n  variants = q8, q4   # trailing comment\n"
		      "cache_mb=512\n\tthreads = 2\nfuse_options = allow_other\n"
		      "fuse_options = auto_unmount\nlog_level = info\n");
	CHECK(aprfs_conf_load(&c, p, &err) == 0, "%s", err.msg);
	CHECK(c.variants == (bit("q8") | bit("q4")) && c.cache_mb == 512 && c.threads == 2);
	CHECK(strcmp(c.fuse_opts, "allow_other,auto_unmount") == 0, "%s", c.fuse_opts);
	CHECK(c.log_level == APRFS_LOG_INFO);
	/* The command line overrides the file. */
	CHECK(aprfs_conf_apply_opt(&c, "cache_mb=32", &err) == 1 && c.cache_mb == 32);
	unlink(p);

	p = write_tmp("cache_mb = 64\nthis line has no equals sign\n");
	CHECK(aprfs_conf_load(&c, p, &err) == -EINVAL && strstr(err.msg, ":2:"), "%s", err.msg);
	unlink(p);
	p = write_tmp("cachemb = 64\n");
	CHECK(aprfs_conf_load(&c, p, &err) == -EINVAL && strstr(err.msg, ":1:") &&
		  strstr(err.msg, "cachemb"),
	      "%s", err.msg);
	unlink(p);
	p = write_tmp("nf4_block = 7\n");
	CHECK(aprfs_conf_load(&c, p, &err) == -EINVAL && strstr(err.msg, "nf4_block"), "%s",
	      err.msg);
	unlink(p);
	p = write_tmp("threads =\n");
	CHECK(aprfs_conf_load(&c, p, &err) == -EINVAL, "%s", err.msg);
	unlink(p);
	CHECK(aprfs_conf_load(&c, "/nonexistent/aprfs.conf", &err) == -ENOENT &&
	      strstr(err.msg, "/nonexistent/aprfs.conf"));
}

/* The example documents every option with its default: loading it changes nothing. */
static void test_example(void)
{
	aprfs_conf c, d;
	aprfs_err err = {0};
	const char *paths[] = {"aprfs.conf.example", "../aprfs.conf.example",
			       "../../aprfs.conf.example"};
	int rc = -ENOENT;

	aprfs_conf_default(&c);
	aprfs_conf_default(&d);
	for (size_t i = 0; i < 3 && rc == -ENOENT; i++)
		rc = aprfs_conf_load(&c, paths[i], &err);
	CHECK(rc == 0, "aprfs.conf.example: %s", err.msg);
	CHECK(c.variants == d.variants && c.cache_mb == d.cache_mb &&
	      c.nf4_block == d.nf4_block && c.readahead_mb == d.readahead_mb &&
	      c.log_level == d.log_level && strcmp(c.cache_dir, d.cache_dir) == 0 &&
	      c.disk_cache_mb == d.disk_cache_mb);
}

int main(void)
{
	test_defaults();
	test_opts();
	test_disk_cache();
	test_bad_values();
	test_file();
	test_example();
	return check_done("conf");
}
