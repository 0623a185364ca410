/* fuzz_config.c - libFuzzer harness of config.json -> APR metadata: aprfs_config_parse() on
 * the input; when it accepts, every variant of a tiny checkpoint with that config.json
 * beside it is read whole and must pass `aprfs inspect`'s checks, carrying the config. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/utf8.h"
#include "file/aprfile.h"
#include "format/aprread.h"
#include "fuzz.h"
#include "source/config.h"
#include "source/source.h"

#define FUZZ_MAX_LEN 4096

static char dir[128], st_path[192], cfg_path[192];

static void put(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	FUZZ_CHECK(fd >= 0 && write(fd, p, n) == (ssize_t)n && close(fd) == 0, "writing %s",
		   path);
}

static void cleanup(void)
{
	unlink(cfg_path);
	unlink(st_path);
	rmdir(dir);
}

/* The tiny checkpoint: one tensor every variant quantizes (16 x 256 BF16), a norm that stays
 * F32 and an integer tensor that passes through. */
static void make_checkpoint(void)
{
	static const char hdr[] =
	    "{\"__metadata__\":{\"format\":\"pt\"},"
	    "\"model.embed_tokens.weight\":{\"dtype\":\"BF16\",\"shape\":[16,256],"
	    "\"data_offsets\":[0,8192]},"
	    "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[16],"
	    "\"data_offsets\":[8192,8256]},"
	    "\"position_ids\":{\"dtype\":\"I64\",\"shape\":[1,4],"
	    "\"data_offsets\":[8256,8288]}}";
	size_t hl = sizeof(hdr) - 1, n = 8 + hl + 8288;
	uint8_t *b = calloc(1, n), *d;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	FUZZ_CHECK(b != NULL, "out of memory");
	snprintf(dir, sizeof(dir), "%s/aprfs-fuzz-config-%d", base, (int)getpid());
	FUZZ_CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s", dir);
	snprintf(st_path, sizeof(st_path), "%s/model.safetensors", dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.json", dir);
	atexit(cleanup);
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(b + 8, hdr, hl);
	d = b + 8 + hl;
	for (int i = 0; i < 4096; i++) { /* bf16: the high half of an f32 */
		float v = (float)((i * 37) % 101 - 50) / 8.0f;
		uint32_t u;
		memcpy(&u, &v, 4);
		d[2 * i] = (uint8_t)(u >> 16);
		d[2 * i + 1] = (uint8_t)(u >> 24);
	}
	for (int i = 0; i < 16; i++) {
		float v = 1.0f + (float)i / 16;
		memcpy(d + 8192 + 4 * i, &v, 4);
	}
	for (int i = 0; i < 4; i++)
		d[8256 + 8 * i] = (uint8_t)i;
	put(st_path, b, n);
	free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* Out-of-range warnings are expected: formatted, but not shown. */
	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(fopen("/dev/null", "w"));
	make_checkpoint();
	return 0;
}

/* What the config says must be in the metadata, as the reader sees it. */
static void check_carried(const cJSON *m, const aprfs_model_config *c, const char *v)
{
	static const struct {
		uint32_t bit;
		const char *key;
	} ints[] = {
	    {APRFS_CFG_HIDDEN, "hidden_size"},
	    {APRFS_CFG_LAYERS, "num_layers"},
	    {APRFS_CFG_HEADS, "num_heads"},
	    {APRFS_CFG_KV_HEADS, "num_kv_heads"},
	    {APRFS_CFG_VOCAB, "vocab_size"},
	    {APRFS_CFG_INTER, "intermediate_size"},
	    {APRFS_CFG_MAXPOS, "max_position_embeddings"},
	};
	aprfs_model_config copy = *c;

	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		const cJSON *j = cJSON_GetObjectItemCaseSensitive(m, ints[i].key);
		uint64_t want = *aprfs_config_int(&copy, ints[i].bit);

		if (!(c->has & ints[i].bit)) {
			FUZZ_CHECK(!j, "%s: %s written but not set", v, ints[i].key);
			continue;
		}
		FUZZ_CHECK(cJSON_IsNumber(j) && j->valuedouble == (double)want,
			   "%s: %s is not %llu", v, ints[i].key, (unsigned long long)want);
	}
	for (int k = 0; k < 2; k++) {
		uint32_t bit = k ? APRFS_CFG_RMS_EPS : APRFS_CFG_ROPE_THETA;
		const char *key = k ? "rms_norm_eps" : "rope_theta";
		const cJSON *j = cJSON_GetObjectItemCaseSensitive(m, key);
		double want = *aprfs_config_real(&copy, bit);

		if (!(c->has & bit)) {
			FUZZ_CHECK(!j, "%s: %s written but not set", v, key);
			continue;
		}
		FUZZ_CHECK(cJSON_IsNumber(j) && (float)j->valuedouble == (float)want,
			   "%s: %s %.9g is not the f32 %.9g", v, key,
			   cJSON_IsNumber(j) ? j->valuedouble : NAN, (double)(float)want);
	}
	const cJSON *mt = cJSON_GetObjectItemCaseSensitive(m, "model_type");
	const cJSON *arch = cJSON_GetObjectItemCaseSensitive(m, "architecture");
	const cJSON *hf = cJSON_GetObjectItemCaseSensitive(m, "hf_architecture");
	const char *want_mt = c->has & APRFS_CFG_MODEL_TYPE ? c->model_type : "unknown";

	FUZZ_CHECK(cJSON_IsString(mt) && strcmp(mt->valuestring, want_mt) == 0,
		   "%s: model_type", v);
	FUZZ_CHECK(c->has & APRFS_CFG_ARCH
		       ? cJSON_IsString(arch) && strcmp(arch->valuestring, c->model_type) == 0
		       : !arch,
		   "%s: architecture", v);
	FUZZ_CHECK(c->has & APRFS_CFG_HF_ARCH
		       ? cJSON_IsString(hf) && strcmp(hf->valuestring, c->hf_architecture) == 0
		       : !hf,
		   "%s: hf_architecture", v);
}

