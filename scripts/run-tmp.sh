# run-tmp.sh - sourced by the test scripts: one scratch directory per run. Every test writes
# under it (TMPDIR points there, and mktemp, bats and the unit tests honour TMPDIR); on exit,
# even after a failure or a timeout, what is still mounted below it is unmounted and it goes.
# Mode 755: some tests drop privileges (nobody) and must still reach their files.

run_tmp_cleanup() {
	local m
	[ -n "${RUN_TMP:-}" ] && [ -d "$RUN_TMP" ] || return 0
	# deepest first; /proc/mounts escapes blanks as \040, our paths have none
	for m in $(awk -v d="$RUN_TMP/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
		timeout 10 fusermount3 -uz "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
	done
	rm -rf "$RUN_TMP"
}

# run_tmp_init NAME: make the directory, export TMPDIR, install the exit trap.
run_tmp_init() {
	RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/aprfs-$1.XXXXXX") || exit 1
	chmod 755 "$RUN_TMP"
	export TMPDIR=$RUN_TMP
	trap run_tmp_cleanup EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
}
