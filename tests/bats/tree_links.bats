#!/usr/bin/env bats
# tree_links.bats - symbolic links on real mounts: links to directories are shown as links
# (relative targets), so walking the mount ends as walking the source does; links to files
# inside the root are followed; the Hugging Face hub cache layout (snapshots of links into
# blobs/) gives views with the snapshot's config.json and the repository id as name.

load helpers


setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

# meta FILE KEY: one metadata value of an APR file, as JSON.
meta() {
	"$APRFS" inspect --json "$1" | python3 -c \
		'import json, sys; print(json.dumps(json.load(sys.stdin)["metadata"].get(sys.argv[1])))' "$2"
}

@test "directory links are links: find and du end, targets are relative, file links are followed" {
	"$GENMODEL" $SMALL "$SRCD/a" >/dev/null
	mkdir -p "$SRCD/b/c"
	ln -s ../a "$SRCD/b/to_a"                   # relative, inside
	ln -s "$SRCD/a" "$SRCD/b/c/abs_to_a"        # absolute, inside
	ln -s . "$SRCD/b/self"                      # a loop for anyone who follows it
	ln -s .. "$SRCD/b/c/up"
	ln -s "$SRCD" "$SRCD/root_link"
	ln -s l2 "$SRCD/l1" && ln -s l1 "$SRCD/l2" # a link loop: hidden, logged
	ln -s ../a/model.safetensors "$SRCD/b/linked.safetensors" # a file link: followed
	mount_fg "$SRCD" "$MNT"

	run timeout 60 find "$MNT"
	[ "$status" -eq 0 ]
	run timeout 60 du -s "$MNT"
	[ "$status" -eq 0 ]
	[ "$(readlink "$MNT/b/to_a")" = "../a" ]
	[ "$(readlink "$MNT/b/c/abs_to_a")" = "../../a" ]
	[ "$(readlink "$MNT/b/self")" = "." ]
	[ "$(readlink "$MNT/b/c/up")" = ".." ]
	[ "$(readlink "$MNT/root_link")" = "." ]
	[ "$(cd "$MNT" && find . -type l | sort | tr '\n' ' ')" = \
		"./b/c/abs_to_a ./b/c/up ./b/self ./b/to_a ./root_link " ]
	# the same walk as the source's, virtual files and the hidden loop aside
	[ "$(cd "$SRCD" && find . ! -name 'l[12]' | sort)" = \
		"$(cd "$MNT" && find . ! -name '*.apr' ! -path './.aprfs*' | sort)" ]
	# through a link the kernel follows to the mount's own directory
	cmp "$MNT/b/to_a/model.q8.apr" "$MNT/a/model.q8.apr"
	[ ! -e "$MNT/l1" ] && [ ! -e "$MNT/l2" ]
	grep -F "l1: symbolic link loop" "$LOG"
	# a file link is a regular file, and a checkpoint
	[ -f "$MNT/b/linked.safetensors" ] && [ ! -L "$MNT/b/linked.safetensors" ]
	convert "$SRCD" b/linked.safetensors q8 "$W/linked.q8.apr"
	cmp "$MNT/b/linked.q8.apr" "$W/linked.q8.apr"
	kill -0 "$(daemon_pid "$APRFS_PID")"
}

# hub_repo HUB ORG NAME REV [genmodel options]: a snapshot of ORG/NAME at revision REV in the
# layout huggingface_hub writes: blobs named by content hash, snapshot files linking to them.
hub_repo() {
	local hub=$1 org=$2 name=$3 rev=$4 repo f sha
	shift 4
	repo="$hub/models--$org--$name"
	mkdir -p "$repo/blobs" "$repo/snapshots/$rev" "$repo/refs"
	"$GENMODEL" "$@" "$W/gen-$rev" >/dev/null
	for f in "$W/gen-$rev"/*; do
		sha=$(sha256sum "$f" | cut -c1-64)
		mv "$f" "$repo/blobs/$sha"
		ln -s "../../blobs/$sha" "$repo/snapshots/$rev/${f##*/}"
	done
	echo "$rev" >"$repo/refs/main"
}

