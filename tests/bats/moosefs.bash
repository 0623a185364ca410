# moosefs.bash - a real MooseFS for the bats tests (scripts/moosefs.sh): master, one
# chunkserver and mfsmount in a temporary directory, in a network namespace of their own.
# moosefs_setup DIR: starts it (MFS_MNT: the mount), or `skip`s with the reason (fails
# instead under CI=true or APRFS_REQUIRE_FUSE=1);
# moosefs_teardown: stops it, even after a failure.

. "$ROOT/scripts/moosefs.sh"

moosefs_setup() {
	local why
	why=$(moosefs_missing)
	[ -e /dev/fuse ] || why="${why:+$why; }no /dev/fuse"
	if [ -n "$why" ]; then
		# in CI a missing MooseFS is a broken machine, not a reason to pass by skipping
		if [ "${CI:-}" = true ] || [ "${APRFS_REQUIRE_FUSE:-}" = 1 ]; then
			echo "MooseFS tests cannot run: $why (CI requires them)" >&2
			return 1
		fi
		skip "MooseFS: $why"
	fi
	MFS_HOME="$1"
	export MFS_HOME
	mkdir -p "$MFS_HOME"
	if ! moosefs_start "$MFS_HOME"; then
		tail -n 5 "$MFS_HOME"/*.log >&2 || true
		moosefs_stop "$MFS_HOME"
		return 1
	fi
}

moosefs_teardown() {
	[ -n "${MFS_HOME:-}" ] && moosefs_stop "$MFS_HOME"
	return 0
}

# moosefs_cs_stop / moosefs_cs_cont: freeze and thaw the chunkserver (SIGSTOP: its
# connections stay open and every read hangs, the worst case for a client).
moosefs_cs_stop() {
	local p
	for p in $(moosefs_cs_pid "$MFS_HOME"); do kill -STOP "$p"; done
}

moosefs_cs_cont() {
	local p
	for p in $(pgrep -f "mfschunkserver -c $MFS_HOME/mfschunkserver.cfg"); do kill -CONT "$p"; done
}
