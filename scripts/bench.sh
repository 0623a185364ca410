#!/usr/bin/env bash
# bench.sh - `make bench`: the kernel figures (bench_kernels: MB/s per kernel per ISA on a
# 64 MiB f32 tensor, memcpy beside them), the Q4_K/Q6_K error totals beside GGML's
# quantizers, plain and importance-weighted, and the weighted encode speed (bench_kweight),
# a whole weighted q4km view's error beside GGML's with the same matrix (bench_kview),
# then `aprfs convert` of a >= 1 GiB bf16 checkpoint
# to q4, q4k and nf4 with the default ISA and with APRFS_ISA=scalar: wall time, MB/s of
# source, peak RSS, and whether both outputs are byte-identical; then --threads 2 against
# --threads 1 for q4k, q6k and q8.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${BENCH_SIZE_MB:-1100}
DIR=${BENCH_DIR:-/tmp/aprfs-bench}
KEEP=${BENCH_KEEP:-0}

echo "=== kernels (one thread)"
build/tools/bench_kernels 64

echo "=== k-quants against GGML's quantizers (squared error totals, weighted encode speed)"
build/tools/bench_kweight
# A whole q4km view: a 16-layer llama with 2% outlier columns and an imatrix beside it.
kdir=$(mktemp -d)
build/tools/genmodel --layers 16 --hidden 512 --inter 1024 --vocab 1024 --outliers \
	"$kdir/m" >/dev/null
build/tools/genimatrix "$kdir/m/model.safetensors" "$kdir/m/imatrix.gguf" >/dev/null
build/aprfs convert --quiet "$kdir/m/model.safetensors" "$kdir/m.q4km.apr"
build/tools/bench_kview "$kdir/m.q4km.apr" "$kdir/m/model.safetensors"
rm -rf "$kdir"

echo "=== aprfs convert, ${SIZE_MB} MiB bf16 checkpoint in $DIR"
mkdir -p "$DIR"
if [ ! -f "$DIR/model/model.safetensors" ]; then
	build/tools/genmodel --dtype bf16 --size-mb "$SIZE_MB" "$DIR/model" >/dev/null
fi
src="$DIR/model/model.safetensors"
src_bytes=$(stat -c %s "$src")
echo "source: $src ($((src_bytes / 1048576)) MiB), default ISA: $(
	env -u APRFS_ISA build/tools/bench_kernels 0 | sed -n "s/^default ISA: //p")"

# Wall seconds and peak RSS (KiB) of one command, via GNU time when installed, else via
# python's getrusage of the child.
measure() { # outfile, command...
	local out=$1
	shift
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%e %M' -o "$out" "$@"
	else
		python3 - "$out" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[2:], check=True)
dt = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(f"{dt:.2f} {rss}\n")
PY
	fi
}

cat /proc/cpuinfo >/dev/null
for v in q4 q4k nf4; do
	declare -A secs=()
	for isa in default scalar; do
		out="$DIR/model.$isa.$v.apr"
		rm -f "$out"
		cat "$src" >/dev/null # warm the page cache: measure the encoder, not the disk
		if [ "$isa" = default ]; then
			measure "$DIR/time" env -u APRFS_ISA build/aprfs convert --quiet --threads 1 \
				"$src" "$out"
		else
			measure "$DIR/time" env APRFS_ISA=scalar build/aprfs convert --quiet \
				--threads 1 "$src" "$out"
		fi
		read -r s rss <"$DIR/time"
		secs[$isa]=$s
		printf 'convert %-4s %-8s %7.2f s %8.0f MB/s of bf16 source  peak RSS %6d KiB\n' \
			"$v" "$isa" "$s" "$(echo "$src_bytes / $s / 1000000" | bc -l)" "$rss"
	done
	if cmp -s "$DIR/model.default.$v.apr" "$DIR/model.scalar.$v.apr"; then same=identical; else same=DIFFER; fi
	printf 'convert %-4s speedup default/scalar: %.2fx, outputs %s\n' "$v" \
		"$(echo "${secs[scalar]} / ${secs[default]}" | bc -l)" "$same"
	rm -f "$DIR/model.default.$v.apr" "$DIR/model.scalar.$v.apr"
done
# convert on every core: --threads 2 against --threads 1 (the same bytes). The outputs go
# to a tmpfs when there is one: on a slow or contended disk the write path, not the
# quantization, sets the pace of both runs.
tout=$DIR
if [ -d /dev/shm ] && [ "$(df -Pm /dev/shm | awk 'NR == 2 { print $4 }')" -gt 2048 ]; then
	tout=/dev/shm/aprfs-bench.$$
	mkdir -p "$tout"
fi
for v in q4k q6k q8; do
	declare -A secs=()
	# Best of BENCH_RUNS (default 3), alternating: single runs vary by 10-20% here with
	# the cost of the tmpfs pages the output lands in.
	cat "$src" >/dev/null
	for _ in $(seq "${BENCH_RUNS:-3}"); do
		for t in 1 2; do
			rm -f "$tout/model.t$t.$v.apr"
			measure "$DIR/time" build/aprfs convert --quiet --threads "$t" "$src" \
				"$tout/model.t$t.$v.apr"
			read -r s rss <"$DIR/time"
			if [ -z "${secs[$t]:-}" ] || [ "$(echo "$s < ${secs[$t]}" | bc -l)" = 1 ]; then
				secs[$t]=$s
			fi
		done
	done
	if cmp -s "$tout/model.t1.$v.apr" "$tout/model.t2.$v.apr"; then same=identical; else same=DIFFER; fi
	printf 'convert %-4s --threads 1: %6.2f s, --threads 2: %6.2f s: %.2fx, outputs %s (to %s; best of %d)\n' \
		"$v" "${secs[1]}" "${secs[2]}" "$(echo "${secs[1]} / ${secs[2]}" | bc -l)" "$same" \
		"$tout" "${BENCH_RUNS:-3}"
	rm -f "$tout/model.t1.$v.apr" "$tout/model.t2.$v.apr"
done
[ "$tout" = "$DIR" ] || rmdir "$tout"
# The filesystem's figures, on the same checkpoint.
echo "=== aprfs mount"
BENCH_DIR=$DIR BENCH_SIZE_MB=$SIZE_MB scripts/bench-fs.sh
echo "=== disk cache"
BENCH_DIR=$DIR BENCH_SIZE_MB=$SIZE_MB scripts/bench-diskcache.sh
echo "=== GGUF sources"
BENCH_DIR=$DIR BENCH_SIZE_MB=$SIZE_MB scripts/bench-gguf.sh
[ "$KEEP" = 1 ] || rm -rf "$DIR"
