#!/usr/bin/env bats
# tree_hostile.bats - a source tree holding whatever people and tools put there, on real
# mounts: FIFOs, sockets and devices anywhere; sources removed under open handles; names
# that are not UTF-8 and config values no reader can hold; links that leave the root.
# Every case ends within seconds, with the daemon alive.

load helpers


setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

# log_count NEEDLE: lines of the daemon's log holding NEEDLE.
log_count() {
	grep -cF -- "$1" "$LOG" || true
}

daemon_alive() {
	kill -0 "$(daemon_pid "$APRFS_PID")"
}

@test "special files anywhere never block a reader: left out, one log line each" {
	# a FIFO named config.json beside a model
	"$GENMODEL" $SMALL "$SRCD/A" >/dev/null
	rm "$SRCD/A/config.json" && mkfifo "$SRCD/A/config.json"
	# a FIFO as the second shard of an index
	"$GENMODEL" $SMALL --shards 2 "$SRCD/B" >/dev/null
	rm "$SRCD/B/model-00002-of-00002.safetensors"
	mkfifo "$SRCD/B/model-00002-of-00002.safetensors"
	# a FIFO named like a checkpoint, a plain FIFO, a socket and a device
	mkdir -p "$SRCD/C" "$SRCD/D"
	mkfifo "$SRCD/C/fifo.safetensors" "$SRCD/D/notes.txt"
	python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
		"$SRCD/D/sock"
	mknod "$SRCD/D/null" c 1 3
	"$GENMODEL" $SMALL "$SRCD/D" >/dev/null # and a good model beside them

	mount_fg "$SRCD" "$MNT"
	run timeout 60 ls -lR "$MNT"
	[ "$status" -eq 0 ]
	run timeout 60 ls -lR "$MNT"
	[ "$status" -eq 0 ]
	run timeout 60 find "$MNT" -type f
	[ "$status" -eq 0 ]
	for f in A/config.json B/model-00002-of-00002.safetensors C/fifo.safetensors \
		D/notes.txt D/sock D/null; do
		[ ! -e "$MNT/$f" ] || { echo "$f is listed"; false; }
		[ "$(log_count "$f")" -ge 1 ] || { cat "$LOG"; false; }
	done
	# once each, however often the tree is walked
	for f in C/fifo.safetensors D/notes.txt D/sock D/null; do
		[ "$(log_count "$f")" -eq 1 ] || { cat "$LOG"; false; }
	done
	grep -F "A/config.json: not a regular file" "$LOG"
	grep -F "B/model-00002-of-00002.safetensors: not a regular file" "$LOG"
	# the checkpoints they break are absent; what is regular still passes through
	[ ! -e "$MNT/A/model.q8.apr" ] && [ ! -e "$MNT/B/model.q8.apr" ]
	[ ! -e "$MNT/C/fifo.q8.apr" ]
	cmp "$MNT/A/model.safetensors" "$SRCD/A/model.safetensors"
	cmp "$MNT/B/model-00001-of-00002.safetensors" "$SRCD/B/model-00001-of-00002.safetensors"
	convert "$SRCD" D/model.safetensors q8 "$W/d.q8.apr"
	cmp "$MNT/D/model.q8.apr" "$W/d.q8.apr"
	daemon_alive
}

@test "an open handle keeps its snapshot when the source is deleted; the space comes back at close" {
	"$GENMODEL" --layers 2 --hidden 256 --inter 512 --vocab 2000 "$SRCD/m" >/dev/null
	convert "$SRCD" m/model.safetensors q8 "$W/ref.apr"
	mount_fg "$SRCD" "$MNT" -o readahead_mb=0
	local pid
	pid=$(daemon_pid "$APRFS_PID")
	run timeout 60 python3 - "$MNT/m/model.q8.apr" "$W/ref.apr" "$SRCD/m" <<-'PY'
		import os, sys, time
		path, ref, src = sys.argv[1:]
		want = open(ref, "rb").read()
		fd = os.open(path, os.O_RDONLY)
		size0 = os.fstat(fd).st_size
		head = os.read(fd, 100000)
		os.unlink(os.path.join(src, "model.safetensors"))
		os.unlink(os.path.join(src, "config.json"))
		time.sleep(1.3)  # past the kernel's attribute cache
		st = os.fstat(fd)  # getattr on the open file: its own snapshot, not ENOENT
		assert st.st_size == size0 == len(want), (st.st_size, size0, len(want))
		rest = b""
		while True:
		    b = os.read(fd, 1 << 20)
		    if not b:
		        break
		    rest += b
		assert head + rest == want, "bytes differ from the snapshot's"
		os.close(fd)
		time.sleep(1.3)
		assert not os.path.exists(path), "once closed, the removed model is gone"
		print("ok")
	PY
	echo "$output"
	[ "$status" -eq 0 ]
	# the last handle closed: the deleted file is no longer mapped nor open
	local i gone=0
	for i in $(seq 50); do
		if ! grep -q 'model.safetensors (deleted)' "/proc/$pid/maps" &&
			! ls -l "/proc/$pid/fd" | grep -q 'model.safetensors (deleted)'; then
			gone=1
			break
		fi
		sleep 0.1
	done
	[ "$gone" -eq 1 ] || { grep deleted "/proc/$pid/maps"; false; }
	daemon_alive
}

