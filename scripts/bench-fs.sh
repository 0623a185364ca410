#!/usr/bin/env bash
# bench-fs.sh - the filesystem's figures on a generated >= 1 GiB bf16 checkpoint: cold `cp`
# of q4/nf4/q4k/q4km from the mount vs `aprfs convert` of the same (and q4km against q4k),
# first-byte latency on a cold mount, the daemon's peak RSS during the copy, warm re-read
# throughput, the disk cache (cold remount with a warm disk cache vs an empty one vs a
# materialized file through the pass-through, daemon CPU per GiB served from disk,
# compression per variant), and listing a checkpoint of 200,000 tensors (time and daemon
# RSS).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${BENCH_DIR:-/tmp/aprfs-bench}
size_mb=${BENCH_SIZE_MB:-1100}
cache_mb=${BENCH_CACHE_MB:-256}
models=$dir/model # the same checkpoint directory bench.sh uses
mnt=$dir/mnt
out=$dir/out
mkdir -p "$models" "$mnt" "$out"
if [ ! -f "$models/model.safetensors" ]; then
	build/tools/genmodel --dtype bf16 --size-mb "$size_mb" "$models" >/dev/null
fi
src=$models/model.safetensors
echo "fs bench: $(du -m "$src" | cut -f1) MiB bf16 checkpoint, cache_mb=$cache_mb, $(nproc) cores"

mount_src=$models mount_log=$dir/daemon.log
. scripts/bench-mount.sh

# "Cold" means a fresh mount: an empty chunk cache and no page cache of the virtual files.
# The source checkpoint is read once beforehand so that neither side waits for the disk.
cat "$src" >/dev/null
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.1f", b / t / 1e6 }'; }

