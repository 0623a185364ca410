#!/usr/bin/env bats
# install.bats - aprfs installed the way a Debian FUSE file system is: `make install` with
# PREFIX and DESTDIR, the man page (formatted without warnings), the systemd template unit
# (systemd-analyze verify), mounts through mount(8) and an fstab line, `make uninstall`.
# Everything is installed under the test's own directory (DESTDIR, or a directory bound over
# /usr/local in a private mount namespace): the host is never written.

load helpers

setup() {
	W="$BATS_TEST_TMPDIR"
	cd "$ROOT"
}

teardown() {
	cleanup_mounts
}

# tree DIR: every file and directory below DIR (and DIR), one per line, sorted.
tree() {
	find "$1" 2>/dev/null | sort
}

@test "make install into DESTDIR lays out exactly the expected files; uninstall leaves the tree as it was" {
	local d="$W/dest" before
	before=$(tree "$W")
	make -s install DESTDIR="$d" PREFIX=/usr >/dev/null
	[ "$(cd "$d" && find . -type f | sort | tr '\n' ' ')" = \
		"./usr/bin/aprfs ./usr/lib/systemd/system/aprfs@.service ./usr/share/doc/aprfs/aprfs.conf.example ./usr/share/doc/aprfs/aprfs.env.example ./usr/share/doc/aprfs/installed-dirs ./usr/share/man/man1/aprfs.1 " ]
	[ -x "$d/usr/bin/aprfs" ]
	grep -qx 'ExecStart=/usr/bin/aprfs -f $OPTIONS ${SOURCE_DIR} ${MOUNTPOINT}' \
		"$d/usr/lib/systemd/system/aprfs@.service"
	run ! grep -q '@PREFIX@' "$d/usr/lib/systemd/system/aprfs@.service"
	# installing twice changes nothing, and uninstall still removes what the first created
	make -s install DESTDIR="$d" PREFIX=/usr >/dev/null
	make -s uninstall DESTDIR="$d" PREFIX=/usr >/dev/null
	[ "$(tree "$W")" = "$before" ] || { diff <(echo "$before") <(tree "$W"); false; }
}

@test "the man page formats without warnings and covers every option, command and section" {
	run bash -c "LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l '$ROOT/build/aprfs.1' 2>&1 >'$W/page'"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "man warnings: $output"; false; }
	local w
	for w in variants= cache_mb= threads= nf4_block= readahead_mb= log_level= --config \
		fuse_options convert inspect --variant --nf4-block --root --threads --quiet \
		--json --stats SIGTERM SIGINT "EXIT STATUS" FILES stats.json APRFS_ISA EXAMPLES \
		fstab GGUF "SEE ALSO"; do
		grep -qF -- "$w" "$W/page" || { echo "the page does not mention $w"; false; }
	done
	# every option conf.c knows is in the page
	for w in $(grep -o '"[a-z_0-9]*",' lib/view/conf.c | tr -d '",' | sort -u); do
		grep -qF -- "$w" "$W/page" || { echo "option $w is not in the page"; false; }
	done
	"$APRFS" --help | grep -q "man aprfs"
}

@test "installed under /usr/local: systemd unit verifies, mount -t fuse.aprfs and an fstab line mount; uninstall restores it" {
	# The default prefix, for real, but in a private mount namespace where /usr/local is a
	# bind mount of a directory of the test's, laid out like a Debian /usr/local (some
	# directories, another package's file): the host's own /usr/local is never written.
	local p="$W/usrlocal" before host_before
	fuse_or_skip
	mkdir -p "$p/bin" "$p/share/man/man1" "$p/share/doc/other" "$p/lib"
	echo other >"$p/share/doc/other/README"
	before=$(tree "$p")
	host_before=$(tree /usr/local)
	"$GENMODEL" --layers 1 --hidden 64 --inter 128 --vocab 256 --heads 4 --kv-heads 2 \
		"$W/src" >/dev/null
	"$APRFS" convert --quiet --root "$W/src" "$W/src/model.safetensors" "$W/ref.q8.apr"
	mkdir -p "$W/mnt"
	run timeout 300 unshare --mount --propagation private \
		env P="$p" W="$W" APRFS_B="$APRFS_BUILD_DIR" bash -c "$(cat <<-'SH'
		set -euo pipefail
		mount --bind "$P" /usr/local
		mnt=$W/mnt
		bye() { fusermount3 -u "$mnt" 2>/dev/null || true; }
		trap bye EXIT
		make -s install PREFIX=/usr/local B="$APRFS_B" >/dev/null
		systemd-analyze verify /usr/local/lib/systemd/system/aprfs@models.service
		# mount(8) runs its helper with a clean environment: no build/ on PATH
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 60 \
			mount -t fuse.aprfs "$W/src" "$mnt" -o ro,variants=q8 3>&-
		grep -q " $mnt fuse.aprfs ro," /proc/mounts
		[ "$(ls "$mnt" | grep '\.apr$')" = model.q8.apr ]
		cmp "$mnt/model.q8.apr" "$W/ref.q8.apr"
		timeout 60 fusermount3 -u "$mnt"
		printf '%s %s fuse.aprfs ro,variants=q4k 0 0\n' "$W/src" "$mnt" >"$W/fstab"
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 60 mount -a -T "$W/fstab" 3>&-
		grep -q " $mnt fuse.aprfs ro," /proc/mounts
		[ "$(ls "$mnt" | grep '\.apr$')" = model.q4k.apr ]
		timeout 60 fusermount3 -u "$mnt"
		make -s uninstall PREFIX=/usr/local B="$APRFS_B" >/dev/null
		echo namespace-ok
	SH
	)"
	[ "$status" -eq 0 ] && [[ "$output" == *namespace-ok* ]] || { echo "$output"; false; }
	[ "$(tree "$p")" = "$before" ] || { diff <(echo "$before") <(tree "$p"); false; }
	[ "$(tree /usr/local)" = "$host_before" ]
}