@test "a Hugging Face hub cache: views with the snapshot's config.json and the repository id" {
	local hub="$SRCD" v q
	hub_repo "$hub" org tiny rev1 $SMALL
	hub_repo "$hub" org tiny rev2 $SMALL --seed 9 --layers 2
	hub_repo "$hub" acme sharded r0 $SMALL --shards 2
	# the same checkpoints in plain directories, for comparison
	mkdir -p "$W/plain"
	"$GENMODEL" $SMALL "$W/plain/tiny" >/dev/null
	"$GENMODEL" $SMALL --shards 2 "$W/plain/sharded" >/dev/null
	mount_fg "$hub" "$MNT"

	local snap1="$MNT/models--org--tiny/snapshots/rev1"
	local snap3="$MNT/models--acme--sharded/snapshots/r0"
	for v in $VARIANTS; do
		[ -f "$snap1/model.$v.apr" ] && [ -f "$snap3/model.$v.apr" ]
		[ -f "$MNT/models--org--tiny/snapshots/rev2/model.$v.apr" ]
	done
	# blobs have no checkpoint names: pass-through files only, no views
	[ -z "$(ls "$MNT/models--org--tiny/blobs" | grep '\.apr$')" ]
	[ "$(ls "$MNT/models--org--tiny/blobs" | wc -l)" -eq "$(ls "$hub/models--org--tiny/blobs" | wc -l)" ]
	[ "$(cat "$MNT/models--org--tiny/refs/main")" = rev2 ]

	[ "$(meta "$snap1/model.q8.apr" name)" = '"org/tiny"' ]
	[ "$(meta "$snap3/model.q8.apr" name)" = '"acme/sharded"' ]
	[ "$(meta "$snap1/model.q8.apr" source)" = \
		'"models--org--tiny/snapshots/rev1/model.safetensors"' ]
	[ "$(meta "$snap1/model.q8.apr" architecture)" = '"llama"' ]
	[ "$(meta "$snap1/model.q8.apr" hidden_size)" = 64 ]
	[ "$(meta "$MNT/models--org--tiny/snapshots/rev2/model.q8.apr" num_layers)" = 2 ]

	# the metadata equals a plain directory's, name and source aside; so do the tensors
	for q in "$snap1/model.q4k.apr:$W/plain/tiny/model.safetensors" \
		"$snap3/model.q4k.apr:$W/plain/sharded/model.safetensors.index.json"; do
		"$APRFS" convert --quiet "${q#*:}" "$W/plain.q4k.apr"
		python3 - "${q%%:*}" "$W/plain.q4k.apr" "$APRFS" <<-'PY'
			import json, subprocess, sys
			def info(p):
			    out = subprocess.run([sys.argv[3], "inspect", "--json", p],
			                         capture_output=True, check=True).stdout
			    return json.loads(out)
			a, b = info(sys.argv[1]), info(sys.argv[2])
			ma, mb = a["metadata"], b["metadata"]
			for k in ("name", "source"):
			    ma.pop(k), mb.pop(k)
			assert ma == mb, (ma, mb)
			strip = lambda t: [{k: v for k, v in e.items() if k != "offset"} for e in t]
			assert strip(a["tensors"]) == strip(b["tensors"])
		PY
	done

	# convert given the link path: the same bytes as the mount, name included
	"$APRFS" convert --quiet --root "$hub" \
		"$hub/models--org--tiny/snapshots/rev1/model.safetensors" "$W/c.q8.apr"
	cmp "$W/c.q8.apr" "$snap1/model.q8.apr"
	"$APRFS" convert --quiet --root "$hub" \
		"$hub/models--acme--sharded/snapshots/r0/model.safetensors.index.json" "$W/s.q8.apr"
	cmp "$W/s.q8.apr" "$snap3/model.q8.apr"
	"$APRFS" convert --quiet "$hub/models--org--tiny/snapshots/rev1/model.safetensors" \
		"$W/n.q8.apr"
	[ "$(meta "$W/n.q8.apr" name)" = '"org/tiny"' ]
}
