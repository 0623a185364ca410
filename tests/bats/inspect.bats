#!/usr/bin/env bats
# inspect.bats - end to end tests of `aprfs inspect`: its JSON and statistics against the
# independent Python reader (tests/tools/apr_reader.py), and every corruption of a converted
# file (flipped bytes, bad headers, contract violations behind valid checksums) refused.

load convert_helpers

setup_file() {
	cv_setup_models
}

@test "inspect --json parses and lists every tensor with absolute offsets" {
	local src="$CV_MODELS/odd/model.safetensors" f="$BATS_TEST_TMPDIR/x.q4k.apr"
	cv_aprfs convert "$src" "$f"
	cv_aprfs inspect --json "$f" >"$BATS_TEST_TMPDIR/j.json"
	timeout 60 python3 - "$f" "$src" "$BATS_TEST_TMPDIR/j.json" "$CV_TOOLS" <<'EOF'
import json, os, sys
sys.path.insert(0, sys.argv[4])
import apr_reader as R
f, src, js = sys.argv[1:4]
d = json.load(open(js))
data = open(f, "rb").read()
c = R.parse_container(data, [])
assert d["valid"] is True, d
assert d["size"] == len(data), d["size"]
assert "error" not in d
h = d["header"]
assert h["version_major"] == 2 and h["version_minor"] == 0
assert h["tensor_count"] == len(c["entries"]) == len(d["tensors"])
assert h["data_offset"] == c["data_offset"]
assert d["metadata"] == c["meta"]
names = sorted(R.read_source(src))
assert sorted(t["name"] for t in d["tensors"]) == names
mine = {e.name: e for e in c["entries"]}
for t in d["tensors"]:
    e = mine[t["name"]]
    assert t["offset"] == c["data_offset"] + e.offset, t
    assert t["size"] == e.size and t["shape"] == e.shape and t["dtype_id"] == e.dtype, t
    assert t["dtype"] == R.DTYPE_NAMES[e.dtype], t
print("ok")
EOF
}

