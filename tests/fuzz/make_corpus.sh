#!/usr/bin/env bash
# make_corpus.sh - regenerates the committed seed corpora tests/fuzz/corpus/NAME/ from the
# project's own tools (genmodel, genimatrix, aprfs convert, special_st.py, apr_mutate.py): a
# few valid and nearly-valid inputs per harness, a few KiB each. Needs `make all` first.
set -euo pipefail
cd "$(dirname "$0")/../.."

B=${APRFS_BUILD:-build}
C=tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export PYTHONDONTWRITEBYTECODE=1
gen() { "$B/tools/genmodel" "$@" >/dev/null; }
tiny=(--layers 1 --hidden 16 --inter 32 --vocab 32 --heads 2 --kv-heads 1)

rm -rf "$C"
mkdir -p "$C"/{st_header,st_index,config,apr_reader,conf,gguf,imatrix}

gen "${tiny[@]}" "$T/tiny"
gen "${tiny[@]}" --dtype f16 --seed 2 --no-config "$T/tiny16"
gen "${tiny[@]}" --shards 3 --seed 3 "$T/sharded"
gen --hostile "$T/hostile"
python3 tests/tools/special_st.py "$T/special" >/dev/null

# st_header: 8 bytes of data-section length, then the header (what the harness reads).
st_seed() { # FILE NAME
	python3 - "$1" "$C/st_header/$2" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
if len(b) < 8:
    sys.exit(0)
n = struct.unpack_from("<Q", b)[0]
n = min(n, len(b) - 8)
if n > 16000:
    sys.exit(0)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b) - 8 - n) + b[8:8 + n])
PY
}
st_seed "$T/tiny/model.safetensors" tiny
st_seed "$T/tiny16/model.safetensors" tiny16
st_seed "$T/sharded/model-00002-of-00003.safetensors" shard2
for f in escaped rawnames longname name256 special16 nonfinite; do
	st_seed "$T/special/$f.safetensors" "special-$f"
done
for f in duplicate-name offsets-overlap size-mismatch shape-overflow surrogate-name \
	too-many-dims offsets-reversed metadata-not-strings nul-in-name; do
	st_seed "$T/hostile/$f.safetensors" "hostile-$f"
done

# st_index: the sharded index, and the hostile ones.
cp "$T/sharded/model.safetensors.index.json" "$C/st_index/sharded.json"
for f in evil-path missing-shard missing-tensor unlisted-tensor; do
	cp "$T/hostile/$f.safetensors.index.json" "$C/st_index/hostile-$f.json"
done
printf '{"metadata":null,"weight_map":{}}' >"$C/st_index/empty.json"
printf '{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}' >"$C/st_index/dup.json"

# config: genmodel's config.json, the hostile one, and near misses of the first.
cp "$T/tiny/config.json" "$C/config/tiny.json"
cp "$T/hostile/bad-config/config.json" "$C/config/hostile.json"
sed 's/"rope_theta": *[^,}]*/"rope_theta": 1e39/' "$T/tiny/config.json" >"$C/config/rope-1e39.json"
sed 's/"hidden_size"/"n_embd"/; s/"num_hidden_layers"/"n_layer"/' "$T/tiny/config.json" \
	>"$C/config/aliases.json"
sed 's/"vocab_size": *[0-9]*/"vocab_size": null/' "$T/tiny/config.json" >"$C/config/null.json"
printf '{"architectures":[],"model_type":"caf\\u00e9","rms_norm_eps":1e-45}' \
	>"$C/config/small.json"

# apr_reader: every variant of a small checkpoint with one quantizable tensor, a few of
# them with one contract violation each.
python3 - "$T/apr/model.safetensors" <<'PY'
import os, struct, sys
sys.path.insert(0, "tests/tools")
import special_st as S
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
w = S.f32s([((i * 37) % 101 - 50) / 8.0 for i in range(16 * 256)])
S.write_st(sys.argv[1], [
    ("model.embed_tokens.weight", "F32", [16, 256], w),
    ("model.norm.weight", "F32", [16], S.f32s([1.0 + i / 16 for i in range(16)])),
    ("position_ids", "I64", [1, 4], struct.pack("<4q", 0, 1, 2, 3)),
])
PY
cp "$T/tiny/config.json" "$T/apr/"
for v in $("$B/aprfs" variants --names | grep -vx f32); do
	"$B/aprfs" convert --quiet "$T/apr/model.safetensors" "$C/apr_reader/model.$v.apr"
done
"$B/aprfs" convert --quiet "$T/tiny/model.safetensors" "$C/apr_reader/tiny.f32.apr"
for d in index-unsorted index-offset-unaligned meta-rope-theta-beyond-f32 data-gap \
	meta-block-size-float header-version-3; do
	python3 tests/tools/apr_mutate.py "$C/apr_reader/model.q4.apr" "$d" \
		"$C/apr_reader/bad-$d.apr" >/dev/null
done

# conf: the documented example file, and -o lists (NULs and commas separate items).
cp aprfs.conf.example "$C/conf/example.conf"
printf 'variants = q8:q4k\ncache_mb = 64 # comment\nfuse_options = allow_other\nthreads=2\n' \
	>"$C/conf/short.conf"
printf 'variants=q8,q4,cache_mb=64\0readahead_mb=0,ro,log_level=debug' >"$C/conf/opts"
printf 'nf4_block=63\0variants=all,nf4' >"$C/conf/opts-bad"

# gguf: small files of every type and value type (gengguf), and a few hostile ones.
gg() { "$B/tools/gengguf" --layers 1 --hidden 256 --inter 256 --vocab 8 "$@" >/dev/null; }
mkdir -p "$T/gguf"
gg --type Q4_K --name q4k "$T/gguf"
gg --type Q8_0 --gguf-version 2 --all-kv-types --name v2kv "$T/gguf"
gg --type Q2_K --alignment 64 --write-alignment --name a64 "$T/gguf"
gg --type F16 --odd --name odd "$T/gguf"
for f in "$T"/gguf/*.gguf; do
	# the header and tensor infos (the data is cut: a near miss); hostile-ok.gguf is whole
	head -c 8192 "$f" >"$C/gguf/$(basename "$f")"
done
python3 tests/tools/gguf_hostile.py "$T/gguf-hostile" >/dev/null
for f in ok tensor-count-huge array-length-overflow arrays-too-deep elements-overflow \
	offset-misaligned overlap duplicate-name unsupported-type bad-utf8-name; do
	cp "$T/gguf-hostile/$f.gguf" "$C/gguf/hostile-$f.gguf"
done

# imatrix: matrices of the tiny model in both formats (genimatrix), and broken ones.
im_seed() { # NAME [genimatrix options]
	local n=$1
	shift
	"$B/tools/genimatrix" "$@" "$T/tiny/model.safetensors" "$C/imatrix/$n" >/dev/null
}
im_seed ok.gguf
im_seed ok.dat --dat
im_seed nan.gguf --break nan
im_seed zero-count.dat --dat --break zero-count
im_seed columns.gguf --break columns
im_seed truncated.dat --dat --break truncate

du -sh "$C"/*
