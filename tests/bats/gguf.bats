#!/usr/bin/env bats
# gguf.bats - GGUF sources end to end: aprfs reads the tensor table the ecosystem's reader
# and an independent one read; the f32 view is GGML's dequantization byte for byte; Q4_K
# and Q6_K blocks pass into the q4k/q6k views unchanged; every view is valid and the
# mount's bytes are convert's; metadata from the GGUF keys; hostile files (the class of
# llama.cpp's GGUF parser CVEs) refused with "file: reason", the daemon alive.

load helpers

GENGGUF="$ROOT/build/tools/gengguf"
REFPY="$ROOT/tests/tools/gguf_ref.py"
JS="$ROOT/tests/tools/gguf-js/gguf_table.mjs"
export PYTHONDONTWRITEBYTECODE=1

setup_file() {
	export HOSTILE="$BATS_FILE_TMPDIR/hostile" G="$BATS_FILE_TMPDIR/g"
	timeout 60 python3 "$ROOT/tests/tools/gguf_hostile.py" "$HOSTILE"
	mkdir -p "$G"
	# every type aprfs reads, edge shapes, random blocks (NaN/inf scales)
	timeout 120 "$GENGGUF" --mixed --odd --vocab 300 --name mixed "$G" >/dev/null
	timeout 120 "$GENGGUF" --type Q4_K --layers 1 --vocab 512 --seed 2 --name q4k "$G" \
		>/dev/null
	timeout 120 "$GENGGUF" --type Q6_K --gguf-version 2 --layers 1 --vocab 512 --seed 3 \
		--alignment 64 --write-alignment --name q6k "$G" >/dev/null
	timeout 120 "$GENGGUF" --type Q8_0 --layers 1 --vocab 300 --seed 4 --all-kv-types \
		--name q8_0 "$G" >/dev/null
}

# apr_tensor FILE.apr NAME: the tensor's payload bytes, to stdout.
apr_tensor() {
	"$APRFS" inspect --json "$1" | timeout 60 python3 -c '
import json, sys
d = json.load(sys.stdin)
t = next(t for t in d["tensors"] if t["name"] == sys.argv[2])
f = open(sys.argv[1], "rb"); f.seek(t["offset"]); sys.stdout.buffer.write(f.read(t["size"]))
' "$1" "$2"
}

@test "aprfs reads the tensor table gguf_ref.py and @huggingface/gguf read" {
	local f
	for f in mixed q4k q6k q8_0; do
		"$ROOT/build/tools/srctable" "$G/$f.gguf" >"$W/aprfs.json"
		timeout 300 python3 "$REFPY" --table "$G/$f.gguf" >"$W/ref.json"
		timeout 60 node "$JS" "$G/$f.gguf" >"$W/js.json"
		cmp "$W/ref.json" "$W/js.json"
		timeout 60 python3 - "$W/aprfs.json" "$W/ref.json" <<-'PY'
			import json, sys
			mine = json.load(open(sys.argv[1]))
			ref = json.load(open(sys.argv[2]))["tensors"]
			key = lambda t: (t["name"], t["type"], t["ne"], t["abs_offset"])
			assert sorted(map(key, mine)) == sorted(map(key, ref)), "tables differ"
			assert len(mine) == len(ref) > 0
		PY
	done
}

setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

@test "every hostile GGUF is refused by convert with its file name and reason, leaving nothing" {
	local f want n=0 out
	while IFS=$'\t' read -r f want; do
		out="$W/out.q8.apr"
		run timeout 60 "$APRFS" convert --quiet "$HOSTILE/$f" "$out"
		[ "$status" -eq 1 ] || { echo "$f: exit $status: $output"; false; }
		[[ "$output" == "aprfs convert: $HOSTILE/$f: "*"$want"* ]] ||
			{ echo "$f: $output (want '$want')"; false; }
		[ ! -e "$out" ] && [ -z "$(ls "$W" | grep tmp)" ]
		n=$((n + 1))
	done <"$HOSTILE/EXPECTED"
	[ "$n" -ge 40 ]
	"$APRFS" convert --quiet "$HOSTILE/ok.gguf" "$W/ok.q8.apr"
	"$APRFS" inspect "$W/ok.q8.apr" >/dev/null
}

@test "hostile GGUF files are left out of the mount with one log line each; the valid one is served" {
	local f want pid
	mount_fg "$HOSTILE" "$MNT"
	pid=$(daemon_pid "$APRFS_PID")
	run timeout 60 ls -l "$MNT"
	[ "$status" -eq 0 ]
	timeout 60 ls -l "$MNT" >/dev/null
	while IFS=$'\t' read -r f want; do
		[ ! -e "$MNT/${f%.gguf}.q8.apr" ] || { echo "$f is served"; false; }
		[ "$(grep -cF "$f: " "$LOG")" -eq 1 ] || { grep -F "$f" "$LOG"; false; }
		grep -F "$f" "$LOG" | grep -qF "$want"
	done <"$HOSTILE/EXPECTED"
	"$APRFS" convert --quiet --root "$HOSTILE" "$HOSTILE/ok.gguf" "$W/ok.q8.apr"
	cmp "$MNT/ok.q8.apr" "$W/ok.q8.apr"
	kill -0 "$pid"
}

