#!/usr/bin/env bash
# run-fuzz.sh - `make fuzz`: builds the libFuzzer harnesses (tests/fuzz/fuzz_NAME.c, clang,
# build-fuzz/) and runs each for FUZZ_SECONDS (default 60) on a scratch copy of its seed
# corpus tests/fuzz/corpus/NAME/ (never written). A crash, leak, UB, failed FUZZ_CHECK or
# hang fails the run; the input is kept in build-fuzz/findings/NAME/ with the command that
# replays it. FUZZ_ONLY="a b" runs only those harnesses; FUZZ_NICE=N runs them under nice;
# FUZZ_LANES=N runs N at a time (default 2).
# One summary line per harness: libFuzzer's executions, coverage, corpus size, verdict.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${FUZZ_SECONDS:-60}
out=build-fuzz
names=${FUZZ_ONLY:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}

# No silent skip: without clang and its libFuzzer runtime this stage fails, saying why.
if ! command -v clang >/dev/null; then
	echo "fuzz: FAILED: clang is not installed (scripts/setup.sh installs clang and libclang-rt-14-dev)" >&2
	exit 1
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return d && n; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" 2>"$probe/err"; then
	cat "$probe/err" >&2
	echo "fuzz: FAILED: clang cannot link -fsanitize=fuzzer,address,undefined (install libclang-rt-14-dev; scripts/setup.sh does)" >&2
	exit 1
fi

echo "fuzz: building harnesses in $out/"
if ! make -s -j"$(nproc)" fuzz-build >"$probe/build.log" 2>&1; then
	cat "$probe/build.log" >&2
	echo "fuzz: FAILED: building the harnesses" >&2
	exit 1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# fuzz_one NAME: one harness for secs seconds; prints its summary line, fails on a finding.
fuzz_one() {
	local n=$1 bin src seeds work findings maxlen dict rc runs cov crashes c report
	bin=$out/fuzz/fuzz_$n
	src=tests/fuzz/fuzz_$n.c
	seeds=tests/fuzz/corpus/$n
	work=$out/run/$n
	findings=$out/findings/$n
	maxlen=$(sed -n 's/^#define FUZZ_MAX_LEN[[:space:]]*\([0-9]*\).*/\1/p' "$src")
	if [ ! -x "$bin" ] || [ -z "$maxlen" ] || [ ! -d "$seeds" ]; then
		echo "fuzz_$n: FAILED: missing $bin, FUZZ_MAX_LEN in $src or seeds in $seeds"
		return 1
	fi
	rm -rf "$work" "$findings"
	mkdir -p "$work/corpus" "$findings"
	cp "$seeds"/* "$work/corpus/"
	dict=()
	[ -f "tests/fuzz/$n.dict" ] && dict=(-dict="tests/fuzz/$n.dict")
	# -timeout: one input taking 10 s is a hang; the outer timeout only guards the guard.
	timeout -k 10 $((secs + 120)) nice -n "${FUZZ_NICE:-0}" "$bin" \
		-max_total_time="$secs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" \
		"$work/corpus" >"$work/log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$work/log" | tail -n1)
	crashes=$(find "$findings" -type f | head -n 5)
	if [ "$rc" -eq 0 ] && [ -z "$crashes" ]; then
		echo "fuzz_$n: ok, ${runs:-?} runs in ${secs} s, ${cov:-no coverage line} (corpus files: $(find "$work/corpus" -type f | wc -l))"
		return 0
	fi
	# gathered first and printed at once, so that the two lanes' reports do not interleave
	report=$(
		echo "fuzz_$n: FAILED (exit $rc) after ${runs:-?} runs; log $work/log"
		grep -E 'ERROR|FUZZ_CHECK|runtime error|SUMMARY|^ *#[0-9]+ 0x' "$work/log" | head -n 30
		for c in $crashes; do
			echo "  reproduce: $bin $c"
		done
	)
	printf '%s\n' "$report"
	return 1
}
export -f fuzz_one
export secs out

# FUZZ_LANES harnesses at a time (default 2, one per core): each runs for a fixed time, so
# the stage takes secs x harnesses / lanes. The exit status of xargs says whether any failed.
printf '%s\n' $names | xargs -n 1 -P "${FUZZ_LANES:-2}" bash -c 'fuzz_one "$1"' fuzz_one |
	tee "$probe/results"
rc=${PIPESTATUS[1]}
total=$(echo "$names" | wc -w)
clean=$(grep -c '^fuzz_[a-z0-9_]*: ok,' "$probe/results")
echo "fuzz: $clean of $total harnesses clean (${secs} s each, ${FUZZ_LANES:-2} at a time)"
[ "$rc" -eq 0 ] && [ "$clean" -eq "$total" ]
