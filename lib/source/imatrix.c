/* imatrix.c - reading llama.cpp importance matrices (imatrix.h): the file whole into
 * memory (hashed for its identity), GGUF entries paired as in_sum2 / counts or legacy
 * entries divided by their call count, every value checked; lookups by either spelling. */
#include "source/imatrix.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sha256.h"
#include "source/gguf.h"

#define IMATRIX_MAX_BYTES (1ull << 31) /* a 405B model's matrix is ~100 MB */
#define IMATRIX_MAX_NAME  1024

typedef struct im_entry {
	char *name;
	uint64_t ncols;
	float *w;	 /* ncols weights, NULL when unusable */
	const char *bad; /* why unusable (a literal), or NULL */
} im_entry;

struct aprfs_imatrix {
	char *path;
	uint8_t digest[32];
	char hex[65];
	im_entry *e;
	size_t n, cap;
	int cut_at; /* legacy file: the entry number whose name was cut or bad, or 0 */
};

/* ---- the file ---- */

static int read_whole(const char *path, int fd, uint8_t **buf, size_t *len, aprfs_err *err)
{
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > IMATRIX_MAX_BYTES)
		return aprfs_fail(err, EINVAL, "%s: not a regular file of at most 2 GiB", path);
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	size_t at = 0;
	while (*buf && at < *len) {
		ssize_t r = pread(fd, *buf + at, *len - at, (off_t)at);
		if (r <= 0)
			break;
		at += (size_t)r;
	}
	if (!*buf)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	if (at < *len) {
		free(*buf);
		return aprfs_fail(err, EIO, "%s: read failed or the file shrank", path);
	}
	return 0;
}

static im_entry *add_entry(aprfs_imatrix *m, const char *name, size_t name_len)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		im_entry *e = realloc(m->e, cap * sizeof(*e));
		if (!e)
			return NULL;
		m->e = e;
		m->cap = cap;
	}
	im_entry *e = &m->e[m->n];
	memset(e, 0, sizeof(*e));
	if (!(e->name = strndup(name, name_len)))
		return NULL;
	m->n++;
	return e;
}

