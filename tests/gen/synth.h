/* synth.h - the test generators' deterministic synthetic values (genmodel, gengguf): a
 * xoshiro256** stream per tensor, seeded from the seed and the tensor's name, and a cheap
 * bell-shaped "gaussian". The same seed and name give the same values in every tool. */
#ifndef APRFS_SYNTH_H
#define APRFS_SYNTH_H

#include <stdint.h>

/* xoshiro256**: fast, and good in every bit, since all 64 are used below. */
typedef struct rng {
	uint64_t s[4];
} rng;

static inline uint64_t rotl(uint64_t x, int k)
{
	return x << k | x >> (64 - k);
}

static inline uint64_t rng_next(rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

static inline uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15u);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* Each tensor's stream depends on the seed and its name only, so the same tensor gets
 * the same bytes whatever the sharding or the set of other tensors. */
static inline void rng_seed(rng *r, uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325u;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3u;
	h ^= seed * 0x9E3779B97F4A7C15u;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&h);
}

/* Sum of four 16-bit uniforms (Irwin-Hall): bell-shaped, one PRNG call per value and no
 * log/sqrt, which is what makes a gigabyte take seconds rather than a minute. */
static inline float gauss(rng *r, float std)
{
	uint64_t x = rng_next(r);
	int32_t sum = (int32_t)(x & 0xFFFF) + (int32_t)(x >> 16 & 0xFFFF) +
		      (int32_t)(x >> 32 & 0xFFFF) + (int32_t)(x >> 48);
	/* mean 2 * 65535, standard deviation 65536 / sqrt(3) */
	return (float)(sum - 131070) * (std * (1.7320508f / 65536.0f));
}

#endif
