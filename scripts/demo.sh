#!/usr/bin/env bash
# demo.sh - the README's main job: install what is missing, build, generate a sample model
# (single-file and sharded), mount it, list it, copy a quantized file out, inspect it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
make -j"$(nproc)" all >/dev/null

out=demo-out
mnt=$out/mnt
fusermount3 -u "$mnt" 2>/dev/null || true
rm -rf "$out"
mkdir -p "$out/models/llama-tiny" "$out/models/llama-sharded" "$mnt"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "generate sample checkpoints (bf16 safetensors, single and sharded; a Q4_K GGUF)"
build/tools/genmodel --layers 4 --hidden 512 --inter 1408 --vocab 4096 "$out/models/llama-tiny"
build/tools/genmodel --layers 2 --hidden 256 --inter 768 --vocab 2048 --shards 2 \
	"$out/models/llama-sharded"
mkdir -p "$out/models/gguf"
build/tools/gengguf --type Q4_K --layers 2 --hidden 512 --inter 1024 --vocab 2048 \
	--name llama-q4k "$out/models/gguf"
ls -l "$out/models/llama-tiny" "$out/models/llama-sharded" "$out/models/gguf"

step "mount: build/aprfs $out/models $mnt"
build/aprfs "$out/models" "$mnt"
trap 'fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true' EXIT
timeout 10 bash -c "until mountpoint -q '$mnt'; do sleep 0.1; done"

step "list the mount (sizes come from shapes; nothing is quantized yet)"
ls -l "$mnt/llama-tiny" "$mnt/llama-sharded" "$mnt/gguf"
cat "$mnt/.aprfs/stats.json"; echo

step "copy three files out (quantized on the fly; the GGUF's Q4_K blocks pass through)"
time cp "$mnt/llama-tiny/model.q8.apr" "$mnt/llama-sharded/model.q4k.apr" \
	"$mnt/gguf/llama-q4k.q4k.apr" "$out/"
build/aprfs inspect "$out/llama-q4k.q4k.apr" | sed -n 1,12p

step "inspect the copy, with error statistics against the source"
build/aprfs inspect --stats "$out/models/llama-tiny/model.safetensors" "$out/model.q8.apr"

step "the mount's bytes equal aprfs convert's"
build/aprfs convert --root "$out/models" "$out/models/llama-tiny/model.safetensors" \
	"$out/converted.q8.apr"
cmp "$out/model.q8.apr" "$out/converted.q8.apr" && echo "identical"

step "statistics after the copies"
cat "$mnt/.aprfs/stats.json"; echo
