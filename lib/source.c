/* source.c - a checkpoint as lib/source.h presents it: a single .safetensors file or a
 * sharded *.safetensors.index.json cross-checked against its shards, the config.json
 * beside it, reference counting, SIGBUS-safe reads and staleness by file identity. */
#include "source.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "utf8.h"

#define INDEX_MAX_BYTES (100u << 20)

struct aprfs_source {
	atomic_uint refs;
	char *path;
	int is_index;
	aprfs_file_id index_id;
	aprfs_st_file *shards;
	size_t nshards;
	aprfs_tensor *tensors; /* all shards, data order; owns the names */
	size_t count;
	aprfs_model_config cfg;
	char *cfg_path;
	int cfg_exists;
	aprfs_file_id cfg_id;
	atomic_uint_fast64_t copied; /* bytes read out of the mappings, for release_pages */
};

/* ---- SIGBUS-guarded copy ----
 * A file mapped with mmap can be truncated by another process at any time; touching a
 * page past the new end raises SIGBUS, whose default action kills the whole daemon. The
 * fstat checks around a copy catch most changes but cannot close the window between the
 * check and the copy, so the copy itself is guarded: the handler jumps back to the copy's
 * caller, which reports -EIO. The jump target is thread-local because any thread may be
 * copying, and a SIGBUS from a memory fault is delivered to the thread that faulted. A
 * fault outside a guarded copy is someone else's bug: the handler puts back the action
 * that was there before and returns, so the faulting instruction runs again and the
 * fault is delivered as if we had never been installed (normally: a core dump). */

static __thread sigjmp_buf *volatile bus_jump;
static struct sigaction bus_previous;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	sigjmp_buf *jb = bus_jump;

	(void)info;
	(void)ctx;
	if (jb)
		siglongjmp(*jb, 1);
	sigaction(sig, &bus_previous, NULL);
}

static void install_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_previous);
}

int aprfs_guarded_copy(void *dst, const void *src, size_t len)
{
	sigjmp_buf jb;

	pthread_once(&bus_once, install_sigbus);
	/* savemask 1: SIGBUS is blocked while its handler runs; jumping out must unblock
	 * it, or the next fault in this thread would kill the process outright. */
	if (sigsetjmp(jb, 1)) {
		bus_jump = NULL;
		return -1;
	}
	bus_jump = &jb;
	/* Keep the compiler from moving the copy outside the guarded region. */
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(dst, src, len);
	atomic_signal_fence(memory_order_seq_cst);
	bus_jump = NULL;
	return 0;
}

/* ---- paths ---- */

/* "dir/name" for a file beside path (just "name" when path has no directory). */
static char *sibling(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *s = malloc(dlen + strlen(name) + 1);

	if (s) {
		memcpy(s, path, dlen);
		strcpy(s + dlen, name);
	}
	return s;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A shard must live beside its index: no directories, no "..", no hidden files. */
static int check_shard_name(const char *index, const char *name, aprfs_err *err)
{
	size_t bad;

	if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) > 255 ||
	    !aprfs_utf8_valid(name, strlen(name), &bad))
		return aprfs_fail(err, EINVAL,
				  "%s: shard name '%.64s' is not a plain file name", index,
				  name);
	return 0;
}

/* ---- sharded index ---- */

typedef struct name_ref {
	const char *name;
	uint32_t shard;
} name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
	const name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reads until EOF or n bytes; returns the count, or -errno. */
static ssize_t read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The whole of a small file, NUL-terminated, and the identity of what was read. */
static int read_small_file(const char *path, size_t limit, char **buf, size_t *len,
			   aprfs_file_id *id, aprfs_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t got = 0;

	*buf = NULL;
	if (fd < 0 || fstat(fd, &st) != 0)
		rc = aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > limit)
		rc = aprfs_fail(err, EINVAL, "%s: not a regular file of at most %zu bytes",
				path, limit);
	else if (!(*buf = malloc((size_t)st.st_size + 1)))
		rc = aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	else if ((got = read_all(fd, *buf, (size_t)st.st_size)) < 0)
		rc = aprfs_fail(err, (int)-got, "%s: %s", path, strerror((int)-got));
	if (fd >= 0)
		close(fd);
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	aprfs_file_id_of(&st, id);
	*len = (size_t)got;
	(*buf)[*len] = 0;
	return 0;
}

