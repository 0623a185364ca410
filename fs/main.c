/* main.c - the `aprfs` command: `convert`, `inspect` and `variants` go to their library
 * functions; anything else is a mount: options (config file, then -o), libfuse setup,
 * daemonizing, the multithreaded loop, and a clean teardown on unmount, SIGINT or SIGTERM. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/scratch.h"
#include "cmd.h"
#include "kernel_ra.h"
#include "kernels/kernels.h"
#include "ops.h"
#include "survey.h"

#define APRFS_VERSION "0.1.0"
/* Jobs waiting for the read-ahead workers; beyond it read-ahead is simply skipped. */
#define RA_QUEUE 4096

enum { KEY_HELP, KEY_VERSION };

static const struct fuse_opt cmdline_spec[] = {
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

typedef struct cmdline {
	aprfs_conf conf;
	char *source;
	int have_mountpoint;
	int extra_args;
	int bad;
	int help, version;
} cmdline;

static void usage(FILE *out, const char *prog)
{
	char names[256];

	aprfs_variant_list(names, sizeof(names), " ");
	fprintf(
	    out,
	    "usage: %s [options] SOURCE_DIR MOUNTPOINT\n"
	    "       %s convert [--variant V] [--nf4-block N] [--root DIR] [--threads N]\n"
	    "             [--cache-dir DIR [--disk-cache-mb N]] [--quiet] SOURCE OUTPUT\n"
	    "       %s inspect [--json] [--stats SOURCE] FILE.apr\n"
	    "       %s variants [--names | --scd]\n"
	    "\n"
	    "Mirrors SOURCE_DIR read-only at MOUNTPOINT and adds, beside each checkpoint X\n"
	    "(X.safetensors, X.safetensors.index.json, X.gguf), virtual APR v2 files\n"
	    "X.<variant>.apr quantized on read.\n"
	    "\n"
	    "aprfs options:\n"
	    "    --config FILE          read options from FILE (key = value lines)\n"
	    "    -o variants=V[,V...]   %s (default all)\n"
	    "    -o cache_mb=N          chunk cache budget in MiB (default 256)\n"
	    "    -o threads=N           read-ahead quantization workers (default: cores)\n"
	    "    -o nf4_block=N         NF4 block size, even (default 64)\n"
	    "    -o readahead_mb=N      warmed ahead of sequential readers (default 16, 0 "
	    "off)\n"
	    "    -o log_level=L         error, warn, info or debug (default warn)\n"
	    "    -o cache_dir=DIR       keep computed chunks in DIR across mounts and share\n"
	    "                           them with other daemons and `aprfs convert "
	    "--cache-dir`\n"
	    "                           (default: none, memory only)\n"
	    "    -o disk_cache_mb=N     DIR's budget in MiB, least recently used evicted\n"
	    "                           (default %u with cache_dir)\n"
	    "    -h, --help             this help and libfuse's options\n"
	    "    -V, --version          versions\n"
	    "\n"
	    "Everything else (options, config file, GGUF, signals, exit codes): man aprfs\n"
	    "\n",
	    prog, prog, prog, prog, names, APRFS_DISKCACHE_DEFAULT_MB);
}

static int cmdline_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	cmdline *c = data;
	aprfs_err err = {0};
	int rc;

	switch (key) {
	case KEY_HELP: c->help = 1; return 0;
	case KEY_VERSION: c->version = 1; return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (!c->source) {
			c->source = strdup(arg);
			return 0;
		}
		if (c->have_mountpoint)
			c->extra_args = 1;
		c->have_mountpoint = 1;
		return 1; /* the mountpoint: fuse_parse_cmdline takes it */
	default:
		if (arg[0] == '-')
			return 1; /* -f, -d, -s: libfuse's */
		rc = aprfs_conf_apply_opt(&c->conf, arg, &err);
		if (rc < 0) {
			fprintf(stderr, "aprfs: %s\n", err.msg);
			c->bad = 1;
		}
		return rc == 0; /* not ours: keep it for libfuse */
	}
}

/* Take --config FILE / --config=FILE out of argv (libfuse would not know it). */
static int strip_config(int *argc, char **argv, const char **path)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= *argc)
				return -1;
			*path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			*path = argv[i] + 9;
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	argv[out] = NULL;
	return 0;
}

