#!/usr/bin/env bash
# check-format.sh - fails, naming the files, if any tracked C file differs from what the
# repo's .clang-format makes of it (`make format` fixes them).
cd "$(dirname "$0")/.."
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=1; }
done
exit $bad