/* Parse the index into (tensor, shard name) pairs; the shard name list comes back
 * sorted and unique, and every pair's .shard indexes it. */
static int parse_weight_map(const char *index, const cJSON *root, name_ref **refs,
			    size_t *nrefs, const char ***shard_names, size_t *nshards,
			    aprfs_err *err)
{
	const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
	const char **names, *dup;
	size_t n = 0, k = 0;
	int rc;

	if (md && !cJSON_IsObject(md) && !cJSON_IsNull(md))
		return aprfs_fail(err, EINVAL, "%s: metadata is not an object", index);
	if (!cJSON_IsObject(wm))
		return aprfs_fail(err, EINVAL, "%s: weight_map missing or not an object",
				  index);
	if ((dup = aprfs_json_dup_key(wm)))
		return aprfs_fail(err, EINVAL, "%s: weight_map: duplicate tensor name '%.256s'",
				  index, dup);
	for (const cJSON *e = wm->child; e; e = e->next, n++) {
		if ((rc = aprfs_st_check_name(index, e->string, err)))
			return rc;
		if (!cJSON_IsString(e))
			return aprfs_fail(err, EINVAL, "%s: weight_map['%s'] is not a string",
					  index, e->string);
		if ((rc = check_shard_name(index, e->valuestring, err)))
			return rc;
	}
	*refs = calloc(n + 1, sizeof(**refs));
	names = calloc(n + 1, sizeof(*names));
	if (!*refs || !names) {
		free(names);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", index);
	}
	n = 0;
	for (const cJSON *e = wm->child; e; e = e->next)
		names[n++] = e->valuestring;
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	n = 0;
	for (const cJSON *e = wm->child; e; e = e->next, n++) {
		const char **hit = bsearch(&e->valuestring, names, k, sizeof(*names), cmp_str);

		(*refs)[n].name = e->string;
		(*refs)[n].shard = (uint32_t)(hit - names);
	}
	*nrefs = n;
	*shard_names = names;
	*nshards = k;
	return 0;
}

static int open_shards(aprfs_source *s, const char **names, size_t n, aprfs_err *err)
{
	s->shards = calloc(n + 1, sizeof(*s->shards));
	if (!s->shards)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	for (size_t i = 0; i < n; i++) {
		char *p = sibling(s->path, names[i]);
		int rc;

		if (!p)
			return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
		rc = aprfs_st_open(p, (uint32_t)i, &s->shards[i], err);
		free(p);
		if (rc) {
			/* A missing shard is the index's fault: say which index. */
			if (err && err->code != EINVAL)
				aprfs_err_prefix(err, s->path);
			return rc;
		}
		s->nshards = i + 1;
	}
	return 0;
}

static const char *shard_name(const aprfs_source *s, uint32_t i)
{
	const char *p = s->shards[i].path, *slash = strrchr(p, '/');

	return slash ? slash + 1 : p;
}

/* One sorted walk over both lists: weight_map says tensor -> shard, the shards say what
 * they hold. Any disagreement is reported with the tensor and both sides' view. */
static int cross_check(const aprfs_source *s, name_ref *wm, size_t nwm, aprfs_err *err)
{
	size_t nt = 0, i = 0, j = 0;
	name_ref *held;
	int rc = 0;

	for (size_t k = 0; k < s->nshards; k++)
		nt += s->shards[k].count;
	if (!(held = calloc(nt + 1, sizeof(*held))))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	nt = 0;
	for (size_t k = 0; k < s->nshards; k++)
		for (size_t t = 0; t < s->shards[k].count; t++)
			held[nt++] = (name_ref){s->shards[k].tensors[t].name, (uint32_t)k};
	qsort(held, nt, sizeof(*held), cmp_name_ref);
	qsort(wm, nwm, sizeof(*wm), cmp_name_ref);
	for (size_t k = 1; k < nt && !rc; k++)
		if (strcmp(held[k - 1].name, held[k].name) == 0)
			rc = aprfs_fail(err, EINVAL,
					"%s: tensor '%s' appears in shards '%s' and '%s'",
					s->path, held[k].name, shard_name(s, held[k - 1].shard),
					shard_name(s, held[k].shard));
	while (!rc && (i < nwm || j < nt)) {
		int c = i == nwm ? 1 : j == nt ? -1 : strcmp(wm[i].name, held[j].name);

		if (c < 0)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: tensor '%s' listed in weight_map is not in shard '%s'",
			    s->path, wm[i].name, shard_name(s, wm[i].shard));
		else if (c > 0)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: shard '%s' holds tensor '%s', which weight_map does not list",
			    s->path, shard_name(s, held[j].shard), held[j].name);
		else if (wm[i].shard != held[j].shard)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: tensor '%s' is in shard '%s' but weight_map maps it to '%s'",
			    s->path, wm[i].name, shard_name(s, held[j].shard),
			    shard_name(s, wm[i].shard));
		i++;
		j++;
	}
	free(held);
	return rc;
}

