/* test_source.c - checkpoint sources: safetensors files and sharded indexes validated and
 * read back, config.json parsing, refusal of hostile files (hand-made and genmodel's
 * --hostile set), reads after in-place change, truncation and replacement. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "source/config.h"
#include "source/source.h"
#include "source/source_impl.h"
#include "testfs.h"

static char tmp[256];
static char genmodel[512];

static const char *at(const char *name)
{
	return test_path(tmp, name);
}

/* 8-byte length, header, then data_len bytes where byte i of the data is (i * 7 + 3). */
static void put_st(const char *path, const char *header, size_t data_len)
{
	size_t hl = strlen(header), n = 8 + hl + data_len;
	uint8_t *b = malloc(n);

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(b + 8, header, hl);
	for (size_t i = 0; i < data_len; i++)
		b[8 + hl + i] = (uint8_t)(i * 7 + 3);
	put_file(path, b, n);
	free(b);
}

static uint8_t data_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* Pretend the file was written long ago: a later write then changes mtime for sure,
 * even within one tick of the kernel's coarse clock. */
static void age(const char *path)
{
	struct timespec ts[2] = {{1600000000, 123}, {1600000000, 123}};

	utimensat(AT_FDCWD, path, ts, 0);
}

static int open_fails(const char *path, const char *want, aprfs_err *err)
{
	aprfs_source *s = NULL;
	int rc = aprfs_source_open(path, NULL, &s, err);

	if (rc == 0) {
		aprfs_source_unref(s);
		return 0;
	}
	return rc < 0 && s == NULL && strstr(err->msg, want) != NULL;
}

static const char *GOOD =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]},"
    "\"a\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]},"
    "\"z\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[32,32]},"
    "\"s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[32,40]},"
    "\"m\":{\"dtype\":\"BOOL\",\"shape\":[1,1,1,1,1,1,1,3],\"data_offsets\":[40,43]}}  ";

static void test_good_file(void)
{
	const char *p = at("good.safetensors");
	const char *order[] = {"a", "b", "s", "z", "m"};
	uint64_t base = 8 + strlen(GOOD);
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	const aprfs_tensor *t;
	uint8_t buf[64];
	int ok = 1;

	put_st(p, GOOD, 43);
	CHECK(aprfs_source_open(p, NULL, &s, &err) == 0, "%s", err.msg);
	if (!s)
		return;
	CHECK(aprfs_source_count(s) == 5, "%zu", aprfs_source_count(s));
	for (size_t i = 0; i < 5 && i < aprfs_source_count(s); i++)
		CHECK(strcmp(aprfs_source_tensor(s, i)->name, order[i]) == 0, "%zu: %s", i,
		      aprfs_source_tensor(s, i)->name);
	CHECK(aprfs_source_tensor(s, 5) == NULL);
	t = aprfs_source_tensor(s, 1);
	CHECK(t->dtype == APRFS_SRC_F32 && t->ndim == 2 && t->dims[0] == 2 && t->dims[1] == 3);
	CHECK(t->nelem == 6 && t->nbytes == 24 && t->file_off == base + 8 && t->shard == 0);
	CHECK(t->name_len == 1);
	t = aprfs_source_tensor(s, 2);
	CHECK(t->dtype == APRFS_SRC_I64 && t->ndim == 0 && t->nelem == 1 && t->nbytes == 8);
	t = aprfs_source_tensor(s, 3);
	CHECK(t->dtype == APRFS_SRC_F16 && t->nelem == 0 && t->nbytes == 0);
	t = aprfs_source_tensor(s, 4);
	CHECK(t->dtype == APRFS_SRC_BOOL && t->ndim == 8 && t->dims[7] == 3 && t->nbytes == 3);
	CHECK(strcmp(aprfs_source_format(s), "safetensors") == 0);
	CHECK(strcmp(aprfs_source_path(s), p) == 0);
	CHECK(aprfs_source_shard_count(s) == 1 &&
	      strcmp(aprfs_source_shard_path(s, 0), p) == 0);
	CHECK(aprfs_source_config(s)->present == 0);

	t = aprfs_source_tensor(s, 1);
	CHECK(aprfs_source_read(s, t, 0, 24, buf, &err) == 0, "%s", err.msg);
	for (size_t i = 0; i < 24; i++)
		ok &= buf[i] == data_byte(8 + i);
	CHECK(ok, "tensor b's bytes differ from the file");
	CHECK(aprfs_source_read(s, t, 20, 4, buf, &err) == 0 && buf[0] == data_byte(28));
	CHECK(aprfs_source_read(s, t, 20, 5, buf, &err) == -EINVAL);
	CHECK(aprfs_source_read(s, t, 25, 0, buf, &err) == -EINVAL);
	CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 3), 0, 0, buf, &err) == 0);
	CHECK(aprfs_source_stale(s) == 0);
	aprfs_source_ref(s);
	aprfs_source_unref(s);
	CHECK(aprfs_source_read(s, t, 0, 4, buf, &err) == 0, "still open after one unref");
	aprfs_source_unref(s);
}

