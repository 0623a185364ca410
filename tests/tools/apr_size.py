#!/usr/bin/env python3
"""apr_size.py - the size an APR v2 file must have, from the source's shapes alone.

usage: apr_size.py SOURCE VARIANT METADATA_SIZE [NF4_BLOCK]

SOURCE is X.safetensors or X.safetensors.index.json; METADATA_SIZE the unpadded metadata
JSON length (the one part that depends on more than shapes). Prints
  64 + align64(METADATA_SIZE) + align64(index bytes) + sum(align64(size_i)) + 4
with each tensor's dtype chosen by the contract's variant rules (apr_reader.want_dtype) and
its size from the dtype table.
"""

import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apr_reader as R  # noqa: E402


def config_layers(source):
    """q4km's layer count as the metadata carries it: config.json's num_hidden_layers."""
    try:
        with open(os.path.join(os.path.dirname(source) or ".", "config.json")) as f:
            return {"num_layers": json.load(f).get("num_hidden_layers")}
    except (OSError, ValueError, AttributeError):
        return {}


def predict(source, variant, meta_size, nf4_b=64):
    src = R.read_source(source)
    mix = R.q4km_facts(config_layers(source), list(src))
    index = 0
    data = 0
    for name in sorted(src, key=lambda s: s.encode("utf-8")):
        st = src[name]
        e = R.Entry()
        e.name, e.shape, e.ndim, e.n = name, st.shape, len(st.shape), st.n
        e.dtype = R.want_dtype(st, variant, nf4_b, mix)
        size = R.expected_size(e, nf4_b)
        if size is None:
            raise SystemExit("apr_size.py: %s: no size for %s %s" % (name, e.dtype, st.shape))
        index += 2 + len(name.encode("utf-8")) + 2 + 8 * e.ndim + 16
        data += R.align64(size)
    return 64 + R.align64(meta_size) + R.align64(index) + data + 4


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    b = int(sys.argv[4]) if len(sys.argv) == 5 else 64
    print(predict(sys.argv[1], sys.argv[2], int(sys.argv[3]), b))
