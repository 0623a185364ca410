#!/usr/bin/env bats
# install.bats - aprfs installed the way a Debian FUSE file system is: `make install` with
# PREFIX and DESTDIR, the man page (formatted without warnings), the systemd template unit
# (systemd-analyze verify), mounts through mount(8) and an fstab line, `make uninstall`.

load helpers

setup() {
	W="$BATS_TEST_TMPDIR"
	cd "$ROOT"
}

teardown() {
	cleanup_mounts
	if [ -n "${INSTALLED_PREFIX:-}" ]; then
		make -s uninstall PREFIX="$INSTALLED_PREFIX" >/dev/null 2>&1 || true
	fi
}

@test "make install into DESTDIR lays out exactly the expected files; uninstall removes them" {
	local d="$W/dest"
	make -s install DESTDIR="$d" PREFIX=/usr >/dev/null
	[ "$(cd "$d" && find . -type f | sort | tr '\n' ' ')" = \
		"./usr/bin/aprfs ./usr/lib/systemd/system/aprfs@.service ./usr/share/doc/aprfs/aprfs.conf.example ./usr/share/doc/aprfs/aprfs.env.example ./usr/share/man/man1/aprfs.1 " ]
	[ -x "$d/usr/bin/aprfs" ]
	grep -qx 'ExecStart=/usr/bin/aprfs -f $OPTIONS ${SOURCE_DIR} ${MOUNTPOINT}' \
		"$d/usr/lib/systemd/system/aprfs@.service"
	! grep -q '@PREFIX@' "$d/usr/lib/systemd/system/aprfs@.service"
	make -s uninstall DESTDIR="$d" PREFIX=/usr >/dev/null
	[ -z "$(find "$d" -type f)" ]
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

@test "installed under /usr/local: systemd unit verifies, mount -t fuse.aprfs and an fstab line mount" {
	local before after src="$W/src" mnt="$W/mnt"
	before=$(find /usr/local | sort)
	INSTALLED_PREFIX=/usr/local
	make -s install PREFIX=/usr/local >/dev/null
	run systemd-analyze verify /usr/local/lib/systemd/system/aprfs@models.service
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	"$GENMODEL" --layers 1 --hidden 64 --inter 128 --vocab 256 --heads 4 --kv-heads 2 \
		"$src" >/dev/null
	mkdir -p "$mnt"
	# mount(8) runs its helper with a clean environment: no build/ on PATH
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 20 \
		mount -t fuse.aprfs "$src" "$mnt" -o ro,variants=q8 3>&-
	MOUNTS+=("$mnt")
	grep -q " $mnt fuse.aprfs ro," /proc/mounts
	[ "$(ls "$mnt" | grep '\.apr$')" = model.q8.apr ]
	"$APRFS" convert --quiet --root "$src" "$src/model.safetensors" "$W/ref.q8.apr"
	cmp "$mnt/model.q8.apr" "$W/ref.q8.apr"
	timeout 10 fusermount3 -u "$mnt"
	printf '%s %s fuse.aprfs ro,variants=q4k 0 0\n' "$src" "$mnt" >"$W/fstab"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 20 mount -a -T "$W/fstab" 3>&-
	grep -q " $mnt fuse.aprfs ro," /proc/mounts
	[ "$(ls "$mnt" | grep '\.apr$')" = model.q4k.apr ]
	timeout 10 fusermount3 -u "$mnt"
	make -s uninstall PREFIX=/usr/local >/dev/null
	INSTALLED_PREFIX=
	after=$(find /usr/local | sort)
	[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); false; }
}
