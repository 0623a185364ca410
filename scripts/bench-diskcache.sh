#!/usr/bin/env bash
# bench-diskcache.sh - the disk cache's figures (issue 20), as ratios within one run, on a
# local directory and on a real MooseFS (scripts/moosefs.sh; skipped with the reason when it
# cannot run): the q4k view's cold `cp` with an empty cache_dir against none, the share of
# its chunks in the cache after that cp and an unmount, the files the cache directory holds,
# a warm remount `cp` (page cache dropped) against `cat` of a plain file of the same size on
# the same file system and against recomputing (and, to show where the time goes, against a
# `cp` of that plain file into the same tmpfs, straight and through an aprfs mount that
# passes it through: the floor of any file served by FUSE here), two daemons copying the view at once
# through one cache_dir (chunks computed / the view's chunks, both copies checked against
# convert), and (MooseFS) a warm `cp` during which the chunkserver stops.
# Each time is the best of BENCH_RUNS (default 3) runs: single runs vary a lot on this VM.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${BENCH_DIR:-/tmp/aprfs-bench}
size_mb=${BENCH_SIZE_MB:-1100}
runs=${BENCH_RUNS:-3}
models=$dir/model
mkdir -p "$models"
if [ ! -f "$models/model.safetensors" ]; then
	build/tools/genmodel --dtype bf16 --size-mb "$size_mb" "$models" >/dev/null