@test "names that are not UTF-8 and config numbers no f32 holds: every file still passes inspect" {
	local bad=$'dir\xff\xfe' name=$'mod\xe9l' f
	"$GENMODEL" $SMALL --name "$name" "$SRCD/$bad" >/dev/null
	python3 - "$SRCD/$bad/config.json" <<-'PY'
		import json, sys
		c = json.load(open(sys.argv[1]))
		c.update(rope_theta=1e39, rms_norm_eps=-1e40)
		json.dump(c, open(sys.argv[1], "w"))
	PY
	mount_fg "$SRCD" "$MNT"
	ls "$MNT/$bad" | grep -q 'q8.apr'
	for v in $VARIANTS; do
		f="$MNT/$bad/$name.$v.apr"
		"$APRFS" inspect "$f" >/dev/null
		cp "$f" "$W/x.$v.apr"
		timeout 120 python3 "$ROOT/tests/tools/apr_reader.py" --quiet "$W/x.$v.apr"
	done
	"$APRFS" inspect --json "$MNT/$bad/$name.q8.apr" >"$W/meta.json"
	python3 - "$W/meta.json" <<-'PY'
		import json, sys
		m = json.load(open(sys.argv[1]))["metadata"]
		assert m["name"] == "mod\ufffdl", m["name"]
		assert m["source"] == "dir\ufffd\ufffd/mod\ufffdl.safetensors", m["source"]
		assert "rope_theta" not in m and "rms_norm_eps" not in m, m
		assert m["hidden_size"] == 64 and m["architecture"] == "llama", m
	PY
	grep -F "rope_theta 1e+39 is outside the f32 range" "$LOG"
	grep -F "rms_norm_eps -1e+40 is outside the f32 range" "$LOG"
	# convert writes the very same bytes
	"$APRFS" convert --quiet --root "$SRCD" "$SRCD/$bad/$name.safetensors" "$W/c.q8.apr"
	cmp "$W/c.q8.apr" "$MNT/$bad/$name.q8.apr"
	daemon_alive
}

@test "nothing outside the root is read: config.json and shards that link out are refused" {
	local out="$W/outside"
	"$GENMODEL" $SMALL "$SRCD/cfg" >/dev/null
	"$GENMODEL" $SMALL --seed 7 "$out" >/dev/null
	rm "$SRCD/cfg/config.json"
	ln -s "$out/config.json" "$SRCD/cfg/config.json"
	"$GENMODEL" $SMALL --shards 2 "$SRCD/sh" >/dev/null
	mv "$SRCD/sh/model-00002-of-00002.safetensors" "$out/"
	ln -s "$out/model-00002-of-00002.safetensors" "$SRCD/sh/model-00002-of-00002.safetensors"
	mount_fg "$SRCD" "$MNT"
	ls -l "$MNT/cfg" "$MNT/sh" >/dev/null
	[ ! -e "$MNT/cfg/model.q8.apr" ] && [ ! -e "$MNT/cfg/config.json" ]
	[ ! -e "$MNT/sh/model.q8.apr" ]
	grep -F "cfg/config.json: leads outside the source directory" "$LOG"
	grep -F "sh/model-00002-of-00002.safetensors: leads outside the source directory" "$LOG"
	# convert is told where the root is with --root, and refuses alike
	run "$APRFS" convert --quiet --root "$SRCD" "$SRCD/cfg/model.safetensors" "$W/x.q8.apr"
	[ "$status" -eq 1 ]
	[[ "$output" == *"config.json: leads outside the source directory"* ]]
	daemon_alive
}

@test "log_level=info: a start-up summary of what the mount found, refused checkpoints named" {
	"$GENMODEL" --hostile "$SRCD" >/dev/null
	"$GENMODEL" $SMALL "$SRCD/good" >/dev/null
	"$GENMODEL" $SMALL --shards 2 "$SRCD/good/sharded" >/dev/null
	local nbad
	nbad=$(wc -l <"$SRCD/EXPECTED")
	mount_fg "$SRCD" "$MNT" -o log_level=info,variants=q8,q4k
	local i
	for i in $(seq 100); do
		grep -q "checkpoints in" "$LOG" && break
		sleep 0.1
	done
	grep -F "$SRCD: $((nbad + 2)) checkpoints in 4 directories: 2 served, 2 views each (q8,q4k); $nbad refused" "$LOG"
	[ "$(grep -c '^aprfs: info: refused: ' "$LOG")" -eq 5 ]
	# each refusal is also a warning naming the file and the reason, once
	while IFS=$'\t' read -r f want; do
		[ "$(grep -c "warn: not listing $f: .*$want" "$LOG")" -eq 1 ] ||
			{ grep -F "$f" "$LOG"; false; }
	done <"$SRCD/EXPECTED"
}
