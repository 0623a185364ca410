#!/usr/bin/env bash
# test-clang.sh - aprfs built with clang is byte-identical to the gcc build. Builds the whole
# tree with clang into its own build directory (build/clang, from scratch, so every file
# is compiled and must be warning-free), checks that no x86 kernel object of either build
# holds a fused multiply-add, runs the kernel unit test of the clang build, then converts
# a bf16 model with --odd tensors, the special_st.py checkpoints (rounding edges, f16 and
# bf16 sources, NaN/inf) and a GGUF model holding every GGML block type plus a tensor of
# random bytes per type (NaN, inf and subnormal f16 scales: the dequantizers) to every
# variant with the gcc and the clang binary, under every ISA this CPU has
# (APRFS_ISA=scalar|avx2|avx512, and the default choice), and asserts that every output is
# byte-identical to gcc's scalar one.
# Fails (it does not skip) with a "not run" reason when clang is missing: setup.sh
# installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Run from `make test`: the parent make's jobserver is not ours.
unset MAKEFLAGS MFLAGS MAKELEVEL
CLANG=${CLANG:-clang}
CB=${CLANG_BUILD:-build/clang}
jobs=$(nproc)

if ! command -v "$CLANG" >/dev/null; then
	echo "clang: '$CLANG' is not installed: not run (scripts/setup.sh installs clang)" >&2
	exit 1
fi
fail() {
	echo "clang: FAIL: $*" >&2
	exit 1
}

# The gcc build (what `make test` has just built; a no-op when up to date).
make -s -j"$jobs" all >/dev/null || fail "gcc build failed"

echo "clang: $("$CLANG" --version | head -n 1), fresh build in $CB"
rm -rf "$CB"
log=$CB.log
if ! make -j"$jobs" CC="$CLANG" B="$CB" all >"$log" 2>&1; then
	grep -E 'error|warning' "$log" >&2 || tail -n 20 "$log" >&2
	fail "clang build failed"
fi
if grep -q 'warning:' "$log"; then
	grep 'warning:' "$log" >&2
	fail "clang build has warnings"
fi
echo "clang: build warning-free"

# No FMA anywhere in the kernels: every ISA must round exactly like the scalar reference.
if [ "$(uname -m)" = x86_64 ]; then
	command -v objdump >/dev/null || fail "objdump (binutils) not installed"
	for o in build/lib/kernels/x86/*.o "$CB"/lib/kernels/x86/*.o; do
		n=$(objdump -d "$o" | grep -cE '\bv?f(n)?m(add|sub)(add|sub)?[0-9]' || true)
		[ "$n" = 0 ] || fail "$o holds $n fused multiply-add instructions"
	done
	echo "clang: no fused multiply-add in the x86 kernel objects of either build"
fi

"$CB/tests/test_kernels" | tail -n 6 || fail "kernel unit test of the clang build"

# The ISAs this CPU runs, per binary: both probes (cpuid + xgetbv) must agree, and agree
# with what the kernel reports in /proc/cpuinfo.
isas=scalar
for isa in avx2 avx512 neon; do
	g=0 c=0
	APRFS_ISA=$isa build/aprfs --version >/dev/null 2>&1 && g=1
	APRFS_ISA=$isa "$CB/aprfs" --version >/dev/null 2>&1 && c=1
	[ "$g" = "$c" ] || fail "APRFS_ISA=$isa: gcc build says $g, clang build says $c"
	[ "$g" = 1 ] && isas="$isas $isa"
done
if [ -r /proc/cpuinfo ]; then
	flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
	want_avx2=0 want_avx512=0
	if [[ " $flags " == *" avx2 "* && " $flags " == *" f16c "* && " $flags " == *" fma "* ]]; then
		want_avx2=1
		[[ " $flags " == *" avx512f "* && " $flags " == *" avx512bw "* &&
			" $flags " == *" avx512vl "* && " $flags " == *" avx512dq "* ]] && want_avx512=1
	fi
	[[ " $isas " == *" avx2 "* ]] && has=1 || has=0
	[ "$has" = "$want_avx2" ] || fail "avx2 available: $has, /proc/cpuinfo says $want_avx2"
	[[ " $isas " == *" avx512 "* ]] && has=1 || has=0
	[ "$has" = "$want_avx512" ] || fail "avx512 available: $has, /proc/cpuinfo says $want_avx512"
fi
echo "clang: ISAs on this CPU: $isas (the same for both builds)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/tools/genmodel --odd "$tmp/odd" >/dev/null
python3 tests/tools/special_st.py "$tmp/special"
build/tools/gengguf --mixed --odd "$tmp/gguf" >/dev/null
sources="$tmp/odd/model.safetensors $tmp/special/special.safetensors
	$tmp/special/special16.safetensors $tmp/special/specialbf.safetensors
	$tmp/special/nonfinite.safetensors $tmp/gguf/model.gguf"

# One conversion per (source, variant, nf4 block): gcc scalar is the reference; every other
# (compiler, ISA) pair must give the very same bytes.
n=0
for src in $sources; do
	tag=$(basename "$(dirname "$src")").$(basename "${src%.gguf}" .safetensors)
	for v in $(build/aprfs variants --names) nf4/32; do
		opt=()
		[ "$v" = nf4/32 ] && opt=(--nf4-block 32)
		var=${v%%/*}
		ref="$tmp/$tag.ref.$var.apr"
		APRFS_ISA=scalar build/aprfs convert --quiet "${opt[@]}" "$src" "$ref" ||
			fail "gcc scalar convert $src $v"
		for bin in build/aprfs "$CB/aprfs"; do
			for isa in $isas default; do
				out="$tmp/$tag.out.$var.apr"
				if [ "$isa" = default ]; then
					env -u APRFS_ISA "$bin" convert --quiet "${opt[@]}" "$src" "$out"
				else
					APRFS_ISA=$isa "$bin" convert --quiet "${opt[@]}" "$src" "$out"
				fi || fail "$bin APRFS_ISA=$isa convert $src $v"
				cmp -s "$ref" "$out" ||
					fail "$bin APRFS_ISA=$isa: $tag $v differs from gcc scalar"
				rm -f "$out"
				n=$((n + 1))
			done
		done
		rm -f "$ref"
	done
done
echo "clang: $n conversions (gcc and clang x {$isas, default} x 6 sources, one of them GGUF, x 10 variants) byte-identical to gcc scalar"
