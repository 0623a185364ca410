#!/usr/bin/env bats
# convert.bats - end to end tests of `aprfs convert` against the byte format
# doc/apr-format.md, checked by an independent Python reader (tests/tools/apr_reader.py)
# that re-derives the exact encodings from the source. `aprfs inspect`: inspect.bats.

load convert_helpers

setup_file() {
	cv_setup_models
}

@test "bf16 model with odd tensors: every variant converts, inspects, and matches the contract" {
	cv_check_all "$CV_MODELS/odd/model.safetensors" "$BATS_TEST_TMPDIR/out"
}

@test "f16 model: every variant converts, inspects, and matches the contract" {
	cv_check_all "$CV_MODELS/f16/model.safetensors" "$BATS_TEST_TMPDIR/out"
}

@test "aprfs variants: one row per variant; the independent reader knows the same names" {
	# tests/tools/apr_reader.py keeps its own list (it is written from the contract, not
	# from aprfs): it must name exactly the variants aprfs serves, in the same order.
	local names reader rows
	names=$(cv_aprfs variants --names | paste -sd ' ')
	[ -n "$names" ] || cv_fail "aprfs variants --names printed nothing"
	reader=$(cd "$CV_TOOLS" && timeout 30 python3 -c 'import apr_reader; print(" ".join(apr_reader.VARIANTS))')
	[ "$reader" = "$names" ] || cv_fail "apr_reader.py VARIANTS '$reader' != aprfs variants '$names'"
	rows=$(cv_aprfs variants | awk -F'\t' 'NF != 4 { bad = 1 } { print $1 } END { exit bad }' | paste -sd ' ') ||
		cv_fail "aprfs variants: a line without 4 tab-separated fields"
	[ "$rows" = "$names" ] || cv_fail "aprfs variants rows '$rows' != --names '$names'"
	run cv_aprfs variants --bogus
	[ "$status" -eq 2 ] || cv_fail "aprfs variants --bogus: status $status, want 2"
}

@test "f32 model: every variant converts, inspects, and matches the contract" {
	cv_check_all "$CV_MODELS/f32/model.safetensors" "$BATS_TEST_TMPDIR/out"
}

@test "sharded checkpoint converts to one file holding every tensor of every shard" {
	local src="$CV_MODELS/sharded/model.safetensors.index.json" out="$BATS_TEST_TMPDIR/out"
	cv_check_all "$src" "$out"
	local want got
	want=$(timeout 60 python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["weight_map"]))' "$src")
	for v in $CV_VARIANTS; do
		got=$(cv_json_get "$out/model.$v.apr" 'len(d["tensors"])')
		[ "$got" = "$want" ] || cv_fail "$v: $got tensors, the index lists $want"
		# one file, not a shard
		[ "$(cv_json_get "$out/model.$v.apr" 'd["header"]["flags"] & 0x10')" = 0 ] ||
			cv_fail "$v: SHARDED flag set"
	done
}

@test "no config.json: every variant valid and without config keys" {
	# the reader fails on config keys written without a config.json
	cv_check_all "$CV_MODELS/noconfig/model.safetensors" "$BATS_TEST_TMPDIR/out"
	run cv_json_get "$BATS_TEST_TMPDIR/out/model.q8.apr" '"hidden_size" in d["metadata"]'
	[ "$output" = False ]
}

@test "config.json: canonical metadata keys only, with the config's values" {
	local out="$BATS_TEST_TMPDIR/x.q4.apr"
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$out"
	run cv_json_get "$out" 'sorted(k for k in d["metadata"] if k in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "layer_norm_eps", "torch_dtype"))'
	[ "$output" = "[]" ]
	run cv_json_get "$out" '(d["metadata"]["num_layers"], d["metadata"]["hidden_size"], d["metadata"]["num_kv_heads"], d["metadata"]["architecture"], d["metadata"]["hf_architecture"])'
	[ "$output" = "(2, 256, 2, 'llama', 'LlamaForCausalLM')" ]
}

