#!/usr/bin/env bats
# mount.bats - the daemon end to end on real FUSE mounts: naming rule, sizes and bytes
# equal to `aprfs convert`, random ranges, cold footer, concurrent readers, mmap, stats,
# hostile checkpoints, EROFS, snapshots across source changes, options, fstab mounts.

load helpers

# The checkpoints of $SRC, as paths relative to it.
CHECKPOINTS="model.safetensors sharded/model.safetensors.index.json nested/deep/model.safetensors"

# virtual_name CKPT VARIANT: "sharded/model.safetensors.index.json" q8 -> sharded/model.q8.apr
virtual_name() {
	local ck=$1 dir="" base
	[[ $ck == */* ]] && dir="${ck%/*}/"
	base=${ck##*/}
	base=${base%.safetensors.index.json}
	base=${base%.safetensors}
	echo "$dir$base.$2.apr"
}

setup_file() {
	export SRC="$BATS_FILE_TMPDIR/src" REF="$BATS_FILE_TMPDIR/ref"
	"$GENMODEL" "$SRC"
	"$GENMODEL" --shards 3 --dtype f16 --seed 2 "$SRC/sharded"
	mkdir -p "$SRC/nested/deep"
	"$GENMODEL" --dtype f32 --odd --no-config --layers 1 --seed 3 "$SRC/nested/deep"
	local ck v vn
	for ck in $CHECKPOINTS; do
		for v in $VARIANTS; do
			vn=$(virtual_name "$ck" "$v")
			mkdir -p "$REF/$(dirname "$vn")"
			convert "$SRC" "$ck" "$v" "$REF/$vn"
		done
	done
}

setup() {
	MNT="$BATS_TEST_TMPDIR/mnt"
	DAEMONS=()
}

teardown() {
	local p
	cleanup_mounts
	# Daemonized mounts escaped their timeout wrapper: end them by pid if still there.
	for p in "${DAEMONS[@]}"; do
		wait_gone "$p" 30 || kill -KILL "$p" 2>/dev/null || true
	done
}

# expected_listing DIR: what the mount should show for $SRC/DIR, one name a line.
expected_listing() {
	local dir="$SRC/$1" f stem v shards
	[ -z "$1" ] && echo .aprfs
	shards=$(cat "$dir"/*.safetensors.index.json 2>/dev/null | jq -r '.weight_map[]' | sort -u)
	for f in "$dir"/* "$dir"/.[!.]*; do
		[ -e "$f" ] || continue
		basename "$f"
		case $f in
		*.safetensors.index.json) stem=${f##*/}; stem=${stem%.safetensors.index.json} ;;
		*.safetensors)
			grep -qxF "${f##*/}" <<<"$shards" && continue
			stem=${f##*/}; stem=${stem%.safetensors} ;;
		*) continue ;;
		esac
		for v in $VARIANTS; do echo "$stem.$v.apr"; done
	done
}

@test "the tree mirrors the source and names checkpoints by the rule" {
	mount_fg "$SRC" "$MNT"
	local d
	for d in "" sharded nested nested/deep; do
		diff <(ls -A "$MNT/$d" | sort) <(expected_listing "$d" | sort)
	done
	# Shards pass through as plain files, but are not models.
	[ -f "$MNT/sharded/model-00001-of-00003.safetensors" ]
	[ ! -e "$MNT/sharded/model-00001-of-00003.q8.apr" ]
	cmp "$MNT/config.json" "$SRC/config.json"
	cmp "$MNT/sharded/model-00002-of-00003.safetensors" "$SRC/sharded/model-00002-of-00003.safetensors"
	[ "$(stat -c %A "$MNT/model.q8.apr")" = "-r--r--r--" ]
	[ "$(stat -c %A "$MNT/config.json")" = "-r--r--r--" ]
	jq -e .variants.q8 "$MNT/.aprfs/stats.json" >/dev/null
}

