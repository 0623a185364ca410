#!/usr/bin/env bats
# q4km.bats - the q4km view (llama.cpp Q4_K_M's choice of Q4_K / Q6_K per tensor) on real
# mounts: the Q6_K tensors are exactly the rule's for 16 and 32 layers, GGUF and Hugging
# Face names, tied embeddings, the layer count from the config or from the names; the
# independent reader accepts every file; the mount's bytes are convert's.

load helpers

GENGGUF="$APRFS_BUILD_DIR/tools/gengguf"
READER="$ROOT/tests/tools/apr_reader.py"
export PYTHONDONTWRITEBYTECODE=1

setup_file() {
	export S="$BATS_FILE_TMPDIR/src"
	mkdir -p "$S"
	"$GENMODEL" --layers 16 --hidden 256 --inter 256 --vocab 256 --heads 4 --kv-heads 2 \
		--dtype f16 "$S/hf16" >/dev/null
	"$GENMODEL" --layers 16 --hidden 256 --inter 256 --vocab 256 --heads 4 --kv-heads 2 \
		--tied --no-config --seed 2 "$S/hf16tied" >/dev/null
	timeout 120 "$GENGGUF" --layers 32 --hidden 256 --inter 256 --vocab 256 --heads 4 \
		--kv-heads 2 --type F16 "$S/gguf32" >/dev/null
	timeout 120 "$GENGGUF" --layers 32 --hidden 256 --inter 256 --vocab 256 --heads 4 \
		--kv-heads 2 --tied --type Q8_0 --seed 3 "$S/gguf32tied" >/dev/null
}

setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

# q6k_names FILE.apr: the names of its Q6_K tensors, sorted, one a line.
q6k_names() {
	"$APRFS" inspect --json "$1" | jq -r '.tensors[] | select(.dtype == "Q6_K") | .name' |
		LC_ALL=C sort
}

# expected NAMING LAYERS TIED: the rule's Q6_K tensors, written out by hand.
expected() {
	local i
	case $2 in
	16) layers="0 1 4 7 10 13 14 15" ;;
	32) layers="0 1 2 3 6 9 12 15 18 21 24 27 28 29 30 31" ;;
	esac
	for i in $layers; do
		if [ "$1" = hf ]; then
			echo "model.layers.$i.mlp.down_proj.weight"
			echo "model.layers.$i.self_attn.v_proj.weight"
		else
			echo "blk.$i.attn_v.weight"
			echo "blk.$i.ffn_down.weight"
		fi
	done
	case $1$3 in
	hf0) echo lm_head.weight ;;
	hf1) echo model.embed_tokens.weight ;;
	gguf0) echo output.weight ;;
	gguf1) echo token_embd.weight ;;
	esac
}

@test "the mount's q4km views hold Q6_K exactly where llama.cpp's Q4_K_M does" {
	mount_fg "$S" "$MNT"
	local d naming layers tied
	for d in hf16:hf:16:0 hf16tied:hf:16:1 gguf32:gguf:32:0 gguf32tied:gguf:32:1; do
		IFS=: read -r dir naming layers tied <<<"$d"
		f=$(ls "$MNT/$dir"/*.q4km.apr)
		timeout 120 cp "$f" "$W/$dir.apr"
		diff <(q6k_names "$W/$dir.apr") <(expected "$naming" "$layers" "$tied" | LC_ALL=C sort)
		# every other quantized tensor is Q4_K, as in the q4k view
		"$APRFS" inspect --json "$W/$dir.apr" |
			jq -e '[.tensors[] | select(.dtype != "Q6_K" and .dtype != "Q4_K" and
				.dtype != "F32")] | length == 0'
		[ "$(jq -r .quantization.quant_type <<<"$("$APRFS" inspect --json "$W/$dir.apr" |
			jq .metadata)")" = q4km ]
	done
	# bytes as convert writes them
	convert "$S" hf16/model.safetensors q4km "$W/ref.apr"
	cmp "$W/ref.apr" "$W/hf16.apr"
	# inspect lists the mix: 8 layers x (v_proj, down_proj) + lm_head in Q6_K
	"$APRFS" inspect "$W/hf16.apr" | grep -q '^dtype mix: .*Q6_K 17 tensors [0-9]* bytes'
	"$APRFS" inspect "$W/hf16.apr" | grep -q '^imatrix:  none$'
	[ "$("$APRFS" inspect --json "$W/hf16.apr" |
		jq '[.dtype_mix[] | select(.dtype == "Q6_K")][0].tensors')" -eq 17 ]
}

@test "the independent reader accepts q4km files and re-derives their dtype per tensor" {
	"$APRFS" convert --quiet "$S/hf16/model.safetensors" "$W/a.q4km.apr"
	"$APRFS" convert --quiet "$S/hf16tied/model.safetensors" "$W/b.q4km.apr"
	timeout 300 python3 "$READER" "$W/a.q4km.apr" --source "$S/hf16/model.safetensors" \
		--tolerance-check
	timeout 300 python3 "$READER" "$W/b.q4km.apr" --source "$S/hf16tied/model.safetensors" \
		--tolerance-check
}

@test "q4km is q4k where the rule keeps Q4_K: the same bytes for those tensors" {
	"$APRFS" convert --quiet "$S/hf16/model.safetensors" "$W/m.q4k.apr"
	"$APRFS" convert --quiet "$S/hf16/model.safetensors" "$W/m.q4km.apr"
	timeout 60 python3 - "$W/m.q4k.apr" "$W/m.q4km.apr" "$APRFS" <<-'PY'
		import json, subprocess, sys
		def table(p):
		    out = subprocess.run([sys.argv[3], "inspect", "--json", p],
		                         capture_output=True, check=True).stdout
		    return {t["name"]: t for t in json.loads(out)["tensors"]}, open(p, "rb").read()
		(a, ab), (b, bb) = table(sys.argv[1]), table(sys.argv[2])
		same = 0
		for n, t in a.items():
		    u = b[n]
		    if u["dtype"] == t["dtype"]:
		        assert ab[t["offset"]:t["offset"] + t["size"]] == \
		            bb[u["offset"]:u["offset"] + u["size"]], n
		        same += 1
		assert same > 100, same
	PY
}
