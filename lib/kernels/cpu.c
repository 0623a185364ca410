/* cpu.c - the CPU probe: which ISAs this CPU and build can run (CPUID and XGETBV via
 * <cpuid.h> on x86-64, hwcaps on ARM), and ISA names to numbers. */
#include <stdint.h>
#include <string.h>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "kernels/kernels_impl.h"

#if defined(__x86_64__)
/* CPUID bits (Intel SDM vol. 2A, CPUID): leaf 1 ECX, leaf 7 sub-leaf 0 EBX. */
enum {
	L1C_FMA = 1u << 12,
	L1C_OSXSAVE = 1u << 27,
	L1C_AVX = 1u << 28,
	L1C_F16C = 1u << 29,
	L7B_AVX2 = 1u << 5,
	L7B_AVX512F = 1u << 16,
	L7B_AVX512DQ = 1u << 17,
	L7B_AVX512BW = 1u << 30,
	L7B_AVX512VL = 1u << 31,
};
/* XCR0 state components the OS must save across context switches: SSE and AVX (YMM)
 * registers for AVX/AVX2/F16C, plus the opmask and both ZMM halves for AVX-512. */
enum { XCR0_AVX = 0x6, XCR0_AVX512 = 0xe6 };

/* XGETBV with ECX = 0 (valid only when CPUID reports OSXSAVE). */
static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* What a table needs: the instructions (CPUID) and their registers saved by the OS
 * (XGETBV), without which a feature counts as absent. The same answer with GCC and
 * clang, unlike __builtin_cpu_supports, whose feature names differ between them. AVX2
 * comes with F16C and FMA on every CPU that has it, but checking costs nothing. */
static int x86_has(int isa)
{
	unsigned a = 0, b = 0, c = 0, d = 0, b7 = 0;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	const unsigned need1 = L1C_OSXSAVE | L1C_AVX | L1C_F16C | L1C_FMA;
	if ((c & need1) != need1)
		return 0;
	if (__get_cpuid_max(0, NULL) < 7 || !__get_cpuid_count(7, 0, &a, &b7, &c, &d))
		return 0;
	const uint64_t xcr0 = xgetbv0();
	const int avx2 = (b7 & L7B_AVX2) && (xcr0 & XCR0_AVX) == XCR0_AVX;
	if (isa == ISA_AVX2)
		return avx2;
	const unsigned need7 = L7B_AVX512F | L7B_AVX512DQ | L7B_AVX512BW | L7B_AVX512VL;
	return avx2 && (b7 & need7) == need7 && (xcr0 & XCR0_AVX512) == XCR0_AVX512;
}
#endif

int kernels_isa_supported(int isa)
{
	switch (isa) {
	case ISA_SCALAR: return 1;
#if defined(__x86_64__)
	case ISA_AVX2:
	case ISA_AVX512: return x86_has(isa);
#endif
#if defined(__aarch64__)
	case ISA_NEON:
		return (getauxval(AT_HWCAP) & (HWCAP_ASIMD | HWCAP_FP)) ==
		       (HWCAP_ASIMD | HWCAP_FP);
#endif
	default: return 0;
	}
}

int kernels_isa_index(const char *name)
{
	for (int i = 0; i < APRFS_ISA_COUNT; i++)
		if (strcmp(aprfs_kernels_isa_names[i], name) == 0)
			return i;
	return -1;
}