@test "stat sizes equal aprfs convert sizes, before any byte is read" {
	mount_fg "$SRC" "$MNT"
	local ck v vn
	for ck in $CHECKPOINTS; do
		for v in $VARIANTS; do
			vn=$(virtual_name "$ck" "$v")
			[ "$(stat_size "$MNT/$vn")" -eq "$(stat_size "$REF/$vn")" ] ||
				{ echo "$vn: $(stat_size "$MNT/$vn") != $(stat_size "$REF/$vn")"; false; }
		done
	done
	[ "$(jq '[.variants[].chunks_computed] | add' "$MNT/.aprfs/stats.json")" -eq 0 ]
}

@test "cp of every virtual file is byte-identical to aprfs convert" {
	mount_fg "$SRC" "$MNT"
	local ck v vn start end bytes=0
	start=$(date +%s.%N)
	for ck in $CHECKPOINTS; do
		for v in $VARIANTS; do
			vn=$(virtual_name "$ck" "$v")
			cp "$MNT/$vn" "$BATS_TEST_TMPDIR/out.apr"
			cmp "$BATS_TEST_TMPDIR/out.apr" "$REF/$vn"
			bytes=$((bytes + $(stat_size "$REF/$vn")))
		done
	done
	end=$(date +%s.%N)
	echo "# cp of 27 files, $((bytes >> 20)) MiB cold: $(echo "$end - $start" | bc) s" >&3
}

@test "random ranges read with dd equal the converted file" {
	mount_fg "$SRC" "$MNT"
	local v vn size off len i
	RANDOM=42
	for v in q4k q8 nf4 f16 ternary; do
		for vn in "model.$v.apr" "sharded/model.$v.apr"; do
			size=$(stat_size "$REF/$vn")
			for i in 1 2 3 4 5 6; do
				off=$(((RANDOM * 32768 + RANDOM) % size))
				len=$(((RANDOM * 7) % 300000 + 1))
				range_cmp "$MNT/$vn" "$REF/$vn" "$off" "$len"
			done
			range_cmp "$MNT/$vn" "$REF/$vn" 0 64
			range_cmp "$MNT/$vn" "$REF/$vn" $((size - 100)) 100
		done
	done
}

@test "the footer is right when it is the first thing read" {
	mount_fg "$SRC" "$MNT"
	local v
	for v in q4k q6k bf16; do
		cmp <(tail -c 4 "$MNT/model.$v.apr") <(tail -c 4 "$REF/model.$v.apr")
		cmp <(tail -c 4 "$MNT/sharded/model.$v.apr") <(tail -c 4 "$REF/sharded/model.$v.apr")
	done
	# And the body still matches once the footer came first.
	cmp "$MNT/model.q4k.apr" "$REF/model.q4k.apr"
}

@test "a footer read first quantizes every chunk once, and the counters say so" {
	local f=model.q4k.apr size n
	size=$(stat -c %s "$REF/$f")
	# in order, footer last (O_DIRECT: no kernel read-ahead): every chunk once, no pass
	mount_fg "$SRC" "$MNT"
	dd if="$MNT/$f" iflag=direct bs=1M status=none | cmp - "$REF/$f"
	n=$(stats_get "$MNT" .variants.q4k.chunks_computed)
	[ "$n" -gt 0 ]
	unmount "$MNT"
	wait_gone "$APRFS_PID"
	# only the footer's 4 bytes on a fresh mount: the same chunks quantized for its CRC
	mount_fg "$SRC" "$MNT"
	cmp <(dd if="$MNT/$f" iflag=direct,skip_bytes bs=4 skip=$((size - 4)) status=none) \
		<(tail -c 4 "$REF/$f")
	[ "$(stats_get "$MNT" .variants.q4k.chunks_computed)" -eq "$n" ]
	[ "$(stats_get "$MNT" .variants.q4k.bytes_quantized)" -gt 0 ]
}

@test "8 concurrent readers of the same and of different files get identical bytes" {
	mount_fg "$SRC" "$MNT"
	local files=(model.q4k.apr model.q4k.apr model.q4k.apr model.q4k.apr
		model.q8.apr sharded/model.q6k.apr nested/deep/model.nf4.apr sharded/model.q4k.apr)
	local i pids=()
	for i in "${!files[@]}"; do
		cat "$MNT/${files[$i]}" >"$BATS_TEST_TMPDIR/r$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}"
	done
	for i in "${!files[@]}"; do
		cmp "$BATS_TEST_TMPDIR/r$i" "$REF/${files[$i]}"
	done
}

