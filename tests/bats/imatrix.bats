#!/usr/bin/env bats
# imatrix.bats - importance matrices on real mounts: a matrix beside a checkpoint weights the
# q4k, q6k and q4km views (metadata names it by file and SHA-256; other views unchanged; the
# mount's bytes are convert's), legacy .dat gives the same tensors as .gguf, a replaced
# matrix gives a new view, and every broken matrix is logged by file and tensor while the
# views stay valid.

load helpers

GENIMATRIX="$APRFS_BUILD_DIR/tools/genimatrix"
READER="$ROOT/tests/tools/apr_reader.py"
export PYTHONDONTWRITEBYTECODE=1

setup_file() {
	export M="$BATS_FILE_TMPDIR/model"
	"$GENMODEL" --layers 2 --hidden 256 --inter 512 --vocab 512 "$M" >/dev/null
}

setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

# payloads FILE.apr: "name sha256" of every tensor's payload, sorted.
payloads() {
	"$APRFS" inspect --json "$1" | timeout 60 python3 -c '
import hashlib, json, sys
d = json.load(sys.stdin)
b = open(sys.argv[1], "rb").read()
for t in sorted(d["tensors"], key=lambda t: t["name"]):
    print(t["name"], hashlib.sha256(b[t["offset"]:t["offset"] + t["size"]]).hexdigest())
' "$1"
}

# meta FILE.apr JQ: a value of its metadata.
meta() {
	"$APRFS" inspect --json "$1" | jq -r ".metadata$2"
}

@test "a matrix beside the checkpoint weights q4k, q6k and q4km; the other views are as before" {
	cp -r "$M" "$SRCD/plain"
	cp -r "$M" "$SRCD/w"
	"$GENIMATRIX" "$M/model.safetensors" "$SRCD/w/imatrix.gguf" >/dev/null
	local sha n v
	sha=$(sha256sum "$SRCD/w/imatrix.gguf" | cut -d' ' -f1)
	mount_fg "$SRCD" "$MNT"
	[ -z "$(ls "$MNT/w" | grep '^imatrix\..*\.apr$')" ]
	for v in q4k q6k q4km q8 f16; do
		timeout 120 cp "$MNT/w/model.$v.apr" "$W/w.$v.apr"
		timeout 120 cp "$MNT/plain/model.$v.apr" "$W/p.$v.apr"
		convert "$SRCD" w/model.safetensors "$v" "$W/ref.$v.apr"
		cmp "$W/ref.$v.apr" "$W/w.$v.apr"
		timeout 300 python3 "$READER" "$W/w.$v.apr" --source "$SRCD/w/model.safetensors" \
			--tolerance-check
	done
	for v in q4k q6k q4km; do
		[ "$(meta "$W/w.$v.apr" .quantization.imatrix.file)" = imatrix.gguf ]
		[ "$(meta "$W/w.$v.apr" .quantization.imatrix.sha256)" = "$sha" ]
		# every 2-D weight of the model is k-quant encoded and has an entry
		[ "$(meta "$W/w.$v.apr" .quantization.imatrix.entries_used)" -eq 16 ]
		"$APRFS" inspect "$W/w.$v.apr" |
			grep -q "^imatrix:  imatrix.gguf sha256 $sha, 16 entries used$"
		run ! cmp -s <(payloads "$W/w.$v.apr") <(payloads "$W/p.$v.apr")
	done
	for v in q8 f16; do
		[ "$(meta "$W/w.$v.apr" .quantization.imatrix)" = null ]
		cmp <(payloads "$W/w.$v.apr") <(payloads "$W/p.$v.apr")
	done
}

@test "legacy imatrix.dat weights the tensors exactly as imatrix.gguf does" {
	cp -r "$M" "$SRCD/g"
	cp -r "$M" "$SRCD/d"
	"$GENIMATRIX" "$M/model.safetensors" "$SRCD/g/imatrix.gguf" >/dev/null
	"$GENIMATRIX" --dat "$M/model.safetensors" "$SRCD/d/model.imatrix.dat" >/dev/null
	mount_fg "$SRCD" "$MNT"
	timeout 120 cp "$MNT/g/model.q4km.apr" "$W/g.apr"
	timeout 120 cp "$MNT/d/model.q4km.apr" "$W/d.apr"
	[ "$(meta "$W/d.apr" .quantization.imatrix.file)" = model.imatrix.dat ]
	cmp <(payloads "$W/g.apr") <(payloads "$W/d.apr")
}