static void test_bad_headers(void)
{
	static const struct {
		const char *header, *want;
		size_t data;
	} cases[] = {
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x",
	     "not valid JSON", 4},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
	     "overlaps tensor", 8},
	    {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	     "tensor 'a': unsupported dtype 'F8_E4M3'", 1},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"dtype\":\"I8\"}"
	     "}",
	     "duplicate key", 4},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", "shape", 4},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", "data_offsets",
	     4},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}",
	     "data_offsets[1] is not an integer", 8},
	    {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1024]}}",
	     "data_offsets end 1024 beyond data section (512 bytes)", 512},
	    {"{\"\xE0\x80\xAF\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	     "not valid UTF-8", 1},
	    {"{\"\xF4\x90\x80\x80\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
	     "not valid UTF-8", 1},
	    {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"__metadata__\":"
	     "3}",
	     "__metadata__ is not an object", 1},
	};
	const char *p = at("bad.safetensors");
	aprfs_err err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&err, 0, sizeof(err));
		put_st(p, cases[i].header, cases[i].data);
		CHECK(open_fails(p, cases[i].want, &err), "case %zu: got '%s'", i, err.msg);
		CHECK(strncmp(err.msg, p, strlen(p)) == 0, "message names the file: %s",
		      err.msg);
	}
}

/* Things the format allows that a careless validator might refuse. */
static void test_allowed_oddities(void)
{
	const char *p = at("odd.safetensors");
	char name[300];
	char header[600];
	aprfs_source *s = NULL;
	aprfs_err err = {0};

	memset(name, 'x', 256);
	name[256] = 0;
	snprintf(header, sizeof(header),
		 "{\"%s\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
		 "\"\xC3\xA9\\u00e9\xF0\x9F\x98\x80\":{\"dtype\":\"U8\",\"shape\":[0],"
		 "\"data_offsets\":[3,3]},"
		 "\"hole\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
		 name);
	put_st(p, header, 8);
	CHECK(aprfs_source_open(p, NULL, &s, &err) == 0, "%s", err.msg);
	if (s) {
		CHECK(aprfs_source_count(s) == 3);
		CHECK(strcmp(aprfs_source_tensor(s, 0)->name, "hole") == 0);
		CHECK(aprfs_source_tensor(s, 1)->name_len == 256);
		CHECK(strcmp(aprfs_source_tensor(s, 2)->name,
			     "\xC3\xA9\xC3\xA9\xF0\x9F\x98\x80") == 0);
		aprfs_source_unref(s);
	}
	name[256] = 'x';
	name[257] = 0;
	snprintf(header, sizeof(header),
		 "{\"%s\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", name);
	put_st(p, header, 8);
	CHECK(open_fails(p, "257 bytes (at most 256)", &err), "%s", err.msg);
}

static void put_index(const char *name, const char *weight_map)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"metadata\":{\"total_size\":12},\"weight_map\":{%s}}",
		 weight_map);
	put_text(at(name), text);
}