@test "an mmap client reads the same bytes as convert" {
	cc -O2 -o "$BATS_TEST_TMPDIR/mmap_read" "$BATS_TEST_DIRNAME/mmap_read.c"
	mount_fg "$SRC" "$MNT"
	local size
	size=$(stat_size "$REF/model.q6k.apr")
	"$BATS_TEST_TMPDIR/mmap_read" "$MNT/model.q6k.apr" "$REF/model.q6k.apr" \
		0 64 4096 10000 $((size / 2)) 5000 $((size - 4)) 4
	"$BATS_TEST_TMPDIR/mmap_read" "$MNT/sharded/model.q4.apr" "$REF/sharded/model.q4.apr"
	"$BATS_TEST_TMPDIR/mmap_read" "$MNT/nested/deep/model.ternary.apr" \
		"$REF/nested/deep/model.ternary.apr"
}

@test "reading one tensor quantizes only that tensor's chunks" {
	mount_fg "$SRC" "$MNT" -o readahead_mb=0
	local off size q
	read -r off size < <("$APRFS" inspect --json "$REF/model.q8.apr" |
		jq -r '.tensors | map(select(.dtype == "APR_Q8")) | max_by(.size) | "\(.offset) \(.size)"')
	[ "$size" -gt 0 ]
	# O_DIRECT: exactly these bytes are asked for, no kernel read-ahead around them.
	dd if="$MNT/model.q8.apr" of="$BATS_TEST_TMPDIR/t" bs=1M iflag=direct,skip_bytes,count_bytes \
		skip="$off" count="$size" 2>/dev/null
	cmp "$BATS_TEST_TMPDIR/t" <(dd if="$REF/model.q8.apr" bs=1M iflag=skip_bytes,count_bytes \
		skip="$off" count="$size" 2>/dev/null)
	# Chunks hold the quantized blocks; the tensor's 4-byte q8 scale is computed apart.
	q=$(stats_get "$MNT" .variants.q8.bytes_quantized)
	[ "$q" -le "$size" ] && [ "$q" -ge $((size - 4)) ] ||
		{ echo "quantized $q bytes for a $size-byte tensor"; false; }
	[ "$(jq '[.variants[] | .chunks_computed] | add' "$MNT/.aprfs/stats.json")" -eq \
		"$(stats_get "$MNT" .variants.q8.chunks_computed)" ]
	local computed hits
	computed=$(stats_get "$MNT" .variants.q8.chunks_computed)
	hits=$(stats_get "$MNT" .variants.q8.cache_hits)
	dd if="$MNT/model.q8.apr" of=/dev/null bs=1M iflag=direct,skip_bytes,count_bytes \
		skip="$off" count="$size" 2>/dev/null
	[ "$(stats_get "$MNT" .variants.q8.chunks_computed)" -eq "$computed" ]
	[ "$(stats_get "$MNT" .variants.q8.cache_hits)" -gt "$hits" ]
	[ "$(stats_get "$MNT" .variants.q8.bytes_served)" -ge $((2 * size)) ]
}

@test "sequential reads are quantized ahead by the workers" {
	local S="$BATS_TEST_TMPDIR/big"
	mkdir -p "$S"
	"$GENMODEL" --size-mb 48 "$S"
	convert "$S" model.safetensors q4k "$BATS_TEST_TMPDIR/ref.apr"
	mount_fg "$S" "$MNT" -o readahead_mb=16,threads=2
	cp "$MNT/model.q4k.apr" "$BATS_TEST_TMPDIR/out"
	cmp "$BATS_TEST_TMPDIR/out" "$BATS_TEST_TMPDIR/ref.apr"
	[ "$(stats_get "$MNT" .readahead.warmed)" -gt 0 ]
	# The kernel's own read-ahead was raised to one 1 MiB FUSE read.
	[ "$(cat "/sys/class/bdi/$(mountpoint -d "$MNT")/read_ahead_kb")" -ge 1024 ]
}

