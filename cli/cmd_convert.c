/* cmd_convert.c - `aprfs convert`: materialise one virtual APR file by reading it
 * sequentially through the range API (the same bytes the mount serves), into a temporary
 * file beside OUTPUT that is renamed into place only once complete and synced; with
 * --cache-dir, through (and filling) the disk cache a mount may share. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/scratch.h"
#include "cache/cache.h"
#include "cache/diskcache.h"
#include "cmd.h"
#include "file/aprfile.h"
#include "file/stream.h"
#include "source/imatrix.h"

#define CONVERT_BUF   (4u << 20)
#define CONVERT_CACHE (16u << 20) /* keeps chunks that straddle two reads */

/* The temporary file a signal must remove. Only the CLI process has one at a time. */
static char tmp_path[PATH_MAX];

static void on_signal(int sig)
{
	if (tmp_path[0])
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Signals that end a convert: each removes the temporary file first. */
static void catch_signals(void (*handler)(int))
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXFSZ};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], handler);
}

static int same_file(const char *a, const char *b)
{
	struct stat x, y;
	return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev &&
	       x.st_ino == y.st_ino;
}

/* Renaming over the checkpoint being read would destroy it: refuse. */
static int refuse_overwriting_source(const aprfs_source *s, const char *output, aprfs_err *err)
{
	int hit = same_file(aprfs_source_path(s), output);
	for (size_t i = 0; !hit && i < aprfs_source_shard_count(s); i++)
		hit = same_file(aprfs_source_shard_path(s, i), output);
	if (hit)
		return aprfs_fail(err, EINVAL,
				  "%s: is the source checkpoint; refusing to overwrite it",
				  output);
	return 0;
}

