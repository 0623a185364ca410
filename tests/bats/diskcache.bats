#!/usr/bin/env bats
# diskcache.bats - the disk cache on real mounts: a remount serves from it with nothing
# quantized, convert shares it both ways, a daemon killed mid-copy (its unsealed pack
# recovered) and packs corrupted or truncated on disk never change a byte, the budget holds,
# read-only and full disks degrade to memory, two daemons share one directory (each chunk
# computed about once), a changed source is never served old entries, and the options.
# On a real distributed file system: diskcache_moosefs.bats.

load helpers

setup_file() {
	export SRC="$BATS_FILE_TMPDIR/src" REF="$BATS_FILE_TMPDIR/ref"
	"$GENMODEL" "$SRC" >/dev/null
	"$GENMODEL" --seed 2 "$SRC/other" >/dev/null
	# big enough that a copy takes a while and two daemons overlap
	"$GENMODEL" --layers 4 --hidden 1024 --inter 2816 --vocab 8000 --heads 8 --kv-heads 4 \
		--seed 3 "$SRC/big" >/dev/null
	mkdir -p "$REF/other" "$REF/big"
	local v
	for v in $VARIANTS; do
		convert "$SRC" model.safetensors "$v" "$REF/model.$v.apr"
	done
	convert "$SRC" other/model.safetensors q8 "$REF/other/model.q8.apr"
	convert "$SRC" big/model.safetensors q4k "$REF/big/model.q4k.apr"
}

setup() {
	MNT="$BATS_TEST_TMPDIR/mnt"
	CD="$BATS_TEST_TMPDIR/cache"
	TMPFS=()
}

teardown() {
	local t
	cleanup_mounts
	for t in "${TMPFS[@]}"; do
		umount -l "$t" 2>/dev/null || true
	done
}

# tmpfs_at DIR SIZE: a small tmpfs on DIR, unmounted in teardown.
tmpfs_at() {
	mkdir -p "$1"
	mount -t tmpfs -o size="$2" tmpfs "$1"
	TMPFS+=("$1")
}

# stop MNT PID: unmount and wait for the daemon to finish (it writes what is queued).
stop() {
	unmount "$1"
	wait_gone "$2" 30
}

# disk MNT KEY: one disk_cache counter.
disk() {
	stats_get "$1" ".disk_cache.$2"
}

# computed MNT: chunks quantized by this daemon, all variants.
computed() {
	stats_get "$1" '[.variants[].chunks_computed] | add'
}

# packs DIR: the number of sealed pack files.
packs() {
	find "$1" -name '*.pack' | wc -l
}

# charged DIR: bytes the packs are charged (each rounded up to 4 KiB).
charged() {
	find "$1" -name '*.pack' -printf '%s\n' | awk '{ s += int(($1 + 4095) / 4096) * 4096 } END { print s + 0 }'
}

# flip_byte FILE OFFSET
flip_byte() {
	python3 -c 'import sys
p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[o] ^= 0x5A
open(p, "wb").write(b)' "$1" "$2"
}

# drained MNT: wait until the daemon's writer has written everything queued.
drained() {
	local i
	for i in $(seq 100); do
		[ "$(disk "$1" queued_bytes)" -eq 0 ] && return 0
		sleep 0.05
	done
	return 1
}

