/* scratch.c - aprfs_scratch(): two growing buffers per thread behind a pthread key whose
 * destructor frees them at thread exit; and the malloc tuning the daemon and convert use. */
#include "base/scratch.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct scratch {
	void *p[2];
	size_t cap[2];
} scratch;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void scratch_free(void *arg)
{
	scratch *s = arg;

	free(s->p[0]);
	free(s->p[1]);
	free(s);
}

static void make_key(void)
{
	pthread_key_create(&key, scratch_free);
}

void *aprfs_scratch(int slot, size_t n)
{
	scratch *s;

	pthread_once(&once, make_key);
	if (!(s = pthread_getspecific(key))) {
		if (!(s = calloc(1, sizeof(*s))) || pthread_setspecific(key, s) != 0) {
			free(s);
			return NULL;
		}
	}
	if (n > s->cap[slot]) {
		size_t cap = n + n / 4 + 64;
		void *g = realloc(s->p[slot], cap);
		if (!g)
			return NULL;
		s->p[slot] = g;
		s->cap[slot] = cap;
	}
	return s->p[slot];
}

void aprfs_tune_malloc(void)
{
	mallopt(M_MMAP_THRESHOLD, 16 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
