#!/usr/bin/env bash
# bench-gguf.sh - GGUF sources' figures: the q4k / q6k views of a >= 1 GiB pure Q4_K / Q6_K
# GGUF read cold from the mount (their blocks pass through: a copy and a CRC) against a
# plain `cat` of the GGUF through the same mount (both to /dev/null), and `aprfs convert` to q4k of a Q8_0 GGUF
# against the same model from bf16 safetensors (both one thread, warm page cache).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${BENCH_DIR:-/tmp/aprfs-bench}/gguf
size_mb=${BENCH_SIZE_MB:-1100}
mnt=$dir/mnt
mkdir -p "$dir/src" "$mnt"
mount_src=$dir/src mount_log=$dir/daemon.log
. scripts/bench-mount.sh
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
runs=${BENCH_RUNS:-3}
# cold_cat FILE: sets best to the best of $runs reads of FILE, each on a fresh mount. This
# VM's page cache allocation makes single runs vary by up to 30%; the best run is the steady
# figure. (Not called as $(...): the daemon would hold the substitution's pipe open.)
cold_cat() {
	local t0 s
	best=
	for _ in $(seq "$runs"); do
		mount_cold
		t0=$(now)
		cat "$mnt/$1" >/dev/null
		s=$(secs "$t0")
		best=$(awk -v a="$s" -v b="${best:-$s}" 'BEGIN { print (a < b ? a : b) }')
	done
}

for t in Q4_K:q4k Q6_K:q6k; do
	ty=${t%:*} v=${t#*:}
	name=pure_$v
	[ -f "$dir/src/$name.gguf" ] ||
		build/tools/gengguf --type "$ty" --size-mb "$size_mb" --name "$name" "$dir/src" >/dev/null
	cat "$dir/src/$name.gguf" >/dev/null # the source in the page cache for both runs
	cold_cat "$name.gguf"
	tcat=$best
	cold_cat "$name.$v.apr" # the same sink as the GGUF's cat
	tcp=$best
	printf 'GGUF %s, %d MiB: cat of the GGUF through the mount %.2f s, of the %s view (cold) %.2f s: %.0f%% of its speed (view %d MiB; best of %d)\n' \
		"$ty" "$(($(stat -c %s "$dir/src/$name.gguf") >> 20))" "$tcat" "$v" "$tcp" \
		"$(awk -v a="$tcat" -v b="$tcp" -v sa="$(stat -c %s "$dir/src/$name.gguf")" \
			-v sb="$(stat -c %s "$mnt/$name.$v.apr")" 'BEGIN { print 100 * (sb / b) / (sa / a) }')" \
		"$(($(stat -c %s "$mnt/$name.$v.apr") >> 20))" "$runs"
done
unmount

# The same llama shape from a Q8_0 GGUF and from bf16 safetensors, to q4k on one thread.
[ -f "$dir/src/q8_0.gguf" ] ||
	build/tools/gengguf --type Q8_0 --size-mb "$size_mb" --name q8_0 "$dir/src" >/dev/null
[ -f "$dir/bf16/model.safetensors" ] ||
	build/tools/genmodel --size-mb "$((size_mb * 2))" "$dir/bf16" >/dev/null
for src in "$dir/src/q8_0.gguf" "$dir/bf16/model.safetensors"; do
	cat "$src" >/dev/null
	t0=$(now)
	build/aprfs convert --quiet --threads 1 "$src" "$dir/x.q4k.apr"
	printf 'convert %s to q4k, one thread: %s s for %d MiB of q4k\n' "${src##*/}" \
		"$(secs "$t0")" "$(($(stat -c %s "$dir/x.q4k.apr") >> 20))"
	rm -f "$dir/x.q4k.apr"
done
