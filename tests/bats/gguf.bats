#!/usr/bin/env bats
# gguf.bats - GGUF sources end to end: hostile files (the class of llama.cpp's GGUF parser
# CVEs) refused by convert with "file: reason" and left out of the mount with one log line
# each; valid files served beside them.

load helpers

setup_file() {
	export HOSTILE="$BATS_FILE_TMPDIR/hostile"
	timeout 60 python3 "$ROOT/tests/tools/gguf_hostile.py" "$HOSTILE"
}

setup() {
	W="$BATS_TEST_TMPDIR"
	MNT="$W/mnt"
}

teardown() {
	cleanup_mounts
}

@test "every hostile GGUF is refused by convert with its file name and reason, leaving nothing" {
	local f want n=0 out
	while IFS=$'\t' read -r f want; do
		out="$W/out.q8.apr"
		run timeout 20 "$APRFS" convert --quiet "$HOSTILE/$f" "$out"
		[ "$status" -eq 1 ] || { echo "$f: exit $status: $output"; false; }
		[[ "$output" == "aprfs convert: $HOSTILE/$f: "*"$want"* ]] ||
			{ echo "$f: $output (want '$want')"; false; }
		[ ! -e "$out" ] && [ -z "$(ls "$W" | grep tmp)" ]
		n=$((n + 1))
	done <"$HOSTILE/EXPECTED"
	[ "$n" -ge 40 ]
	"$APRFS" convert --quiet "$HOSTILE/ok.gguf" "$W/ok.q8.apr"
	"$APRFS" inspect "$W/ok.q8.apr" >/dev/null
}

@test "hostile GGUF files are left out of the mount with one log line each; the valid one is served" {
	local f want pid
	mount_fg "$HOSTILE" "$MNT"
	pid=$(daemon_pid "$APRFS_PID")
	run timeout 20 ls -l "$MNT"
	[ "$status" -eq 0 ]
	timeout 20 ls -l "$MNT" >/dev/null
	while IFS=$'\t' read -r f want; do
		[ ! -e "$MNT/${f%.gguf}.q8.apr" ] || { echo "$f is served"; false; }
		[ "$(grep -cF "$f: " "$LOG")" -eq 1 ] || { grep -F "$f" "$LOG"; false; }
		grep -F "$f" "$LOG" | grep -qF "$want"
	done <"$HOSTILE/EXPECTED"
	"$APRFS" convert --quiet --root "$HOSTILE" "$HOSTILE/ok.gguf" "$W/ok.q8.apr"
	cmp "$MNT/ok.q8.apr" "$W/ok.q8.apr"
	kill -0 "$pid"
}