static int parse_threads(const char *arg, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(arg, &end, 10);
	if (*end || !*arg || arg[0] == '-' || n == 0 || n > 256) {
		fprintf(stderr, "aprfs convert: --threads %s: must be a number from 1 to 256\n",
			arg);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

static int parse_nf4_block(const char *arg, uint32_t *out)
{
	char *end;
	unsigned long b = strtoul(arg, &end, 10);
	if (*end || !*arg || arg[0] == '-' || b == 0 || b % 2 || b > (1u << 20)) {
		fprintf(stderr,
			"aprfs convert: --nf4-block %s: must be an even number from 2 to "
			"1048576\n",
			arg);
		return -1;
	}
	*out = (uint32_t)b;
	return 0;
}

/* --disk-cache-mb N: 1 .. 2^24 MiB, as the mount's disk_cache_mb. */
static int parse_disk_mb(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long n = strtoull(arg, &end, 10);
	if (*end || !*arg || arg[0] < '0' || arg[0] > '9' || n == 0 || n > (1u << 24)) {
		fprintf(stderr,
			"aprfs convert: --disk-cache-mb %s: must be a number from 1 to "
			"16777216\n",
			arg);
		return -1;
	}
	*out = (uint64_t)n << 20;
	return 0;
}

static void usage(FILE *to)
{
	char names[256];

	aprfs_variant_list(names, sizeof(names), " ");
	fprintf(
	    to,
	    "usage: aprfs convert [--variant V] [--nf4-block N] [--root DIR] [--threads N]\n"
	    "                     [--cache-dir DIR [--disk-cache-mb N]] [--imatrix FILE] "
	    "[--quiet]\n"
	    "                     SOURCE OUTPUT\n"
	    "  SOURCE  X.safetensors, X.safetensors.index.json or X.gguf\n"
	    "  OUTPUT  the .apr file to write; V defaults to the V of OUTPUT's *.V.apr name\n"
	    "  --root DIR  the source tree SOURCE belongs to, as a mount's SOURCE_DIR: the\n"
	    "              metadata 'source' path is relative to it, and no file outside it\n"
	    "              is read (default: SOURCE's directory, and no such limit)\n"
	    "  --imatrix FILE  weight the k-quant views (q4k, q6k, q4km) by this llama.cpp\n"
	    "              importance matrix (imatrix.gguf or legacy .dat; default: the first\n"
	    "              of X.imatrix.gguf, X.imatrix.dat, imatrix.gguf, imatrix.dat beside\n"
	    "              SOURCE, as a mount finds it)\n"
	    "  --threads N quantize and write on N threads in all (default: every core);\n"
	    "              the output is the same for every N\n"
	    "  --cache-dir DIR  read what a mount or an earlier convert computed from the\n"
	    "              disk cache in DIR, and add what this one computes (a mount with\n"
	    "              -o cache_dir=DIR shares it; use --root to share the footer too)\n"
	    "  --disk-cache-mb N  DIR's budget in MiB (default %u)\n"
	    "  variants: %s\n",
	    APRFS_DISKCACHE_DEFAULT_MB, names);
}

/* "x/model.q4k.apr" -> "q4k" */
static int variant_from_name(const char *out, char *v, size_t cap)
{
	const char *base = strrchr(out, '/');
	base = base ? base + 1 : out;
	size_t n = strlen(base);
	if (n < 5 || strcmp(base + n - 4, ".apr") != 0)
		return -1;
	const char *end = base + n - 4, *dot = end;
	while (dot > base && dot[-1] != '.')
		dot--;
	if (dot == base || (size_t)(end - dot) >= cap)
		return -1;
	memcpy(v, dot, (size_t)(end - dot));
	v[end - dot] = '\0';
	return aprfs_variant_index(v) < 0 ? -1 : 0;
}

/* SOURCE relative to DIR (rd, canonical), as the mount names it: its directory made
 * absolute, its own name kept, a link not followed (a hub snapshot's model.safetensors is
 * a link into blobs/, and its name in the tree is the link's). */
static int relative_to(const char *path, const char *rd, char *out, size_t cap)
{
	char dir[PATH_MAX], rp[PATH_MAX];
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path + 1) : 1,
		 slash ? path : ".");
	if (!realpath(dir, rp) || !*base || strlen(rp) + strlen(base) + 2 > sizeof(rp))
		return -1;
	size_t n = strlen(rd);
	if (strncmp(rp, rd, n) != 0 || (rp[n] != '/' && rp[n] != '\0' && n != 1))
		return -1;
	snprintf(out, cap, "%s%s%s", rp + n + (n != 1 && rp[n] == '/'), rp[n] ? "/" : "", base);
	return 0;
}

static void progress(aprfs_file *f, uint64_t done, double t0, int final)
{
	uint64_t size = aprfs_file_size(f);
	size_t nt = aprfs_file_tensor_count(f), td = 0;
	for (size_t i = 0; i < nt; i++) {
		aprfs_file_tensor ti;
		if (aprfs_file_tensor_info(f, i, &ti, NULL) == 0)
			td += ti.offset + ti.size <= done;
	}
	double dt = aprfs_now_s() - t0;
	fprintf(stderr, "\r%s: tensors %zu/%zu  %.1f/%.1f MiB  %.1f MB/s%s",
		aprfs_file_variant(f), td, nt, done / 1048576.0, size / 1048576.0,
		dt > 0 ? done / dt / 1e6 : 0.0, final ? "\n" : "  ");
}

/* The sink of the stream: the pieces, in order, into the output; progress on a TTY. */
typedef struct out {
	aprfs_file *f;
	int fd, show;
	double t0, last;
} out;

static int write_piece(void *ctx, const uint8_t *data, size_t len, uint64_t off, aprfs_err *err)
{
	out *o = ctx;
	uint64_t end = off + len;

	for (size_t w = 0; w < len;) {
		ssize_t k = write(o->fd, data + w, len - w);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return aprfs_fail(err, errno, "write: %s", strerror(errno));
		w += (size_t)k;
	}
	if (o->show && (aprfs_now_s() - o->last > 0.25 || end == aprfs_file_size(o->f))) {
		progress(o->f, end, o->t0, end == aprfs_file_size(o->f));
		o->last = aprfs_now_s();
	}
	return 0;
}