fi
src=$models/model.safetensors
shm=/dev/shm/aprfs-bench-dc.$$
mkdir -p "$shm"
. scripts/moosefs.sh

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { print b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
min() { awk -v a="$1" -v b="${2:-$1}" 'BEGIN { print (a < b ? a : b) }'; }
verdict() { awk -v r="$1" -v t="$3" -v op="$2" 'BEGIN { ok = op == "<=" ? r <= t : r >= t; printf "%s", ok ? "ok" : "MISSED" }'; }

# ---- daemons: any number, each on its own mount point ------------------------------------
pids=() mnts=()
daemon() { # MNT [options...]: start a daemon on MNT (over ROOT, default the model) and wait
	local m=$1
	shift
	mkdir -p "$m"
	build/aprfs -f "$@" "${ROOT:-$models}" "$m" 2>>"$dir/daemon-dc.log" &
	pids+=($!) mnts+=("$m")
	timeout 10 bash -c "until mountpoint -q '$m'; do sleep 0.05; done"
}
stop_all() { # unmount every daemon, waiting for each to finish (it seals its pack)
	local m p
	for m in "${mnts[@]}"; do
		fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		timeout 120 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
	done
	pids=() mnts=()
}
mfs_dir=
cleanup() {
	stop_all
	[ -z "$mfs_dir" ] || moosefs_stop "$mfs_dir"
	rm -rf "$shm"
}
trap cleanup EXIT
stat_of() { jq -r "$2" "$1/.aprfs/stats.json"; }
# cpu_ticks PID...: user + system clock ticks these processes (all their threads) used so far
cpu_ticks() {
	local p t=0
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
hz=$(getconf CLK_TCK)
# fs_cpu: the ticks used so far by the processes of the file system under the cache
# directory (MooseFS: master, chunkserver, mfsmount; none locally, where writing is done
# in the kernel, mostly in the writer's own system time)
fs_cpu() {
	local p=()
	[ -z "$mfs_dir" ] || mapfile -t p < <(pgrep -f "mfs(master|chunkserver) -c $mfs_dir/|mfsmount $mfs_dir/mnt")
	cpu_ticks "${p[@]}"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

mnt=$dir/mnt-dc
build/aprfs convert --quiet --root "$models" "$src" "$shm/ref.q4k.apr"
bytes=$(stat -c %s "$shm/ref.q4k.apr")
cat "$src" >/dev/null
echo "disk cache bench: $(du -m "$src" | cut -f1) MiB bf16 checkpoint, q4k view $((bytes / 1048576)) MiB, $(nproc) cores, best of $runs"

# cp_view MNT OUT: the time of a cp of the q4k view into the tmpfs
cp_view() {
	local t0
	t0=$(now)
	cp "$1/model.q4k.apr" "$2"
	secs "$t0"
}

bench_fs() { # NAME DIR: every figure with the cache directory in DIR
	local name=$1 base=$2 t t_none= t_empty= t_warm= t_cat= t_cp= t_pass= files chunks hits misses
	local c0 cpu_none='' cpu_fs=''
	local dc="$base/dc"
	echo "--- $name: cache_dir $dc"
	mkdir -p "$base/plain"
	cp "$shm/ref.q4k.apr" "$base/plain/plain.bin"
	for _ in $(seq "$runs"); do
		drop_caches
		cat "$src" >/dev/null
		daemon "$mnt"
		c0=$(cpu_ticks "${pids[0]}")
		t=$(cp_view "$mnt" "$shm/out.apr")
		if [ -z "$t_none" ] || [ "$(min "$t" "$t_none")" = "$t" ]; then
			t_none=$t cpu_none=$(($(cpu_ticks "${pids[0]}") - c0))
		fi
		stop_all
		rm -rf "$dc"
		daemon "$mnt" -o cache_dir="$dc"
		c0=$(fs_cpu)
		t=$(cp_view "$mnt" "$shm/out.apr")
		t_empty=$(min "$t" "$t_empty")
		np=$(stat_of "$mnt" .disk_cache.not_persisted)
		stop_all
		t=$(($(fs_cpu) - c0))
		cpu_fs=$(min "$t" "$cpu_fs")
		cmp "$shm/out.apr" "$shm/ref.q4k.apr"
	done
	files=$(find "$dc" -type f | wc -l)
	for _ in $(seq "$runs"); do
		drop_caches
		cat "$src" >/dev/null
		daemon "$mnt" -o cache_dir="$dc"
		t=$(cp_view "$mnt" "$shm/out.apr")
		if [ -z "$t_warm" ] || [ "$(min "$t" "$t_warm")" = "$t" ]; then
			t_warm=$t
			hits=$(stat_of "$mnt" .disk_cache.variants.q4k.chunk_hits)
			misses=$(stat_of "$mnt" .disk_cache.variants.q4k.chunk_misses)
		fi
		stop_all
		cmp "$shm/out.apr" "$shm/ref.q4k.apr"
		drop_caches
		t0=$(now)
		cat "$base/plain/plain.bin" >/dev/null
		t_cat=$(min "$(secs "$t0")" "$t_cat")
		drop_caches
		t0=$(now)
		cp "$base/plain/plain.bin" "$shm/out.apr"
		t_cp=$(min "$(secs "$t0")" "$t_cp")
		ROOT=$base/plain daemon "$mnt"
		drop_caches
		t0=$(now)
		cp "$mnt/plain.bin" "$shm/out.apr"
		t_pass=$(min "$(secs "$t0")" "$t_pass")
		stop_all
	done
	chunks=$((hits + misses))
	printf '%s: cold cp, no cache_dir %.2f s; empty cache_dir %.2f s: %sx (target <= 1.15: %s); %s chunks not persisted\n' \
		"$name" "$t_none" "$t_empty" "$(ratio "$t_empty" "$t_none")" \
		"$(verdict "$(ratio "$t_empty" "$t_none")" "<=" 1.15)" "$np"
	printf '%s: chunks in the cache after the cold cp and unmount: %d of %d (%s%%, target 100)\n' \
		"$name" "$hits" "$chunks" "$(awk -v a="$hits" -v b="$chunks" 'BEGIN { printf "%.1f", 100 * a / b }')"
	printf '%s: files in cache_dir: %d (%s MiB checkpoint; target <= 8 for >= 1 GiB)\n' "$name" "$files" \
		"$(du -m "$src" | cut -f1)"
	printf '%s: warm remount cp %.2f s; cat of a plain file of that size %.2f s: %sx (target <= 1.5: %s); recomputing %sx the warm cp (target >= 3: %s)\n' \
		"$name" "$t_warm" "$t_cat" "$(ratio "$t_warm" "$t_cat")" \
		"$(verdict "$(ratio "$t_warm" "$t_cat")" "<=" 1.5)" "$(ratio "$t_none" "$t_warm")" \
		"$(verdict "$(ratio "$t_none" "$t_warm")" ">=" 3)"
	printf '%s: the same warm cp against a cp of the plain file into the same tmpfs %.2f s: %sx; against that cp through an aprfs mount passing the plain file through (the FUSE floor) %.2f s: %sx\n' \
		"$name" "$t_cp" "$(ratio "$t_warm" "$t_cp")" "$t_pass" "$(ratio "$t_warm" "$t_pass")"
	# What this machine allows. The cold cp keeps every core busy quantizing, so the file
	# system's own processes writing the records (MooseFS: master, chunkserver, mfsmount)
	# add their CPU time to it; and no cache read is faster than reading a plain file there.
	printf '%s: what this machine allows: the cold cp without a cache_dir used %.2f CPU-s of the daemon in %.2f s on %d cores; writing the records used %.2f CPU-s of the file system'"'"'s own processes; so a cold cp with a cache_dir takes at least %sx the one without\n' \
		"$name" "$(awk -v c="$cpu_none" -v h="$hz" 'BEGIN { print c / h }')" "$t_none" "$(nproc)" \
		"$(awk -v c="$cpu_fs" -v h="$hz" 'BEGIN { print c / h }')" \
		"$(awk -v a="$cpu_none" -v b="$cpu_fs" -v h="$hz" -v n="$(nproc)" -v t="$t_none" \
			'BEGIN { r = (a + b) / h / n / t; printf "%.2f", r < 1 ? 1 : r }')"
	printf '%s: what this machine allows: the FUSE pass-through cp / cat %sx (the least a warm cp / cat can be); recomputing / cat %sx (the most recomputing / warm cp can be)\n' \
		"$name" "$(ratio "$t_pass" "$t_cat")" "$(ratio "$t_none" "$t_cat")"
	fleet "$name" "$base/fleet"
	T_NONE=$t_none
	rm -rf "$base/plain"
}

fleet() { # NAME DC: two daemons copy the view at once through one cache_dir
	local name=$1 dc=$2 c1 c2 chunks t0 t
	rm -rf "$dc"
	daemon "$mnt.1" -o cache_dir="$dc"
	daemon "$mnt.2" -o cache_dir="$dc"
	for _ in $(seq 50); do
		[ "$(stat_of "$mnt.1" .disk_cache.peers)" = 1 ] && [ "$(stat_of "$mnt.2" .disk_cache.peers)" = 1 ] && break
		sleep 0.1
	done
	t0=$(now)
	cp "$mnt.1/model.q4k.apr" "$shm/f1.apr" &
	cp "$mnt.2/model.q4k.apr" "$shm/f2.apr"
	wait $!
	t=$(secs "$t0")
	c1=$(stat_of "$mnt.1" .variants.q4k.chunks_computed)
	c2=$(stat_of "$mnt.2" .variants.q4k.chunks_computed)
	stop_all
	cmp "$shm/f1.apr" "$shm/ref.q4k.apr" && cmp "$shm/f2.apr" "$shm/ref.q4k.apr"
	daemon "$mnt" -o cache_dir="$dc"
	dd if="$mnt/model.q4k.apr" of=/dev/null bs=1M status=none
	chunks=$(stat_of "$mnt" .disk_cache.variants.q4k.chunk_hits)
	stop_all
	printf '%s: two daemons copying at once (%.2f s): %d + %d chunks computed for %d: %sx (target <= 1.1: %s); both copies identical to convert\n' \
		"$name" "$t" "$c1" "$c2" "$chunks" "$(ratio $((c1 + c2)) "$chunks")" \
		"$(verdict "$(ratio $((c1 + c2)) "$chunks")" "<=" 1.1)"
	rm -rf "$dc"
}

stall() { # DC: a warm cp during which the chunkserver freezes
	local dc=$1 t t0 cs
	daemon "$mnt" -o cache_dir="$dc"
	cat "$mnt/model.q4k.apr" >/dev/null # (complete, whatever earlier runs left)
	stop_all
	drop_caches
	daemon "$mnt" -o cache_dir="$dc"
	cs=$(moosefs_cs_pid "$mfs_dir")
	t0=$(now)
	cp "$mnt/model.q4k.apr" "$shm/stall.apr" &
	local c=$!
	sleep 0.2
	kill -STOP "$cs"
	wait "$c"
	t=$(secs "$t0")
	printf 'MooseFS: warm cp, chunkserver frozen after 0.2 s: %.2f s = %sx recomputing (target <= 2: %s), %s stalls, bytes %s\n' \
		"$t" "$(ratio "$t" "$T_NONE")" "$(verdict "$(ratio "$t" "$T_NONE")" "<=" 2)" \
		"$(stat_of "$mnt" .disk_cache.stalls)" \
		"$(cmp -s "$shm/stall.apr" "$shm/ref.q4k.apr" && echo identical || echo DIFFER)"
	kill -CONT "$cs"
	stop_all
}

local_dir=$dir/local-dc.$$
mkdir -p "$local_dir"
bench_fs "local ($(df -T "$dir" | awk 'NR == 2 { print $2 }'))" "$local_dir"
rm -rf "$local_dir"

why=$(moosefs_missing)
if [ -n "$why" ]; then
	echo "MooseFS: skipped: $why"
	exit 0
fi
mfs_dir=$dir/moosefs.$$
MFS_MOUNT_OPTS="-o mfsioretries=4" moosefs_start "$mfs_dir"
bench_fs MooseFS "$MFS_MNT"
stall "$MFS_MNT/dc"