@test "rounding edges (ties, overflow, zeros, tiny and subnormal scales, rule boundaries, names) are encoded exactly" {
	local s="$CV_MODELS/special" f
	for f in special special16 specialbf name256 escaped rawnames; do
		cv_check_all "$s/$f.safetensors" "$BATS_TEST_TMPDIR/$f"
	done
}

@test "NaN and inf inside quantized tensors never spread: contract bytes, finite values, other blocks untouched" {
	local src="$CV_MODELS/special/nonfinite.safetensors" out="$BATS_TEST_TMPDIR/out" v
	# The reader re-derives the q8/q4/nf4/ternary bytes under the contract's rules for
	# NaN, +-inf and values beyond +-65504 (q8 scale and ternary alpha over the finite
	# values, blocks sanitised before their scales are chosen) and fails on any decoded
	# value that is not a finite binary32, Q4_K/Q6_K included.
	cv_check_all "$src" "$out"
	for v in q8 q4 q4k q6k nf4 ternary; do
		# aprfs' own decoders: every tensor's error statistics are finite numbers (in
		# f16/bf16, 1e30 rightly overflows to inf)
		cv_aprfs inspect --json --stats "$src" "$out/model.$v.apr" >"$out/stats.$v.json"
		timeout 120 python3 - "$out/stats.$v.json" "$v" <<'PY' || return 1
import json, math, sys
d = json.load(open(sys.argv[1]))
bad = [(t["name"], t.get("mse"), t.get("rel_rmse")) for t in d["tensors"]
       if not all(isinstance(t.get(k), (int, float)) and math.isfinite(t[k])
                  for k in ("mse", "rel_rmse"))]
if bad or len(d["tensors"]) != 5:
    sys.exit("%s: non-finite error statistics: %r" % (sys.argv[2], bad))
PY
	done
	# rows.special is rows.clean with specials in its even rows: every block of it that
	# holds no NaN, inf or |x| > 65504 has exactly rows.clean's bytes, in every block codec
	# (Q4_K/Q6_K: one row is one block), and the q8 scale / ternary alpha of the tensors
	# holding NaN/inf only are those of their finite values.
	timeout 120 python3 - "$CV_TOOLS" "$src" "$out" <<'PY'
import math, struct, sys
sys.path.insert(0, sys.argv[1])
import apr_reader as R
src = R.read_source(sys.argv[2])
sp = R.decode_floats(src["rows.special"].raw(), "F32")
def blobs(v):
    data = open("%s/model.%s.apr" % (sys.argv[3], v), "rb").read()
    c = R.parse_container(data, [])
    d0 = c["data_offset"]
    return {e.name: (e.dtype, data[d0 + e.offset:d0 + e.offset + e.size]) for e in c["entries"]}
errs = []
for v, dt, be, bb in (("q4", 128, 32, 18), ("q4k", 12, 256, 144), ("q6k", 14, 256, 210),
                      ("nf4", 130, 64, 36)):
    b = blobs(v)
    (da, a), (dc, c) = b["rows.special"], b["rows.clean"]
    if da != dt or dc != dt or len(a) != len(c) or len(a) != 4096 // be * bb:
        errs.append("%s: dtypes %d/%d, sizes %d/%d" % (v, da, dc, len(a), len(c)))
        continue
    special = differ = 0
    for k in range(4096 // be):
        blk = sp[k * be:(k + 1) * be]
        if any(not math.isfinite(x) or abs(x) > 65504 for x in blk):
            special += 1
            differ += a[k * bb:(k + 1) * bb] != c[k * bb:(k + 1) * bb]
        elif a[k * bb:(k + 1) * bb] != c[k * bb:(k + 1) * bb]:
            errs.append("%s: block %d holds no special value but differs" % (v, k))
    if not special or not differ:
        errs.append("%s: %d special blocks, %d differ: the test data is wrong" % (v, special, differ))
for name in ("mixed", "one_nan", "all_nonfinite"):
    xs = R.decode_floats(src[name].raw(), "F32")
    fin = [abs(x) for x in xs if math.isfinite(x)]
    s = struct.unpack_from("<f", blobs("q8")[name][1])[0]
    want = R.f32(max(fin) / 127) if fin and max(fin) > 0 else 1.0
    if s != want or not math.isfinite(s):
        errs.append("q8 %s: scale %r, want %r" % (name, s, want))
    a = struct.unpack_from("<f", blobs("ternary")[name][1])[0]
    if not (a in R.tern_alphas(xs) and (a == 0) == (not fin)):
        errs.append("ternary %s: alpha %r, want mean of the finite |x|" % (name, a))
sys.exit("\n".join(errs) if errs else 0)
PY
}

@test "a 257-byte tensor name is refused, a 256-byte one accepted" {
	mkdir "$BATS_TEST_TMPDIR/o"
	run cv_aprfs convert "$CV_MODELS/special/longname.safetensors" "$BATS_TEST_TMPDIR/o/x.q8.apr"
	[ "$status" -eq 1 ]
	[[ "$output" == *"longname.safetensors"*"256"* ]]
	cv_no_leftovers "$BATS_TEST_TMPDIR/o"
	cv_aprfs convert "$CV_MODELS/special/name256.safetensors" "$BATS_TEST_TMPDIR/o/y.q8.apr"
	cv_reader "$BATS_TEST_TMPDIR/o/y.q8.apr" --source "$CV_MODELS/special/name256.safetensors"
}

@test "file size equals data_offset + sum(align64(size)) + 4 computed from the source shapes" {
	local src v out ms want got
	for src in "$CV_MODELS/odd/model.safetensors" "$CV_MODELS/special/special.safetensors" \
		"$CV_MODELS/sharded/model.safetensors.index.json"; do
		for v in $CV_VARIANTS; do
			out="$BATS_TEST_TMPDIR/x.$v.apr"
			cv_aprfs convert "$src" "$out"
			ms=$(cv_meta_size "$out")
			want=$(timeout 60 python3 "$CV_TOOLS/apr_size.py" "$src" "$v" "$ms")
			got=$(stat -c %s "$out")
			[ "$got" = "$want" ] || cv_fail "$src $v: size $got, the shapes give $want"
		done
	done
	for b in 32 128; do
		out="$BATS_TEST_TMPDIR/b$b.nf4.apr"
		cv_aprfs convert --nf4-block "$b" "$CV_MODELS/special/special.safetensors" "$out"
		want=$(timeout 60 python3 "$CV_TOOLS/apr_size.py" "$CV_MODELS/special/special.safetensors" nf4 "$(cv_meta_size "$out")" "$b")
		[ "$(stat -c %s "$out")" = "$want" ] || cv_fail "nf4 block $b: size"
	done
}

@test "converting twice gives identical bytes (every variant, single file and sharded)" {
	local src v
	for src in "$CV_MODELS/odd/model.safetensors" "$CV_MODELS/sharded/model.safetensors.index.json"; do
		for v in $CV_VARIANTS; do
			cv_aprfs convert "$src" "$BATS_TEST_TMPDIR/a.$v.apr"
			cv_aprfs convert "$src" "$BATS_TEST_TMPDIR/b.$v.apr"
			cmp "$BATS_TEST_TMPDIR/a.$v.apr" "$BATS_TEST_TMPDIR/b.$v.apr" ||
				cv_fail "$src $v: two conversions differ"
		done
	done
}

@test "--variant overrides the variant of the output name" {
	local src="$CV_MODELS/odd/model.safetensors" d="$BATS_TEST_TMPDIR"
	cv_aprfs convert --variant q6k "$src" "$d/plain.apr"
	cv_reader "$d/plain.apr" --source "$src" --variant q6k
	cv_aprfs convert --variant q8 "$src" "$d/named.q4.apr"
	[ "$(cv_json_get "$d/named.q4.apr" 'd["metadata"]["quantization"]["quant_type"]')" = q8 ]
	cv_reader "$d/named.q4.apr" --source "$src" --variant q8
	# f32 writes no quantization object
	cv_aprfs convert --variant f32 "$src" "$d/named.q8.apr"
	[ "$(cv_json_get "$d/named.q8.apr" '"quantization" in d["metadata"]')" = False ]
	cv_reader "$d/named.q8.apr" --source "$src" --variant f32
}

@test "--nf4-block 32 and 128: block size recorded, fallbacks to APR_Q8 where n is not a multiple" {
	local src="$CV_MODELS/special/special.safetensors" d="$BATS_TEST_TMPDIR" b
	for b in 32 128; do
		cv_aprfs convert --nf4-block $b "$src" "$d/b$b.nf4.apr"
		[ "$(cv_json_get "$d/b$b.nf4.apr" 'd["metadata"]["quantization"]["block_size"]')" = $b ]
		cv_reader "$d/b$b.nf4.apr" --source "$src"
		cv_aprfs convert --nf4-block $b "$CV_MODELS/odd/model.safetensors" "$d/odd$b.nf4.apr"
		cv_reader "$d/odd$b.nf4.apr" --source "$CV_MODELS/odd/model.safetensors"
	done
	# rule.48x100 has 4800 elements: a multiple of 32 and 64, not of 128
	[ "$(cv_json_get "$d/b32.nf4.apr" '[t["dtype"] for t in d["tensors"] if t["name"] == "rule.48x100"][0]')" = NF4 ]
	[ "$(cv_json_get "$d/b128.nf4.apr" '[t["dtype"] for t in d["tensors"] if t["name"] == "rule.48x100"][0]')" = APR_Q8 ]
}

@test "--nf4-block odd, 0, 1, negative or not a number is refused with a clear message" {
	local d="$BATS_TEST_TMPDIR/o" b
	mkdir "$d"
	for b in 0 1 7 63 -2 abc ""; do
		run cv_aprfs convert --nf4-block "$b" "$CV_MODELS/odd/model.safetensors" "$d/x.nf4.apr"
		[ "$status" -ne 0 ] || cv_fail "--nf4-block '$b' accepted"
		[ "$status" -ne 124 ] || cv_fail "--nf4-block '$b' hung"
		[[ "$output" == *"aprfs convert:"* ]] || cv_fail "--nf4-block '$b': no message: $output"
		[[ "$output" == *"nf4"* || "$output" == *"usage"* ]] ||
			cv_fail "--nf4-block '$b': message does not name the option: $output"
		cv_no_leftovers "$d"
	done
	# the message quotes what was given, not a wrapped-around number
	run cv_aprfs convert --nf4-block -2 "$CV_MODELS/odd/model.safetensors" "$d/x.nf4.apr"
	[[ "$output" != *4294967294* ]] || cv_fail "-2 reported as 4294967294: $output"
}

@test "convert refuses to overwrite its own source" {
	local d="$BATS_TEST_TMPDIR/src" st
	mkdir "$d"
	cp "$CV_MODELS/odd/model.safetensors" "$d/"
	cp "$d/model.safetensors" "$BATS_TEST_TMPDIR/orig"
	run cv_aprfs convert --variant q8 "$d/model.safetensors" "$d/model.safetensors"
	cmp "$d/model.safetensors" "$BATS_TEST_TMPDIR/orig" ||
		cv_fail "the source was overwritten (exit $status: $output)"
	[ "$status" -eq 1 ] || [ "$status" -eq 2 ]
	cv_no_leftovers "$d" model.safetensors
}

@test "a file truncated or extended by one byte is refused" {
	local f="$BATS_TEST_TMPDIR/x.q6k.apr" b="$BATS_TEST_TMPDIR/bad.apr" n st size
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	n=$(stat -c %s "$f")
	for size in $((n - 1)) $((n + 1)) 67 64 4 0; do
		cp "$f" "$b"
		truncate -s "$size" "$b"
		st=0
		cv_aprfs inspect "$b" >/dev/null 2>"$BATS_TEST_TMPDIR/err" || st=$?
		[ "$st" -eq 1 ] || cv_fail "size $size (of $n): inspect exit $st"
		grep -q "^aprfs inspect: .*bad.apr: " "$BATS_TEST_TMPDIR/err" ||
			cv_fail "size $size: $(cat "$BATS_TEST_TMPDIR/err")"
		# a byte count that wrapped around below zero is no message
		! grep -q 18446744073709551 "$BATS_TEST_TMPDIR/err" ||
			cv_fail "size $size: $(cat "$BATS_TEST_TMPDIR/err")"
		run cv_reader "$b"
		[ "$status" -eq 1 ] || cv_fail "size $size: the reader accepted it"
	done
	cp "$f" "$b"
	printf '\0' >>"$b"
	run cv_aprfs inspect "$b"
	[ "$status" -eq 1 ]
	run cv_aprfs inspect "$BATS_TEST_TMPDIR/missing.apr"
	[ "$status" -eq 1 ]
	[[ "$output" == *missing.apr* ]]
}

@test "every hostile source is refused with its file name and reason, leaving nothing behind" {
	local h="$CV_MODELS/hostile" o="$BATS_TEST_TMPDIR/o" rel sub path n=0 v
	while IFS=$'\t' read -r rel sub; do
		for v in q8 f32; do
			rm -rf "$o"
			mkdir "$o"
			run cv_aprfs convert "$h/$rel" "$o/model.$v.apr" </dev/null
			[ "$status" -eq 1 ] || cv_fail "$rel: exit $status: $output"
			[ "${#lines[@]}" -eq 1 ] || cv_fail "$rel: not one line: $output"
			[[ "$output" == "aprfs convert: "* ]] || cv_fail "$rel: $output"
			[[ "$output" == *"$sub"* ]] || cv_fail "$rel: '$sub' not in: $output"
			# the path before the reason is the source or a file beside it
			path=${output#aprfs convert: }
			path=${path%%: *}
			[[ "$path" == "$h/$rel" || "$(dirname "$path")" == "$(dirname "$h/$rel")" ]] ||
				cv_fail "$rel: message names '$path'"
			cv_no_leftovers "$o"
		done
		n=$((n + 1))
	done <"$h/EXPECTED"
	[ $n -ge 20 ]
}

@test "a failed convert leaves an existing output untouched" {
	local o="$BATS_TEST_TMPDIR/o"
	mkdir "$o"
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$o/model.q8.apr"
	cp "$o/model.q8.apr" "$BATS_TEST_TMPDIR/keep"
	run cv_aprfs convert "$CV_MODELS/hostile/data-truncated.safetensors" "$o/model.q8.apr"
	[ "$status" -eq 1 ]
	cmp "$o/model.q8.apr" "$BATS_TEST_TMPDIR/keep"
	cv_no_leftovers "$o" model.q8.apr
	# a successful one replaces it
	cv_aprfs convert "$CV_MODELS/f16/model.safetensors" "$o/model.q8.apr"
	cv_reader "$o/model.q8.apr" --source "$CV_MODELS/f16/model.safetensors"
	cv_no_leftovers "$o" model.q8.apr
}

@test "unwritable output directory: clear error, no temporary file" {
	local src="$CV_MODELS/odd/model.safetensors" d="$BATS_TEST_TMPDIR/ro"
	mkdir "$d"
	chmod 555 "$d"
	if ! touch "$d/probe" 2>/dev/null; then # not root: permissions apply
		run cv_aprfs convert "$src" "$d/model.q8.apr"
		[ "$status" -eq 1 ]
		[[ "$output" == "aprfs convert: $d/model.q8.apr: "* ]] || cv_fail "$output"
		[[ "$output" == *"ermission denied"* ]] || cv_fail "$output"
		cv_no_leftovers "$d"
	fi
	rm -f "$d/probe"
	chmod 755 "$d"
	# unwritable whoever we are: /proc, a path through a regular file, a missing directory
	for out in /proc/model.q8.apr "$src/model.q8.apr" "$BATS_TEST_TMPDIR/none/model.q8.apr"; do
		run cv_aprfs convert "$src" "$out"
		[ "$status" -eq 1 ] || cv_fail "$out: exit $status"
		[ "${#lines[@]}" -eq 1 ] || cv_fail "$out: $output"
		[[ "$output" == "aprfs convert: $out: "* ]] || cv_fail "$out: $output"
	done
	cv_no_leftovers "$CV_MODELS/odd" model.safetensors config.json README.md tokenizer.json
}

@test "usage errors exit 2 with the usage" {
	local src="$CV_MODELS/odd/model.safetensors" o="$BATS_TEST_TMPDIR/o"
	mkdir "$o"
	run cv_aprfs convert
	[ "$status" -eq 2 ]
	[[ "$output" == *usage* ]]
	run cv_aprfs convert "$src"
	[ "$status" -eq 2 ]
	[[ "$output" == *usage* ]]
	run cv_aprfs convert "$src" "$o/a.q8.apr" extra
	[ "$status" -eq 2 ]
	run cv_aprfs convert --bogus "$src" "$o/a.q8.apr"
	[ "$status" -eq 2 ]
	[[ "$output" == *usage* ]]
	run cv_aprfs convert "$src" "$o/no-variant.apr"
	[ "$status" -eq 2 ]
	[[ "$output" == *variant* ]]
	run cv_aprfs convert "$src" "$o/a.q5.apr"
	[ "$status" -eq 2 ]
	run cv_aprfs inspect
	[ "$status" -eq 2 ]
	[[ "$output" == *usage* ]]
	run cv_aprfs inspect --bogus "$o/a.q8.apr"
	[ "$status" -eq 2 ]
	cv_no_leftovers "$o"
}

@test "an unknown --variant is a usage error (exit 2)" {
	local o="$BATS_TEST_TMPDIR/o"
	mkdir "$o"
	for v in q5 Q8 f64 ""; do
		run cv_aprfs convert --variant "$v" "$CV_MODELS/odd/model.safetensors" "$o/a.q8.apr"
		[ "$status" -eq 2 ] || cv_fail "--variant '$v': exit $status: $output"
		[[ "$output" == *variant* ]] || cv_fail "--variant '$v': $output"
	done
	cv_no_leftovers "$o"
}

# cv_interrupt SIGNAL DELAY VARIANT: convert the big model, signal it after DELAY seconds;
# it must have been running, must die or fail, and must leave nothing behind.
cv_interrupt() {
	local sig=$1 delay=$2 v=$3 d="$BATS_TEST_TMPDIR/sig" pid st i
	rm -rf "$d"
	mkdir "$d"
	# not under timeout(1): the signal must reach aprfs itself; the loop below is the
	# time limit instead
	"$CV_APRFS" convert --quiet "$BIG/model.safetensors" "$d/model.$v.apr" 3>&- &
	pid=$!
	sleep "$delay"
	kill -0 "$pid" 2>/dev/null || cv_fail "convert finished before the $sig at $delay s"
	kill -"$sig" "$pid"
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		cv_fail "convert still running 20 s after SIG$sig"
	fi
	st=0
	wait "$pid" || st=$?
	[ "$st" -ne 0 ] || cv_fail "$sig at $delay s: convert exited 0"
	cv_no_leftovers "$d"
}

@test "SIGINT or SIGTERM during convert leaves no partial output nor temporary file" {
	BIG="$BATS_FILE_TMPDIR/big"
	[ -f "$BIG/model.safetensors" ] || timeout -k 5 120 "$CV_GENMODEL" --size-mb 200 "$BIG" >/dev/null
	cv_interrupt INT 0.3 q4k
	cv_interrupt TERM 0.3 q4k
	cv_interrupt INT 0.6 f32
	cv_interrupt TERM 0.1 f32
	cv_no_leftovers "$BIG" model.safetensors config.json README.md tokenizer.json
}

@test "SIGHUP (closed terminal) during convert leaves no temporary file" {
	BIG="$BATS_FILE_TMPDIR/big"
	[ -f "$BIG/model.safetensors" ] || timeout -k 5 120 "$CV_GENMODEL" --size-mb 200 "$BIG" >/dev/null
	cv_interrupt HUP 0.3 q4k
	rm -rf "$BIG"
}

@test "--root: metadata source is relative to the root; an unchanged source converts identically" {
	local r="$BATS_TEST_TMPDIR/root" o="$BATS_TEST_TMPDIR/o"
	mkdir -p "$r/org/model" "$o"
	cp "$CV_MODELS/odd/model.safetensors" "$CV_MODELS/odd/config.json" "$r/org/model/"
	cv_aprfs convert --root "$r" "$r/org/model/model.safetensors" "$o/a.q4.apr"
	cv_aprfs convert --root "$r" "$r/org/model/model.safetensors" "$o/b.q4.apr"
	cmp "$o/a.q4.apr" "$o/b.q4.apr"
	[ "$(cv_json_get "$o/a.q4.apr" 'd["metadata"]["source"]')" = org/model/model.safetensors ]
	cv_reader "$o/a.q4.apr" --source "$r/org/model/model.safetensors" --root "$r"
	# the same root spelt differently (trailing slash, relative) gives the same bytes
	cv_aprfs convert --root "$r/" "$r/org/model/model.safetensors" "$o/c.q4.apr"
	cmp "$o/a.q4.apr" "$o/c.q4.apr"
	(cd "$BATS_TEST_TMPDIR" && cv_aprfs convert --root root root/org/model/model.safetensors o/d.q4.apr)
	cmp "$o/a.q4.apr" "$o/d.q4.apr"
	# touching the source without changing it changes nothing either
	touch "$r/org/model/model.safetensors"
	cv_aprfs convert --root "$r" "$r/org/model/model.safetensors" "$o/e.q4.apr"
	cmp "$o/a.q4.apr" "$o/e.q4.apr"
	# default root: the source's directory
	cv_aprfs convert "$r/org/model/model.safetensors" "$o/f.q4.apr"
	[ "$(cv_json_get "$o/f.q4.apr" 'd["metadata"]["source"]')" = model.safetensors ]
	# a source outside the root is refused
	run cv_aprfs convert --root "$o" "$r/org/model/model.safetensors" "$o/g.q4.apr"
	[ "$status" -ne 0 ]
	[[ "$output" == *"--root"* ]]
	[ ! -e "$o/g.q4.apr" ]
}

@test "--threads: every thread count writes the same bytes; bad counts are usage errors" {
	local src="$CV_MODELS/odd/model.safetensors" d="$BATS_TEST_TMPDIR" v t
	for v in $CV_VARIANTS; do
		cv_aprfs convert --threads 1 "$src" "$d/one.$v.apr"
		for t in 2 3 8; do
			cv_aprfs convert --threads "$t" "$src" "$d/many.$v.apr"
			cmp "$d/one.$v.apr" "$d/many.$v.apr" || cv_fail "$v: --threads $t differs"
		done
	done
	for t in 0 -1 x 257 ""; do
		run cv_aprfs convert --threads "$t" "$src" "$d/bad.q8.apr"
		[ "$status" -eq 2 ] || cv_fail "--threads '$t': exit $status"
	done
}