static void test_sharded(void)
{
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	uint8_t buf[8];

	put_st(at("sh-2.safetensors"),
	       "{\"x\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
	put_st(at("sh-1.safetensors"),
	       "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]},"
	       "\"v\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[0,4]}}",
	       8);
	put_index(
	    "sh.safetensors.index.json",
	    "\"x\":\"sh-2.safetensors\",\"w\":\"sh-1.safetensors\",\"v\":\"sh-1.safetensors\"");
	CHECK(aprfs_source_open(at("sh.safetensors.index.json"), NULL, &s, &err) == 0, "%s",
	      err.msg);
	if (s) {
		CHECK(aprfs_source_count(s) == 3 && aprfs_source_shard_count(s) == 2);
		CHECK(strstr(aprfs_source_shard_path(s, 0), "sh-1.safetensors") != NULL);
		CHECK(strcmp(aprfs_source_tensor(s, 0)->name, "v") == 0);
		CHECK(strcmp(aprfs_source_tensor(s, 1)->name, "w") == 0);
		CHECK(strcmp(aprfs_source_tensor(s, 2)->name, "x") == 0);
		CHECK(aprfs_source_tensor(s, 2)->shard == 1 &&
		      aprfs_source_tensor(s, 1)->shard == 0);
		CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 2), 1, 3, buf, &err) == 0 &&
		      buf[0] == data_byte(1) && buf[2] == data_byte(3));
		CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 1), 0, 4, buf, &err) == 0 &&
		      buf[0] == data_byte(4));
		CHECK(aprfs_source_stale(s) == 0);
		put_index("sh.safetensors.index.json",
			  "\"x\":\"sh-2.safetensors\",\"w\":\"sh-1."
			  "safetensors\",\"v\":\"sh-1.safetensors\" ");
		CHECK(aprfs_source_stale(s) == 1, "index rewritten");
		aprfs_source_unref(s);
	}
	put_index(
	    "wrong.safetensors.index.json",
	    "\"x\":\"sh-1.safetensors\",\"w\":\"sh-1.safetensors\",\"v\":\"sh-1.safetensors\"");
	CHECK(open_fails(at("wrong.safetensors.index.json"),
			 "is not in shard 'sh-1.safetensors'", &err),
	      "%s", err.msg);
	put_index(
	    "swapped.safetensors.index.json",
	    "\"x\":\"sh-2.safetensors\",\"w\":\"sh-2.safetensors\",\"v\":\"sh-1.safetensors\"");
	CHECK(open_fails(at("swapped.safetensors.index.json"),
			 "tensor 'w' is in shard 'sh-1.safetensors' but weight_map maps it to "
			 "'sh-2.safetensors'",
			 &err),
	      "%s", err.msg);
	put_st(at("dup.safetensors"),
	       "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
	put_index("dup.safetensors.index.json", "\"x\":\"dup.safetensors\"");
	put_index("both.safetensors.index.json",
		  "\"x\":\"dup.safetensors\",\"w\":\"sh-1."
		  "safetensors\",\"v\":\"sh-1.safetensors\",\"q\":\"sh-"
		  "2.safetensors\"");
	CHECK(open_fails(at("both.safetensors.index.json"), "'x' appears in shards", &err),
	      "%s", err.msg);
	put_index("hidden.safetensors.index.json", "\"x\":\".sh-2.safetensors\"");
	CHECK(open_fails(at("hidden.safetensors.index.json"), "not a plain file name", &err),
	      "%s", err.msg);
	put_text(at("nomap.safetensors.index.json"), "{\"metadata\":{}}");
	CHECK(open_fails(at("nomap.safetensors.index.json"), "weight_map", &err), "%s",
	      err.msg);
	put_index("notstr.safetensors.index.json", "\"x\":3");
	CHECK(open_fails(at("notstr.safetensors.index.json"), "is not a string", &err), "%s",
	      err.msg);
}

static int load_cfg(const char *text, aprfs_model_config *cfg, aprfs_err *err)
{
	return aprfs_config_parse(at("cfg.json"), text, strlen(text), cfg, err);
}