@test "replacing the matrix gives a view weighted by the new one" {
	cp -r "$M" "$SRCD/w"
	"$GENIMATRIX" "$M/model.safetensors" "$SRCD/w/imatrix.gguf" >/dev/null
	mount_fg "$SRCD" "$MNT"
	timeout 120 cp "$MNT/w/model.q4k.apr" "$W/a.apr"
	"$GENIMATRIX" --seed 7 "$M/model.safetensors" "$SRCD/w/imatrix.new" >/dev/null
	mv "$SRCD/w/imatrix.new" "$SRCD/w/imatrix.gguf"
	timeout 120 cp "$MNT/w/model.q4k.apr" "$W/b.apr"
	[ "$(meta "$W/b.apr" .quantization.imatrix.sha256)" = \
		"$(sha256sum "$SRCD/w/imatrix.gguf" | cut -d' ' -f1)" ]
	run ! cmp -s <(payloads "$W/a.apr") <(payloads "$W/b.apr")
	rm "$SRCD/w/imatrix.gguf"
	timeout 120 cp "$MNT/w/model.q4k.apr" "$W/c.apr"
	[ "$(meta "$W/c.apr" .quantization.imatrix)" = null ]
}

@test "a broken matrix: one log line naming file and tensor, that tensor unweighted, the view valid" {
	local k want
	for k in nan negative zero-count columns missing truncate; do
		mkdir -p "$SRCD/$k"
		cp "$M"/* "$SRCD/$k/"
		"$GENIMATRIX" --break "$k" "$M/model.safetensors" "$SRCD/$k/imatrix.gguf" >/dev/null
	done
	mount_fg "$SRCD" "$MNT" -o log_level=warn
	for k in nan negative zero-count columns missing truncate; do
		timeout 120 cp "$MNT/$k/model.q4k.apr" "$W/$k.apr"
		# the container always; the values against the source for two of them (slow)
		case $k in
		nan | truncate)
			timeout 300 python3 "$READER" "$W/$k.apr" \
				--source "$SRCD/$k/model.safetensors" --tolerance-check
			;;
		*) timeout 300 python3 "$READER" "$W/$k.apr" ;;
		esac
		# the broken entry is the checkpoint's first 2-D tensor; a truncated file names
		# the tensor whose data it cuts
		want="(token_embd|model.embed_tokens).weight'"
		[ "$k" = truncate ] && want="tensor '"
		grep -E -q "^aprfs: warn: $SRCD/$k/imatrix.gguf: .*$want" "$LOG" ||
			{ cat "$LOG"; false; }
	done
	kill -0 "$(daemon_pid "$APRFS_PID")"
}

@test "convert --imatrix: weighted by the named file; an unreadable one is an error" {
	"$GENIMATRIX" "$M/model.safetensors" "$W/my.imatrix" >/dev/null
	"$APRFS" convert --quiet --imatrix "$W/my.imatrix" "$M/model.safetensors" "$W/a.q4k.apr"
	[ "$(meta "$W/a.q4k.apr" .quantization.imatrix.file)" = my.imatrix ]
	run "$APRFS" convert --quiet --imatrix "$W/nope" "$M/model.safetensors" "$W/b.q4k.apr"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$W/nope"* ]]
	[ ! -e "$W/b.q4k.apr" ]
}

@test "-o imatrix=NAME: that file beside each checkpoint, instead of the default names" {
	cp -r "$M" "$SRCD/w"
	"$GENIMATRIX" "$M/model.safetensors" "$SRCD/w/llama.imx" >/dev/null
	"$GENIMATRIX" --seed 5 "$M/model.safetensors" "$SRCD/w/imatrix.gguf" >/dev/null
	mount_fg "$SRCD" "$MNT" -o imatrix=llama.imx
	timeout 120 cp "$MNT/w/model.q4k.apr" "$W/a.apr"
	[ "$(meta "$W/a.apr" .quantization.imatrix.file)" = llama.imx ]
	[ "$(meta "$W/a.apr" .quantization.imatrix.sha256)" = \
		"$(sha256sum "$SRCD/w/llama.imx" | cut -d' ' -f1)" ]
}
