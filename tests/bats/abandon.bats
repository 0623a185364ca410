#!/usr/bin/env bats
# abandon.bats - work nobody waits for stops, and memory is bounded in the tensor count,
# on real mounts: a reader killed during a statistic pass over a 64 GiB (sparse) tensor
# leaves the daemon idle; unmount and SIGTERM end the mount with work in flight; a
# checkpoint of 200,000 tensors lists in little memory. No time is asserted: limits here
# are hang protection, and the pass's length (minutes) is what tells a stop from an end.

load helpers

setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

# sparse_model DIR: one bf16 tensor of 262144 x 131072 (64 GiB) in a sparse file: holes
# read as zeros, so a ternary statistic pass over it takes about two minutes of CPU, far more
# than any hang limit below: a daemon that goes idle soon after its reader died stopped the
# pass; it did not finish it.
sparse_model() {
	python3 - "$1/model.safetensors" <<-'PY'
		import json, struct, sys
		r, c = 262144, 131072
		h = json.dumps({"model.embed_tokens.weight": {"dtype": "BF16", "shape": [r, c],
		                "data_offsets": [0, r * c * 2]}}).encode()
		h += b" " * (-len(h) % 8)
		with open(sys.argv[1], "wb") as f:
		    f.write(struct.pack("<Q", len(h)) + h)
		    f.truncate(8 + len(h) + r * c * 2)
	PY
}

# cpu_ticks PID: user + system clock ticks the process has used.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# wait_ticks PID N SECONDS: 0 once PID has used N ticks of CPU; 1 after SECONDS (hang
# protection: the pass needs about 1 s of CPU for 100 ticks, on however busy a machine).
wait_ticks() {
	local i
	for i in $(seq $(($3 * 10))); do
		[ "$(cpu_ticks "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_idle PID SECONDS: 0 once PID used at most 5 ticks (50 ms of CPU) in one second;
# 1 if no such second came within SECONDS. A pass still running uses 30-200 ticks a second,
# however busy the machine (it has at least a third of a core).
wait_idle() {
	local t0 t1 end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		t0=$(cpu_ticks "$1")
		sleep 1
		t1=$(cpu_ticks "$1")
		echo "# daemon CPU in one second: $((t1 - t0)) ticks" >&3
		[ $((t1 - t0)) -le 5 ] && return 0
	done
	return 1
}

# unmount_retry MNT SECONDS: fusermount3 -u until it succeeds (a killed reader holds its
# file until the daemon answers its interrupted request: EBUSY meanwhile, as on any file
# system); prints the time it took; 1 after SECONDS (hang protection).
unmount_retry() {
	local start=$(date +%s%N) limit=$(($2 * 1000000000))
	until timeout 60 fusermount3 -u "$1" 2>/dev/null; do
		[ $(($(date +%s%N) - start)) -lt "$limit" ] || { echo "still busy after $2 s"; return 1; }
		sleep 0.02
	done
	echo "# fusermount3 -u after the kill: $((($(date +%s%N) - start) / 1000000)) ms" >&3
}

@test "a reader killed during a long statistic pass leaves the daemon idle" {
	sparse_model "$SRCD"
	mount_fg "$SRCD" "$MNT"
	local pid reader
	pid=$(daemon_pid "$APRFS_PID")
	dd if="$MNT/model.ternary.apr" of=/dev/null bs=4k count=1 2>/dev/null &
	reader=$!
	wait_ticks "$pid" 100 120 || { echo "the pass did not run: $(cpu_ticks "$pid") ticks"; false; }
	kill -9 "$reader"
	# well before the pass could have finished (about 2 min of CPU), the daemon is idle
	wait_idle "$pid" 30 || { echo "the daemon still works 30 s after its reader died"; false; }
	wait_gone "$reader" 30
	kill -0 "$pid"
	# nothing was left half done: the next reader gets the right bytes
	run timeout 60 dd if="$MNT/model.q4.apr" of=/dev/null bs=4k count=1
	[ "$status" -eq 0 ]
}

@test "unmount and SIGTERM end the mount with work in flight" {
	sparse_model "$SRCD"
	mount_fg "$SRCD" "$MNT"
	local pid reader start
	pid=$(daemon_pid "$APRFS_PID")
	# a reader killed: unmount at once, while its pass may still run
	dd if="$MNT/model.ternary.apr" of=/dev/null bs=4k count=1 2>/dev/null &
	reader=$!
	wait_ticks "$pid" 50 120
	kill -9 "$reader"
	# the pass (minutes of CPU) must not keep the mount: 30 s is hang protection
	unmount_retry "$MNT" 30
	wait_gone "$pid" 30

	# a reader still waiting: SIGTERM ends the mount, the reader gets an error, not a hang
	mount_fg "$SRCD" "$MNT"
	pid=$(daemon_pid "$APRFS_PID")
	timeout 60 dd if="$MNT/model.q8.apr" of=/dev/null bs=4k count=1 2>/dev/null &
	reader=$!
	wait_ticks "$pid" 50 120
	start=$(date +%s%N)
	kill -TERM "$pid"
	wait_gone "$pid" 30 || { echo "the daemon outlived SIGTERM by 30 s"; false; }
	echo "# daemon gone after SIGTERM: $((($(date +%s%N) - start) / 1000000)) ms" >&3
	wait_gone "$reader" 30
	wait "$reader" && { echo "the reader was not stopped"; false; }
	run ! mountpoint -q "$MNT"
}

@test "200,000 tensors: ls -l lists them, daemon RSS under 128 MiB before any byte is read" {
	"$GENMODEL" --layers 1 --hidden 64 --inter 128 --vocab 256 --heads 4 --kv-heads 2 \
		--experts 200000 "$SRCD" >/dev/null
	mount_fg "$SRCD" "$MNT"
	local pid start ms rss
	pid=$(daemon_pid "$APRFS_PID")
	start=$(date +%s%N)
	timeout 120 ls -l "$MNT" >"$W/ls"
	ms=$((($(date +%s%N) - start) / 1000000))
	rss=$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")
	echo "# ls -l of 200,000 tensors x $(wc -w <<<"$VARIANTS") variants: $ms ms, daemon RSS $rss MiB" >&3
	# the time is printed, not asserted (make bench measures it); memory is bounded
	[ "$rss" -lt 128 ]
	[ "$(grep -c '\.apr$' "$W/ls")" -eq "$(wc -w <<<"$VARIANTS")" ]
	# and the bytes are right: a range in the index and the whole q8 file
	convert "$SRCD" model.safetensors q8 "$W/ref.q8.apr"
	cmp "$MNT/model.q8.apr" "$W/ref.q8.apr"
}
