#!/usr/bin/env bash
# test-arm.sh - the kernel tests on AArch64: cross-compiles tests/unit/test_kernels.c and
# test_kweight.c (weighted k-quants) with the codec and kernel sources (NEON table
# included) as static aarch64 binaries, with the GCC cross compiler and with clang, and
# runs them under qemu-user. Prints one "SKIP: why" line and succeeds when the cross tools
# are absent.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${ARM_CC:-aarch64-linux-gnu-gcc}
QEMU=${ARM_QEMU:-qemu-aarch64}
if ! command -v "$CC" >/dev/null || ! command -v "$QEMU" >/dev/null ||
	[ ! -e /usr/aarch64-linux-gnu/lib/libc.a ]; then
	echo "SKIP: arm: the aarch64 cross tools are not installed (scripts/setup.sh installs them): NEON kernels not tested"
	exit 0
fi

OUT=build/arm
mkdir -p "$OUT"
SRCS=(lib/kernels/*.c lib/kernels/arm/*.c lib/quant/*.c lib/base/half.c)
# -ffp-contract=off: AArch64 has FMA in its base ISA and GCC contracts a*b+c by default,
# which would make the scalar reference itself round differently from x86's.
FLAGS=(-std=gnu11 -O2 -Wall -Wextra -Wshadow -Wno-unused-parameter -ffp-contract=off
	-pthread -static -Ilib -Itests/unit)
echo "arm: $CC"
for t in test_kernels test_kweight; do
	"$CC" "${FLAGS[@]}" -o "$OUT/$t" "tests/unit/$t.c" "${SRCS[@]}" -lm
	"$QEMU" "$OUT/$t"
done

# The same with clang (scripts/test-clang.sh's compiler; setup.sh installs it), its
# aarch64 target using the cross toolchain's headers, libraries and linker: the NEON
# table must be byte-identical whichever compiler built it.
CLANG=${ARM_CLANG:-clang}
if ! command -v "$CLANG" >/dev/null; then
	echo "SKIP: arm: $CLANG not installed: the clang NEON build not tested (setup.sh installs it)"
	exit 1
fi
echo "arm: $CLANG --target=aarch64-linux-gnu"
for t in test_kernels test_kweight; do
	"$CLANG" --target=aarch64-linux-gnu -Werror "${FLAGS[@]}" -o "$OUT/${t}_clang" \
		"tests/unit/$t.c" "${SRCS[@]}" -lm
	"$QEMU" "$OUT/${t}_clang"
done