static int open_index(aprfs_source *s, aprfs_err *err)
{
	char *text;
	size_t len = 0, nrefs = 0, nnames = 0;
	const char **names = NULL;
	name_ref *refs = NULL;
	const char *dup;
	cJSON *root = NULL;
	int rc = read_small_file(s->path, INDEX_MAX_BYTES, &text, &len, &s->index_id, err);

	if (rc)
		return rc;
	if (memchr(text, 0, len) || !(root = cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1)))
		rc = aprfs_fail(err, EINVAL, "%s: not valid JSON", s->path);
	else if (!cJSON_IsObject(root))
		rc = aprfs_fail(err, EINVAL, "%s: not a JSON object", s->path);
	else if ((dup = aprfs_json_dup_key(root)))
		rc = aprfs_fail(err, EINVAL, "%s: duplicate key '%.64s'", s->path, dup);
	else
		rc = parse_weight_map(s->path, root, &refs, &nrefs, &names, &nnames, err);
	if (rc == 0)
		rc = open_shards(s, names, nnames, err);
	if (rc == 0)
		rc = cross_check(s, refs, nrefs, err);
	free(refs);
	free(names);
	cJSON_Delete(root);
	free(text);
	return rc;
}

/* Move every shard's tensors into one array: shard order (sorted names), then data order. */
static int gather_tensors(aprfs_source *s, aprfs_err *err)
{
	size_t n = 0;

	for (size_t k = 0; k < s->nshards; k++)
		n += s->shards[k].count;
	if (!(s->tensors = calloc(n + 1, sizeof(*s->tensors))))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	for (size_t k = 0; k < s->nshards; k++) {
		aprfs_st_file *f = &s->shards[k];

		if (f->count)
			memcpy(s->tensors + s->count, f->tensors,
			       f->count * sizeof(*f->tensors));
		s->count += f->count;
		free(f->tensors);
		f->tensors = NULL;
		f->count = 0;
	}
	return 0;
}

/* Stat before parsing: if config.json changes in between, the identity recorded is the
 * older one and aprfs_source_stale() reports the change, never the reverse. */
static int load_config(aprfs_source *s, aprfs_err *err)
{
	struct stat st;

	if (!(s->cfg_path = sibling(s->path, "config.json")))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	s->cfg_exists = stat(s->cfg_path, &st) == 0;
	if (s->cfg_exists)
		aprfs_file_id_of(&st, &s->cfg_id);
	return aprfs_config_load(s->cfg_path, &s->cfg, err);
}

static void source_free(aprfs_source *s)
{
	for (size_t k = 0; k < s->nshards; k++)
		aprfs_st_close(&s->shards[k]);
	free(s->shards);
	aprfs_tensors_free(s->tensors, s->count);
	free(s->cfg_path);
	free(s->path);
	free(s);
}