declare -A cold=()
for v in q4 nf4 q4k q4km; do
	rm -f "$out"/*.apr
	t0=$(now)
	build/aprfs convert --quiet "$src" "$out/convert.$v.apr"
	tc=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
	bytes=$(stat -c %s "$out/convert.$v.apr")
	rm -f "$out/convert.$v.apr"

	mount_cold -o cache_mb="$cache_mb"
	t0=$(now)
	cp "$mnt/model.$v.apr" "$out/mount.$v.apr"
	tm=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
	cold[$v]=$tm
	rss=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")
	t0=$(now)
	cat "$mnt/model.$v.apr" >/dev/null
	tw=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
	printf '%-4s convert %6.2f s %8s MB/s | mount cold cp %6.2f s %8s MB/s (%.2fx convert) | daemon peak RSS %d MiB (limit %d) | warm re-read %8s MB/s\n' \
		"$v" "$tc" "$(rate "$bytes" "$tc")" "$tm" "$(rate "$bytes" "$tm")" \
		"$(awk -v a="$tc" -v b="$tm" 'BEGIN { print a / b }')" "$rss" $((cache_mb + 64)) \
		"$(rate "$bytes" "$tw")"
	rm -f "$out/mount.$v.apr"
done
# q4km writes a sixth of its tensors in Q6_K, whose encoder is about as fast: the issue's
# goal is a cold cp within 1.25x of q4k's.
printf 'cold cp q4km %.2f s vs q4k %.2f s: %.2fx (goal <= 1.25x)\n' "${cold[q4km]}" \
	"${cold[q4k]}" "$(awk -v a="${cold[q4km]}" -v b="${cold[q4k]}" 'BEGIN { print a / b }')"

# First byte: open + read 64 KiB of a file nobody has touched, on a fresh mount.
for v in q4k q8; do
	mount_cold -o cache_mb="$cache_mb"
	t0=$(now)
	dd if="$mnt/model.$v.apr" of=/dev/null bs=64k count=1 status=none
	t1=$(now)
	printf 'first 64 KiB of a cold %s file: %.1f ms (includes starting dd)\n' "$v" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) * 1000 }')"
done
unmount

# ---- the disk cache ---------------------------------------------------------------------
# The same cold `cp` of the q4k view (a fresh mount: empty memory cache, no page cache of the
# virtual file) three ways: with an empty disk cache (filled as it goes), with a warm disk
# cache, and, as the floor, a `cp` of an already materialized file of that size through the
# mount's pass-through. "Warm" is a complete cache (convert --cache-dir fills whatever the
# first cp's writer dropped) whose entries are in the page cache, as is the materialized
# file; then both again with their files dropped from the page cache (posix_fadvise), i.e.
# read from the disk. The copies go to a tmpfs (/dev/shm), so that what is measured is the
# mount, not the writeback of the copy. A fresh directory each run: deleting a large one
# just before would slow every file creation on ext4 without a journal for minutes.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { print b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
disk() { jq -r ".disk_cache.$1" "$mnt/.aprfs/stats.json"; }
# FILE...: drop their pages from the page cache
UNCACHE='import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)'
entries() { find "$dc" -name '*.ent' -print0; }
dc=$dir/diskcache.$$
shm=/dev/shm/aprfs-bench.$$
mkdir -p "$shm"
trap 'unmount; rm -rf "$shm"' EXIT
rm -f "$out"/*.apr
# What one entry file costs this file system (create, write 36 KiB, rename), for context:
# ext4 without a journal searches past every recently freed inode on each create.
create_us=$(python3 -c 'import os, sys, time
d = sys.argv[1]; os.makedirs(d); b = bytes(36864); t = time.monotonic()
for i in range(500):
    p = "%s/.t%d" % (d, i)
    with open(p, "wb") as f: f.write(b)
    os.rename(p, "%s/f%d" % (d, i))
print("%.0f" % ((time.monotonic() - t) / 500 * 1e6))' "$dc.probe")
rm -rf "$dc.probe"
echo "disk cache: $dc ($(df -T "$dir" | awk 'NR == 2 { print $2 }'), ${create_us} us per entry file), load: $(cut -d' ' -f1-3 /proc/loadavg)"
mount_cold -o cache_mb="$cache_mb"
t0=$(now)
cp "$mnt/model.q4k.apr" "$shm/none.q4k.apr"
t_none=$(secs "$t0")
rm -f "$shm/none.q4k.apr"
mount_cold -o cache_mb="$cache_mb" -o cache_dir="$dc"
t0=$(now)
cp "$mnt/model.q4k.apr" "$shm/empty.q4k.apr"
t_empty=$(secs "$t0")
printf 'q4k cp, no disk cache: %.2f s; empty disk cache: %.2f s (%sx); %s entries written, %s dropped (writer behind)\n' \
	"$t_none" "$t_empty" "$(ratio "$t_empty" "$t_none")" "$(disk entries_written)" "$(disk writes_dropped)"
unmount
t0=$(now)
build/aprfs convert --quiet --cache-dir "$dc" --root "$models" "$src" "$shm/convert.q4k.apr"
printf 'convert --cache-dir completing the cache: %.2f s\n' "$(secs "$t0")"
cmp "$shm/empty.q4k.apr" "$shm/convert.q4k.apr"
rm -f "$shm/convert.q4k.apr"
bytes=$(stat -c %s "$shm/empty.q4k.apr")
cp "$shm/empty.q4k.apr" "$models/materialized.bin" # a plain file: passes through
# The entries convert just wrote and the materialized file go to the disk first: their
# writeback would otherwise run during the copies measured next, and slow them.
sync
# Each figure below is the best of $runs runs (single runs vary by up to 2x on this VM).
runs=${BENCH_RUNS:-3}
min() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (a < b ? a : b) }'; }
# warm_cp warm|cold: one cold-remount cp of the view from the disk cache, its entries put in
# or dropped from the page cache first; sets t, cpu (s per GiB) and misses.
warm_cp() {
	if [ "$1" = cold ]; then
		entries | xargs -0 python3 -c "$UNCACHE"
	else
		entries | xargs -0 cat >/dev/null
	fi
	mount_cold -o cache_mb="$cache_mb" -o cache_dir="$dc"
	c0=$(ticks "$pid")
	t0=$(now)
	cp "$mnt/model.q4k.apr" "$shm/warm.q4k.apr"
	t=$(secs "$t0")
	cpu=$(awk -v t="$(($(ticks "$pid") - c0))" -v b="$bytes" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f", t / hz / (b / 1073741824) }')
	misses=$(disk misses)
	unmount
	cmp "$shm/empty.q4k.apr" "$shm/warm.q4k.apr"
	rm -f "$shm/warm.q4k.apr"
}
# pass_cp warm|cold: the floor, a cp of the materialized file through the pass-through; sets t.
pass_cp() {
	if [ "$1" = cold ]; then
		python3 -c "$UNCACHE" "$models/materialized.bin"
	else
		cat "$models/materialized.bin" >/dev/null
	fi
	mount_cold -o cache_mb="$cache_mb"
	t0=$(now)
	cp "$mnt/materialized.bin" "$shm/pass.bin"
	t=$(secs "$t0")
	unmount
	rm -f "$shm/pass.bin"
}
for cache in warm cold; do
	t_warm= t_pass=
	for _ in $(seq "$runs"); do
		warm_cp $cache
		if [ -z "$t_warm" ] || [ "$(min "$t" "$t_warm")" = "$t" ]; then
			t_warm=$t best_cpu=$cpu best_misses=$misses
		fi
		pass_cp $cache
		t_pass=$(min "$t" "$t_pass")
	done
	printf 'q4k cp, cold remount, disk cache %s in page cache: %.2f s (%s misses) = %sx faster than empty; pass-through cp of a materialized file: %.2f s, disk cache %sx its time; daemon CPU %s s per GiB served from disk (best of %d)\n' \
		"$([ $cache = warm ] && echo "entries" || echo "entries NOT")" "$t_warm" "$best_misses" \
		"$(ratio "$t_empty" "$t_warm")" "$t_pass" "$(ratio "$t_warm" "$t_pass")" "$best_cpu" "$runs"
done
rm -f "$models/materialized.bin" "$shm/empty.q4k.apr"

# Compression per variant: the first 128 MiB of every view through a fresh disk cache.
dc2=$dir/diskcache-ratio.$$
mount_cold -o cache_mb="$cache_mb" -o cache_dir="$dc2"
for v in $(build/aprfs variants --names); do
	dd if="$mnt/model.$v.apr" of=/dev/null bs=1M count=128 status=none
done
sleep 1
until [ "$(disk queued_bytes)" -eq 0 ]; do sleep 0.2; done
printf 'disk cache compression (LZ4 frame, content/stored), per variant:'
for v in $(build/aprfs variants --names); do
	printf ' %s %s' "$v" "$(jq -r ".disk_cache.variants.$v | if .stored_bytes > 0 then (.content_bytes / .stored_bytes * 10000 | round / 10000) else \"-\" end" "$mnt/.aprfs/stats.json")"
done
echo
unmount
rm -rf "$dc" "$dc2" "$shm"

# Scale in tensor count: a mixture-of-experts-sized table of 200,000 small tensors, listed
# (nine virtual files planned from shapes alone) before any byte is read.
many=$dir/many
rm -rf "$many"
build/tools/genmodel --layers 1 --hidden 64 --inter 128 --vocab 256 --heads 4 --kv-heads 2 \
	--experts 200000 "$many" >/dev/null
mnt=$dir/mnt-many
mkdir -p "$mnt"
build/aprfs -f "$many" "$mnt" 2>"$dir/daemon-many.log" &
pid=$!
timeout 10 bash -c "until mountpoint -q '$mnt'; do sleep 0.05; done"
t0=$(now)
ls -l "$mnt" >/dev/null
printf 'ls -l of a checkpoint of 200,000 tensors (9 views): %.0f ms, daemon RSS %d MiB (limit 128)\n' \
	"$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print (b - a) * 1000 }')" \
	"$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")"
unmount
rm -rf "$many"