/* Every variant read whole through the range API, verified as `aprfs inspect` does. */
static void check_variants(aprfs_source *s, const aprfs_model_config *c)
{
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		const char *name = aprfs_variant_names[v];
		aprfs_file *f = NULL;
		aprfs_err err = {0};
		apr_file af;
		uint8_t *buf;
		uint64_t size;
		ssize_t got;
		int rc;

		rc = aprfs_file_open(s, name, NULL, &f, &err);
		FUZZ_CHECK(rc == 0, "%s: cannot plan: %s", name, err.msg);
		size = aprfs_file_size(f);
		buf = malloc(size);
		FUZZ_CHECK(buf != NULL, "out of memory");
		got = aprfs_file_read(f, NULL, NULL, 0, size, buf, &err);
		FUZZ_CHECK(got == (ssize_t)size, "%s: read %zd of %llu: %s", name, got,
			   (unsigned long long)size, err.msg);
		rc = apr_verify_buffer("model.apr", buf, size, &af, &err);
		FUZZ_CHECK(rc == 0, "%s: aprfs inspect refuses what aprfs wrote: %s", name,
			   err.msg);
		check_carried(af.meta, c, name);
		apr_close(&af);
		free(buf);
		aprfs_file_unref(f);
	}
}

/* A parsed config holds only what the metadata may carry. */
static void check_config(const aprfs_model_config *c)
{
	size_t bad;

	FUZZ_CHECK(c->present, "accepted but not present");
	FUZZ_CHECK(memchr(c->model_type, 0, sizeof(c->model_type)) &&
		       memchr(c->hf_architecture, 0, sizeof(c->hf_architecture)) &&
		       memchr(c->name, 0, sizeof(c->name)),
		   "unterminated string");
	FUZZ_CHECK(aprfs_utf8_valid(c->model_type, strlen(c->model_type), &bad) &&
		       aprfs_utf8_valid(c->hf_architecture, strlen(c->hf_architecture), &bad),
		   "string not UTF-8");
	if (c->has & APRFS_CFG_ROPE_THETA)
		FUZZ_CHECK(aprfs_config_f32_ok(c->rope_theta), "rope_theta %g", c->rope_theta);
	if (c->has & APRFS_CFG_RMS_EPS)
		FUZZ_CHECK(aprfs_config_f32_ok(c->rms_norm_eps), "rms_norm_eps %g",
			   c->rms_norm_eps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aprfs_model_config cfg;
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	int rc;

	if (size > FUZZ_MAX_LEN)
		return 0;
	rc = aprfs_config_parse("config.json", (const char *)fuzz_guarded(data, size), size,
				&cfg, &err);
	if (rc) {
		fuzz_check_refusal(rc, &err, "config.json");
		FUZZ_CHECK(!cfg.present && !cfg.has, "refused, yet facts kept");
		return 0;
	}
	check_config(&cfg);
	/* The same text as a checkpoint's config.json, the way convert and the mount read it.
	 */
	put(cfg_path, data, size);
	rc = aprfs_source_open(st_path, NULL, &s, &err);
	FUZZ_CHECK(rc == 0, "the checkpoint with this config.json: %s", err.msg);
	FUZZ_CHECK(memcmp(aprfs_source_config(s), &cfg, sizeof(cfg)) == 0,
		   "config read beside the checkpoint differs from the parse");
	check_variants(s, &cfg);
	aprfs_source_unref(s);
	return 0;
}
