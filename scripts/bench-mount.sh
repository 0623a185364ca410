# bench-mount.sh - sourced by the benchmarks that mount: one daemon at a time on $mnt,
# started in the foreground (its log in $mount_log), waited for, and always unmounted when
# the script exits. The caller sets mnt, mount_log and mount_src before mount_cold.
pid=
unmount() {
	[ -n "$pid" ] || return 0
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
	timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
	pid=
}
trap unmount EXIT

# A fresh daemon: an empty chunk cache and no page cache of the virtual files.
mount_cold() { # [aprfs options...]
	unmount
	build/aprfs -f "$@" "$mount_src" "$mnt" >"$mount_log" 2>&1 &
	pid=$!
	timeout 10 bash -c "until mountpoint -q '$mnt'; do sleep 0.05; done"
}

now() { date +%s.%N; }