@test "hostile checkpoints: the mount survives, good models work, bad ones are absent" {
	local H="$BATS_TEST_TMPDIR/hostile" file reason stem dir n
	"$GENMODEL" --hostile "$H"
	"$GENMODEL" --layers 1 "$H/good"
	# Things that are never served: a FIFO, links out of the root (one to a real
	# checkpoint), a dangling link.
	mkfifo "$H/fifo"
	ln -s /etc/passwd "$H/passwd"
	ln -s /etc "$H/etc"
	ln -s "$SRC/model.safetensors" "$H/outside.safetensors"
	ln -s /nonexistent "$H/dangling"
	ln -s good/model.safetensors "$H/inside.safetensors"
	mount_fg "$H" "$MNT" -o variants=q8,q4k
	[ -z "$(ls -A "$MNT" | grep -xE 'fifo|passwd|etc|outside\..*|dangling')" ]
	run ! timeout 60 cat "$MNT/passwd" "$MNT/etc/hostname" "$MNT/outside.q8.apr" 2>/dev/null
	run timeout 60 cat "$MNT/fifo"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	cmp "$MNT/inside.safetensors" "$H/good/model.safetensors"
	[ -f "$MNT/inside.q8.apr" ]
	ls -lA "$MNT" "$MNT/bad-config" >/dev/null
	ls -lA "$MNT" >/dev/null
	cp "$MNT/good/model.q4k.apr" "$BATS_TEST_TMPDIR/good.apr"
	convert "$H" good/model.safetensors q4k "$BATS_TEST_TMPDIR/good.ref"
	cmp "$BATS_TEST_TMPDIR/good.apr" "$BATS_TEST_TMPDIR/good.ref"
	while IFS=$'\t' read -r file reason; do
		dir=$(dirname "$file")
		stem=$(basename "$file")
		stem=${stem%.safetensors.index.json}
		stem=${stem%.safetensors}
		[ -z "$(ls -A "$MNT/$dir" | grep -xF "$stem.q8.apr")" ]
		run ! stat "$MNT/$dir/$stem.q8.apr"
		n=$(grep -cF "$file" "$LOG" || true)
		[ "$n" -eq 1 ] || { echo "$file logged $n times"; cat "$LOG"; false; }
		grep -F "$file" "$LOG" | grep -qF "$reason" || { echo "$file: no '$reason'"; false; }
	done <"$H/EXPECTED"
	# The bad files themselves pass through; reading them is harmless.
	cat "$MNT"/*.safetensors* >/dev/null
	run ! grep -q "missing-tensor-00001-of-00001.q8.apr" <(ls -A "$MNT")
	kill -0 "$(daemon_pid "$APRFS_PID")"
	mountpoint -q "$MNT"
	cmp "$MNT/good/model.q4k.apr" "$BATS_TEST_TMPDIR/good.ref"
}

@test "every modification gets EROFS" {
	mount_fg "$SRC" "$MNT"
	local cmd
	for cmd in "touch '$MNT/new'" "touch '$MNT/model.q8.apr'" "echo x > '$MNT/model.q8.apr'" \
		"echo x >> '$MNT/config.json'" "mkdir '$MNT/d'" "rm '$MNT/config.json'" \
		"rm '$MNT/model.q8.apr'" "rmdir '$MNT/nested'" "mv '$MNT/config.json' '$MNT/c2'" \
		"chmod 600 '$MNT/config.json'" "chown 1:1 '$MNT/model.q8.apr'" \
		"truncate -s 0 '$MNT/model.q8.apr'" "ln -s x '$MNT/l'" \
		"ln '$MNT/config.json' '$MNT/h'" "cp '$SRC/config.json' '$MNT/sharded/'" \
		"python3 -c 'import os; os.setxattr(\"$MNT/config.json\", \"user.x\", b\"1\")'"; do
		run sh -c "$cmd"
		[ "$status" -ne 0 ] || { echo "succeeded: $cmd"; false; }
		[[ $output == *"Read-only file system"* ]] || { echo "$cmd: $output"; false; }
	done
	cmp "$MNT/config.json" "$SRC/config.json"
}

@test "a daemonized mount serves, and unmounting leaves no process" {
	mkdir -p "$MNT"
	timeout 60 "$APRFS" "$SRC" "$MNT" 3>&-
	wait_mounted "$MNT"
	local pid
	pid=$(pgrep -f -x -- "$APRFS $SRC $MNT")
	[ -n "$pid" ]
	DAEMONS+=("$pid")
	MOUNTS+=("$MNT")
	cmp "$MNT/model.q4.apr" "$REF/model.q4.apr"
	fusermount3 -u "$MNT"
	wait_gone "$pid" 30
	run ! mountpoint -q "$MNT"
	run ! pgrep -f -- "$MNT"
}

@test "SIGTERM and SIGINT unmount cleanly" {
	local sig status pid
	for sig in TERM INT; do
		mount_fg "$SRC" "$MNT"
		pid=$(daemon_pid "$APRFS_PID")
		cat "$MNT/model.q8.apr" >/dev/null
		kill -"$sig" "$pid"
		status=0
		wait "$APRFS_PID" || status=$?
		[ "$status" -eq 0 ] || { echo "SIG$sig: exit $status"; cat "$LOG"; false; }
		run ! mountpoint -q "$MNT"
		run ! kill -0 "$pid"
	done
}

@test "source replaced while mounted: new opens see the new source, old handles old bytes or EIO" {
	local W="$BATS_TEST_TMPDIR/w" out status
	mkdir -p "$W/src" "$W/next"
	"$GENMODEL" --layers 2 --seed 5 "$W/src"
	"$GENMODEL" --layers 3 --hidden 320 --seed 6 "$W/next"
	convert "$W/src" model.safetensors q8 "$W/old.apr"
	convert "$W/next" model.safetensors q8 "$W/new.apr"
	[ "$(stat_size "$W/old.apr")" -ne "$(stat_size "$W/new.apr")" ]
	mount_fg "$W/src" "$MNT"
	[ "$(stat_size "$MNT/model.q8.apr")" -eq "$(stat_size "$W/old.apr")" ]

	# Replaced by rename: the open handle keeps its snapshot.
	exec 5<"$MNT/model.q8.apr"
	head -c 100000 <&5 >"$W/part1"
	mv "$W/next/config.json" "$W/src/config.json"
	mv "$W/next/model.safetensors" "$W/src/model.safetensors"
	sleep 1.2 # the kernel's attribute cache (attr_timeout 1 s)
	[ "$(stat_size "$MNT/model.q8.apr")" -eq "$(stat_size "$W/new.apr")" ]
	cmp "$MNT/model.q8.apr" "$W/new.apr"
	status=0
	cat <&5 >"$W/part2" 2>"$W/err" || status=$?
	exec 5<&-
	if [ "$status" -eq 0 ]; then
		echo "# old handle after a rename: old bytes" >&3
		cat "$W/part1" "$W/part2" | cmp - "$W/old.apr"
	else
		echo "# old handle after a rename: EIO" >&3
		grep -q "Input/output error" "$W/err"
		cmp -n "$(stat_size "$W/part1")" "$W/part1" "$W/old.apr"
	fi
	cmp "$MNT/model.q8.apr" "$W/new.apr"

	# Overwritten in place: the open handle gets EIO (or old bytes), never a mix.
	convert "$W/src" model.safetensors q8 "$W/cur.apr"
	exec 6<"$MNT/model.q8.apr"
	head -c 4096 <&6 >/dev/null
	dd if=/dev/urandom of="$W/src/model.safetensors" bs=1 count=4096 seek=100000 \
		conv=notrunc 2>/dev/null
	status=0
	# (cat goes on from the handle's offset, 4096; `tail -c +4097 <&6` would skip 4096 more)
	cat <&6 >"$W/part3" 2>"$W/err" || status=$?
	exec 6<&-
	if [ "$status" -eq 0 ]; then
		echo "# old handle after an in-place write: old bytes" >&3
		cmp "$W/part3" <(tail -c +4097 "$W/cur.apr")
	else
		echo "# old handle after an in-place write: EIO" >&3
		grep -q "Input/output error" "$W/err"
	fi
	sleep 1.2
	convert "$W/src" model.safetensors q8 "$W/cur2.apr"
	cmp "$MNT/model.q8.apr" "$W/cur2.apr"
	kill -0 "$(daemon_pid "$APRFS_PID")"
}

# A source cut short under a reader: the reads that need its lost bytes come up short or
# find it changed; the daemon must turn that into EIO for the reader and live on.
@test "a source truncated under an open handle: EIO or old bytes, and the daemon lives" {
	local W="$BATS_TEST_TMPDIR/t" status
	mkdir -p "$W/src"
	"$GENMODEL" --layers 2 --hidden 512 --inter 1024 --vocab 3000 "$W/src"
	convert "$W/src" model.safetensors q4 "$W/q4.apr"
	mount_fg "$W/src" "$MNT" -o readahead_mb=0
	exec 7<"$MNT/model.q4.apr"
	head -c 65536 <&7 >"$W/part1"
	truncate -s 200000 "$W/src/model.safetensors"
	status=0
	cat <&7 >"$W/part2" 2>"$W/err" || status=$?
	exec 7<&-
	if [ "$status" -eq 0 ]; then
		echo "# old handle after truncation: old bytes" >&3
		cat "$W/part1" "$W/part2" | cmp - "$W/q4.apr" # served from before the cut
	else
		echo "# old handle after truncation: EIO after $(stat_size "$W/part2") more bytes" >&3
		cmp -n 65536 "$W/part1" "$W/q4.apr"
		run ! cmp -s <(cat "$W/part1" "$W/part2") "$W/q4.apr"
		# Whatever came after the first 64 KiB must be a prefix of the right bytes.
		cmp -n "$(stat_size "$W/part2")" "$W/part2" <(tail -c +65537 "$W/q4.apr")
	fi
	kill -0 "$(daemon_pid "$APRFS_PID")"
	sleep 1.2
	# The broken checkpoint is no longer listed; the mount still answers.
	[ -z "$(ls "$MNT" | grep '\.apr$')" ]
	ls "$MNT/config.json" >/dev/null
}

# mount(8) runs its helper with a clean PATH, so `mount -t fuse.aprfs` and fstab need aprfs
# in /usr/bin or /usr/local/bin; the test calls the helper mount(8) would run, mount.fuse3,
# in both of its forms, with build/aprfs on PATH.
@test "fstab-style mounts: mount.fuse3 'aprfs#SRC' and -t fuse.aprfs" {
	local bin="$BATS_TEST_TMPDIR/bin" pid
	mkdir -p "$bin" "$MNT"
	ln -s "$APRFS" "$bin/aprfs"
	PATH="$bin:$PATH" timeout 60 mount.fuse3 "aprfs#$SRC" "$MNT" -o ro,variants=q8,q4 3>&-
	wait_mounted "$MNT"
	MOUNTS+=("$MNT")
	pid=$(pgrep -f -- "aprfs $SRC $MNT" | head -n1)
	[ -n "$pid" ]
	DAEMONS+=("$pid")
	grep -q " $MNT fuse.aprfs ro," /proc/mounts
	[ "$(ls "$MNT" | grep -c '\.apr$')" -eq 2 ]
	cmp "$MNT/model.q4.apr" "$REF/model.q4.apr"
	fusermount3 -u "$MNT"
	wait_gone "$pid" 30

	PATH="$bin:$PATH" timeout 60 mount.fuse3 "$SRC" "$MNT" -t fuse.aprfs -o ro,variants=f16 3>&-
	wait_mounted "$MNT"
	pid=$(pgrep -f -- "aprfs $SRC $MNT" | head -n1)
	DAEMONS+=("$pid")
	[ "$(ls "$MNT" | grep '\.apr$')" = "model.f16.apr" ]
	cmp "$MNT/model.f16.apr" "$REF/model.f16.apr"
	fusermount3 -u "$MNT"
	wait_gone "$pid" 30
}

@test "-o options and --config are honoured, the command line winning" {
	mount_fg "$SRC" "$MNT" -o variants=q8,q4,cache_mb=64
	[ "$(ls "$MNT" | grep '\.apr$' | sort | tr '\n' ' ')" = "model.q4.apr model.q8.apr " ]
	[ "$(stats_get "$MNT" .cache.budget)" -eq $((64 << 20)) ]
	cleanup_mounts

	local conf="$BATS_TEST_TMPDIR/aprfs.conf"
	printf '# test\nvariants = f16, ternary\ncache_mb = 32\nnf4_block = 128\n' >"$conf"
	mount_fg "$SRC" "$MNT" --config "$conf"
	[ "$(ls "$MNT" | grep '\.apr$' | sort | tr '\n' ' ')" = "model.f16.apr model.ternary.apr " ]
	[ "$(stats_get "$MNT" .cache.budget)" -eq $((32 << 20)) ]
	cleanup_mounts

	mount_fg "$SRC" "$MNT" --config "$conf" -o variants=nf4,cache_mb=16
	[ "$(ls "$MNT" | grep '\.apr$')" = "model.nf4.apr" ]
	[ "$(stats_get "$MNT" .cache.budget)" -eq $((16 << 20)) ]
	# nf4_block from the file still applies: the bytes are convert's with that block.
	"$APRFS" convert --quiet --variant nf4 --nf4-block 128 --root "$SRC" \
		"$SRC/model.safetensors" "$BATS_TEST_TMPDIR/nf4.apr"
	cmp "$MNT/model.nf4.apr" "$BATS_TEST_TMPDIR/nf4.apr"
	run ! cmp -s "$MNT/model.nf4.apr" "$REF/model.nf4.apr"
}

@test "bad options and arguments: a clear message and exit status 2" {
	mkdir -p "$MNT"
	local args
	while IFS= read -r args; do
		run timeout 60 "$APRFS" $args
		[ "$status" -eq 2 ] || { echo "'$args': status $status: $output"; false; }
		[ -n "$output" ]
	done <<EOF
-o cache_mb=abc $SRC $MNT
-o nf4_block=63 $SRC $MNT
-o variants=q5 $SRC $MNT
-o log_level=loud $SRC $MNT
-o no_such_option $SRC $MNT
--config /nonexistent/aprfs.conf $SRC $MNT
$SRC
$SRC $MNT extra
$SRC/model.safetensors $MNT
EOF
	run ! mountpoint -q "$MNT"
	run "$APRFS" -h
	[ "$status" -eq 0 ] && [[ $output == *"variants="* ]] && [[ $output == *"allow_other"* ]]
	run "$APRFS" -V
	[ "$status" -eq 0 ] && [[ $output == *"aprfs"* ]]
	run "$APRFS" convert
	[ "$status" -eq 2 ]
}

@test "a mountpoint inside SOURCE_DIR is left out of the tree" {
	local S="$BATS_TEST_TMPDIR/s"
	mkdir -p "$S/mnt"
	cp "$SRC/model.safetensors" "$SRC/config.json" "$S/"
	mount_fg "$S" "$S/mnt" -o variants=q8
	[ "$(ls -A "$S/mnt" | sort | tr '\n' ' ')" = ".aprfs config.json model.q8.apr model.safetensors " ]
	[ ! -e "$S/mnt/mnt" ]
	[ "$(timeout 60 find "$S/mnt" | wc -l)" -eq 7 ] # ., .aprfs, its two files, three entries
}

@test "listing a directory of 100 checkpoints takes milliseconds" {
	local S="$BATS_TEST_TMPDIR/many" i start end ms
	mkdir -p "$S"
	for i in $(seq -w 1 100); do
		ln "$SRC/model.safetensors" "$S/m$i.safetensors"
	done
	mount_fg "$S" "$MNT"
	start=$(date +%s%N)
	[ "$(ls -l "$MNT" | grep -c '\.apr$')" -eq $((100 * $(wc -w <<<"$VARIANTS"))) ]
	end=$(date +%s%N)
	ms=$(((end - start) / 1000000))
	echo "# ls -l of 100 checkpoints ($((100 * $(wc -w <<<"$VARIANTS"))) virtual files), cold: $ms ms" >&3
	[ "$ms" -lt 2000 ]
	[ "$(stats_get "$MNT" '[.variants[].chunks_computed] | add')" -eq 0 ]
}