/* The whole virtual file into fd, computed by `threads` workers (or loaded from dc, which
 * may be NULL). */
static int copy_out(aprfs_file *f, aprfs_diskcache *dc, int fd, unsigned threads, int show,
		    aprfs_err *err)
{
	aprfs_cache *cache = aprfs_cache_new(CONVERT_CACHE);
	out o = {f, fd, show, aprfs_now_s(), 0};
	int rc;

	if (cache)
		aprfs_cache_set_disk(cache, dc);
	rc = cache ? aprfs_file_stream(f, cache, threads, write_piece, &o, err)
		   : aprfs_fail(err, ENOMEM, "out of memory");
	aprfs_cache_free(cache);
	return rc;
}

/* --cache-dir: the disk cache, waiting for its writer rather than dropping entries (filling
 * the cache is the point). NULL without --cache-dir, or when it cannot be opened (said). */
static aprfs_diskcache *open_disk_cache(const char *dir, uint64_t budget)
{
	aprfs_diskcache_opts o = {.dir = dir, .budget = budget, .wait_when_full = 1};
	aprfs_diskcache *dc = NULL;
	aprfs_err err = {0};

	if (dir && aprfs_diskcache_open(&o, &dc, &err) < 0)
		fprintf(stderr, "aprfs convert: disk cache off: %s\n", err.msg);
	return dc;
}

/* Writes what is queued; says what the disk cache did unless quiet. */
static void close_disk_cache(aprfs_diskcache *dc, int quiet)
{
	aprfs_diskcache_stats st;

	if (!dc)
		return;
	aprfs_diskcache_flush(dc);
	aprfs_diskcache_get_stats(dc, &st);
	if (!quiet)
		fprintf(stderr,
			"aprfs convert: disk cache %s: %llu hits, %llu misses, %llu entries "
			"written (%.1f MiB)%s\n",
			aprfs_diskcache_dir(dc), (unsigned long long)st.hits,
			(unsigned long long)st.misses, (unsigned long long)st.entries_written,
			st.bytes_written / 1048576.0, st.degraded ? ", degraded" : "");
	aprfs_diskcache_close(dc);
}

static int write_atomically(aprfs_file *f, aprfs_diskcache *dc, const char *output,
			    unsigned threads, int show, aprfs_err *err)
{
	snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.XXXXXX", output);
	int fd = mkstemp(tmp_path);
	if (fd < 0) {
		int e = errno;
		tmp_path[0] = '\0';
		return aprfs_fail(err, e, "%s: cannot create a temporary file beside it: %s",
				  output, strerror(e));
	}
	int rc = copy_out(f, dc, fd, threads, show, err);
	if (!rc && fchmod(fd, 0644) != 0)
		rc = aprfs_fail(err, errno, "%s: chmod: %s", tmp_path, strerror(errno));
	if (!rc && fsync(fd) != 0)
		rc = aprfs_fail(err, errno, "%s: fsync: %s", tmp_path, strerror(errno));
	if (close(fd) != 0 && !rc)
		rc = aprfs_fail(err, errno, "%s: close: %s", tmp_path, strerror(errno));
	if (!rc && rename(tmp_path, output) != 0)
		rc = aprfs_fail(err, errno, "%s: rename: %s", output, strerror(errno));
	if (rc)
		unlink(tmp_path);
	tmp_path[0] = '\0';
	return rc;
}

/* --imatrix FILE that the source could not use: the reason, as an error. */
static int check_imatrix(const char *path, aprfs_err *err)
{
	aprfs_imatrix *m = NULL;
	int rc = aprfs_imatrix_load(path, &m, err);
	aprfs_imatrix_free(m);
	return rc ? rc
		  : aprfs_fail(err, EINVAL, "%s: not usable as an importance matrix", path);
}

