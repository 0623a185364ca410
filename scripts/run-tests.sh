#!/usr/bin/env bash
# run-tests.sh - `make test`: unit tests, the kernel tests on every ISA, the bats suites
# (real FUSE mounts, two files at a time: scripts/run-bats.sh), the aarch64 kernel tests
# under qemu when the cross tools exist, the clang build checked byte-identical to the gcc
# one (scripts/test-clang.sh), and the static checks (cppcheck, clang-format, the layering of
# lib/: scripts/check-layers.sh, the documentation against the code: scripts/check-docs.sh).
# Everything runs in one scratch directory (scripts/run-tmp.sh) that is removed at the end.
# Each suite's time limit is hang protection only, far above its need on a busy machine.
# Prints every skipped check with its reason, then "suites: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/run-tmp.sh
run_tmp_init test

passed=0
failed=0
logs=$RUN_TMP/logs
mkdir -p "$logs"
# run NAME LIMIT COMMAND...: one suite under timeout, its output kept for the skip count.
run() {
	local name=$1 limit=$2 t0 rc
	shift 2
	t0=$(date +%s)
	echo "=== $name"
	APRFS_RUN_TOKENS="$APRFS_RUN_TOKENS suite:$name:$$:" timeout -k 30 "$limit" "$@" 2>&1 |
		tee "$logs/$name"
	rc=${PIPESTATUS[0]}
	run_tmp_kill "suite:$name:$$:" # what a timed-out suite left running
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		echo "FAILED: $name (exit $rc$([ "$rc" -eq 124 ] && echo ", timed out after $limit s"))" >&2
		failed=$((failed + 1))
	fi
	echo "--- $name: $([ "$rc" -eq 0 ] && echo ok || echo FAILED) in $(($(date +%s) - t0)) s"
}

run lint 600 make -s lint
run format 300 scripts/check-format.sh
run layers 60 scripts/check-layers.sh
run docs 60 scripts/check-docs.sh

for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" "${UNIT_LIMIT:-900}" "$t"
done
if [ -d tests/bats ] && ls tests/bats/*.bats >/dev/null 2>&1; then
	run bats "${BATS_LIMIT:-2600}" scripts/run-bats.sh "$RUN_TMP/bats"
fi
if [ -f scripts/test-arm.sh ]; then
	run arm 900 scripts/test-arm.sh
fi
run clang 900 scripts/test-clang.sh

# Skips: "SKIP: why" from the unit tests and scripts, "# skip why" from bats (TAP).
skips=$(grep -hE '^SKIP: |^ok [0-9]+ .* # skip' "$logs"/* 2>/dev/null)
nskip=0
if [ -n "$skips" ]; then
	nskip=$(printf '%s\n' "$skips" | wc -l)
	echo "skipped checks (each says why):"
	printf '  %s\n' "$skips"
fi
echo "suites: $passed passed, $failed failed, $nskip skipped"
[ "$failed" -eq 0 ]