int aprfs_source_open(const char *path, aprfs_source **out, aprfs_err *err)
{
	aprfs_source *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	}
	atomic_init(&s->refs, 1);
	if (ends_with(path, ".json") && !ends_with(path, ".safetensors.index.json")) {
		free(s->path);
		free(s);
		return aprfs_fail(err, EINVAL,
				  "%s: not a checkpoint (expected X.safetensors or "
				  "X.safetensors.index.json)",
				  path);
	}
	s->is_index = ends_with(path, ".json");
	if (s->is_index) {
		rc = open_index(s, err);
	} else if (!(s->shards = calloc(1, sizeof(*s->shards)))) {
		rc = aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	} else {
		rc = aprfs_st_open(path, 0, &s->shards[0], err);
		s->nshards = rc == 0;
	}
	if (rc == 0)
		rc = gather_tensors(s, err);
	if (rc == 0)
		rc = load_config(s, err);
	if (rc) {
		source_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void aprfs_source_ref(aprfs_source *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void aprfs_source_unref(aprfs_source *s)
{
	/* acq_rel: the thread that frees must see every other holder's last use. */
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		source_free(s);
}

const char *aprfs_source_path(const aprfs_source *s)
{
	return s->path;
}
const char *aprfs_source_format(const aprfs_source *s)
{
	(void)s; /* only safetensors so far; GGUF sources would say "gguf" */
	return "safetensors";
}
size_t aprfs_source_count(const aprfs_source *s)
{
	return s->count;
}
const aprfs_model_config *aprfs_source_config(const aprfs_source *s)
{
	return &s->cfg;
}
size_t aprfs_source_shard_count(const aprfs_source *s)
{
	return s->nshards;
}

const aprfs_tensor *aprfs_source_tensor(const aprfs_source *s, size_t i)
{
	return i < s->count ? &s->tensors[i] : NULL;
}

const char *aprfs_source_shard_path(const aprfs_source *s, size_t i)
{
	return i < s->nshards ? s->shards[i].path : NULL;
}

static int shard_unchanged(const aprfs_st_file *f)
{
	struct stat st;
	aprfs_file_id now;

	if (fstat(f->fd, &st) != 0)
		return 0;
	aprfs_file_id_of(&st, &now);
	return aprfs_file_id_equal(&now, &f->id);
}

/* Keeping the daemon's resident set to its cache: pages copied out of the mapping are
 * dropped from it (they stay in the page cache; the pages are clean and private, so a
 * thread still copying from one merely faults it back in).
 *
 * First the whole pages of the range just copied. The partial pages at its two ends are
 * shared with the neighbouring ranges, which may still be in use, and releasing one early
 * makes the neighbour fault in mid-page, where the kernel's fault-around maps back a whole
 * aligned 64 KiB window; so they are left, one page per chunk: tens of MiB per GiB read.
 * Hence, second, a sweep of the whole mapping after every SWEEP_BYTES copied, which drops
 * those leftovers too; it only walks page tables, so it is cheap. */
#define SWEEP_BYTES (64u << 20)

static void release_pages(aprfs_source *s, const aprfs_st_file *f, const uint8_t *p, size_t len)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
	uintptr_t b = ((uintptr_t)p + len) & ~(page - 1);

	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
	uint64_t before = atomic_fetch_add(&s->copied, len);
	if (before / SWEEP_BYTES != (before + len) / SWEEP_BYTES)
		madvise((void *)f->map, f->map_len, MADV_DONTNEED);
}

int aprfs_source_read(aprfs_source *s, const aprfs_tensor *t, uint64_t off, size_t len,
		      void *dst, aprfs_err *err)
{
	const aprfs_st_file *f;

	if (t < s->tensors || t >= s->tensors + s->count)
		return aprfs_fail(err, EINVAL, "%s: tensor does not belong to this source",
				  s->path);
	if (off > t->nbytes || len > t->nbytes - off)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': read of %zu bytes at %llu beyond %llu",
				  s->path, t->name, len, (unsigned long long)off,
				  (unsigned long long)t->nbytes);
	if (len == 0)
		return 0;
	f = &s->shards[t->shard];
	/* Checked before and after: the second check catches a change made during the
	 * copy, so a caller never gets a mix of old and new bytes as success. */
	if (!shard_unchanged(f) ||
	    aprfs_guarded_copy(dst, f->map + t->file_off + off, len) != 0 ||
	    !shard_unchanged(f))
		return aprfs_fail(err, EIO, "%s: changed since it was opened", f->path);
	release_pages(s, f, f->map + t->file_off + off, len);
	return 0;
}

static int path_changed(const char *path, const aprfs_file_id *id)
{
	struct stat st;
	aprfs_file_id now;

	if (stat(path, &st) != 0)
		return 1;
	aprfs_file_id_of(&st, &now);
	return !aprfs_file_id_equal(&now, id);
}

int aprfs_source_stale(const aprfs_source *s)
{
	struct stat st;

	if (s->is_index && path_changed(s->path, &s->index_id))
		return 1;
	for (size_t k = 0; k < s->nshards; k++)
		if (path_changed(s->shards[k].path, &s->shards[k].id))
			return 1;
	if (s->cfg_exists != (stat(s->cfg_path, &st) == 0))
		return 1;
	return s->cfg_exists && path_changed(s->cfg_path, &s->cfg_id);
}
