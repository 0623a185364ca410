/* diskcache_table.c - what the directory holds, in memory: the pack table (each pack's fd,
 * size, mtime and references) and the index, an open-addressing hash table of key hash ->
 * pack, offset, sizes, CRC; a sealed pack's index read and checked. The scanner
 * (diskcache_scan.c) and the writer's pack (diskcache_pack.c) fill them; lookups probe them. */
#include "cache/diskcache_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/io.h"
#include "cache/diskcache_record.h"

#define FREE_SLOT UINT32_MAX
#define DEAD_SLOT (UINT32_MAX - 1)

uint64_t dc_charge(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

/* ---- the hash table ----------------------------------------------------------------- */

static size_t slot_of(const dc_hash *h, size_t n)
{
	uint64_t v;
	memcpy(&v, h->b, sizeof(v));
	return (size_t)(v & (n - 1));
}

int dc_index_find(aprfs_diskcache *dc, const dc_hash *h, dc_loc *out)
{
	if (!dc->nslots)
		return 0;
	for (size_t i = slot_of(h, dc->nslots);; i = (i + 1) & (dc->nslots - 1)) {
		const dc_loc *s = &dc->slots[i];
		if (s->pack == FREE_SLOT)
			return 0;
		if (s->pack != DEAD_SLOT && memcmp(s->h.b, h->b, 16) == 0 &&
		    !dc->packs[s->pack]->dead) {
			*out = *s;
			return 1;
		}
	}
}

static void insert(dc_loc *slots, size_t n, const dc_loc *l)
{
	size_t i = slot_of(&l->h, n);
	while (slots[i].pack != FREE_SLOT)
		i = (i + 1) & (n - 1);
	slots[i] = *l;
}

/* Rebuild into n slots, leaving out records of dead packs. */
static int rehash(aprfs_diskcache *dc, size_t n)
{
	dc_loc *s = malloc(n * sizeof(*s));

	if (!s)
		return -1;
	for (size_t i = 0; i < n; i++)
		s[i].pack = FREE_SLOT;
	dc->nused = 0;
	for (size_t i = 0; i < dc->nslots; i++) {
		const dc_loc *l = &dc->slots[i];
		if (l->pack < DEAD_SLOT && !dc->packs[l->pack]->dead) {
			insert(s, n, l);
			dc->nused++;
		}
	}
	free(dc->slots);
	dc->slots = s;
	dc->nslots = n;
	return 0;
}

int dc_index_add(aprfs_diskcache *dc, const dc_loc *l)
{
	dc_loc old;

	if ((dc->nused + 1) * 2 > dc->nslots &&
	    rehash(dc, dc->nslots ? dc->nslots * 2 : 4096) != 0)
		return -1;
	if (dc_index_find(dc, &l->h, &old))
		return 0; /* another process's copy: the same bytes */
	insert(dc->slots, dc->nslots, l);
	dc->nused++;
	return 0;
}

void dc_index_remove(aprfs_diskcache *dc, const dc_hash *h, uint32_t pack)
{
	if (!dc->nslots)
		return;
	for (size_t i = slot_of(h, dc->nslots);; i = (i + 1) & (dc->nslots - 1)) {
		dc_loc *s = &dc->slots[i];
		if (s->pack == FREE_SLOT)
			return;
		if (s->pack == pack && memcmp(s->h.b, h->b, 16) == 0) {
			s->pack = DEAD_SLOT; /* (probing goes on past it; a rehash drops it) */
			return;
		}
	}
}

/* ---- the pack table ------------------------------------------------------------------ */

int dc_pack_add(aprfs_diskcache *dc, const char *name, int fd, uint64_t size, int64_t mtime,
		int ours)
{
	if (dc->npacks == dc->cap_packs) {
		uint32_t cap = dc->cap_packs ? 2 * dc->cap_packs : 64;
		dc_pack **v = realloc(dc->packs, cap * sizeof(*v));
		if (!v)
			return -1;
		dc->packs = v;
		dc->cap_packs = cap;
	}
	dc_pack *p = calloc(1, sizeof(*p));
	if (!p)
		return -1;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->fd = fd;
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->wlock, NULL);
	p->size = size;
	p->mtime = mtime;
	p->ours = ours;
	p->seen = 1;
	dc->packs[dc->npacks] = p;
	return (int)dc->npacks++;
}

void dc_pack_put(dc_pack *k)
{
	if (atomic_fetch_sub(&k->refs, 1) == 1 && k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
	}
}

void dc_pack_forget(aprfs_diskcache *dc, uint32_t p)
{
	dc_pack *k = dc->packs[p];

	if (k->dead)
		return;
	k->dead = 1;
	dc->st.packs--;
	dc->st.bytes_on_disk -= dc->st.bytes_on_disk > dc_charge(k->size)
				    ? dc_charge(k->size)
				    : dc->st.bytes_on_disk;
	rehash(dc, dc->nslots ? dc->nslots : 4096);
	dc_pack_put(k);
}

void dc_index_free(aprfs_diskcache *dc)
{
	for (uint32_t i = 0; i < dc->npacks; i++) {
		if (dc->packs[i]->fd >= 0)
			close(dc->packs[i]->fd);
		pthread_mutex_destroy(&dc->packs[i]->wlock);
		free(dc->packs[i]);
	}
	free(dc->packs);
	free(dc->slots);
}

/* ---- a sealed pack's index ----------------------------------------------------------- */

uint8_t *dc_read_index(int fd, uint64_t size, uint64_t *count, const char **why)
{
	uint8_t t[DC_TRAILER], h[DC_PACK_HEAD];
	uint64_t off, sum;

	*why = "unreadable";
	if (size < DC_PACK_HEAD + DC_TRAILER || aprfs_pread_full(fd, h, sizeof(h), 0) != 0 ||
	    !dc_pack_header_ok(h) ||
	    aprfs_pread_full(fd, t, sizeof(t), size - DC_TRAILER) != 0 ||
	    dc_trailer_parse(t, size, &off, count, &sum) != 0) {
		*why = "bad pack header or trailer (truncated or not a pack)";
		return NULL;
	}
	uint8_t *idx = malloc(*count * DC_IDX + 1);
	if (!idx || aprfs_pread_full(fd, idx, *count * DC_IDX, off) != 0 ||
	    dc_sum64(idx, *count * DC_IDX) != sum) {
		*why = idx ? "index checksum mismatch" : NULL;
		free(idx);
		return NULL;
	}
	return idx;
}

/* ---- counters and the scanner's wake-up ------------------------------------------------ */

void dc_count_corrupt(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	dc->st.corrupt++;
	pthread_mutex_unlock(&dc->lock);
}

void dc_scanner_kick(aprfs_diskcache *dc)
{
	dc->kicked = 1;
	pthread_cond_signal(&dc->scan);
}