# peers MNT N: wait (up to 5 s) until the daemon counts N other processes on its directory.
peers() {
	local i
	for i in $(seq 100); do
		[ "$(disk "$1" peers)" -eq "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# read_all MNT: every view of model.safetensors equals convert's.
read_all() {
	local v
	for v in $VARIANTS; do
		timeout 60 cmp "$1/model.$v.apr" "$REF/model.$v.apr" || return 1
	done
}

@test "a remount serves every view from the disk cache: same bytes, nothing quantized" {
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	read_all "$MNT"
	[ "$(disk "$MNT" misses)" -gt 0 ]
	[ "$(computed "$MNT")" -gt 0 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	stop "$MNT" "$APRFS_PID"
	# a few packs, whatever the number of chunks; nothing else left behind
	[ "$(packs "$CD")" -ge 1 ] && [ "$(packs "$CD")" -le 3 ]
	[ "$(find "$CD" -type f | wc -l)" -eq $(($(packs "$CD") + 1)) ]
	[ -f "$CD/CACHEDIR.TAG" ]

	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	read_all "$MNT"
	[ "$(disk "$MNT" misses)" -eq 0 ]
	[ "$(disk "$MNT" hits)" -gt 50 ]
	[ "$(computed "$MNT")" -eq 0 ]
	[ "$(stats_get "$MNT" '.variants.q4k.bytes_served')" -gt 0 ]
	[ "$(disk "$MNT" variants.q4k.chunk_hits)" -gt 0 ]
	[ "$(disk "$MNT" entries_written)" -eq 0 ]
	# a stats.json without cache_dir has no disk_cache object
	stop "$MNT" "$APRFS_PID"
	mount_fg "$SRC" "$MNT"
	[ "$(stats_get "$MNT" '.disk_cache')" = null ]
}

@test "convert --cache-dir fills the cache a mount reads, and reads what a mount wrote" {
	run timeout 60 "$APRFS" convert --cache-dir "$CD" --root "$SRC" "$SRC/model.safetensors" \
		"$BATS_TEST_TMPDIR/a.q4k.apr"
	[ "$status" -eq 0 ]
	[[ $output == *"0 hits"* ]]
	cmp "$BATS_TEST_TMPDIR/a.q4k.apr" "$REF/model.q4k.apr"
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q4k.apr" "$REF/model.q4k.apr"
	# --root made the metadata the mount's, so even the footer came from the cache
	[ "$(disk "$MNT" misses)" -eq 0 ]
	[ "$(computed "$MNT")" -eq 0 ]
	timeout 120 cmp "$MNT/model.q6k.apr" "$REF/model.q6k.apr"
	stop "$MNT" "$APRFS_PID"
	run timeout 60 "$APRFS" convert --cache-dir "$CD" --root "$SRC" "$SRC/model.safetensors" \
		"$BATS_TEST_TMPDIR/b.q6k.apr"
	[ "$status" -eq 0 ]
	[[ $output == *", 0 misses, 0 entries written"* ]]
	cmp "$BATS_TEST_TMPDIR/b.q6k.apr" "$REF/model.q6k.apr"
	# without --root only the footer differs (its metadata names another path)
	run timeout 60 "$APRFS" convert --cache-dir "$CD" --root "$SRC" \
		"$SRC/other/model.safetensors" "$BATS_TEST_TMPDIR/c.q8.apr"
	[ "$status" -eq 0 ]
	cmp "$BATS_TEST_TMPDIR/c.q8.apr" "$REF/other/model.q8.apr"
	run timeout 60 "$APRFS" convert --cache-dir "$CD" "$SRC/other/model.safetensors" \
		"$BATS_TEST_TMPDIR/d.q8.apr"
	[ "$status" -eq 0 ]
	[[ $output == *", 1 misses, 1 entries written"* ]]
}

@test "a daemon killed mid-copy, then flipped and truncated packs: every byte equals convert's" {
	local big=big/model.q4k.apr pid i f size
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	pid=$(daemon_pid "$APRFS_PID")
	# a slow reader, 1 MiB at a time, so the kill lands in the middle of the copy
	(
		for i in $(seq 0 40); do
			dd if="$MNT/$big" bs=1M skip="$i" count=1 status=none || exit 1
			sleep 0.05
		done
	) >"$BATS_TEST_TMPDIR/partial" 2>/dev/null &
	local reader=$!
	for i in $(seq 200); do
		[ "$(disk "$MNT" entries_written)" -ge 30 ] && break
		sleep 0.02
	done
	kill -KILL "$pid"
	run wait "$reader"
	[ "$status" -ne 0 ] # the copy did not finish
	# (a dead daemon's mount is not a mountpoint to `mountpoint`: detach it by name)
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	wait_gone "$APRFS_PID" 30
	# its pack was never sealed: the next daemon recovers its records
	[ "$(find "$CD" -name '*.tmp' | wc -l)" -eq 1 ]
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 60 cmp "$MNT/$big" "$REF/$big"
	[ "$(disk "$MNT" packs_recovered)" -eq 1 ]
	[ "$(disk "$MNT" hits)" -ge 30 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	grep -q 'unsealed pack of a dead writer' "$LOG"
	# the killed daemon is not counted as a peer (its process is gone), nor waited for
	[ "$(disk "$MNT" peers)" -eq 0 ]
	[ "$(disk "$MNT" claim_waits)" -eq 0 ]
	[ "$(find "$CD/daemons" -type f | wc -l)" -eq 1 ]
	stop "$MNT" "$APRFS_PID"
	[ "$(packs "$CD")" -eq 2 ]
	[ "$(find "$CD" -name '*.tmp' | wc -l)" -eq 0 ]

	# damage both packs: bytes flipped anywhere in one, the other cut anywhere
	f=$(find "$CD" -name '*.pack' | sort | head -n 1)
	size=$(stat -c %s "$f")
	for i in 1 2 3; do
		flip_byte "$f" "$(shuf -i 0-$((size - 1)) -n 1)"
	done
	f=$(find "$CD" -name '*.pack' | sort | tail -n 1)
	truncate -s "$(shuf -i 0-$(($(stat -c %s "$f") - 1)) -n 1)" "$f"

	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 60 cmp "$MNT/$big" "$REF/$big"
	# one count and one line per damaged pack: its first bad record (or bad index) gets it
	# deleted; the good records of a pack deleted for a record are written again
	[ "$(disk "$MNT" corrupt)" -eq 2 ]
	[ "$(grep -c 'deleted' "$LOG")" -eq 2 ]
	stop "$MNT" "$APRFS_PID"
	# and once more, now all healthy
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 60 cmp "$MNT/$big" "$REF/$big"
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	[ "$(disk "$MNT" misses)" -eq 0 ]
}

@test "the directory stays within disk_cache_mb, evicting; the bytes do not change" {
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD",disk_cache_mb=2
	read_all "$MNT"
	[ "$(disk "$MNT" evictions)" -gt 0 ]
	[ "$(disk "$MNT" budget)" -eq 2097152 ]
	stop "$MNT" "$APRFS_PID"
	[ "$(charged "$CD")" -le 2097152 ]
	# eviction goes by pack and stops below 90 % of the budget: the last pack it took held at
	# most pack_max (budget / 4, at least 1 MiB) plus one record, so more than 0.8 MiB - 1 record
	# stays. How much more depends on where packs were sealed (timing): only the bound is checked.
	[ "$(charged "$CD")" -gt 524288 ]
	# budgets are per mount: the same directory under a larger one keeps everything
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD",disk_cache_mb=64
	read_all "$MNT"
	stop "$MNT" "$APRFS_PID"
	[ "$(charged "$CD")" -gt 2097152 ]
}

@test "a read-only cache directory serves what it holds; writes stop with one log line" {
	tmpfs_at "$CD" 16m
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q8.apr" "$REF/model.q8.apr"
	stop "$MNT" "$APRFS_PID"
	mount -o remount,ro "$CD"

	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q8.apr" "$REF/model.q8.apr"
	[ "$(disk "$MNT" misses)" -eq 0 ]
	timeout 120 cmp "$MNT/model.q4k.apr" "$REF/model.q4k.apr"
	timeout 120 cmp "$MNT/model.nf4.apr" "$REF/model.nf4.apr"
	sleep 0.5 # the writer meets EROFS in the background
	[ "$(disk "$MNT" degraded)" -eq 1 ]
	[ "$(disk "$MNT" degraded_errno)" -eq 30 ]
	[ "$(disk "$MNT" not_persisted)" -gt 1 ]
	[ "$(grep -c 'serving from memory' "$LOG")" -eq 1 ]
}

@test "a full disk degrades to memory with one log line, never an error to the reader" {
	tmpfs_at "$CD" 256k
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	read_all "$MNT"
	sleep 0.5
	[ "$(disk "$MNT" degraded)" -eq 1 ]
	[ "$(disk "$MNT" degraded_errno)" -eq 28 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	[ "$(grep -c 'serving from memory' "$LOG")" -eq 1 ]
	# the records that fit are whole (a batch the disk has no room for is retried record by
	# record; the index is written over the last records if need be), and served on the
	# next mount, once its scanner has listed the pack
	stop "$MNT" "$APRFS_PID"
	[ "$(packs "$CD")" -eq 1 ]
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	local i
	for i in $(seq 600); do
		[ "$(disk "$MNT" packs)" -ge 1 ] && break
		sleep 0.1
	done
	read_all "$MNT"
	stats_get "$MNT" .disk_cache # (shown if what follows fails)
	[ "$(disk "$MNT" hits)" -gt 0 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
}

@test "two daemons on one directory: identical bytes, no corrupt entry, each chunk computed about once" {
	local m1="$BATS_TEST_TMPDIR/m1" m2="$BATS_TEST_TMPDIR/m2" p1 p2 big=big/model.q4k.apr
	mount_fg "$SRC" "$m1" -o cache_dir="$CD"
	p1=$APRFS_PID
	mount_fg "$SRC" "$m2" -o cache_dir="$CD"
	p2=$APRFS_PID
	# each knows the other (then they claim what they compute)
	peers "$m1" 1 && peers "$m2" 1
	# the same file from both at once
	timeout 60 cat "$m1/$big" >"$BATS_TEST_TMPDIR/a" &
	local r1=$!
	timeout 60 cat "$m2/$big" >"$BATS_TEST_TMPDIR/b" &
	wait $! && wait "$r1"
	cmp "$BATS_TEST_TMPDIR/a" "$REF/$big"
	cmp "$BATS_TEST_TMPDIR/b" "$REF/$big"
	drained "$m1" && drained "$m2"
	local c1 c2 w1 w2 ms1 ms2 n
	c1=$(stats_get "$m1" .variants.q4k.chunks_computed)
	c2=$(stats_get "$m2" .variants.q4k.chunks_computed)
	ms1=$(disk "$m1" misses)
	ms2=$(disk "$m2" misses)
	w1=$(disk "$m1" claim_waits)
	w2=$(disk "$m2" claim_waits)
	echo "# two daemons, one q4k file: $c1 + $c2 chunks computed, $ms1 + $ms2 misses, $w1 + $w2 claim waits" >&3
	# different files from each at once
	timeout 60 cat "$m1/other/model.q8.apr" >"$BATS_TEST_TMPDIR/c" &
	r1=$!
	timeout 60 cat "$m2/model.q8.apr" >"$BATS_TEST_TMPDIR/d" &
	wait $! && wait "$r1"
	cmp "$BATS_TEST_TMPDIR/c" "$REF/other/model.q8.apr"
	cmp "$BATS_TEST_TMPDIR/d" "$REF/model.q8.apr"
	[ "$(disk "$m1" corrupt)" -eq 0 ] && [ "$(disk "$m2" corrupt)" -eq 0 ]
	stop "$m1" "$p1"
	stop "$m2" "$p2"
	# a third daemon finds everything, whole, and tells how many chunks the file has. Read
	# with O_DIRECT, so in order and the footer last: a kernel read-ahead of the last
	# pages, served before the chunks ahead of it, would look up some chunks' CRCs for the
	# footer and count them twice.
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 60 dd if="$MNT/$big" iflag=direct bs=1M status=none | cmp - "$REF/$big"
	local chunks
	chunks=$(disk "$MNT" variants.q4k.chunk_hits)
	echo "# the file has $chunks chunks" >&3
	timeout 60 cmp "$MNT/other/model.q8.apr" "$REF/other/model.q8.apr"
	timeout 60 cmp "$MNT/model.q8.apr" "$REF/model.q8.apr"
	[ "$(disk "$MNT" misses)" -eq 0 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	[ "$(computed "$MNT")" -eq 0 ]
	# each chunk computed about once between the two (without claims: about twice)
	[ "$((c1 + c2))" -ge "$chunks" ]
	[ "$((c1 + c2))" -le $((chunks + chunks / 8)) ]
	[ "$((w1 + w2))" -gt 0 ]
}

@test "a changed source is never served the old entries" {
	local src="$BATS_TEST_TMPDIR/src"
	mkdir -p "$src"
	cp "$SRC/model.safetensors" "$SRC/config.json" "$src/"
	mount_fg "$src" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q8.apr" "$REF/model.q8.apr"
	stop "$MNT" "$APRFS_PID"
	# the same shapes and size, other values
	"$GENMODEL" --seed 9 "$BATS_TEST_TMPDIR/new" >/dev/null
	cp "$BATS_TEST_TMPDIR/new/model.safetensors" "$src/model.safetensors"
	convert "$src" model.safetensors q8 "$BATS_TEST_TMPDIR/new.q8.apr"
	run ! cmp -s "$BATS_TEST_TMPDIR/new.q8.apr" "$REF/model.q8.apr"
	mount_fg "$src" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q8.apr" "$BATS_TEST_TMPDIR/new.q8.apr"
	[ "$(disk "$MNT" hits)" -eq 0 ]
	# a copy of the model elsewhere (other inode, same bytes and mtime) shares the entries
	stop "$MNT" "$APRFS_PID"
	local copy="$BATS_TEST_TMPDIR/copy"
	mkdir -p "$copy"
	cp -p "$src/model.safetensors" "$src/config.json" "$copy/"
	mount_fg "$copy" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q8.apr" "$BATS_TEST_TMPDIR/new.q8.apr"
	[ "$(computed "$MNT")" -eq 0 ]
}

@test "options: config file keys, disk_cache_mb alone refused, help texts" {
	printf 'cache_dir = %s\ndisk_cache_mb = 100\n' "$CD" >"$BATS_TEST_TMPDIR/aprfs.conf"
	mount_fg "$SRC" "$MNT" --config "$BATS_TEST_TMPDIR/aprfs.conf"
	[ "$(disk "$MNT" budget)" -eq $((100 << 20)) ]
	timeout 120 cmp "$MNT/model.q4.apr" "$REF/model.q4.apr"
	[ "$(disk "$MNT" misses)" -gt 0 ]
	[ -d "$CD" ]

	mkdir -p "$BATS_TEST_TMPDIR/nomnt"
	run timeout 60 "$APRFS" -f -o disk_cache_mb=100 "$SRC" "$BATS_TEST_TMPDIR/nomnt"
	[ "$status" -eq 2 ]
	[[ $output == *"needs cache_dir"* ]]
	run timeout 60 "$APRFS" -f -o cache_dir=/proc/nope/cache "$SRC" "$BATS_TEST_TMPDIR/nomnt"
	[ "$status" -eq 2 ]
	[[ $output == *"cache_dir /proc/nope/cache"* ]]
	run timeout 60 "$APRFS" -f -o disk_cache_mb=0,cache_dir="$CD" "$SRC" "$BATS_TEST_TMPDIR/nomnt"
	[ "$status" -eq 2 ]
	run timeout 60 "$APRFS" --help
	[[ $output == *"cache_dir=DIR"* && $output == *"disk_cache_mb=N"* ]]
	run timeout 60 "$APRFS" convert --help
	[[ $output == *"--cache-dir DIR"* && $output == *"--disk-cache-mb N"* ]]
	run timeout 60 "$APRFS" convert --disk-cache-mb 5 "$SRC/model.safetensors" "$BATS_TEST_TMPDIR/x.q8.apr"
	[ "$status" -eq 2 ]
	[[ $output == *"needs --cache-dir"* ]]
}