static void test_config(void)
{
	aprfs_model_config c;
	aprfs_err err = {0};
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"{\"hidden_size\": \"4096\"}", "hidden_size must be a non-negative integer"},
	    {"{\"n_embd\": -1}", "n_embd must be a non-negative integer"},
	    {"{\"num_hidden_layers\": 2.5}", "num_hidden_layers must be"},
	    {"{\"vocab_size\": 1e20}", "vocab_size must be"},
	    {"{\"rope_theta\": \"10000\"}", "rope_theta must be a number"},
	    {"{\"rms_norm_eps\": true}", "rms_norm_eps must be"},
	    {"{\"architectures\": \"Llama\"}", "architectures must be an array"},
	    {"{\"architectures\": [7]}", "architectures[0] must be a string"},
	    {"{\"model_type\": 3}", "model_type must be a string"},
	    {"{\"hidden_size\": 1, \"hidden_size\": 2}", "duplicate key 'hidden_size'"},
	    {"{\"hidden_size\": 1,}", "not valid JSON"},
	    {"[1]", "not a JSON object"},
	};

	CHECK(load_cfg("{\"architectures\":[\"GPT2LMHeadModel\"],\"model_type\":\"gpt2\","
		       "\"n_embd\":768,\"n_layer\":12,\"n_head\":12,\"vocab_size\":50257,"
		       "\"n_positions\":1024,\"n_inner\":null,\"layer_norm_epsilon\":1e-5,"
		       "\"hidden_size\":null,\"unknown\":{\"deep\":[1,2]}}",
		       &c, &err) == 0,
	      "%s", err.msg);
	CHECK(c.present == 1 && strcmp(c.hf_architecture, "GPT2LMHeadModel") == 0);
	CHECK(strcmp(c.model_type, "gpt2") == 0);
	CHECK(c.hidden_size == 768 && c.num_layers == 12 && c.num_heads == 12);
	CHECK(c.vocab_size == 50257 && c.max_position_embeddings == 1024);
	CHECK(c.rms_norm_eps == 1e-5);
	CHECK(c.has == (APRFS_CFG_ARCH | APRFS_CFG_MODEL_TYPE | APRFS_CFG_HF_ARCH |
			APRFS_CFG_HIDDEN | APRFS_CFG_LAYERS | APRFS_CFG_HEADS |
			APRFS_CFG_VOCAB | APRFS_CFG_MAXPOS | APRFS_CFG_RMS_EPS),
	      "has %#x", c.has);

	CHECK(
	    load_cfg("{\"d_model\":512,\"num_layers\":6,\"num_key_value_heads\":2,"
		     "\"intermediate_size\":2048,\"rope_theta\":500000.0,\"architectures\":[]}",
		     &c, &err) == 0,
	    "%s", err.msg);
	CHECK(c.hidden_size == 512 && c.num_layers == 6 && c.num_kv_heads == 2);
	CHECK(c.intermediate_size == 2048 && c.rope_theta == 500000.0);
	CHECK(!(c.has & (APRFS_CFG_ARCH | APRFS_CFG_HF_ARCH)) &&
	      (c.has & APRFS_CFG_ROPE_THETA));

	/* Numbers a reader cannot hold as f32 are left out (with a warning), not refused. */
	CHECK(load_cfg("{\"rope_theta\": 1e39, \"rms_norm_eps\": -1e40, \"hidden_size\": 8}",
		       &c, &err) == 0,
	      "%s", err.msg);
	CHECK(c.present && c.hidden_size == 8 &&
		  !(c.has & (APRFS_CFG_ROPE_THETA | APRFS_CFG_RMS_EPS)),
	      "has %#x", c.has);
	CHECK(load_cfg("{\"rope_theta\": 1e999, \"rms_norm_eps\": 3.4e38}", &c, &err) == 0,
	      "%s", err.msg);
	CHECK(!(c.has & APRFS_CFG_ROPE_THETA) && (c.has & APRFS_CFG_RMS_EPS));
	CHECK(load_cfg("{\"hidden_size\": 1} trailing", &c, &err) == -EINVAL &&
		  strstr(err.msg, "not valid JSON"),
	      "%s", err.msg);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&err, 0, sizeof(err));
		CHECK(load_cfg(bad[i].text, &c, &err) == -EINVAL && c.present == 0, "case %zu",
		      i);
		CHECK(strstr(err.msg, bad[i].want) && strstr(err.msg, "cfg.json: "),
		      "case %zu: %s", i, err.msg);
	}
}