/* fsname shows the source in /proc/mounts and df; commas must be escaped in -o. */
static int add_mount_names(struct fuse_args *args, const char *source)
{
	char opt[PATH_MAX * 2 + 64], *p = opt;

	p += sprintf(p, "-osubtype=aprfs,default_permissions,fsname=");
	for (const char *s = source; *s && p < opt + sizeof(opt) - 3; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	/* First, so that the user's own -o fsname=... (later) wins. */
	return fuse_opt_insert_arg(args, 1, opt);
}

/* Parse everything; returns 0 to go on, or the exit status to stop with. */
static int parse_args(struct fuse_args *args, cmdline *c, struct fuse_cmdline_opts *fo)
{
	const char *config = NULL;
	aprfs_err err = {0};

	aprfs_conf_default(&c->conf);
	if (strip_config(&args->argc, args->argv, &config) < 0) {
		fprintf(stderr, "aprfs: --config needs a file name\n");
		return 2;
	}
	if (config && aprfs_conf_load(&c->conf, config, &err) < 0) {
		fprintf(stderr, "aprfs: %s\n", err.msg);
		return 2;
	}
	if (fuse_opt_parse(args, c, cmdline_spec, cmdline_proc) != 0 || c->bad)
		return 2;
	if (aprfs_conf_check(&c->conf, &err) < 0) {
		fprintf(stderr, "aprfs: %s\n", err.msg);
		return 2;
	}
	if (c->help) {
		usage(stdout, args->argv[0]);
		printf("libfuse options:\n");
		fuse_cmdline_help();
		fuse_lib_help(args);
		return -1;
	}
	if (c->version) {
		printf("aprfs %s (libfuse %s, kernels: %s)\n", APRFS_VERSION, fuse_pkgversion(),
		       aprfs_kernels_isa());
		return -1;
	}
	if (!c->source || !c->have_mountpoint || c->extra_args) {
		usage(stderr, args->argv[0]);
		return 2;
	}
	if (c->conf.fuse_opts[0] && (fuse_opt_insert_arg(args, 1, "-o") ||
				     fuse_opt_insert_arg(args, 2, c->conf.fuse_opts)))
		return 1;
	if (fuse_parse_cmdline(args, fo) != 0)
		return 2;
	return 0;
}

/* The disk cache directory, made absolute while we can still tell the user (the daemon
 * changes to / when it detaches): created if missing, refused if unusable. */
static int resolve_cache_dir(aprfs_conf *conf)
{
	char real[PATH_MAX];

	if (!conf->cache_dir[0])
		return 0;
	if ((mkdir(conf->cache_dir, 0755) != 0 && errno != EEXIST) ||
	    !realpath(conf->cache_dir, real)) {
		fprintf(stderr, "aprfs: cache_dir %s: %s\n", conf->cache_dir, strerror(errno));
		return -1;
	}
	snprintf(conf->cache_dir, sizeof(conf->cache_dir), "%s", real);
	return 0;
}

/* The disk tier under the chunk cache. Not there (with one log line) is no failure: the
 * mount then serves from memory, as without cache_dir. */
static void start_disk_cache(aprfs_mount *m)
{
	aprfs_diskcache_opts o = {.dir = m->conf.cache_dir,
				  .budget = aprfs_conf_disk_budget(&m->conf)};
	aprfs_err err = {0};

	if (!o.budget)
		return;
	if (aprfs_diskcache_open(&o, &m->disk, &err) < 0) {
		aprfs_log(APRFS_LOG_WARN, "disk cache off: %s", err.msg);
		return;
	}
	aprfs_cache_set_disk(m->cache, m->disk);
	aprfs_log(APRFS_LOG_INFO, "disk cache %s, %llu MiB", m->conf.cache_dir,
		  (unsigned long long)(o.budget >> 20));
}

static void stop_disk_cache(aprfs_mount *m)
{
	aprfs_cache_set_disk(m->cache, NULL);
	aprfs_diskcache_close(m->disk); /* writes what is queued */
	m->disk = NULL;
}

/* Each open checkpoint holds a descriptor per shard: allow as many as we may. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int run_loop(struct fuse *fuse, const struct fuse_cmdline_opts *fo)
{
	struct fuse_loop_config *lc;
	int rc;

	if (fo->singlethread)
		return fuse_loop(fuse);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, (unsigned)fo->clone_fd);
	/* fuse_parse_cmdline leaves UINT_MAX for "not given": keep libfuse's defaults. */
	if (fo->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(lc, fo->max_idle_threads);
	if (fo->max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(lc, fo->max_threads);
	rc = fuse_loop_mt(fuse, lc);
	fuse_loop_cfg_destroy(lc);
	return rc;
}

/* Mounted: daemonize, start the workers, serve until unmounted or signalled. */
static int serve(struct fuse *fuse, aprfs_mount *m, const struct fuse_cmdline_opts *fo)
{
	struct fuse_session *se = fuse_get_session(fuse);
	pthread_t ra_tuner, surveyor;
	int rc, tuning, surveying;

	if (fuse_daemonize(fo->foreground) != 0)
		return 1;
	if (!fo->foreground)
		aprfs_log_setup(m->conf.log_level, 1);
	if (fuse_set_signal_handlers(se) != 0)
		return 1;
	atomic_store(&m->se, se);
	start_disk_cache(m);
	m->ra = aprfs_ra_new(m->conf.threads, RA_QUEUE, m->cache, &m->ending);
	if (!m->ra)
		aprfs_log(APRFS_LOG_WARN, "read-ahead workers did not start; reading without");
	tuning = aprfs_kernel_ra_start(&ra_tuner, fo->mountpoint) == 0;
	surveying = aprfs_survey_start(&surveyor, m) == 0;
	rc = run_loop(fuse, fo);
	fuse_remove_signal_handlers(se);
	aprfs_log(APRFS_LOG_INFO, "unmounting %s", fo->mountpoint);
	fuse_unmount(fuse);
	if (tuning)
		pthread_join(ra_tuner, NULL);
	if (surveying)
		pthread_join(surveyor, NULL);
	aprfs_ra_free(m->ra);
	m->ra = NULL;
	stop_disk_cache(m);
	/* A positive value is the signal that ended the loop: a clean exit. */
	return rc < 0 ? 1 : 0;
}

/* The configuration's named views, compiled; a bad one is refused alone with a message
 * naming its key (the mount serves everything else). Returns how many are in views. */
static size_t compile_views(const aprfs_conf *conf, aprfs_view *views)
{
	size_t n = 0;
	for (int i = 0; i < conf->nviews && i < APRFS_VIEW_MAX; i++) {
		aprfs_err err = {0};
		if (aprfs_view_parse(conf->view_name[i], conf->view_spec[i], &views[n], &err)) {
			aprfs_log(APRFS_LOG_ERROR, "%s; that view is not served", err.msg);
			aprfs_view_free(&views[n]);
			continue;
		}
		n++;
	}
	return n;
}

static int mount_main(int argc, char **argv)
{
	aprfs_view views[APRFS_VIEW_MAX]; /* the tree's, for the mount's lifetime */
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fo = {0};
	cmdline c = {0};
	aprfs_mount m = {0};
	aprfs_tree_conf tc = {0};
	aprfs_err err = {0};
	struct fuse *fuse = NULL;
	int rc = parse_args(&args, &c, &fo);

	if (rc)
		goto out;
	m.conf = c.conf;
	aprfs_mount_init(&m);
	aprfs_log_setup(fo.debug ? APRFS_LOG_DEBUG : m.conf.log_level, 0);
	/* Chunks warmed ahead must still be cached when the reader gets there. */
	m.ra_window = (uint64_t)m.conf.readahead_mb << 20;
	if (m.ra_window > ((uint64_t)m.conf.cache_mb << 20) / 2) {
		m.ra_window = ((uint64_t)m.conf.cache_mb << 20) / 2;
		aprfs_log(APRFS_LOG_INFO, "read-ahead limited to half the cache: %u MiB",
			  m.conf.cache_mb / 2);
	}
	raise_fd_limit();
	aprfs_tune_malloc();
	if (resolve_cache_dir(&m.conf) < 0) {
		rc = 2;
		goto out;
	}
	rc = 1;
	if (!(m.cache = aprfs_cache_new((size_t)m.conf.cache_mb << 20)))
		goto out;
	tc.variants = m.conf.variants;
	tc.nf4_block = m.conf.nf4_block;
	tc.cache = m.cache;
	tc.hide = fo.mountpoint;
	tc.imatrix = m.conf.imatrix[0] ? m.conf.imatrix : NULL;
	tc.views = views;
	tc.nviews = compile_views(&m.conf, views);
	if (aprfs_tree_new(c.source, &tc, &m.tree, &err) < 0) {
		fprintf(stderr, "aprfs: source %s\n", err.msg);
		rc = 2;
		goto out;
	}
	if (add_mount_names(&args, aprfs_tree_root(m.tree)) != 0)
		goto out;
	/* fuse_new refuses options nobody knows, with a message naming them. */
	fuse = fuse_new(&args, &aprfs_fuse_ops, sizeof(aprfs_fuse_ops), &m);
	if (!fuse) {
		rc = 2;
		goto out;
	}
	if (fuse_mount(fuse, fo.mountpoint) != 0)
		goto out;
	rc = serve(fuse, &m, &fo);
out:
	if (fuse)
		fuse_destroy(fuse);
	aprfs_mount_release_all(&m);
	aprfs_tree_free(m.tree);
	for (size_t i = 0; i < tc.nviews; i++)
		aprfs_view_free(&views[i]);
	aprfs_cache_free(m.cache);
	fuse_opt_free_args(&args);
	free(fo.mountpoint);
	free(c.source);
	return rc < 0 ? 0 : rc;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "convert") == 0)
		return aprfs_cmd_convert(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "inspect") == 0)
		return aprfs_cmd_inspect(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "variants") == 0)
		return aprfs_cmd_variants(argc - 1, argv + 1);
	return mount_main(argc, argv);
}
