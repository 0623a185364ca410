#!/usr/bin/env bash
# setup.sh - install what building and testing aprfs needs on Debian, if missing.
# Runs apt-get only when a package is absent, so it is quick on a prepared machine.
set -euo pipefail

# clang + libclang-rt-14-dev: libFuzzer and clang's ASan/UBSan runtimes (make fuzz); llvm:
# llvm-symbolizer for their stack traces. gcc's ASan/UBSan (make check-asan) come with gcc.
# moosefs-*, iproute2: the disk cache's tests and bench on a real MooseFS (scripts/moosefs.sh).
PKGS=(gcc make pkg-config git cppcheck clang-format libfuse3-dev fuse3 liblz4-dev libcjson-dev libisal-dev
      libxxhash-dev zlib1g-dev scdoc man-db prometheus bats jq python3 bc time gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user clang
      libclang-rt-14-dev llvm moosefs-master moosefs-chunkserver moosefs-client iproute2)
# Node.js and npm run the ecosystem's GGUF reader in the tests (tests/tools/gguf-js). Asked
# of apt only when absent: a NodeSource nodejs already bundles npm and conflicts with
# Debian's npm package.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	PKGS+=(nodejs npm)
fi

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages (${missing[*]}) and not root: install them or run as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# @huggingface/gguf, pinned by tests/tools/gguf-js/package-lock.json, installed once.
GGUF_JS="$(cd "$(dirname "$0")/.." && pwd)/tests/tools/gguf-js"
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
	echo "setup: @huggingface/gguf needs Node.js >= 20, this is $(node --version)" \
		"(Debian 12 ships 18: install Node 20, e.g. from NodeSource)" >&2
	exit 1
fi
if [ ! -d "$GGUF_JS/node_modules/@huggingface/gguf" ]; then
	echo "setup: npm ci in $GGUF_JS" >&2
	timeout 600 npm ci --prefix "$GGUF_JS" --no-audit --no-fund --loglevel=error >&2
fi