/* Tensor names the log may print as they are: printable ASCII, no space. */
static int name_ok(const char *s, size_t n)
{
	if (n == 0 || n > IMATRIX_MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* w[i] = sum[i] / count for ncols values (unaligned little-endian f32 in). Sets e->w or
 * e->bad. */
static void set_weights(im_entry *e, const uint8_t *sum, uint64_t ncols, float count)
{
	e->ncols = ncols;
	if (!(count > 0.0f) || !isfinite(count)) {
		e->bad = "its count is zero, negative or not a number";
		return;
	}
	float *w = malloc(ncols * sizeof(float));
	if (!w) {
		e->bad = "out of memory";
		return;
	}
	for (uint64_t i = 0; i < ncols; i++) {
		float v;
		memcpy(&v, sum + 4 * i, 4);
		v /= count;
		if (!isfinite(v) || v < 0.0f) {
			free(w);
			e->bad = "it holds a NaN, infinite or negative value";
			return;
		}
		w[i] = v;
	}
	e->w = w;
}

/* ---- imatrix.gguf ---- */

typedef struct {
	const uint8_t *buf;
	size_t len;
} mem_in;

static int mem_read(void *ctx, uint64_t off, void *dst, size_t n)
{
	const mem_in *m = ctx;
	if (off > m->len || n > m->len - off)
		return -1;
	memcpy(dst, m->buf + off, n);
	return 0;
}

static const aprfs_tensor *find_tensor(const aprfs_gguf_info *g, const char *name)
{
	for (size_t i = 0; i < g->count; i++)
		if (strcmp(g->tensors[i].name, name) == 0)
			return &g->tensors[i];
	return NULL;
}

static int has_suffix(const char *s, const char *suf, size_t *stem)
{
	size_t n = strlen(s), k = strlen(suf);
	*stem = n - k;
	return n > k && strcmp(s + n - k, suf) == 0;
}

/* One <stem>.in_sum2 tensor and its <stem>.counts partner into an entry. */
static int gguf_entry(aprfs_imatrix *m, const aprfs_gguf_info *g, const aprfs_tensor *sum,
		      size_t stem, const uint8_t *buf)
{
	char cname[IMATRIX_MAX_NAME + 16];
	im_entry *e = add_entry(m, sum->name, stem);
	if (!e)
		return -ENOMEM;
	snprintf(cname, sizeof(cname), "%.*s.counts", (int)stem, sum->name);
	const aprfs_tensor *cnt = find_tensor(g, cname);
	const uint64_t ncols = sum->ndim ? sum->dims[sum->ndim - 1] : 1;
	float count = 0.0f;
	if (sum->dtype != APRFS_SRC_F32 || ncols == 0) {
		e->bad = "its in_sum2 is not an F32 tensor";
	} else if (!cnt || cnt->dtype != APRFS_SRC_F32 || cnt->nelem == 0) {
		e->bad = "it has no F32 counts tensor";
	} else if (sum->nelem != ncols || cnt->nelem != 1) {
		e->bad = "it holds per-expert matrices (not supported)";
	} else {
		memcpy(&count, buf + cnt->file_off, 4);
		set_weights(e, buf + sum->file_off, ncols, count);
	}
	return 0;
}

static int load_gguf(aprfs_imatrix *m, const uint8_t *buf, size_t len, aprfs_err *err)
{
	mem_in in = {buf, len};
	aprfs_gguf_input gi = {mem_read, &in, len};
	aprfs_gguf_info g;
	int rc = aprfs_gguf_parse(m->path, &gi, &g, err);
	for (size_t i = 0; rc == 0 && i < g.count; i++) {
		size_t stem;
		if (has_suffix(g.tensors[i].name, ".in_sum2", &stem) &&
		    name_ok(g.tensors[i].name, stem))
			rc = gguf_entry(m, &g, &g.tensors[i], stem, buf);
	}
	if (rc == -ENOMEM)
		rc = aprfs_fail(err, ENOMEM, "%s: out of memory", m->path);
	if (rc == 0 && m->n == 0)
		rc = aprfs_fail(err, EINVAL, "%s: no <tensor>.in_sum2 entries", m->path);
	aprfs_gguf_info_free(&g);
	return rc;
}

/* ---- legacy imatrix.dat ---- */

static int get_i32(const uint8_t *buf, size_t len, size_t *at, int32_t *v)
{
	if (len - *at < 4)
		return -1;
	memcpy(v, buf + *at, 4);
	*at += 4;
	return 0;
}

/* One entry: int32 name length, the name, int32 ncall, int32 nval, nval f32 (sums of
 * ncall calls). 1 read, 0 truncated (logged), -ENOMEM. */
static int dat_entry(aprfs_imatrix *m, const uint8_t *buf, size_t len, size_t *at, int idx)
{
	int32_t nlen, ncall, nval;
	if (get_i32(buf, len, at, &nlen) || nlen <= 0 || (size_t)nlen > len - *at ||
	    !name_ok((const char *)buf + *at, (size_t)nlen)) {
		m->cut_at = idx + 1; /* logged once the file is read */
		return 0;
	}
	im_entry *e = add_entry(m, (const char *)buf + *at, (size_t)nlen);
	if (!e)
		return -ENOMEM;
	*at += (size_t)nlen;
	if (get_i32(buf, len, at, &ncall) || get_i32(buf, len, at, &nval) || nval <= 0 ||
	    (size_t)nval > (len - *at) / 4) {
		e->bad = "its entry is truncated";
		return 0;
	}
	set_weights(e, buf + *at, (uint64_t)nval, (float)ncall);
	*at += 4 * (size_t)nval;
	return 1;
}

static int load_dat(aprfs_imatrix *m, const uint8_t *buf, size_t len, aprfs_err *err)
{
	size_t at = 0;
	int32_t n;
	if (get_i32(buf, len, &at, &n) || n <= 0 || (size_t)n > len / 12)
		return aprfs_fail(err, EINVAL,
				  "%s: not an importance matrix (neither GGUF nor a legacy "
				  "imatrix.dat with a plausible entry count)",
				  m->path);
	for (int32_t i = 0; i < n; i++) {
		int rc = dat_entry(m, buf, len, &at, i);
		if (rc < 0)
			return aprfs_fail(err, ENOMEM, "%s: out of memory", m->path);
		if (rc == 0)
			break;
	}
	if (m->n == 0)
		return aprfs_fail(err, EINVAL, "%s: truncated before its first entry", m->path);
	return 0;
}

/* ---- the matrix ---- */

/* Each unusable entry once per file contents (keyed by the SHA-256: a snapshot reopened
 * says nothing new, a replaced file says it again). */
static void log_problems(const aprfs_imatrix *m)
{
	char key[IMATRIX_MAX_NAME + 4200];
	if (m->cut_at) {
		snprintf(key, sizeof(key), "%s\n%s\ncut", m->path, m->hex);
		aprfs_log_once(APRFS_LOG_WARN, key,
			       "%s: entry %d: bad or truncated name; entries from it on are "
			       "ignored",
			       m->path, m->cut_at);
	}
	for (size_t i = 0; i < m->n; i++) {
		if (!m->e[i].bad)
			continue;
		snprintf(key, sizeof(key), "%s\n%s\n%s", m->path, m->hex, m->e[i].name);
		aprfs_log_once(APRFS_LOG_WARN, key, "%s: tensor '%s': %s; quantized unweighted",
			       m->path, m->e[i].name, m->e[i].bad);
	}
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const im_entry *)a)->name, ((const im_entry *)b)->name);
}

int aprfs_imatrix_load(const char *path, aprfs_imatrix **out, aprfs_err *err)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	*out = NULL;
	if (fd < 0)
		return aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
	int rc = aprfs_imatrix_load_fd(path, fd, out, err);
	close(fd);
	return rc;
}

