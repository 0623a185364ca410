#!/usr/bin/env bats
# gguf_gen.bats - the GGUF test tooling end to end: gengguf's files are read by the
# independent Python reader (tests/tools/gguf_ref.py) and by the ecosystem's own,
# @huggingface/gguf (tests/tools/gguf-js), which must agree on every tensor's name, type,
# dims and offsets; every float tensor's f32 from gguf_ref.py must equal aprfs'
# aprfs_ggml_dequant_ref (build/tools/ggml_dq) byte for byte.

bats_require_minimum_version 1.5.0 # (run ! CMD)
ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
GENGGUF="$ROOT/build/tools/gengguf"
GGML_DQ="$ROOT/build/tools/ggml_dq"
REF="$ROOT/tests/tools/gguf_ref.py"
JS="$ROOT/tests/tools/gguf-js/gguf_table.mjs"
G="${BATS_FILE_TMPDIR:-/tmp}/gguf"
export PYTHONDONTWRITEBYTECODE=1

gen() {
	timeout -k 5 120 "$GENGGUF" "$@"
}

ref() {
	timeout -k 5 300 python3 "$REF" "$@"
}

js_table() {
	timeout -k 5 60 node "$JS" "$@"
}

fail() {
	echo "FAIL: $*" >&2
	return 1
}

# py FILE 'python using d (gguf_ref.py's JSON of FILE)': print its result.
py() {
	local f=$1 expr=$2
	ref "$f" >"$BATS_TEST_TMPDIR/ref.json" || fail "gguf_ref.py $f"
	timeout -k 5 30 python3 -c "import json,sys; d=json.load(open(sys.argv[1])); $expr" \
		"$BATS_TEST_TMPDIR/ref.json"
}

setup_file() {
	mkdir -p "$G"
	[ -x "$GENGGUF" ] && [ -x "$GGML_DQ" ] || fail "build/tools/gengguf and ggml_dq not built"
	[ -d "$ROOT/tests/tools/gguf-js/node_modules/@huggingface/gguf" ] ||
		fail "@huggingface/gguf not installed: run scripts/setup.sh"
	# every type, edge shapes and random blocks; GGUF v3, alignment 32 not written
	gen --mixed --odd --vocab 300 --name mixed "$G"
	# GGUF v2
	gen --gguf-version 2 --type Q5_K --layers 1 --vocab 300 --seed 2 --vocab-size-key \
		--name v2 "$G"
	# alignment 64, written; every KV type
	gen --alignment 64 --write-alignment --type Q3_K --layers 1 --vocab 300 --seed 3 \
		--all-kv-types --odd --name a64 "$G"
	# GGUF v1 (u32 counts and lengths), llama.cpp no longer reads these
	gen --gguf-version 1 --type Q8_0 --layers 1 --vocab 40 --seed 4 --all-kv-types \
		--name v1 "$G"
	# alignment 32 written explicitly
	gen --write-alignment --type Q4_1 --layers 1 --vocab 40 --seed 5 --name w32 "$G"
}

@test "gengguf files keep what llama.cpp's writer guarantees: order, alignment, zero padding, end" {
	local f
	for f in mixed v2 a64 v1 w32; do
		run ref --check "$G/$f.gguf"
		[ "$status" -eq 0 ] && [ "$output" = ok ] || fail "$f: $output"
	done
}

