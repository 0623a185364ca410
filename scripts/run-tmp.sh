# run-tmp.sh - sourced by the test scripts: one scratch directory per run. Every test writes
# under it (TMPDIR points there, and mktemp, bats and the unit tests honour TMPDIR); on exit,
# even after a failure or a timeout, what is still mounted below it is unmounted, processes
# the run left behind are killed, and the directory goes.
#
# Left-behind processes: a suite killed by its time limit can orphan grandchildren (nested
# `timeout`s put their children in new process groups, so a group kill misses them). Every
# process a run starts inherits APRFS_RUN_TOKENS, which holds one token per enclosing run;
# run_tmp_kill TOKEN kills every process whose environment carries TOKEN, except this shell
# and its ancestors. Mode 755: some tests drop privileges (nobody) and must still reach
# their files.

# run_tmp_kill TOKEN: SIGKILL every process (but us and our ancestors) carrying TOKEN.
run_tmp_kill() {
	local p q=$$ keep=" "
	while [ -n "$q" ] && [ "$q" -gt 1 ]; do
		keep+="$q "
		q=$(awk '/^PPid:/ { print $2 }' "/proc/$q/status" 2>/dev/null)
	done
	for p in $(grep -lsz "^APRFS_RUN_TOKENS=.*$1" /proc/[0-9]*/environ | cut -d/ -f3); do
		[[ "$keep" == *" $p "* ]] || kill -KILL "$p" 2>/dev/null
	done
}

# run_tmp_unmount: unmount what is still mounted below RUN_TMP (deepest first; /proc/mounts
# escapes blanks as \040, and our paths have none).
run_tmp_unmount() {
	local m
	for m in $(awk -v d="$RUN_TMP/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		timeout 10 fusermount3 -uz "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
	done
}

run_tmp_cleanup() {
	[ -n "${RUN_TMP:-}" ] && [ -d "$RUN_TMP" ] || return 0
	run_tmp_unmount
	run_tmp_kill "$RUN_TOKEN"
	run_tmp_unmount # a killed daemon's mount, if any
	rm -rf "$RUN_TMP"
}

# run_tmp_init NAME: make the directory, export TMPDIR and the run's token, trap exits.
run_tmp_init() {
	RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/aprfs-$1.XXXXXX") || exit 1
	chmod 755 "$RUN_TMP"
	RUN_TOKEN="run:$(basename "$RUN_TMP"):"
	export TMPDIR=$RUN_TMP APRFS_RUN_TOKENS="${APRFS_RUN_TOKENS:-} $RUN_TOKEN"
	trap run_tmp_cleanup EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
}
