# convert_helpers.bash - helpers of convert.bats (the end-to-end tests of `aprfs convert`
# and `aprfs inspect`). Every external command runs under `timeout`, so a hang fails the
# test instead of hanging the suite.

CV_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
# APRFS_BUILD: the build directory under test, relative to CV_ROOT or absolute (default
# build; `make check-asan` sets build-asan).
CV_BUILD="${APRFS_BUILD:-build}"
[[ "$CV_BUILD" == /* ]] || CV_BUILD="$CV_ROOT/$CV_BUILD"
CV_APRFS="$CV_BUILD/aprfs"
CV_GENMODEL="$CV_BUILD/tools/genmodel"
CV_TOOLS="$CV_ROOT/tests/tools"
CV_VARIANTS="f32 f16 bf16 q8 q4 q4k q6k nf4 ternary q4km"
# the tools import apr_reader.py: keep __pycache__ out of the source tree
export PYTHONDONTWRITEBYTECODE=1
# Models generated once per file by cv_setup_models, shared (read-only) by the tests.
CV_MODELS="${BATS_FILE_TMPDIR:-/tmp}/models"

# cv_aprfs ARGS...: build/aprfs under a timeout.
cv_aprfs() {
	timeout -k 5 60 "$CV_APRFS" "$@"
}

# cv_reader FILE.apr [--source SRC ...]: the independent Python reader.
cv_reader() {
	timeout -k 5 180 python3 "$CV_TOOLS/apr_reader.py" "$@"
}

cv_flip() {
	timeout -k 5 30 python3 "$CV_TOOLS/flip_byte.py" "$@"
}

cv_genmodel() {
	timeout -k 5 120 "$CV_GENMODEL" "$@" >/dev/null
}

# cv_fail MESSAGE...: fail the test with a message (bats shows stderr of failed tests).
cv_fail() {
	echo "FAIL: $*" >&2
	return 1
}

# cv_setup_models: the checkpoints every test reads (about 12 MB, a few seconds).
cv_setup_models() {
	local m=$CV_MODELS
	mkdir -p "$m"
	[ -x "$CV_APRFS" ] || cv_fail "$CV_APRFS not built"
	[ -x "$CV_GENMODEL" ] || cv_fail "$CV_GENMODEL not built"
	cv_genmodel --odd "$m/odd"                                   # bf16, 1.8 M params
	cv_genmodel --dtype f16 --odd --layers 1 --vocab 300 --seed 2 "$m/f16"
	cv_genmodel --dtype f32 --layers 1 --vocab 300 --inter 768 --seed 3 "$m/f32"
	cv_genmodel --shards 3 --odd --layers 2 --vocab 300 --seed 4 "$m/sharded"
	cv_genmodel --no-config --layers 1 --vocab 300 --seed 5 "$m/noconfig"
	cv_genmodel --hostile "$m/hostile"
	timeout -k 5 60 python3 "$CV_TOOLS/special_st.py" "$m/special"
}

# cv_source DIR: the checkpoint file of a generated model directory.
cv_source() {
	if [ -f "$1/model.safetensors" ]; then
		echo "$1/model.safetensors"
	else
		echo "$1/model.safetensors.index.json"
	fi
}

# cv_check_all SOURCE OUTDIR [convert options...]: converts SOURCE to every variant in
# OUTDIR, checks exit codes, inspect, and runs the Python reader on each file (two at a
# time). The files are left in OUTDIR as model.V.apr.
cv_check_all() {
	local src=$1 out=$2 v rc=0
	shift 2
	mkdir -p "$out"
	for v in $CV_VARIANTS; do
		cv_aprfs convert --quiet "$@" "$src" "$out/model.$v.apr" ||
			cv_fail "convert $src to $v exited $?" || return 1
		cv_aprfs inspect "$out/model.$v.apr" >"$out/inspect.$v.txt" ||
			cv_fail "inspect $out/model.$v.apr exited $?: $(cat "$out/inspect.$v.txt")" ||
			return 1
	done
	# the reader is pure Python: run two at a time
	printf '%s\n' $CV_VARIANTS |
		timeout -k 5 300 xargs -P 2 -I{} sh -c \
			'python3 "$1" "$2/model.{}.apr" --source "$3" >"$2/reader.{}.txt" 2>&1 ||
			 { cat "$2/reader.{}.txt" >&2; exit 1; }' \
			sh "$CV_TOOLS/apr_reader.py" "$out" "$src" || rc=1
	for v in $CV_VARIANTS; do
		grep -q '^OK: ' "$out/reader.$v.txt" || { cat "$out/reader.$v.txt" >&2; rc=1; }
	done
	return $rc
}

# cv_meta_size FILE.apr: the header's metadata_size.
cv_meta_size() {
	timeout 30 python3 -c 'import struct,sys; print(struct.unpack_from("<I", open(sys.argv[1], "rb").read(24), 20)[0])' "$1"
}

# cv_json_get FILE.apr EXPR: evaluate a Python expression on `inspect --json` output (d).
cv_json_get() {
	cv_aprfs inspect --json "$1" | timeout 30 python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}

# cv_no_leftovers DIR [KEEP...]: DIR holds nothing but the KEEP names.
cv_no_leftovers() {
	local dir=$1 f k ok
	shift
	for f in "$dir"/* "$dir"/.[!.]*; do
		[ -e "$f" ] || continue
		ok=0
		for k in "$@"; do
			[ "$(basename "$f")" = "$k" ] && ok=1
		done
		[ $ok = 1 ] || cv_fail "left behind in $dir: $(basename "$f")" || return 1
	done
}