int aprfs_cmd_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"variant", required_argument, NULL, 'v'},
	    {"nf4-block", required_argument, NULL, 'b'},
	    {"root", required_argument, NULL, 'r'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"threads", required_argument, NULL, 't'},
	    {"cache-dir", required_argument, NULL, 'c'},
	    {"disk-cache-mb", required_argument, NULL, 'm'},
	    {"imatrix", required_argument, NULL, 'i'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	char variant[32] = "", rel[PATH_MAX], root_real[PATH_MAX];
	aprfs_source_ctx ctx = {0};
	const char *root = NULL, *cache_dir = NULL;
	uint64_t disk_budget = 0;
	aprfs_opts o;
	int quiet = 0, c;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cores > 0 ? (unsigned)cores : 1;

	aprfs_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "v:b:r:qt:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (!*optarg || strlen(optarg) >= sizeof(variant)) {
				fprintf(stderr,
					"aprfs convert: --variant '%s': not a variant\n",
					optarg);
				usage(stderr);
				return 2;
			}
			snprintf(variant, sizeof(variant), "%s", optarg);
			break;
		case 'b':
			if (parse_nf4_block(optarg, &o.nf4_block) != 0)
				return 2;
			break;
		case 'r': root = optarg; break;
		case 'q': quiet = 1; break;
		case 't':
			if (parse_threads(optarg, &threads) != 0)
				return 2;
			break;
		case 'c': cache_dir = optarg; break;
		case 'i': ctx.imatrix = optarg; break;
		case 'm':
			if (parse_disk_mb(optarg, &disk_budget) != 0)
				return 2;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (disk_budget && !cache_dir) {
		fprintf(stderr, "aprfs convert: --disk-cache-mb needs --cache-dir\n");
		return 2;
	}
	if (cache_dir && !disk_budget)
		disk_budget = (uint64_t)APRFS_DISKCACHE_DEFAULT_MB << 20;
	const char *source = argv[optind], *output = argv[optind + 1];
	if (!variant[0] && variant_from_name(output, variant, sizeof(variant)) != 0) {
		fprintf(stderr,
			"aprfs convert: %s: name it X.<variant>.apr or pass --variant\n",
			output);
		return 2;
	}
	if (aprfs_variant_index(variant) < 0) {
		fprintf(stderr, "aprfs convert: unknown variant '%s'\n", variant);
		usage(stderr);
		return 2;
	}
	if (root) {
		if (!realpath(root, root_real) ||
		    relative_to(source, root_real, rel, sizeof(rel)) != 0) {
			fprintf(stderr, "aprfs convert: %s is not inside --root %s\n", source,
				root);
			return 2;
		}
		o.source_rel = rel;
		ctx.root = root_real; /* as the mount: nothing outside the root is read */
	}

	aprfs_tune_malloc();
	aprfs_err err = {0};
	aprfs_source *src = NULL;
	aprfs_file *f = NULL;
	int rc = aprfs_source_open(source, &ctx, &src, &err);
	if (!rc && ctx.imatrix && !aprfs_source_imatrix(src)) /* asked for, so required */
		rc = check_imatrix(ctx.imatrix, &err);
	if (!rc)
		rc = aprfs_file_open(src, variant, &o, &f, &err);
	if (!rc) {
		aprfs_diskcache *dc = NULL;
		catch_signals(on_signal);
		rc = refuse_overwriting_source(src, output, &err);
		if (!rc)
			dc = open_disk_cache(cache_dir, disk_budget);
		if (!rc)
			rc = write_atomically(f, dc, output, threads,
					      !quiet && isatty(STDERR_FILENO), &err);
		close_disk_cache(dc, quiet);
		catch_signals(SIG_DFL);
	}
	aprfs_file_unref(f);
	if (src)
		aprfs_source_unref(src);
	if (rc) {
		fprintf(stderr, "aprfs convert: %s\n", err.msg);
		return 1;
	}
	return 0;
}
