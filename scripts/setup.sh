#!/usr/bin/env bash
# setup.sh - install what building and testing aprfs needs on Debian, if missing.
# Runs apt-get only when a package is absent, so it is quick on a prepared machine.
set -euo pipefail

# clang + libclang-rt-14-dev: libFuzzer and clang's ASan/UBSan runtimes (make fuzz); llvm:
# llvm-symbolizer for their stack traces. gcc's ASan/UBSan (make check-asan) come with gcc.
PKGS=(gcc make pkg-config git cppcheck clang-format libfuse3-dev fuse3 liblz4-dev libcjson-dev libdeflate-dev
      zlib1g-dev bats jq python3 bc time gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
      clang libclang-rt-14-dev llvm)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "setup: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing packages (${missing[*]}) and not root: install them or run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