@test "gguf_ref.py and @huggingface/gguf report identical tensor tables" {
	local f n
	for f in mixed v2 a64 v1 w32; do
		ref --table "$G/$f.gguf" >"$BATS_TEST_TMPDIR/py.json" || fail "$f: gguf_ref.py"
		js_table "$G/$f.gguf" >"$BATS_TEST_TMPDIR/js.json" || fail "$f: gguf_table.mjs"
		cmp "$BATS_TEST_TMPDIR/py.json" "$BATS_TEST_TMPDIR/js.json" ||
			fail "$f: tables differ: $(diff <(tr '{' '\n' <"$BATS_TEST_TMPDIR/py.json") \
				<(tr '{' '\n' <"$BATS_TEST_TMPDIR/js.json") | head -20)"
		n=$(timeout 120 python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tensors"]))' \
			"$BATS_TEST_TMPDIR/js.json")
		[ "$n" -ge 11 ] || fail "$f: only $n tensors"
	done
}

@test "every float tensor: gguf_ref.py's f32 equals aprfs_ggml_dequant_ref byte for byte" {
	local f name off type n compared=0 a b
	for f in mixed v2 a64 v1 w32; do
		while read -r name off type n; do
			case $type in I32 | F64) continue ;; esac
			timeout -k 5 60 "$GGML_DQ" "$G/$f.gguf" "$off" "$type" "$n" >"$BATS_TEST_TMPDIR/c.f32" ||
				fail "$f $name: ggml_dq"
			ref --dequant "$name" "$G/$f.gguf" >"$BATS_TEST_TMPDIR/p.f32" ||
				fail "$f $name: gguf_ref.py --dequant"
			[ "$(stat -c %s "$BATS_TEST_TMPDIR/c.f32")" -eq $((4 * n)) ] ||
				fail "$f $name: $(stat -c %s "$BATS_TEST_TMPDIR/c.f32") bytes for $n elements"
			cmp "$BATS_TEST_TMPDIR/c.f32" "$BATS_TEST_TMPDIR/p.f32" ||
				fail "$f $name ($type): the f32 values differ"
			compared=$((compared + 1))
		done < <(py "$G/$f.gguf" '
import math
for t in d["tensors"]:
    print(t["name"], t["abs_offset"], t["type"], math.prod(t["ne"]))')
	done
	# mixed: 21 model tensors + 5 odd shapes + 13 random; v2 and w32: 12; a64: 12 + 18;
	# v1: 12 (the non-float odd.i32 and odd.f64 are not compared)
	[ "$compared" -eq $((39 + 12 + 30 + 12 + 12)) ] || fail "compared $compared tensors"
}

@test "--mixed: the model's 2-D weights hold every supported type, norms stay F32" {
	run py "$G/mixed.gguf" '
ts = [t for t in d["tensors"] if not t["name"].startswith("odd.")]
w = sorted({t["type"] for t in ts if len(t["ne"]) == 2})
n = sorted({t["type"] for t in ts if len(t["ne"]) == 1})
print(" ".join(w), "|", " ".join(n))'
	[ "$status" -eq 0 ]
	[ "$output" = "BF16 F16 F32 Q2_K Q3_K Q4_0 Q4_1 Q4_K Q5_0 Q5_1 Q5_K Q6_K Q8_0 | F32" ] ||
		fail "$output"
}

@test "versions and alignment: v2 and v1 headers, general.alignment only when asked or not 32" {
	run py "$G/mixed.gguf" 'print(d["version"], d["alignment"], "general.alignment" in d["kv"])'
	[ "$output" = "3 32 False" ] || fail "mixed: $output"
	run py "$G/v2.gguf" 'print(d["version"], d["alignment"], "general.alignment" in d["kv"])'
	[ "$output" = "2 32 False" ] || fail "v2: $output"
	run py "$G/v1.gguf" 'print(d["version"])'
	[ "$output" = 1 ] || fail "v1: $output"
	run py "$G/w32.gguf" 'print(d["kv"]["general.alignment"])'
	[ "$output" = "{'type': 'u32', 'value': 32}" ] || fail "w32: $output"
	run py "$G/a64.gguf" '
print(d["kv"]["general.alignment"], d["data_offset"] % 64,
      sorted({t["abs_offset"] % 64 for t in d["tensors"]}))'
	[ "$output" = "{'type': 'u32', 'value': 64} 0 [0]" ] || fail "a64: $output"
	# the version field is the only header difference between v2 and v3
	[ "$(head -c 8 "$G/v2.gguf" | od -An -tx1 | tr -d ' ')" = 4747554602000000 ]
	[ "$(head -c 8 "$G/mixed.gguf" | od -An -tx1 | tr -d ' ')" = 4747554603000000 ]
}

@test "llama metadata and tensor names and dims as llama.cpp writes them" {
	run py "$G/mixed.gguf" '
kv = d["kv"]
v = lambda k: (kv[k]["type"], kv[k]["value"])
print(v("general.architecture"), v("general.name"), v("llama.block_count"),
      v("llama.embedding_length"), v("llama.feed_forward_length"),
      v("llama.attention.head_count"), v("llama.attention.head_count_kv"),
      v("llama.context_length"), v("llama.rope.freq_base"),
      v("llama.attention.layer_norm_rms_epsilon"), v("tokenizer.ggml.model"))
for k in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
    print(k, kv[k]["elem"], len(kv[k]["value"]))
print(kv["tokenizer.ggml.tokens"]["value"][:4], kv["tokenizer.ggml.token_type"]["value"][:4])
print("llama.vocab_size" in kv, kv["general.quantization_version"]["value"])
t = {x["name"]: (x["type"], x["ne"]) for x in d["tensors"]}
for n in ("token_embd.weight", "blk.1.attn_norm.weight", "blk.1.attn_k.weight",
          "blk.0.ffn_down.weight", "blk.1.ffn_gate.weight", "output_norm.weight",
          "output.weight"):
    print(n, t[n][1])'
	[ "$status" -eq 0 ] || fail "$output"
	[ "${lines[0]}" = "('str', 'llama') ('str', 'mixed') ('u32', 2) ('u32', 256) ('u32', 512) ('u32', 4) ('u32', 2) ('u32', 2048) ('f32', 10000.0) ('f32', 9.999999747378752e-06) ('str', 'llama')" ] ||
		fail "${lines[0]}"
	[ "${lines[1]}" = "tokenizer.ggml.tokens str 300" ]
	[ "${lines[2]}" = "tokenizer.ggml.scores f32 300" ]
	[ "${lines[3]}" = "tokenizer.ggml.token_type i32 300" ]
	[ "${lines[4]}" = "['<unk>', '<s>', '</s>', '<0x00>'] [2, 3, 3, 6]" ] || fail "${lines[4]}"
	[ "${lines[5]}" = "False 2" ]
	[ "${lines[6]}" = "token_embd.weight [256, 300]" ]
	[ "${lines[7]}" = "blk.1.attn_norm.weight [256]" ]
	[ "${lines[8]}" = "blk.1.attn_k.weight [256, 128]" ]
	[ "${lines[9]}" = "blk.0.ffn_down.weight [512, 256]" ]
	[ "${lines[10]}" = "blk.1.ffn_gate.weight [256, 512]" ]
	[ "${lines[11]}" = "output_norm.weight [256]" ]
	[ "${lines[12]}" = "output.weight [256, 300]" ]
	run py "$G/v2.gguf" 'print(d["kv"]["llama.vocab_size"], d["kv"]["general.file_type"])'
	[ "$output" = "{'type': 'u32', 'value': 300} {'type': 'u32', 'value': 17}" ] || fail "$output"
}

@test "--all-kv-types: a key of every GGUF value type, arrays of each, nested arrays" {
	local f
	for f in a64 v1; do
		run py "$G/$f.gguf" '
for k, x in d["kv"].items():
    if k.startswith("aprfs.test."):
        print(k[11:], x["type"], x.get("elem", "-"), json.dumps(x["value"], ensure_ascii=False))'
		[ "$status" -eq 0 ] || fail "$output"
		[ "$output" = "u8 u8 - 200
i8 i8 - -100
u16 u16 - 60000
i16 i16 - -30000
u32 u32 - 4000000000
i32 i32 - -2000000000
f32 f32 - -1.5
bool bool - true
str str - \"héllo wörld ✓\"
u64 u64 - 18446744073709551615
i64 i64 - -9223372036854775808
f64 f64 - 3.141592653589793
empty_str str - \"\"
arr_u8 arr u8 [0, 1, 255]
arr_i8 arr i8 [-128, 0, 127]
arr_u16 arr u16 [0, 65535]
arr_i16 arr i16 [-32768, 32767]
arr_u32 arr u32 [0, 4294967295]
arr_i32 arr i32 [-2147483648, 2147483647]
arr_f32 arr f32 [0.5, -2.0, 3.25]
arr_bool arr bool [true, false, true]
arr_str arr str [\"a\", \"\", \"ü\"]
arr_u64 arr u64 [0, 18446744073709551615]
arr_i64 arr i64 [-9223372036854775808, 9223372036854775807]
arr_f64 arr f64 [1e+300, -2.5]
arr_empty arr u32 []
arr_arr arr arr [{\"elem\": \"i32\", \"value\": [1, 2, 3]}, {\"elem\": \"str\", \"value\": [\"x\", \"y\"]}, {\"elem\": \"u8\", \"value\": []}, {\"elem\": \"arr\", \"value\": [{\"elem\": \"bool\", \"value\": [true]}]}]" ] ||
			fail "$f: $output"
	done
}

@test "--type T: rows that are not whole blocks fall back to F16, norms are F32, --odd shapes" {
	gen --type Q4_K --hidden 320 --heads 4 --kv-heads 2 --inter 512 --layers 1 --vocab 40 \
		--name fb "$BATS_TEST_TMPDIR"
	run py "$BATS_TEST_TMPDIR/fb.gguf" '
for t in d["tensors"]:
    print(t["name"], t["type"], t["ne"])'
	[ "$status" -eq 0 ] || fail "$output"
	[[ "$output" == *"blk.0.attn_q.weight F16 [320, 320]"* ]] || fail "$output"
	[[ "$output" == *"blk.0.ffn_down.weight Q4_K [512, 320]"* ]] || fail "$output"
	[[ "$output" == *"blk.0.ffn_norm.weight F32 [320]"* ]] || fail "$output"
	run py "$G/a64.gguf" '
for t in d["tensors"]:
    if t["name"].startswith("odd.") and "random" not in t["name"]:
        print(t["name"], t["type"], t["ne"])'
	[ "$output" = "odd.q4_0_3d Q4_0 [64, 3, 2]
odd.f16_4d F16 [8, 4, 3, 2]
odd.q8_0_trailing_1 Q8_0 [32, 1]
odd.f32_one F32 [1]
odd.q5_1_rows_320 Q5_1 [320, 2]
odd.i32 I32 [5]
odd.f64 F64 [3]" ] || fail "$output"
}

@test "gengguf is deterministic: same seed same bytes, another seed other weights" {
	gen --mixed --odd --vocab 300 --name mixed "$BATS_TEST_TMPDIR/again"
	gen --mixed --odd --vocab 300 --name mixed --seed 7 "$BATS_TEST_TMPDIR/seed7"
	cmp "$G/mixed.gguf" "$BATS_TEST_TMPDIR/again/mixed.gguf"
	run ! cmp -s "$BATS_TEST_TMPDIR/again/mixed.gguf" "$BATS_TEST_TMPDIR/seed7/mixed.gguf"
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/again/mixed.gguf")" -eq \
		"$(stat -c %s "$BATS_TEST_TMPDIR/seed7/mixed.gguf")" ]
}

@test "--size-mb streams a large file quickly in bounded memory" {
	local t0 t1 size rss
	t0=$(date +%s%N)
	rss=$( { /usr/bin/time -f %M timeout -k 5 120 "$GENGGUF" --size-mb 256 --type Q8_0 \
		--name big "$BATS_TEST_TMPDIR" >/dev/null; } 2>&1)
	t1=$(date +%s%N)
	size=$(stat -c %s "$BATS_TEST_TMPDIR/big.gguf")
	rm -f "$BATS_TEST_TMPDIR/big.gguf"
	echo "256 MiB Q8_0: $(((t1 - t0) / 1000000)) ms, $size bytes, peak RSS $rss KiB" >&3
	[ "$size" -gt $((230 << 20)) ] && [ "$size" -lt $((290 << 20)) ] || fail "size $size"
	[ $(((t1 - t0) / 1000000)) -lt 30000 ] || fail "took $(((t1 - t0) / 1000000)) ms"
	[ "$rss" -lt 200000 ] || fail "peak RSS $rss KiB"
}

@test "gengguf refuses bad options" {
	run gen --type IQ2_XXS "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ] && [[ "$output" == *"is not one of"* ]] || fail "$output"
	run gen --alignment 48 "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ] && [[ "$output" == *"not a power of two"* ]] || fail "$output"
	run gen --mixed --layers 1 "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ] && [[ "$output" == *"--mixed needs"* ]] || fail "$output"
	run gen --gguf-version 4 "$BATS_TEST_TMPDIR"
	[ "$status" -eq 1 ] || fail "$output"
	run gen --bogus "$BATS_TEST_TMPDIR"
	[ "$status" -eq 2 ] || fail "$output"
	[ ! -e "$BATS_TEST_TMPDIR/model.gguf" ]
}

@test "gguf_ref.py refuses what is not valid GGUF" {
	local f="$BATS_TEST_TMPDIR/bad.gguf"
	printf 'GGUX\003\000\000\000' >"$f"
	run ref "$f"
	[ "$status" -eq 1 ] && [[ "$output" == *"not a GGUF file"* ]] || fail "$output"
	head -c 100 "$G/v2.gguf" >"$f"
	run ref "$f"
	[ "$status" -eq 1 ] && [[ "$output" == *"past the end"* ]] || fail "$output"
	# a tensor's data cut off
	head -c $(($(stat -c %s "$G/w32.gguf") - 100)) "$G/w32.gguf" >"$f"
	run ref "$f"
	[ "$status" -eq 1 ] && [[ "$output" == *"runs past the end"* ]] || fail "$output"
	# a non-zero padding byte (a64's last tensor, 3360 bytes, is followed by 32 of them):
	# valid GGUF, but not what llama.cpp writes
	cp "$G/a64.gguf" "$f"
	printf '\001' | dd of="$f" bs=1 seek=$(($(stat -c %s "$f") - 1)) conv=notrunc status=none
	run ref --check "$f"
	[ "$status" -eq 1 ] && [[ "$output" == *"padding after"* ]] || fail "$output"
}
