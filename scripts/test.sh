#!/usr/bin/env bash
# test.sh - the README's test command (what CI runs): install what is missing, build, then
# `make test`, `make check-asan` and `make fuzz FUZZ_SECONDS=20`, each under timeout and all
# within CI's 90 minutes. Prints one summary line per stage; fails if any stage failed.
#
# Stage limits are hang protection, set at about 2x (or more) what each stage took with both
# cores of a 2-core machine busy (two `yes >/dev/null` loops beside the run): see
# tests/README.md, "Time limits". Everything the tests write goes to one scratch directory
# (scripts/run-tmp.sh), removed at the end; nothing is written outside it and the checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/run-tmp.sh
run_tmp_init ci

budget=${TEST_BUDGET_SECONDS:-5100} # the whole run, setup included (CI allows 5400)
deadline=$(($(date +%s) + budget))
summary=()
failed=0

# stage NAME LIMIT COMMAND...: run COMMAND under timeout LIMIT seconds, never past the
# deadline; record one summary line.
stage() {
	local name=$1 limit=$2 t0 left rc
	shift 2
	t0=$(date +%s)
	left=$((deadline - t0))
	[ "$left" -lt "$limit" ] && limit=$left
	echo "##### $name (limit $limit s)"
	if [ "$limit" -le 0 ]; then
		rc=124
		echo "no time left in the ${budget} s budget" >&2
	else
		# the stage's processes carry its token: none outlives it, even after a timeout
		APRFS_RUN_TOKENS="$APRFS_RUN_TOKENS stage:$name:$$:" timeout -k 30 "$limit" "$@"
		rc=$?
		run_tmp_kill "stage:$name:$$:"
	fi
	if [ "$rc" -eq 0 ]; then
		summary+=("$(printf '%-11s ok      %4d s' "$name" $(($(date +%s) - t0)))")
	else
		failed=$((failed + 1))
		summary+=("$(printf '%-11s FAILED  %4d s (exit %d%s)' "$name" $(($(date +%s) - t0)) \
			"$rc" "$([ "$rc" -eq 124 ] && echo ', timed out')")")
	fi
}

stage setup 900 scripts/setup.sh
stage build 600 make -j"$(nproc)" all
stage test 3100 make test
stage check-asan 3500 make check-asan
stage fuzz 600 make fuzz FUZZ_SECONDS=20

echo "##### summary"
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
