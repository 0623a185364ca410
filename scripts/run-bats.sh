#!/usr/bin/env bash
# run-bats.sh - the bats suites, one file per job, BATS_LANES jobs at once (default 2), the
# longest files first. Usage: scripts/run-bats.sh DIR [FILE.bats ...] (default: every file of
# tests/bats); each file's TAP goes to DIR/NAME.tap and is printed when that file ends.
#
# Why lanes: most of a bats file's time is one process at a time (a Python checker, a convert,
# a cp through the mount), so one lane leaves a core idle; and on a shared machine, two lanes
# get twice the share of one. Files are independent (each has its own BATS_FILE_TMPDIR, mount
# points and, for MooseFS, its own network namespace), so any two may run side by side; the
# tests in one file still run in order, as their setup_file expects.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

out=${1:?usage: run-bats.sh DIR [FILE.bats ...]}
shift
mkdir -p "$out"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	# The longest files first (measured with `bats --timing`), so that the lanes end
	# together; the rest in name order. A file missing here still runs.
	for f in convert inspect gguf diskcache_moosefs gguf_gen mount imatrix; do
		[ -f "tests/bats/$f.bats" ] && files+=("tests/bats/$f.bats")
	done
	for f in tests/bats/*.bats; do
		[[ " ${files[*]} " == *" $f "* ]] || files+=("$f")
	done
fi

# one_file FILE: bats on FILE, its TAP kept in DIR and printed in one piece; the file's
# temporary files under DIR/NAME.tmp (bats takes its run directory from TMPDIR).
one_file() {
	local f=$1 name rc
	name=$(basename "$f" .bats)
	mkdir -p "$out/$name.tmp"
	# shellcheck disable=SC2086 # BATS_FLAGS: words
	TMPDIR="$out/$name.tmp" BATS_TMPDIR="$out/$name.tmp" bats ${BATS_FLAGS:-} "$f" \
		>"$out/$name.tap" 2>&1
	rc=$?
	printf '### %s (exit %d)\n' "$f" "$rc"
	cat "$out/$name.tap"
	return "$rc"
}
export -f one_file
export out

printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "${BATS_LANES:-2}" bash -c 'one_file "$1"' one_file
rc=$?

# The totals over every file's TAP: "not ok" lines are failures, "# skip" lines skips.
pass=0 fail=0 skip=0
for f in "${files[@]}"; do
	t="$out/$(basename "$f" .bats).tap"
	p=$(grep -cE '^ok ' "$t" 2>/dev/null)
	n=$(grep -cE '^not ok ' "$t" 2>/dev/null)
	s=$(grep -cE '^ok [0-9]+ .* # skip' "$t" 2>/dev/null)
	pass=$((pass + p - s)) fail=$((fail + n)) skip=$((skip + s))
done
echo "bats: $pass passed, $fail failed, $skip skipped in ${#files[@]} files"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