static void test_config_beside(void)
{
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	char dir[300];

	snprintf(dir, sizeof(dir), "%s/withcfg", tmp);
	mkdir(dir, 0755);
	put_st(at("withcfg/model.safetensors"),
	       "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
	put_text(at("withcfg/config.json"), "{\"hidden_size\": 64, \"model_type\": \"llama\"}");
	CHECK(aprfs_source_open(at("withcfg/model.safetensors"), NULL, &s, &err) == 0, "%s",
	      err.msg);
	if (s) {
		CHECK(aprfs_source_config(s)->present &&
		      aprfs_source_config(s)->hidden_size == 64);
		CHECK(aprfs_source_stale(s) == 0);
		unlink(at("withcfg/config.json"));
		CHECK(aprfs_source_stale(s) == 1, "config.json removed");
		aprfs_source_unref(s);
	}
	put_text(at("withcfg/config.json"), "{\"hidden_size\": {}}");
	CHECK(open_fails(at("withcfg/model.safetensors"), "withcfg/config.json: hidden_size",
			 &err),
	      "%s", err.msg);

	char *big = malloc((1 << 20) + 64);
	memset(big, ' ', (1 << 20) + 63);
	big[0] = '{';
	big[(1 << 20) + 62] = '}';
	big[(1 << 20) + 63] = 0;
	put_text(at("withcfg/config.json"), big);
	CHECK(open_fails(at("withcfg/model.safetensors"), "larger than 1048576 bytes", &err),
	      "%s", err.msg);
	free(big);
	unlink(at("withcfg/config.json"));
}

static const char *ONE =
    "{\"t\":{\"dtype\":\"U8\",\"shape\":[8192],\"data_offsets\":[0,8192]}}";

static aprfs_source *open_one(const char *name)
{
	aprfs_source *s = NULL;
	aprfs_err err = {0};

	put_st(at(name), ONE, 8192);
	age(at(name));
	if (aprfs_source_open(at(name), NULL, &s, &err) != 0)
		fprintf(stderr, "%s\n", err.msg);
	return s;
}

static void test_changed_files(void)
{
	aprfs_err err = {0};
	uint8_t buf[8192];
	aprfs_source *s = open_one("mod.safetensors");
	int fd;

	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 0), 0, 16, buf, &err) == 0);
	fd = open(at("mod.safetensors"), O_WRONLY);
	CHECK(pwrite(fd, "XYZ", 3, 100) == 3);
	close(fd);
	CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 0), 0, 16, buf, &err) == -EIO);
	CHECK(strstr(err.msg, "mod.safetensors: changed since it was opened"), "%s", err.msg);
	CHECK(aprfs_source_stale(s) == 1);
	aprfs_source_unref(s);

	s = open_one("trunc.safetensors");
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK(truncate(at("trunc.safetensors"), 100) == 0);
	memset(&err, 0, sizeof(err));
	CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 0), 4096, 4096, buf, &err) == -EIO);
	CHECK(strstr(err.msg, "changed since it was opened"), "%s", err.msg);
	CHECK(aprfs_source_stale(s) == 1);
	aprfs_source_unref(s);

	s = open_one("swap.safetensors");
	CHECK(s != NULL);
	if (!s)
		return;
	put_st(at("swap.new"),
	       "{\"t\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
	CHECK(rename(at("swap.new"), at("swap.safetensors")) == 0);
	CHECK(aprfs_source_stale(s) == 1);
	CHECK(aprfs_source_read(s, aprfs_source_tensor(s, 0), 8000, 192, buf, &err) == 0, "%s",
	      err.msg);
	CHECK(buf[0] == data_byte(8000) && buf[191] == data_byte(8191),
	      "old bytes after rename");
	aprfs_source_unref(s);
}

/* Random byte flips and truncations of a good file: every result must be a clean open
 * or a clean refusal naming the file (run under ASan to see the "clean" part). */
static void test_mutations(void)
{
	const char *p = at("mut.safetensors");
	size_t hl = strlen(GOOD), n = 8 + hl + 43, clean = 0;
	uint8_t *orig = malloc(n), *b = malloc(n);
	uint64_t x = 42;
	FILE *f;

	put_st(p, GOOD, 43);
	f = fopen(p, "rb");
	CHECK(f && fread(orig, 1, n, f) == n);
	if (f)
		fclose(f);
	for (int round = 0; round < 3000; round++) {
		aprfs_source *s = NULL;
		aprfs_err err = {0};
		size_t len = n;

		memcpy(b, orig, n);
		for (int k = 0; k < 1 + round % 4; k++) {
			x = x * 6364136223846793005u + 1442695040888963407u;
			b[(x >> 33) % n] = (uint8_t)(x >> 17);
		}
		if (round % 10 == 0)
			len = (size_t)(x >> 40) % n;
		put_file(p, b, len);
		if (aprfs_source_open(p, NULL, &s, &err) == 0)
			aprfs_source_unref(s);
		else
			clean += strncmp(err.msg, p, strlen(p)) == 0 && s == NULL;
		clean += s != NULL;
	}
	CHECK(clean == 3000, "%zu of 3000 mutated files handled cleanly", clean);
	free(orig);
	free(b);
}

