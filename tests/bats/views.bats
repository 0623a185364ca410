#!/usr/bin/env bats
# views.bats - named views from the configuration on real mounts: view.NAME = BASE
# [REGEX=VARIANT]... appears as X.NAME.apr with the first matching rule's dtype per tensor;
# each bad definition (unknown variant, invalid regex, a 1-D tensor put in a block codec)
# is refused alone with one message naming its key, and every other view is served.

load helpers

READER="$ROOT/tests/tools/apr_reader.py"
export PYTHONDONTWRITEBYTECODE=1

setup() {
	work_setup
	"$GENMODEL" --layers 2 --hidden 256 --inter 512 --vocab 512 "$SRCD/m" >/dev/null
	cat >"$W/aprfs.conf" <<-'CONF'
		view.mix = q4k self_attn.v_proj=q6k down_proj=q8 (down|lm_head)=q4 lm_head=q6k
		view.mkm = q4km layers\.0\.=q8
		view.unknown = q4k attn=q5k
		view.regex = q4k attn[=q6k
		view.onedim = q4k norm=q4k
	CONF
}

teardown() {
	cleanup_mounts
}

# dtype FILE.apr NAME
dtype() {
	"$APRFS" inspect --json "$1" | jq -r --arg n "$2" '.tensors[] | select(.name == $n) | .dtype'
}

@test "a named view holds the first matching rule's dtype per tensor, the base elsewhere" {
	mount_fg "$SRCD" "$MNT" --config "$W/aprfs.conf"
	timeout 120 cp "$MNT/m/model.mix.apr" "$W/mix.apr"
	timeout 300 python3 "$READER" "$W/mix.apr"
	[ "$(dtype "$W/mix.apr" model.layers.1.self_attn.v_proj.weight)" = Q6_K ]
	[ "$(dtype "$W/mix.apr" model.layers.1.mlp.down_proj.weight)" = APR_Q8 ]
	# the first match wins: lm_head takes rule 3 (q4), not rule 4
	[ "$(dtype "$W/mix.apr" lm_head.weight)" = APR_Q4 ]
	[ "$(dtype "$W/mix.apr" model.layers.1.mlp.up_proj.weight)" = Q4_K ]
	[ "$(dtype "$W/mix.apr" model.norm.weight)" = F32 ]
	[ "$("$APRFS" inspect --json "$W/mix.apr" | jq -r .metadata.aprfs_view.name)" = mix ]
	# a mix as base: q4km's choice where no rule matches
	timeout 120 cp "$MNT/m/model.mkm.apr" "$W/mkm.apr"
	[ "$(dtype "$W/mkm.apr" model.layers.0.self_attn.v_proj.weight)" = APR_Q8 ]
	[ "$(dtype "$W/mkm.apr" model.layers.1.self_attn.v_proj.weight)" = Q6_K ]
	[ "$(dtype "$W/mkm.apr" model.layers.1.self_attn.q_proj.weight)" = Q4_K ]
	# the q4k view of the same checkpoint is untouched by the views
	timeout 120 cp "$MNT/m/model.q4k.apr" "$W/q4k.apr"
	convert "$SRCD" m/model.safetensors q4k "$W/ref.apr"
	cmp "$W/ref.apr" "$W/q4k.apr"
}

@test "each bad view is refused alone, naming its key; every other view is served" {
	mount_fg "$SRCD" "$MNT" --config "$W/aprfs.conf"
	ls "$MNT/m" >"$W/ls"
	grep -qx model.mix.apr "$W/ls"
	grep -qx model.mkm.apr "$W/ls"
	grep -qx model.q4km.apr "$W/ls"
	run ! grep -q 'model\.\(unknown\|regex\|onedim\)\.apr' "$W/ls"
	[ "$(grep -c '\.apr$' "$W/ls")" -eq $(($(wc -w <<<"$VARIANTS") + 2)) ]
	grep -q "view.unknown: rule 'attn=q5k': unknown variant" "$LOG"
	grep -q "view.regex: rule 'attn\[': invalid regex" "$LOG"
	grep -q "view.onedim: a rule puts the 1-D tensor '.*norm.weight' .* in the block codec q4k" \
		"$LOG"
	[ "$(grep -c 'view\.onedim' "$LOG")" -eq 1 ]
	kill -0 "$(daemon_pid "$APRFS_PID")"
}
