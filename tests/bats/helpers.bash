# helpers.bash - shared by the bats tests: paths to the built tools, models generated once
# per file, mounting under `timeout` (a hung daemon can never hang the suite) and a
# teardown that unmounts everything this test mounted, even after a failure.

# `run ! CMD`: a command that must fail (a bare `! CMD` is no assertion under set -e)
bats_require_minimum_version 1.5.0

ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
# APRFS_BUILD: the build directory under test, relative to ROOT or absolute (default build;
# `make check-asan` sets build-asan).
APRFS_BUILD_DIR="${APRFS_BUILD:-build}"
[[ "$APRFS_BUILD_DIR" == /* ]] || APRFS_BUILD_DIR="$ROOT/$APRFS_BUILD_DIR"
APRFS="$APRFS_BUILD_DIR/aprfs"
GENMODEL="$APRFS_BUILD_DIR/tools/genmodel"
# The variant names, from the table itself (plan/variant.c), never listed here.
VARIANTS="$("$APRFS" variants --names | paste -sd ' ')"
# No daemon outlives this, whatever happens: timeout kills it (hang protection, far above
# any test's need on a busy machine under ASan).
MOUNT_LIFETIME=900

MOUNTS=()
PIDS=()

# fuse_or_skip: mounting needs /dev/fuse and root. Without them a mount test is skipped,
# saying why (a distribution's build machine may have neither); in CI (CI=true) or with
# APRFS_REQUIRE_FUSE=1 it fails instead, so a broken CI machine cannot pass by skipping.
fuse_or_skip() {
	[ -c /dev/fuse ] && [ "$(id -u)" -eq 0 ] && return 0
	if [ "${APRFS_REQUIRE_FUSE:-${CI:-}}" = 1 ] || [ "${CI:-}" = true ]; then
		echo "mount tests need /dev/fuse and root (CI requires them)" >&2
		return 1
	fi
	skip "mount tests need /dev/fuse and root"
}

# mount_fg SRC MNT [aprfs options...]: a foreground daemon in the background; sets
# APRFS_PID (the timeout wrapper's pid) and LOG (its stderr). Waits for the mount.
mount_fg() {
	local src=$1 mnt=$2
	shift 2
	fuse_or_skip
	mkdir -p "$mnt"
	LOG="$BATS_TEST_TMPDIR/aprfs.$(basename "$mnt").log"
	# 3>&- : bats waits for whatever holds its fd 3; the daemon must not.
	timeout -k 5 "$MOUNT_LIFETIME" "$APRFS" -f "$@" "$src" "$mnt" 2>"$LOG" 3>&- &
	APRFS_PID=$!
	PIDS+=("$APRFS_PID")
	MOUNTS+=("$mnt")
	wait_mounted "$mnt" "$APRFS_PID"
}

# wait_mounted MNT [PID]: up to 60 s for MNT to become a mount point.
wait_mounted() {
	local i
	for i in $(seq 1200); do
		mountpoint -q "$1" && return 0
		if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
			echo "daemon exited before mounting $1" >&2
			[ -n "${LOG:-}" ] && cat "$LOG" >&2
			return 1
		fi
		sleep 0.05
	done
	echo "timed out waiting for $1" >&2
	return 1
}

# unmount MNT: the normal way, then lazily if busy or hung.
unmount() {
	mountpoint -q "$1" || return 0
	timeout 10 fusermount3 -u "$1" 2>/dev/null || timeout 10 fusermount3 -uz "$1" 2>/dev/null ||
		timeout 10 umount -l "$1" 2>/dev/null || true
}

# wait_gone PID [SECONDS]: 0 once PID has exited.
wait_gone() {
	local i
	for i in $(seq $((${2:-10} * 20))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# daemon_pid TIMEOUT_PID: the aprfs process timeout runs.
daemon_pid() {
	pgrep -P "$1" | head -n1
}

# Teardown: unmount what this test mounted and make sure its daemons are gone (by pid).
cleanup_mounts() {
	local m p child
	for m in "${MOUNTS[@]}"; do
		unmount "$m"
	done
	for p in "${PIDS[@]}"; do
		wait_gone "$p" 5 && continue
		child=$(daemon_pid "$p")
		kill -TERM "$p" 2>/dev/null || true
		wait_gone "$p" 5 && continue
		[ -n "$child" ] && kill -KILL "$child" 2>/dev/null
		kill -KILL "$p" 2>/dev/null || true
	done
	MOUNTS=()
	PIDS=()
}

# convert SRC_DIR REL VARIANT OUT: the reference bytes for one virtual file.
convert() {
	"$APRFS" convert --quiet --variant "$3" --root "$1" "$1/$2" "$4"
}

# stat_size FILE
stat_size() {
	stat -c %s "$1"
}

# stats_get MNT JQ_PATH: one number from /.aprfs/stats.json.
stats_get() {
	jq -r "$2" "$1/.aprfs/stats.json"
}

# range_cmp A B OFFSET LENGTH: the same bytes at [OFFSET, OFFSET+LENGTH) of both files.
range_cmp() {
	cmp <(dd if="$1" bs=65536 iflag=skip_bytes,count_bytes skip="$3" count="$4" 2>/dev/null) \
		<(dd if="$2" bs=65536 iflag=skip_bytes,count_bytes skip="$3" count="$4" 2>/dev/null)
}

# A small llama-shaped model for genmodel: quick to write, every kind of tensor.
SMALL="--layers 1 --hidden 64 --inter 128 --vocab 256 --heads 4 --kv-heads 2"

# work_setup: W (this test's scratch), SRCD (a source tree to fill) and MNT (its mountpoint).
work_setup() {
	W="$BATS_TEST_TMPDIR"
	SRCD="$W/src"
	MNT="$W/mnt"
	mkdir -p "$SRCD"
}
