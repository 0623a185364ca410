#!/usr/bin/env bats
# diskcache_moosefs.bats - the disk cache on a real distributed file system (MooseFS: master,
# chunkserver and mfsmount started here, tests/bats/moosefs.bash): a cold copy persists
# every chunk in a few pack files, a remount serves them all, two daemons sharing the
# directory compute each chunk about once, and a chunkserver that freezes or stops in the
# middle of a warm copy never hangs it nor changes a byte. Figures: `make bench`.

load helpers
load moosefs

setup_file() {
	export SRC="$BATS_FILE_TMPDIR/src" REF="$BATS_FILE_TMPDIR/ref"
	# a few MiB of q4k: hundreds of chunks, a copy that lasts long enough to overlap
	"$GENMODEL" --layers 4 --hidden 1024 --inter 2816 --vocab 8000 --heads 8 --kv-heads 4 \
		--seed 3 "$SRC" >/dev/null
	mkdir -p "$REF"
	convert "$SRC" model.safetensors q4k "$REF/model.q4k.apr"
}

setup() {
	MNT="$BATS_TEST_TMPDIR/mnt"
	# a file system per test: a frozen chunkserver must not leak into the next test
	MFS_MOUNT_OPTS="-o mfsioretries=4" moosefs_setup "$BATS_TEST_TMPDIR/mfs"
	CD="$MFS_MNT/cache"
}

teardown() {
	moosefs_cs_cont 2>/dev/null || true
	cleanup_mounts
	moosefs_teardown
}

disk() {
	stats_get "$1" ".disk_cache.$2"
}

q4k_computed() {
	stats_get "$1" .variants.q4k.chunks_computed
}

# stop MNT PID: unmount and wait for the daemon to finish (it writes and seals its pack).
stop() {
	unmount "$1"
	wait_gone "$2" 60
}

