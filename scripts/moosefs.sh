#!/usr/bin/env bash
# moosefs.sh - a throwaway MooseFS (master + one chunkserver + mfsmount) in a directory, for
# tests and benchmarks. Source it, then: moosefs_start DIR (sets MFS_MNT, MFS_DIR), and
# moosefs_stop DIR (idempotent: unmounts, stops both daemons, deletes the network namespace).
#
# The master and chunkserver run in a network namespace of their own (its loopback
# interface also gets a private 10.77.x.1/24 address: the chunkserver refuses 127.0.0.1, and servers may
# not listen on this host's real addresses); mfsmount joins only that network namespace
# (nsenter --net), so its FUSE mount is visible to every process of this host. Needs root,
# `ip netns` and Debian's moosefs-master, moosefs-chunkserver and moosefs-client.
# Run it directly to try it: scripts/moosefs.sh DIR (starts, prints the mount, stops on Enter).

# moosefs_missing: why MooseFS cannot run here ("" when it can).
moosefs_missing() {
	local t
	[ "$(id -u)" = 0 ] || { echo "needs root"; return; }
	for t in mfsmaster mfschunkserver mfsmount ip nsenter; do
		command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null 2>&1 ||
			{ echo "$t is not installed (apt-get install moosefs-master moosefs-chunkserver moosefs-client)"; return; }
	done
	[ -e /var/lib/mfs/metadata.mfs.empty ] || { echo "no /var/lib/mfs/metadata.mfs.empty"; return; }
	echo ""
}

# moosefs_start DIR: configs, data and the mount point under DIR; MFS_MNT is the mount.
# MFS_MOUNT_OPTS: extra mfsmount options (e.g. "-o mfsioretries=4": a read from a stopped
# chunkserver then fails after seconds instead of retrying for minutes).
moosefs_start() {
	local d="$1" n ip
	export PATH="$PATH:/usr/sbin:/sbin"
	mkdir -p "$d/master" "$d/cs" "$d/hdd" "$d/mnt"
	n=$(( ($$ + RANDOM) % 200 + 20 ))
	MFS_NS="aprfs-mfs-$$-$RANDOM"
	ip="10.77.$n.1"
	echo "$MFS_NS" >"$d/netns"
	ip netns add "$MFS_NS" || return 1
	ip -n "$MFS_NS" link set lo up
	ip -n "$MFS_NS" addr add "$ip/24" dev lo
	cp /var/lib/mfs/metadata.mfs.empty "$d/master/metadata.mfs"
	printf '*\t/\trw,alldirs,maproot=0:0,mingoal=1,maxgoal=1\n' >"$d/mfsexports.cfg"
	cat >"$d/mfsmaster.cfg" <<-EOF
		WORKING_USER = root
		WORKING_GROUP = root
		DATA_PATH = $d/master
		EXPORTS_FILENAME = $d/mfsexports.cfg
		MATOML_LISTEN_HOST = $ip
		MATOCS_LISTEN_HOST = $ip
		MATOCL_LISTEN_HOST = $ip
	EOF
	printf '%s\n' "$d/hdd" >"$d/mfshdd.cfg"
	cat >"$d/mfschunkserver.cfg" <<-EOF
		WORKING_USER = root
		WORKING_GROUP = root
		DATA_PATH = $d/cs
		HDD_CONF_FILENAME = $d/mfshdd.cfg
		HDD_LEAVE_SPACE_DEFAULT = 256MiB
		MASTER_HOST = $ip
		BIND_HOST = $ip
		CSSERV_LISTEN_HOST = $ip
	EOF
	ip netns exec "$MFS_NS" mfsmaster -c "$d/mfsmaster.cfg" start >"$d/master.log" 2>&1 || return 1
	ip netns exec "$MFS_NS" mfschunkserver -c "$d/mfschunkserver.cfg" start >"$d/cs.log" 2>&1 || return 1
	# shellcheck disable=SC2086 # (options are words)
	nsenter --net="/run/netns/$MFS_NS" mfsmount "$d/mnt" -H "$ip" ${MFS_MOUNT_OPTS:-} \
		>"$d/mount.log" 2>&1 || return 1
	MFS_MNT="$d/mnt" MFS_DIR="$d"
	export MFS_MNT MFS_DIR MFS_NS
	mfssetgoal -r 1 "$d/mnt" >/dev/null 2>&1 || true
	# the chunkserver registers within a few seconds: wait until a write lands
	local i
	for i in $(seq 1 100); do
		if echo ok >"$d/mnt/.probe" 2>/dev/null && sync "$d/mnt/.probe" 2>/dev/null &&
			[ "$(cat "$d/mnt/.probe" 2>/dev/null)" = ok ]; then
			rm -f "$d/mnt/.probe"
			return 0
		fi
		sleep 0.2
	done
	echo "moosefs: no chunkserver after 20 s" >&2
	return 1
}

# moosefs_cs_pid DIR: the chunkserver's pid.
moosefs_cs_pid() {
	pgrep -f "mfschunkserver -c $1/mfschunkserver.cfg" | head -1
}

# moosefs_cs_down DIR / moosefs_cs_up DIR: stop the chunkserver for real, start it again.
moosefs_cs_down() {
	local p
	for p in $(pgrep -f "mfschunkserver -c $1/mfschunkserver.cfg"); do kill -CONT "$p" 2>/dev/null; done
	timeout 30 ip netns exec "$(cat "$1/netns")" mfschunkserver -c "$1/mfschunkserver.cfg" stop \
		>/dev/null 2>&1 || true
}

moosefs_cs_up() {
	ip netns exec "$(cat "$1/netns")" mfschunkserver -c "$1/mfschunkserver.cfg" start \
		>>"$1/cs.log" 2>&1
}

# moosefs_stop DIR: unmount, stop the daemons, delete the namespace; never fails.
moosefs_stop() {
	local d="$1" ns p
	[ -e "$d/netns" ] || return 0
	ns=$(cat "$d/netns")
	export PATH="$PATH:/usr/sbin:/sbin"
	# a stopped (SIGSTOP) chunkserver must run again to stop
	for p in $(pgrep -f "mfschunkserver -c $d/mfschunkserver.cfg"); do kill -CONT "$p" 2>/dev/null; done
	umount -l "$d/mnt" 2>/dev/null || fusermount -uz "$d/mnt" 2>/dev/null || true
	timeout 20 ip netns exec "$ns" mfschunkserver -c "$d/mfschunkserver.cfg" stop >/dev/null 2>&1 || true
	timeout 20 ip netns exec "$ns" mfsmaster -c "$d/mfsmaster.cfg" stop >/dev/null 2>&1 || true
	for p in $(pgrep -f "mfs(chunkserver|master) -c $d/"); do kill -9 "$p" 2>/dev/null; done
	for p in $(pgrep -f "mfsmount $d/mnt"); do kill -9 "$p" 2>/dev/null; done
	ip netns del "$ns" 2>/dev/null || true
	rm -f "$d/netns"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -e
	why=$(moosefs_missing)
	[ -z "$why" ] || { echo "moosefs: $why" >&2; exit 1; }
	dir=$(realpath -m "${1:?usage: scripts/moosefs.sh DIR}")
	trap 'moosefs_stop "$dir"' EXIT
	moosefs_start "$dir"
	echo "MooseFS mounted on $MFS_MNT; Enter stops it"
	read -r _
fi
