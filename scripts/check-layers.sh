#!/usr/bin/env bash
# check-layers.sh - lib/ is in layers, low to high:
#   base format quant kernels source plan cache file view report
# and a file may include only headers of its own folder and of lower ones, written as paths
# from lib/ ("base/err.h", also inside a folder). cli/ and fs/ sit above and may include
# anything of lib/; lib/ never includes cli/ or fs/. Prints each offending include
# ("file:line: include "x" (folder a includes higher folder b)") and fails if there is any.
cd "$(dirname "$0")/.."

layers=(base format quant kernels source plan cache file view report)
rank() { # folder -> its rank, or nothing when it is not a layer
	local i
	for i in "${!layers[@]}"; do
		[ "${layers[$i]}" = "$1" ] && echo "$i" && return
	done
}

bad=0
for f in $(git ls-files 'lib/*.c' 'lib/*.h'); do
	[ -f "$f" ] || continue
	rel=${f#lib/}
	if [ "$rel" = "${rel#*/}" ]; then
		echo "$f: a file directly in lib/ (each file belongs to a layer folder)"
		bad=1
		continue
	fi
	own=${rel%%/*}
	r_own=$(rank "$own")
	if [ -z "$r_own" ]; then
		echo "$f: folder lib/$own is not a layer (add it to scripts/check-layers.sh)"
		bad=1
		continue
	fi
	while IFS=: read -r line inc; do
		inc=$(sed 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/' <<<"$inc")
		if [ "$inc" = "${inc#*/}" ] || [[ "$inc" == ../* || "$inc" == ./* ]]; then
			echo "$f:$line: include \"$inc\" (write it as a path from lib/: \"folder/name.h\")"
			bad=1
			continue
		fi
		dir=${inc%%/*}
		if [ ! -f "lib/$inc" ]; then
			echo "$f:$line: include \"$inc\" is not a header of lib/ (cli/ and fs/ are above lib/)"
			bad=1
			continue
		fi
		r_inc=$(rank "$dir")
		if [ -z "$r_inc" ]; then
			echo "$f:$line: include \"$inc\": lib/$dir is not a layer"
			bad=1
		elif [ "$r_inc" -gt "$r_own" ]; then
			echo "$f:$line: include \"$inc\" ($own includes higher layer $dir)"
			bad=1
		fi
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
done
if [ "$bad" = 0 ]; then
	echo "layers: lib/ includes only its own or lower layers (${layers[*]})"
fi
exit $bad