@test "the f32 view holds GGML's dequantization of every float tensor, byte for byte" {
	local f name type n=0
	for f in mixed q8_0; do
		"$APRFS" convert --quiet "$G/$f.gguf" "$W/$f.f32.apr"
		while read -r name type off size; do
			apr_tensor "$W/$f.f32.apr" "$name" >"$W/mine"
			if [ "$size" -gt 0 ]; then # non-float: passed through as it is
				tail -c +$((off + 1)) "$G/$f.gguf" | head -c "$size" >"$W/want"
			else
				timeout 300 python3 "$REFPY" --dequant "$name" "$G/$f.gguf" >"$W/want"
			fi
			cmp "$W/mine" "$W/want" || { echo "$f: $name ($type) differs"; false; }
			n=$((n + 1))
		done < <("$ROOT/build/tools/srctable" "$G/$f.gguf" | python3 -c '
import json, sys
size = {"I8": 1, "I32": 4, "I64": 8, "F64": 8}
for t in json.load(sys.stdin):
    n = 1
    for d in t["ne"]: n *= d
    print(t["name"], t["type"], t["abs_offset"], n * size.get(t["type"], 0))
')
	done
	[ "$n" -ge 30 ]
}

@test "Q4_K and Q6_K tensors are the very same blocks in the q4k and q6k views" {
	local f v type name off size n=0
	for f in q4k:q4k:Q4_K q6k:q6k:Q6_K mixed:q4k:Q4_K mixed:q6k:Q6_K; do
		IFS=: read -r f v type <<<"$f"
		"$APRFS" convert --quiet "$G/$f.gguf" "$W/$f.$v.apr"
		while read -r name off size; do
			apr_tensor "$W/$f.$v.apr" "$name" >"$W/mine"
			cmp "$W/mine" <(tail -c +$((off + 1)) "$G/$f.gguf" | head -c "$size") ||
				{ echo "$f.$v: $name is not the GGUF's blocks"; false; }
			n=$((n + 1))
		done < <("$ROOT/build/tools/srctable" "$G/$f.gguf" | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    ne = t["ne"]; n = 1
    for d in ne: n *= d
    if t["type"] == sys.argv[1] and len(ne) >= 2 and n >= 4096:
        print(t["name"], t["abs_offset"], n // 256 * (144 if sys.argv[1] == "Q4_K" else 210))
' "$type")
	done
	[ "$n" -ge 10 ]
}

@test "every view of every GGUF passes inspect and the Python reader; the mount equals convert" {
	local f v
	mount_fg "$G" "$MNT"
	for f in mixed q4k q6k q8_0; do
		for v in $VARIANTS; do
			"$APRFS" convert --quiet --root "$G" "$G/$f.gguf" "$W/c.$v.apr"
			"$APRFS" inspect "$W/c.$v.apr" >/dev/null
			timeout 300 python3 "$ROOT/tests/tools/apr_reader.py" --quiet "$W/c.$v.apr"
			cmp "$MNT/$f.$v.apr" "$W/c.$v.apr" || { echo "$f.$v: mount differs"; false; }
		done
	done
	kill -0 "$(daemon_pid "$APRFS_PID")"
}

@test "metadata comes from the GGUF keys" {
	"$APRFS" convert --quiet "$G/q4k.gguf" "$W/m.q8.apr"
	"$APRFS" inspect --json "$W/m.q8.apr" >"$W/m.json"
	timeout 300 python3 "$REFPY" "$G/q4k.gguf" >"$W/ref.json"
	timeout 60 python3 - "$W/m.json" "$W/ref.json" <<-'PY'
		import json, sys
		m = json.load(open(sys.argv[1]))["metadata"]
		ref = json.load(open(sys.argv[2]))
		get = lambda k: ref["kv"][k]["value"]
		arch = get("general.architecture")
		assert m["original_format"] == "gguf" and m["architecture"] == arch == "llama"
		assert m["model_type"] == arch and m["name"] == get("general.name")
		want = {"hidden_size": "embedding_length", "num_layers": "block_count",
		        "num_heads": "attention.head_count", "num_kv_heads": "attention.head_count_kv",
		        "max_position_embeddings": "context_length",
		        "intermediate_size": "feed_forward_length"}
		for mk, gk in want.items():
		    assert m[mk] == get(arch + "." + gk), (mk, m.get(mk))
		import struct
		f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
		assert f32(m["rope_theta"]) == f32(get(arch + ".rope.freq_base"))
		eps = get(arch + ".attention.layer_norm_rms_epsilon")
		assert f32(m["rms_norm_eps"]) == f32(eps), (m["rms_norm_eps"], eps)
		assert m["vocab_size"] == len(get("tokenizer.ggml.tokens"))
		assert "hf_architecture" not in m
	PY
}