@test "inspect --stats prints error figures that agree with the independent decoder" {
	local src="$CV_MODELS/odd/model.safetensors" d="$BATS_TEST_TMPDIR" v
	for v in q8 q4 q4k q6k nf4 ternary bf16; do
		cv_aprfs convert "$src" "$d/x.$v.apr"
		run cv_aprfs inspect --stats "$src" "$d/x.$v.apr"
		[ "$status" -eq 0 ] || cv_fail "inspect --stats $v: $output"
		[[ "$output" == *"model.layers.0.mlp.down_proj.weight"*[0-9]* ]]
		[[ "$output" == *"odd.int8"*exact* ]] || cv_fail "$v: pass-through not reported exact"
		cv_aprfs inspect --json --stats "$src" "$d/x.$v.apr" >"$d/s.$v.json"
		cv_reader "$d/x.$v.apr" --source "$src" --stats-json "$d/r.$v.json" --tolerance-check
		timeout 60 python3 - "$d/s.$v.json" "$d/r.$v.json" "$v" <<'EOF'
import json, math, sys
ins = {t["name"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
ref = json.load(open(sys.argv[2]))
assert ref, "no reference figures"
for name, r in ref.items():
    t = ins[name]
    assert "rel_rmse" in t and "mse" in t, t
    for k in ("rel_rmse", "mse"):
        a, b = t[k], r[k]
        assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-12), (sys.argv[3], name, k, a, b)
for name, t in ins.items():
    if t["dtype"] in ("I8", "I32", "I64", "U8", "F64"):
        assert t.get("exact") is True, t
print("ok")
EOF
	done
}

@test "flipping any one byte (40 positions in every section) makes inspect fail with a message" {
	local src="$CV_MODELS/odd/model.safetensors" d="$BATS_TEST_TMPDIR" v off sec n=0
	for v in q4k nf4; do
		cv_aprfs convert "$src" "$d/good.$v.apr"
		cv_aprfs inspect "$d/good.$v.apr" >/dev/null
		cv_flip plan "$d/good.$v.apr" 40 >"$d/plan"
		grep -q '^0	' "$d/plan"
		grep -q "^$(($(stat -c %s "$d/good.$v.apr") - 1))	" "$d/plan"
		for sec in header header-checksum header-reserved metadata index tensor-data \
			tensor-padding footer; do
			grep -q "	$sec\$" "$d/plan" || cv_fail "plan misses section $sec"
		done
		# a padding section is empty when its section ends on a 64-byte boundary
		grep -Eq "	(metadata|index)-padding\$" "$d/plan" || cv_fail "no head padding"
		while IFS=$'\t' read -r off sec; do
			cv_flip flip "$d/good.$v.apr" "$off" -o "$d/bad.apr" </dev/null
			run cv_aprfs inspect "$d/bad.apr" </dev/null
			[ "$status" -eq 1 ] || cv_fail "$v: byte $off ($sec) flipped: inspect exit $status"
			[[ "$output" == *"aprfs inspect: "*"bad.apr"* ]] ||
				cv_fail "$v: byte $off ($sec): no message: $output"
			run cv_aprfs inspect --json "$d/bad.apr" </dev/null
			[ "$status" -eq 1 ] || cv_fail "$v: byte $off ($sec): inspect --json exit $status"
			n=$((n + 1))
		done <"$d/plan"
	done
	[ $n -ge 80 ]
}

@test "inspect --json of a corrupt file says valid false with the error" {
	local f="$BATS_TEST_TMPDIR/x.q8.apr" st=0
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	cv_flip flip "$f" 5000
	cv_aprfs inspect --json "$f" >"$BATS_TEST_TMPDIR/j.json" 2>"$BATS_TEST_TMPDIR/err" || st=$?
	[ "$st" -eq 1 ]
	grep -q "^aprfs inspect: .*CRC" "$BATS_TEST_TMPDIR/err"
	timeout 120 python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["valid"] is False and "CRC" in d["error"], d' "$BATS_TEST_TMPDIR/j.json"
}

@test "a flipped header byte is reported as a header checksum problem" {
	local f="$BATS_TEST_TMPDIR/x.q4.apr" off
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	# bytes 0..3 are the magic (reported as such); every other header byte is covered
	for off in 4 5 6 7 8 11 12 19 20 23 24 31 32 39 40 41 42 43 44 50 63; do
		cv_flip flip "$f" "$off" -o "$BATS_TEST_TMPDIR/bad.apr"
		run cv_aprfs inspect "$BATS_TEST_TMPDIR/bad.apr"
		[ "$status" -eq 1 ] || cv_fail "header byte $off: exit $status"
		[[ "$output" == *"header checksum"* ]] || cv_fail "header byte $off: $output"
	done
	cv_flip flip "$f" 0 -o "$BATS_TEST_TMPDIR/bad.apr"
	run cv_aprfs inspect "$BATS_TEST_TMPDIR/bad.apr"
	[ "$status" -eq 1 ]
	[[ "$output" == *magic* ]]
}

@test "semantic corruption behind valid checksums is caught by inspect" {
	# the checksums are recomputed, so only the structural checks can notice
	local f="$BATS_TEST_TMPDIR/x.q4.apr" b="$BATS_TEST_TMPDIR/bad.apr" ms io dof off spec
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	ms=$(cv_meta_size "$f")
	read -r io dof < <(timeout 120 python3 -c 'import struct,sys; print(*struct.unpack_from("<QQ", open(sys.argv[1],"rb").read(40), 24))' "$f")
	# column-major flag, major version, metadata padding, index padding
	for spec in "7 0x08" "4 0x01" "$((64 + ms)) 0x20" "$((dof - 1)) 0x01"; do
		set -- $spec
		cv_flip flip "$f" "$1" --xor "$2" --fix-crc -o "$b"
		run cv_aprfs inspect "$b"
		[ "$status" -eq 1 ] || cv_fail "byte $1 ^ $2 with fixed CRCs accepted"
		run cv_reader "$b"
		[ "$status" -eq 1 ] || cv_fail "reader accepted byte $1 ^ $2"
	done
	# the padding after the first tensor's data
	off=$(timeout 60 python3 - "$f" "$CV_TOOLS" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
import apr_reader as R
data = open(sys.argv[1], "rb").read()
c = R.parse_container(data, [])
e = next(e for e in c["entries"] if e.size % 64)
print(c["data_offset"] + e.offset + e.size)
EOF
	)
	cv_flip flip "$f" "$off" --fix-crc -o "$b"
	run cv_aprfs inspect "$b"
	[ "$status" -eq 1 ]
	[[ "$output" == *"non-zero"* || "$output" == *padding* ]]
}

@test "inspect refuses a header aprfs never writes: version 2.1, LZ4/ZSTD/ENCRYPTED, unknown flags" {
	# checksums recomputed: the header is well-formed but claims what aprfs never writes
	# (compressed or encrypted payloads inspect cannot verify, a format revision it does not
	# know); the independent reader refuses each of them
	local f="$BATS_TEST_TMPDIR/x.q4.apr" b="$BATS_TEST_TMPDIR/bad.apr" spec bad=""
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	for spec in "5 0x01 version-2.1" "6 0x01 LZ4_COMPRESSED" "6 0x02 ZSTD" \
		"6 0x04 ENCRYPTED" "7 0x10 flag-0x1000"; do
		set -- $spec
		cv_flip flip "$f" "$1" --xor "$2" --fix-crc -o "$b"
		run cv_reader "$b"
		[ "$status" -eq 1 ] || cv_fail "the reader accepted $3"
		run cv_aprfs inspect "$b"
		[ "$status" -eq 1 ] || bad="$bad $3"
	done
	[ -z "$bad" ] || cv_fail "inspect accepted:$bad"
}

@test "inspect refuses every contract violation behind valid checksums (apr_mutate.py)" {
	local f="$BATS_TEST_TMPDIR/x.q4.apr" b="$BATS_TEST_TMPDIR/bad.apr" defect bad="" n=0
	cv_aprfs convert "$CV_MODELS/odd/model.safetensors" "$f"
	# the rebuild alone gives back the same bytes: the mutations change one thing only
	timeout 60 python3 "$CV_TOOLS/apr_mutate.py" "$f" none "$b"
	cmp "$f" "$b"
	for defect in $(timeout 120 python3 "$CV_TOOLS/apr_mutate.py" list); do
		timeout 60 python3 "$CV_TOOLS/apr_mutate.py" "$f" "$defect" "$b"
		run cv_reader "$b"
		[ "$status" -eq 1 ] || cv_fail "the reader accepted $defect"
		run cv_aprfs inspect "$b"
		if [ "$status" -ne 1 ]; then
			bad="$bad $defect"
		else
			[[ "$output" == *"aprfs inspect: "*bad.apr": "* ]] || cv_fail "$defect: $output"
		fi
		n=$((n + 1))
	done
	[ $n -ge 30 ]
	[ -z "$bad" ] || cv_fail "inspect accepted:$bad"
}