int aprfs_imatrix_load_fd(const char *path, int fd, aprfs_imatrix **out, aprfs_err *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = read_whole(path, fd, &buf, &len, err);
	if (rc == 0)
		rc = aprfs_imatrix_parse(path, buf, len, out, err);
	free(buf);
	return rc;
}

int aprfs_imatrix_parse(const char *path, const uint8_t *buf, size_t len, aprfs_imatrix **out,
			aprfs_err *err)
{
	aprfs_imatrix *m = calloc(1, sizeof(*m));
	*out = NULL;
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	}
	aprfs_sha256(buf, len, m->digest);
	aprfs_sha256_hex(m->digest, m->hex);
	int rc = len >= 4 && memcmp(buf, "GGUF", 4) == 0 ? load_gguf(m, buf, len, err)
							 : load_dat(m, buf, len, err);
	if (rc) {
		aprfs_imatrix_free(m);
		return rc;
	}
	qsort(m->e, m->n, sizeof(*m->e), cmp_entry);
	log_problems(m);
	*out = m;
	return 0;
}

void aprfs_imatrix_free(aprfs_imatrix *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].name);
		free(m->e[i].w);
	}
	free(m->e);
	free(m->path);
	free(m);
}

const char *aprfs_imatrix_path(const aprfs_imatrix *m)
{
	return m->path;
}

const char *aprfs_imatrix_sha256(const aprfs_imatrix *m)
{
	return m->hex;
}

const uint8_t *aprfs_imatrix_digest(const aprfs_imatrix *m)
{
	return m->digest;
}

size_t aprfs_imatrix_count(const aprfs_imatrix *m)
{
	return m->n;
}

static const im_entry *find(const aprfs_imatrix *m, const char *name)
{
	im_entry key = {.name = (char *)name};
	return bsearch(&key, m->e, m->n, sizeof(*m->e), cmp_entry);
}

const float *aprfs_imatrix_weights(const aprfs_imatrix *m, const char *name, uint64_t ncols)
{
	char other[IMATRIX_MAX_NAME + 64];
	const im_entry *e = find(m, name);
	if (!e && (aprfs_tensor_name_to_gguf(name, other, sizeof(other)) ||
		   aprfs_tensor_name_to_hf(name, other, sizeof(other))))
		e = find(m, other);
	if (!e || e->bad)
		return NULL; /* an unusable entry was logged at load */
	if (e->ncols != ncols) {
		char key[2 * IMATRIX_MAX_NAME];
		snprintf(key, sizeof(key), "%s\n%s\ncols", m->path, name);
		aprfs_log_once(APRFS_LOG_WARN, key,
			       "%s: tensor '%s': the matrix has %" PRIu64
			       " columns, the tensor %" PRIu64 "; quantized unweighted",
			       m->path, name, e->ncols, ncols);
		return NULL;
	}
	return e->w;
}

void aprfs_imatrix_note_missing(const aprfs_imatrix *m, const char *name)
{
	char other[IMATRIX_MAX_NAME + 64], key[2 * IMATRIX_MAX_NAME];
	if (find(m, name) || ((aprfs_tensor_name_to_gguf(name, other, sizeof(other)) ||
			       aprfs_tensor_name_to_hf(name, other, sizeof(other))) &&
			      find(m, other)))
		return;
	snprintf(key, sizeof(key), "%s\n%s\nmissing", m->path, name);
	aprfs_log_once(APRFS_LOG_WARN, key,
		       "%s: no entry for tensor '%s'; quantized unweighted", m->path, name);
}

/* ---- names ---- */

/* Hugging Face llama names and their GGUF spellings: whole names, then the part after
 * "model.layers.N." / "blk.N.". */
static const char *const whole[][2] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"lm_head.weight", "output.weight"},
    {"model.norm.weight", "output_norm.weight"},
};
static const char *const in_layer[][2] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
};

/* from = 0: Hugging Face -> GGUF; 1: GGUF -> Hugging Face. */
static int map_name(const char *name, int from, char *out, size_t cap)
{
	static const char *const prefix[2] = {"model.layers.", "blk."};
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		if (strcmp(name, whole[i][from]) == 0)
			return snprintf(out, cap, "%s", whole[i][!from]) < (int)cap;
	const size_t pl = strlen(prefix[from]);
	if (strncmp(name, prefix[from], pl) != 0)
		return 0;
	const char *p = name + pl, *q = p;
	while (*q >= '0' && *q <= '9')
		q++;
	if (q == p || q - p > 9 || *q != '.')
		return 0;
	for (size_t i = 0; i < sizeof(in_layer) / sizeof(in_layer[0]); i++)
		if (strcmp(q + 1, in_layer[i][from]) == 0)
			return snprintf(out, cap, "%s%.*s.%s", prefix[!from], (int)(q - p), p,
					in_layer[i][!from]) < (int)cap;
	return 0;
}

int aprfs_tensor_name_to_gguf(const char *hf, char *out, size_t cap)
{
	return map_name(hf, 0, out, cap);
}

int aprfs_tensor_name_to_hf(const char *gguf, char *out, size_t cap)
{
	return map_name(gguf, 1, out, cap);
}
