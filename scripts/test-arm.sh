#!/usr/bin/env bash
# test-arm.sh - the kernel tests on AArch64: cross-compiles tests/unit/test_kernels.c with
# the codec and kernel sources (NEON table included) as a static aarch64 binary and runs it
# under qemu-user. Prints one "not run" line and succeeds when the cross tools are absent.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${ARM_CC:-aarch64-linux-gnu-gcc}
QEMU=${ARM_QEMU:-qemu-aarch64}
if ! command -v "$CC" >/dev/null || ! command -v "$QEMU" >/dev/null ||
	[ ! -e /usr/aarch64-linux-gnu/lib/libc.a ]; then
	echo "arm: cross tools not installed, not run"
	exit 0
fi

OUT=build/arm
mkdir -p "$OUT"
# -ffp-contract=off: AArch64 has FMA in its base ISA and GCC contracts a*b+c by default,
# which would make the scalar reference itself round differently from x86's.
"$CC" -std=gnu11 -O2 -Wall -Wextra -Wshadow -Wno-unused-parameter -ffp-contract=off \
	-pthread -static -Ilib -Itests/unit -o "$OUT/test_kernels" tests/unit/test_kernels.c \
	lib/kernels/dispatch.c lib/kernels/arm/*.c lib/quant/*.c lib/codec.c lib/half.c -lm
"$QEMU" "$OUT/test_kernels"