struct reader {
	aprfs_source *s;
	int bad;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	const aprfs_tensor *t = aprfs_source_tensor(r->s, 0);
	uint8_t buf[512];
	aprfs_err err;

	for (int i = 0; i < 2000; i++) {
		uint64_t off = (uint64_t)(i * 37) % (t->nbytes - sizeof(buf));

		if (aprfs_source_read(r->s, t, off, sizeof(buf), buf, &err) != 0 ||
		    buf[0] != data_byte(off) || buf[511] != data_byte(off + 511))
			r->bad++;
	}
	return NULL;
}

static void test_threads(void)
{
	aprfs_source *s = open_one("threads.safetensors");
	struct reader r[4];
	pthread_t th[4];

	CHECK(s != NULL);
	if (!s)
		return;
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){s, 0};
		aprfs_source_ref(s);
		pthread_create(&th[i], NULL, read_loop, &r[i]);
	}
	aprfs_source_unref(s); /* the readers hold the last references */
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(r[i].bad == 0, "thread %d: %d bad reads", i, r[i].bad);
		aprfs_source_unref(s);
	}
}

static int run(const char *args)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null", genmodel, args);
	return system(cmd);
}

static int same_file(const char *a, const char *b)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

static void test_generated(void)
{
	char args[600];
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	const aprfs_model_config *c;
	uint16_t v[256];

	snprintf(args, sizeof(args), "--odd --layers 3 --shards 2 '%s/gen1'", tmp);
	CHECK(run(args) == 0);
	snprintf(args, sizeof(args), "--odd --layers 3 --shards 2 '%s/gen2'", tmp);
	CHECK(run(args) == 0);
	CHECK(same_file(at("gen1/model-00001-of-00002.safetensors"),
			at("gen2/model-00001-of-00002.safetensors")),
	      "same options, same bytes");
	CHECK(aprfs_source_open(at("gen1/model.safetensors.index.json"), NULL, &s, &err) == 0,
	      "%s", err.msg);
	if (!s)
		return;
	CHECK(aprfs_source_count(s) == 3 + 9 * 3 + 12, "%zu", aprfs_source_count(s));
	CHECK(aprfs_source_shard_count(s) == 2);
	c = aprfs_source_config(s);
	CHECK(c->present && c->hidden_size == 256 && c->num_layers == 3 &&
	      c->num_kv_heads == 2);
	CHECK(strcmp(c->hf_architecture, "LlamaForCausalLM") == 0 && c->rms_norm_eps == 1e-5);
	CHECK(strcmp(c->model_type, "llama") == 0 && (c->has & APRFS_CFG_ARCH));
	/* norms near 1.0 in bf16: top byte 0x3F */
	for (size_t i = 0; i < aprfs_source_count(s); i++) {
		const aprfs_tensor *t = aprfs_source_tensor(s, i);

		if (strcmp(t->name, "model.norm.weight") == 0) {
			CHECK(t->dtype == APRFS_SRC_BF16 && t->nelem == 256);
			CHECK(aprfs_source_read(s, t, 0, 512, v, &err) == 0);
			CHECK(v[0] >> 8 == 0x3F && v[255] >> 8 == 0x3F, "%#x %#x", v[0],
			      v[255]);
		}
	}
	aprfs_source_unref(s);
}