@test "MooseFS: a cold copy persists every chunk in a few packs; a remount computes nothing" {
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	local p=$APRFS_PID chunks files
	timeout 120 cp "$MNT/model.q4k.apr" "$BATS_TEST_TMPDIR/a"
	cmp "$BATS_TEST_TMPDIR/a" "$REF/model.q4k.apr"
	chunks=$(q4k_computed "$MNT")
	[ "$(disk "$MNT" not_persisted)" -eq 0 ]
	stop "$MNT" "$p"
	files=$(find "$CD" -type f | wc -l)
	echo "# $chunks chunks; files in the cache directory: $files" >&3
	[ "$files" -le 4 ]
	[ "$(find "$CD/packs" -name '*.pack' | wc -l)" -ge 1 ]
	[ "$(find "$CD/packs" -name '*.tmp' | wc -l)" -eq 0 ]
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 120 cp "$MNT/model.q4k.apr" "$BATS_TEST_TMPDIR/b"
	cmp "$BATS_TEST_TMPDIR/b" "$REF/model.q4k.apr"
	[ "$(q4k_computed "$MNT")" -eq 0 ]
	[ "$(disk "$MNT" misses)" -eq 0 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
}

@test "MooseFS: two daemons copying one view at once compute each chunk about once" {
	local m1="$BATS_TEST_TMPDIR/m1" m2="$BATS_TEST_TMPDIR/m2" p1 p2 r1 c1 c2 chunks
	mount_fg "$SRC" "$m1" -o cache_dir="$CD"
	p1=$APRFS_PID
	mount_fg "$SRC" "$m2" -o cache_dir="$CD"
	p2=$APRFS_PID
	# each knows the other (then they claim ranges of chunks)
	for i in $(seq 100); do
		[ "$(disk "$m1" peers)" -eq 1 ] && [ "$(disk "$m2" peers)" -eq 1 ] && break
		sleep 0.1
	done
	timeout 120 cp "$m1/model.q4k.apr" "$BATS_TEST_TMPDIR/a" &
	r1=$!
	timeout 120 cp "$m2/model.q4k.apr" "$BATS_TEST_TMPDIR/b"
	wait "$r1"
	cmp "$BATS_TEST_TMPDIR/a" "$REF/model.q4k.apr"
	cmp "$BATS_TEST_TMPDIR/b" "$REF/model.q4k.apr"
	c1=$(q4k_computed "$m1")
	c2=$(q4k_computed "$m2")
	[ "$(disk "$m1" corrupt)" -eq 0 ] && [ "$(disk "$m2" corrupt)" -eq 0 ]
	stop "$m1" "$p1"
	stop "$m2" "$p2"
	# a third daemon: every chunk there, whole; it tells how many chunks the view has
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	timeout 120 cmp "$MNT/model.q4k.apr" "$REF/model.q4k.apr"
	[ "$(q4k_computed "$MNT")" -eq 0 ]
	chunks=$(disk "$MNT" variants.q4k.chunk_hits)
	echo "# two daemons: $c1 + $c2 chunks computed for $chunks" >&3
	# about once each (the bench prints the exact ratio, target <= 1.1x): here 1.25x, as
	# who computes what near the start depends on timing (a daemon learns of the other
	# within half a second) and a machine busy with other tests stretches that
	[ "$((c1 + c2))" -ge "$chunks" ]
	[ "$((c1 + c2))" -le $((chunks + chunks / 4)) ]
}

# warm_copy_through STOPCMD: fill the cache, remount, copy with the chunkserver stopped by
# STOPCMD after the first MiBs: the copy finishes with the right bytes.
warm_copy_through() {
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	local p=$APRFS_PID r
	timeout 120 cat "$MNT/model.q4k.apr" >/dev/null
	stop "$MNT" "$p"
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	# the first 2 MiB from the cache, then the storage stops answering
	timeout 120 dd if="$MNT/model.q4k.apr" of="$BATS_TEST_TMPDIR/out" bs=1M count=2 status=none
	"$@"
	# hang protection only: the copy needs seconds
	timeout 120 dd if="$MNT/model.q4k.apr" of="$BATS_TEST_TMPDIR/out" bs=1M skip=2 seek=2 \
		status=none
	cmp "$BATS_TEST_TMPDIR/out" "$REF/model.q4k.apr"
	[ "$(disk "$MNT" stalls)" -ge 1 ]
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	grep -q "set aside" "$LOG"
}

@test "MooseFS: a chunkserver frozen in the middle of a warm copy: it finishes, right bytes" {
	warm_copy_through moosefs_cs_stop
}

@test "MooseFS: a chunkserver stopped in the middle of a warm copy: it finishes, right bytes" {
	warm_copy_through moosefs_cs_down "$MFS_HOME"
}

# A bug found by hand: with the chunkserver already gone, a daemon whose cache directory
# was new never came up: it wrote CACHEDIR.TAG before mounting, and that file's close
# waited for the chunkserver for good. Now nothing is written to the directory before the
# mount is up (the writer thread writes the tag, and may stall alone): the mount comes up
# and serves; at unmount the daemon
# closes without the cache, and its process ends once the stuck write returns (the
# kernel does not let a process end while one of its threads waits for a FUSE server).
@test "MooseFS: a chunkserver already down when the daemon starts: it mounts, serves, unmounts" {
	moosefs_cs_down "$MFS_HOME"
	mount_fg "$SRC" "$MNT" -o cache_dir="$CD"
	local p=$APRFS_PID i
	timeout 120 cp "$MNT/model.q4k.apr" "$BATS_TEST_TMPDIR/a"
	cmp "$BATS_TEST_TMPDIR/a" "$REF/model.q4k.apr"
	[ "$(disk "$MNT" corrupt)" -eq 0 ]
	unmount "$MNT"
	run ! mountpoint -q "$MNT"
	for i in $(seq 600); do
		grep -q "closed without it" "$LOG" && break
		sleep 0.1
	done
	grep -q "closed without it" "$LOG"
	moosefs_cs_up "$MFS_HOME"
	wait_gone "$p" 120
}
