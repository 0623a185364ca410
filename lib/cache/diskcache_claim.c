/* diskcache_claim.c - "I am computing these chunks": one claim per range of DC_CLAIM_RANGE
 * consecutive chunks ("claims/<hash>", a symbolic link to "host pid": symlink(2) fails with
 * EEXIST when it exists, atomically, and creating and reading it are metadata operations
 * only, so a claim never waits for a storage node, e.g. a stopped MooseFS chunkserver), so
 * that daemons reading the same view at once compute each chunk about once
 * while a claim costs one small-file create per range, not per chunk. The others wait for
 * the range's records to appear in a sealed pack (diskcache.c), bounded.
 *
 * A claim is only a hint: whatever happens to claims the bytes stay right (records are
 * verified, and every process writes the same bytes for a key). A claim is alive while it
 * is younger than claim_stale_ms (5 s by default; mtime against this host's clock: hosts
 * sharing a directory should keep their clocks in sync) and, when it names this host, its
 * process still runs. Dead claims are removed by whoever finds them; ours go at close. */
#include "cache/diskcache_claim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/cancel.h"
#include "base/clock.h"
#include "base/io.h"
#include "cache/diskcache_record.h"

#define SWEEP_NS (60 * 1000000000ll)

static dc_hash range_of(const aprfs_dc_key *key)
{
	static const uint8_t magic[8] = {'A', 'P', 'R', 'F', 'S', 'C', 'L', '1'};
	uint8_t buf[8 + DC_KEY];
	aprfs_dc_key k = *key;
	XXH128_canonical_t c;
	dc_hash h;

	k.index /= DC_CLAIM_RANGE;
	memcpy(buf, magic, 8);
	dc_key_bytes(&k, buf + 8);
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof(buf)));
	memcpy(h.b, c.digest, sizeof(h.b));
	return h;
}

static void claim_name(const dc_hash *h, char *out, size_t size)
{
	int n = snprintf(out, size, "claims/");
	for (int i = 0; i < 16; i++)
		n += snprintf(out + n, size - (size_t)n, "%02x", h->b[i]);
}

static int ours(aprfs_diskcache *dc, const dc_hash *h)
{
	pthread_mutex_lock(&dc->lock);
	int found = 0;
	for (size_t i = dc->nclaims; i-- > 0 && !found;)
		found = memcmp(dc->claims[i].b, h->b, 16) == 0;
	pthread_mutex_unlock(&dc->lock);
	return found;
}

void dc_claim_adopt(aprfs_diskcache *dc, const dc_hash *h)
{
	pthread_mutex_lock(&dc->lock);
	if (dc->nclaims == dc->cap_claims) {
		size_t cap = dc->cap_claims ? 2 * dc->cap_claims : 64;
		dc_hash *v = realloc(dc->claims, cap * sizeof(*v));
		if (v) {
			dc->claims = v;
			dc->cap_claims = cap;
		}
	}
	if (dc->nclaims < dc->cap_claims)
		dc->claims[dc->nclaims++] = *h;
	pthread_mutex_unlock(&dc->lock);
}

/* Create the claim: 0, or -errno (-EEXIST: someone holds it). */
static int create(aprfs_diskcache *dc, const char *name)
{
	char tok[96];

	snprintf(tok, sizeof(tok), "%s %ld", dc->host, (long)dc->pid);
	if (symlinkat(tok, dc->dirfd, name) == 0)
		return 0;
	if (errno == ENOENT) {
		if (mkdirat(dc->dirfd, "claims", 0755) != 0 && errno != EEXIST)
			return -errno;
		if (symlinkat(tok, dc->dirfd, name) == 0)
			return 0;
	}
	return -errno;
}

/* Its owner is a process of this host that is gone. */
static int owner_dead(aprfs_diskcache *dc, const char *name)
{
	char text[128], host[64];
	long pid;
	ssize_t n = readlinkat(dc->dirfd, name, text, sizeof(text) - 1);

	text[n > 0 ? n : 0] = '\0';
	if (sscanf(text, "%63s %ld", host, &pid) != 2 || pid <= 0)
		return 0;
	return strcmp(host, dc->host) == 0 && aprfs_pid_gone((pid_t)pid);
}

int dc_claim_alive(aprfs_diskcache *dc, const dc_hash *range)
{
	char name[64];
	struct stat st;

	claim_name(range, name, sizeof(name));
	if (fstatat(dc->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	int64_t age = aprfs_now_ns(CLOCK_REALTIME) -
		      ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	if (age > (int64_t)dc->claim_stale_ms * 1000000 || owner_dead(dc, name)) {
		unlinkat(dc->dirfd, name,
			 0); /* (a race with a re-claim costs work, not bytes) */
		return 0;
	}
	return 1;
}

dc_claim_result dc_claim(aprfs_diskcache *dc, const aprfs_dc_key *key, dc_hash *range)
{
	char name[64];

	*range = range_of(key);
	if (ours(dc, range))
		return DC_CLAIM_OURS;
	claim_name(range, name, sizeof(name));
	for (int attempt = 0; attempt < 2; attempt++) {
		int rc = create(dc, name);
		if (rc == 0) {
			dc_claim_adopt(dc, range);
			return DC_CLAIM_OURS;
		}
		if (rc != -EEXIST)
			return DC_CLAIM_NONE;
		if (dc_claim_alive(dc, range))
			return DC_CLAIM_TAKEN;
	}
	return DC_CLAIM_NONE;
}

void dc_claims_release(aprfs_diskcache *dc)
{
	char name[64];

	for (size_t i = 0; i < dc->nclaims; i++) {
		claim_name(&dc->claims[i], name, sizeof(name));
		unlinkat(dc->dirfd, name, 0);
	}
	dc->nclaims = 0;
}

void dc_claims_sweep(aprfs_diskcache *dc)
{
	int64_t now = aprfs_now_ns(CLOCK_REALTIME);
	struct stat st;

	if (aprfs_now_ns(CLOCK_MONOTONIC) < dc->next_sweep)
		return;
	dc->next_sweep = aprfs_now_ns(CLOCK_MONOTONIC) + SWEEP_NS;
	DIR *d = aprfs_opendirat(dc->dirfd, "claims");
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.' &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    now - ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec) >
			10ll * dc->claim_stale_ms * 1000000)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}
