#!/usr/bin/env bash
# run-asan.sh - `make check-asan` (after it built build-asan/): the unit tests and the bats
# suites against the ASan+UBSan binaries. Every process's sanitizer report (daemons, convert,
# forked children; leaks at exit included) goes to build-asan/reports/; any report fails.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/run-tmp.sh
run_tmp_init asan

B=${1:-build-asan}
reports="$PWD/$B/reports"
rm -rf "$reports"
mkdir -p "$reports"

# quarantine_size_mb=16 (not 256): freed memory held back counts in RSS, and abandon.bats
# bounds the daemon's RSS listing 200,000 tensors (83 MiB under ASan with 16, 438 with 256;
# the limit is 128). log_path: reports of processes whose exit status no test looks at (a
# daemon at unmount) are seen.
export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:log_path=$reports/asan"
# UBSan reports of gcc's combined ASan+UBSan runtime ignore log_path and go to stderr: the
# bats run keeps its temporary directory (where daemons' stderr is logged) until it has
# been searched for them (UB also aborts the process: halt_on_error).
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export APRFS_BUILD=$B

passed=0
failed=0
start=$(date +%s)
# run NAME COMMAND...: one stage; also fails if it left sanitizer reports.
run() {
	local name=$1 t0 rc
	shift
	t0=$(date +%s)
	echo "=== asan: $name"
	"$@"
	rc=$?
	if ls "$reports"/* >/dev/null 2>&1; then
		echo "sanitizer reports after $name:" >&2
		for r in "$reports"/*; do
			echo "--- $r" >&2
			head -n 60 "$r" >&2
			mv "$r" "$r.$name.seen"
		done
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
	else
		echo "FAILED: asan $name (exit $rc)" >&2
		failed=$((failed + 1))
	fi
	echo "asan: $name $([ "$rc" -eq 0 ] && echo ok || echo FAILED) in $(($(date +%s) - t0)) s"
}

for t in "$B"/tests/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" timeout "${UNIT_LIMIT:-1200}" "$t"
done
# bats_scan DIR: the stderr logs a bats run left in DIR hold no sanitizer report.
bats_scan() {
	local hits
	# An empty directory would pass the scan without looking at anything.
	if [ -z "$(find "$1" -type f -print -quit 2>/dev/null)" ]; then
		echo "no bats logs in $1 to scan for sanitizer reports" >&2
		return 1
	fi
	hits=$(find "$1" -type f -size -16M -print0 2>/dev/null |
		xargs -0 -r grep -lE 'runtime error:|ERROR: (Address|Leak)Sanitizer' 2>/dev/null)
	[ -z "$hits" ] && return 0
	for f in $hits; do
		echo "--- sanitizer report in $f" >&2
		grep -E -A20 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$f" | head -n 40 >&2
	done
	return 1
}
# scripts/run-bats.sh keeps each file's bats run directory (daemons' stderr logs) in bats_dir.
bats_dir=$(mktemp -d)
run bats env BATS_FLAGS=--no-tempdir-cleanup timeout "${BATS_LIMIT:-3200}" scripts/run-bats.sh "$bats_dir"
run bats-logs bats_scan "$bats_dir"
rm -rf "$bats_dir"
echo "asan: $passed passed, $failed failed, $(($(date +%s) - start)) s"
[ "$failed" -eq 0 ]
