#!/usr/bin/env bash
# run-tests.sh - `make test`: unit tests, the kernel tests on every ISA, the bats suites
# (real FUSE mounts), the aarch64 kernel tests under qemu when the cross tools exist, the
# clang build checked byte-identical to the gcc one (scripts/test-clang.sh), and the
# static checks (cppcheck, clang-format, the layering of lib/: scripts/check-layers.sh).
# Prints one "N passed, N failed" summary line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
run() { # name, command...
	local name=$1
	shift
	echo "=== $name"
	if timeout 600 "$@"; then
		passed=$((passed + 1))
	else
		echo "FAILED: $name" >&2
		failed=$((failed + 1))
	fi
}

run lint make -s lint
run format scripts/check-format.sh
run layers scripts/check-layers.sh

for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	run "$(basename "$t")" "$t"
done
if [ -d tests/bats ] && ls tests/bats/*.bats >/dev/null 2>&1; then
	run bats timeout 1200 bats tests/bats
fi
if [ -f scripts/test-arm.sh ]; then
	run arm scripts/test-arm.sh
fi
run clang scripts/test-clang.sh
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