static void test_hostile(void)
{
	char args[600], line[600], path[900];
	aprfs_err err;
	FILE *f;
	int n = 0;

	snprintf(args, sizeof(args), "--hostile '%s/hostile'", tmp);
	CHECK(run(args) == 0);
	f = fopen(at("hostile/EXPECTED"), "r");
	CHECK(f != NULL, "no EXPECTED from genmodel --hostile");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t'), *nl = strchr(line, '\n'), *dot;

		if (!tab)
			continue;
		*tab = 0;
		if (nl)
			*nl = 0;
		snprintf(path, sizeof(path), "%s/hostile/%s", tmp, line);
		memset(&err, 0, sizeof(err));
		CHECK(open_fails(path, tab + 1, &err), "%s: want '%s', got '%s'", line, tab + 1,
		      err.msg);
		dot = strchr(line, '.'); /* the stem ("offsets-overlap", "bad-config/model") */
		if (dot)
			*dot = 0;
		if (strchr(line, '/'))
			*strchr(line, '/') = 0;
		CHECK(strstr(err.msg, line) != NULL, "message names the file: %s", err.msg);
		n++;
	}
	fclose(f);
	CHECK(n >= 25, "only %d hostile cases", n);
}

static void find_genmodel(const char *argv0)
{
	char self[512];
	const char *env = getenv("APRFS_GENMODEL");

	snprintf(self, sizeof(self), "%s", argv0);
	if (env)
		snprintf(genmodel, sizeof(genmodel), "%s", env);
	else
		snprintf(genmodel, sizeof(genmodel), "%s/../tools/genmodel", dirname(self));
	if (access(genmodel, X_OK) != 0)
		snprintf(genmodel, sizeof(genmodel), "build/tools/genmodel");
}

/* The fingerprint follows the bytes a source serves: a copy keeps it (inode aside), a
 * changed mtime, header or config.json changes it. */
static void test_fingerprint(void)
{
	uint8_t fp[6][16];
	const char *names[] = {"fp/a/model.safetensors", "fp/b/model.safetensors"};
	struct timespec ts[2] = {{1600000000, 5}, {1600000000, 5}};

	mkdir(at("fp"), 0755), mkdir(at("fp/a"), 0755), mkdir(at("fp/b"), 0755);
	for (int i = 0; i < 2; i++) {
		put_st(at(names[i]), ONE, 8192);
		utimensat(AT_FDCWD, at(names[i]), ts, 0);
	}
	for (int i = 0; i < 6; i++) {
		aprfs_source *s = NULL;
		aprfs_err err = {0};
		if (i == 2)
			put_text(at("fp/b/config.json"), "{\"hidden_size\": 8}");
		if (i == 3)
			put_text(at("fp/b/config.json"), "{\"hidden_size\": 9}");
		if (i == 4) {
			ts[1].tv_nsec = 6;
			utimensat(AT_FDCWD, at(names[1]), ts, 0);
		}
		if (i == 5) {
			unlink(at("fp/b/config.json"));
			put_st(at(names[1]),
			       "{\"u\":{\"dtype\":\"U8\",\"shape\":[8192],"
			       "\"data_offsets\":[0,8192]}}",
			       8192);
			utimensat(AT_FDCWD, at(names[1]), ts, 0);
		}
		CHECK(aprfs_source_open(at(names[i ? 1 : 0]), NULL, &s, &err) == 0, "%s",
		      err.msg);
		memcpy(fp[i], s ? aprfs_source_fingerprint(s) : (const uint8_t *)"", 16);
		aprfs_source_unref(s);
	}
	CHECK(memcmp(fp[0], fp[1], 16) == 0, "a copy (other inode, same bytes and mtime)");
	for (int i = 2; i < 6; i++)
		for (int j = 0; j < i; j++)
			CHECK(memcmp(fp[i], fp[j], 16) != 0, "fingerprints %d and %d differ", i,
			      j);
}

int main(int argc, char **argv)
{
	char cmd[300];

	(void)argc;
	if (!check_tmpdir(tmp, sizeof(tmp), "test-source")) {
		perror("mkdtemp");
		return 2;
	}
	test_good_file();
	test_bad_headers();
	test_allowed_oddities();
	test_sharded();
	test_config();
	test_config_beside();
	test_fingerprint();
	test_changed_files();
	test_mutations();
	test_threads();
	find_genmodel(argv[0]);
	CHECK(access(genmodel, X_OK) == 0, "genmodel not built (%s): run make first", genmodel);
	if (access(genmodel, X_OK) == 0) {
		test_generated();
		test_hostile();
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_done("source");
}
