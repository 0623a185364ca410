#!/usr/bin/env bash
# check-docs.sh - the documentation says what the code has. Fails, naming what differs, when
#   - README.md is over 12 KB (12288 bytes);
#   - README's variants table differs from `aprfs variants --names`;
#   - README's options table differs from the options lib/view/conf.c knows (our_keys[]);
#   - tests/README.md's fuzz harness table differs from tests/fuzz/fuzz_*.c;
#   - a markdown link in README.md, doc/*.md or tests/README.md leaves the repository
#     (a URL, an absolute path, a path out of the checkout) or names a file that is missing.
# A table is found by the text of its first header cell (`variant`, `option`, `harness`);
# its names are the backticked first cells of its rows. Run by `make test` (run-tests.sh).
# APRFS_BUILD (default build) says which build's aprfs to ask.
set -uo pipefail
cd "$(dirname "$0")/.."

bad=0
fail() {
	echo "check-docs: $*" >&2
	bad=1
}

# table_names FILE HEADER: the first cells (backticks removed) of the markdown table whose
# header row starts with "| HEADER |", sorted.
table_names() {
	awk -v h="$2" '
		!in_t && $0 ~ "^\\| *" h " *\\|" { in_t = 1; next }
		in_t && /^\|/ {
			if ($0 ~ /^\| *-/) next
			split($0, c, "|"); cell = c[2]
			gsub(/^ +| +$/, "", cell); gsub(/`/, "", cell)
			print cell; next
		}
		in_t { exit }
	' "$1" | sort
}

# compare WHAT DOC_FILE DOC_LIST CODE_SOURCE CODE_LIST
compare() {
	if [ -z "$3" ]; then
		fail "$2: no $1 table found (a table whose first header cell is the word for it)"
		return
	fi
	if [ "$3" != "$5" ]; then
		fail "$2's $1 table differs from $4:"
		diff <(printf '%s\n' "$3") <(printf '%s\n' "$5") |
			sed -n 's/^< /    only in the doc:  /p; s/^> /    only in the code: /p' >&2
	fi
}

# (a) size
size=$(wc -c <README.md)
[ "$size" -le 12288 ] ||
	fail "README.md is $size bytes, over 12 KB (12288): move detail to doc/ or tests/README.md"

# (b) variants
aprfs=${APRFS_BUILD:-build}/aprfs
if [ ! -x "$aprfs" ]; then
	fail "$aprfs not built (make all): cannot check README's variants table"
elif ! code=$("$aprfs" variants --names 2>/dev/null); then
	fail "'$aprfs variants --names' failed: cannot check README's variants table"
else
	compare variant README.md "$(table_names README.md variant)" \
		"'aprfs variants --names'" "$(tr ' \t' '\n\n' <<<"$code" | sed '/^$/d' | sort)"
fi

# (c) options: the names in conf.c's our_keys[] initializer
code=$(sed -n '/our_keys\[\] *=/,/};/p' lib/view/conf.c | grep -o '"[a-z_0-9]*"' | tr -d '"' | sort)
[ -n "$code" ] || fail "lib/view/conf.c: our_keys[] not found (update scripts/check-docs.sh)"
compare option README.md "$(table_names README.md option)" "lib/view/conf.c (our_keys[])" "$code"

# (d) fuzz harnesses
code=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c; done | sort)
compare harness tests/README.md "$(table_names tests/README.md harness)" "tests/fuzz/fuzz_*.c" "$code"

# (e) links: [text](target) in the docs, code spans excluded
root=$(pwd -P)
for doc in README.md doc/*.md tests/README.md; do
	[ -f "$doc" ] || continue
	dir=$(dirname "$doc")
	sed 's/`[^`]*`//g' "$doc" | grep -o '\]([^)]*)' | sed 's/^](//; s/)$//' |
		while IFS= read -r target; do
			target=${target%% *} # drop a "title"
			path=${target%%#*}
			case "$target" in
			*://* | mailto:* | //*)
				echo "$doc: link to '$target' leaves the repository"
				continue
				;;
			/*)
				echo "$doc: link to '$target' is an absolute path (write it relative)"
				continue
				;;
			esac
			[ -n "$path" ] || continue # a link to an anchor of the same page
			abs=$(realpath -m "$dir/$path")
			case "$abs/" in
			"$root"/*) ;;
			*)
				echo "$doc: link to '$target' leaves the repository"
				continue
				;;
			esac
			[ -e "$abs" ] || echo "$doc: link to '$target': no such file"
		done
done >"${TMPDIR:-/tmp}/check-docs.links.$$"
if [ -s "${TMPDIR:-/tmp}/check-docs.links.$$" ]; then
	while IFS= read -r l; do fail "$l"; done <"${TMPDIR:-/tmp}/check-docs.links.$$"
fi
rm -f "${TMPDIR:-/tmp}/check-docs.links.$$"

if [ "$bad" -ne 0 ]; then
	echo "check-docs: FAILED (README.md, doc/*.md and tests/README.md must match the code)" >&2
	exit 1
fi
echo "check-docs: ok (README $size bytes; variants, options, fuzz harnesses and links match)"
