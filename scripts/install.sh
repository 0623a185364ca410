#!/usr/bin/env bash
# install.sh - `make install` and `make uninstall`: the files aprfs installs, and the
# directories it had to create for them, listed in DOCDIR/installed-dirs so that uninstall
# removes exactly those (once empty) and leaves the prefix as it found it.
# Usage: install.sh install|uninstall DESTDIR PREFIX BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

action=$1 destdir=$2 prefix=$3 b=$4
root=$destdir$prefix
docdir=$root/share/doc/aprfs
manifest=$docdir/installed-dirs
# source mode destination (relative to PREFIX)
files=(
	"$b/aprfs 755 bin/aprfs"
	"$b/aprfs.1 644 share/man/man1/aprfs.1"
	"aprfs.conf.example 644 share/doc/aprfs/aprfs.conf.example"
	"systemd/aprfs.env.example 644 share/doc/aprfs/aprfs.env.example"
	"- 644 lib/systemd/system/aprfs@.service"
)

# missing_dirs DIR: DIR and each parent that does not exist yet, deepest first.
missing_dirs() {
	local d=$1
	while [ -n "$d" ] && [ "$d" != / ] && [ ! -e "$d" ]; do
		echo "$d"
		d=$(dirname "$d")
	done
}

do_install() {
	local f src mode dst created=()
	for f in "${files[@]}"; do
		read -r src mode dst <<<"$f"
		mapfile -t -O "${#created[@]}" created < <(missing_dirs "$(dirname "$root/$dst")")
	done
	mapfile -t -O "${#created[@]}" created < <(missing_dirs "$docdir")
	for f in "${files[@]}"; do
		read -r src mode dst <<<"$f"
		mkdir -p "$(dirname "$root/$dst")"
		if [ "$src" = - ]; then # the unit, with PREFIX substituted
			sed "s|@PREFIX@|$prefix|g" systemd/aprfs@.service.in >"$root/$dst"
			chmod "$mode" "$root/$dst"
		else
			install -m "$mode" "$src" "$root/$dst"
		fi
	done
	# a second install keeps what the first one created
	{ [ -f "$manifest" ] && cat "$manifest"; printf '%s\n' "${created[@]}"; } |
		grep -v '^$' | sort -u >"$manifest.new" || true
	mv "$manifest.new" "$manifest"
}

do_uninstall() {
	local f src mode dst d
	for f in "${files[@]}"; do
		read -r src mode dst <<<"$f"
		rm -f "$root/$dst"
	done
	[ -f "$manifest" ] || return 0
	mapfile -t dirs < <(sort -r "$manifest") # children before their parents
	rm -f "$manifest"
	for d in "${dirs[@]}"; do
		rmdir "$d" 2>/dev/null || true # not empty: someone else's files are there now
	done
}

case $action in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: $0 install|uninstall DESTDIR PREFIX BUILD_DIR" >&2; exit 2 ;;
esac
