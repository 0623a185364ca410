#!/usr/bin/env python3
"""apr_mutate.py - rebuild a valid APR v2 file with one contract violation, every offset,
padding and checksum recomputed, so that only the check of that one rule can catch it.

usage: apr_mutate.py list
       apr_mutate.py GOOD.apr DEFECT OUT.apr

`list` prints the defect names, one a line. The input must be a valid APR v2 file with at
least two tensors, one of them quantized (any aprfs output of a real model is).
"""

import json
import os
import struct
import sys
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apr_reader as R  # noqa: E402


def build(meta_bytes, entries, data_region, flags, version=(2, 0)):
    index = b""
    for e in entries:
        index += struct.pack("<H", len(e["name"])) + e["name"] + bytes([e["dtype"], e["ndim"]])
        index += struct.pack("<%dQ" % len(e["shape"]), *e["shape"])
        index += struct.pack("<QQ", e["offset"], e["size"])
    ms = len(meta_bytes)
    io = 64 + R.align64(ms)
    do = io + R.align64(len(index))
    h = bytearray(64)
    h[0:4] = R.MAGIC
    h[4], h[5] = version
    struct.pack_into("<HIQIQQ", h, 6, flags, len(entries), 64, ms, io, do)
    struct.pack_into("<I", h, 40, zlib.crc32(bytes(h[0:40]) + bytes(h[44:64])))
    body = (bytes(h) + meta_bytes + bytes(io - 64 - ms) + index +
            bytes(do - io - len(index)) + data_region)
    return body + struct.pack("<I", zlib.crc32(body))


def load(path):
    data = open(path, "rb").read()
    c = R.parse_container(data, [])
    entries = [{"name": e.raw_name, "dtype": e.dtype, "ndim": e.ndim, "shape": list(e.shape),
                "offset": e.offset, "size": e.size} for e in c["entries"]]
    meta_size = struct.unpack_from("<I", data, 20)[0]
    meta_text = data[64:64 + meta_size].decode("utf-8")
    return c, entries, meta_text, data[c["data_offset"]:len(data) - 4]


def meta_add(text, raw):
    """Append raw JSON members to the top-level object."""
    return text[:-1] + "," + raw + "}"


def meta_set(text, key, raw):
    d = json.loads(text)
    d[key] = None
    t = json.dumps(d, separators=(",", ":"), ensure_ascii=False)
    return t.replace('"%s":null' % key, '"%s":%s' % (key, raw), 1)


def q_entry(entries):
    return next(e for e in entries if e["dtype"] in R.QUANT_DTYPES and e["size"])


def mutate(c, entries, meta, data, defect):
    flags = c["flags"]
    version = (2, 0)
    m = meta
    if defect == "none":  # the rebuild alone: must give back the input's bytes
        pass
    elif defect == "meta-duplicate-key":
        m = meta_add(meta, '"name":"again"')
    elif defect == "meta-alias-beside-canonical":
        m = meta_add(meta, '"num_hidden_layers":2')
    elif defect == "meta-description-number":
        m = meta_add(meta, '"description":5')
    elif defect == "meta-created-at-object":
        m = meta_add(meta, '"created_at":{}')
    elif defect == "meta-head-dim-negative":
        m = meta_add(meta, '"head_dim":-1')
    elif defect == "meta-num-experts-float":
        m = meta_add(meta, '"num_experts":1.5')
    elif defect == "meta-special-tokens-array":
        m = meta_add(meta, '"special_tokens":[]')
    elif defect == "meta-sharding-incomplete":
        m = meta_add(meta, '"sharding":{"shard_count":2}')
    elif defect == "meta-total-size-string":
        m = meta_set(meta, "total_size", '"12"')
    elif defect == "meta-rope-theta-string":
        m = meta_set(meta, "rope_theta", '"1e4"')
    elif defect == "meta-rope-theta-beyond-f32":
        m = meta_set(meta, "rope_theta", "1e39")
    elif defect == "meta-total-size-2-to-64":
        m = meta_set(meta, "total_size", "18446744073709551616")
    elif defect == "meta-param-count-1e300":
        m = meta_set(meta, "param_count", "1e300")
    elif defect == "meta-bits-fraction":
        d = json.loads(meta)
        d["quantization"]["bits"] = 4.5
        m = json.dumps(d, separators=(",", ":"))
    elif defect == "meta-block-size-float":
        d = json.loads(meta)
        d["quantization"]["block_size"] = 32.5
        m = json.dumps(d, separators=(",", ":"))
    elif defect == "meta-block-size-negative":
        d = json.loads(meta)
        d["quantization"]["block_size"] = -32
        m = json.dumps(d, separators=(",", ":"))
    elif defect == "meta-quant-type-number":
        d = json.loads(meta)
        d["quantization"]["quant_type"] = 4
        m = json.dumps(d, separators=(",", ":"))
    elif defect == "meta-not-object":
        m = "[" + meta + "]"
    elif defect == "meta-invalid-utf8":
        mb = meta.encode("utf-8")
        mb = mb.replace(b'"name":"', b'"name":"\xc0\xaf', 1)
        return build(mb, entries, data, flags, version)
    elif defect == "meta-trailing-garbage":
        m = meta + "x"
    elif defect == "index-unsorted":
        entries[0], entries[1] = entries[1], entries[0]
    elif defect == "index-duplicate-name":
        entries[1]["name"] = entries[0]["name"]
        entries.sort(key=lambda e: e["name"])
    elif defect == "index-empty-name":
        entries[0]["name"] = b""
    elif defect == "index-name-257":
        entries[-1]["name"] = b"~" * 257
    elif defect == "index-name-bad-utf8":
        entries[-1]["name"] = b"~\xc0\xaf"
    elif defect == "index-unknown-dtype":
        e = next(e for e in entries if e["dtype"] == R.DT_F32)
        e["dtype"] = 2
    elif defect == "index-ndim-9":
        e = next(e for e in entries if e["dtype"] == R.DT_F32 and e["ndim"] == 1)
        e["ndim"], e["shape"] = 9, [1] * 8 + e["shape"]
    elif defect == "index-offset-unaligned":
        e = max((e for e in entries if e["size"]), key=lambda e: e["offset"])
        e["offset"] += 4
    elif defect == "index-size-mismatch":
        e = q_entry(entries)
        e["size"] -= 1
    elif defect == "index-shape-mismatch":
        e = q_entry(entries)
        e["shape"][0] += 1
    elif defect == "index-overlap":
        a, b = sorted((e for e in entries if e["size"]), key=lambda e: e["offset"])[:2]
        b["offset"] = a["offset"]
    elif defect == "index-beyond-data":
        e = max((e for e in entries if e["size"]), key=lambda e: e["offset"])
        e["offset"] += 1 << 40
    elif defect == "data-gap":
        # 64 zero bytes between the first two tensors: every extent aligned, padded with
        # zeros and inside the file, but the size is no longer sum(align64(size_i))
        first = min((e for e in entries if e["size"]), key=lambda e: e["offset"])
        cut = first["offset"] + R.align64(first["size"])
        for e in entries:
            if e["offset"] >= cut and (e["size"] or e["offset"] > cut):
                e["offset"] += 64
        data = data[:cut] + bytes(64) + data[cut:]
    elif defect == "data-region-short":
        data = data[:-64]
    elif defect == "data-region-long":
        data = data + bytes(64)
    elif defect == "header-metadata-offset":
        out = bytearray(build(m.encode("utf-8"), entries, data, flags, version))
        struct.pack_into("<Q", out, 12, 128)
        struct.pack_into("<I", out, 40, zlib.crc32(bytes(out[0:40]) + bytes(out[44:64])))
        struct.pack_into("<I", out, len(out) - 4, zlib.crc32(bytes(out[:-4])))
        return bytes(out)
    elif defect == "header-tensor-count-low":
        out = bytearray(build(m.encode("utf-8"), entries, data, flags, version))
        struct.pack_into("<I", out, 8, len(entries) - 1)
        struct.pack_into("<I", out, 40, zlib.crc32(bytes(out[0:40]) + bytes(out[44:64])))
        struct.pack_into("<I", out, len(out) - 4, zlib.crc32(bytes(out[:-4])))
        return bytes(out)
    elif defect == "header-column-major":
        flags |= R.FLAG_COL_MAJOR
    elif defect == "header-version-3":
        version = (3, 0)
    else:
        raise SystemExit("apr_mutate.py: unknown defect %r" % defect)
    return build(m.encode("utf-8"), entries, data, flags, version)


DEFECTS = [
    "meta-duplicate-key", "meta-alias-beside-canonical", "meta-description-number",
    "meta-created-at-object", "meta-head-dim-negative", "meta-num-experts-float",
    "meta-special-tokens-array", "meta-sharding-incomplete", "meta-total-size-string",
    "meta-rope-theta-string", "meta-rope-theta-beyond-f32", "meta-total-size-2-to-64",
    "meta-param-count-1e300", "meta-bits-fraction", "meta-block-size-float", "meta-block-size-negative",
    "meta-quant-type-number", "meta-not-object", "meta-invalid-utf8", "meta-trailing-garbage",
    "index-unsorted", "index-duplicate-name", "index-empty-name", "index-name-257",
    "index-name-bad-utf8", "index-unknown-dtype", "index-ndim-9", "index-offset-unaligned",
    "index-size-mismatch", "index-shape-mismatch", "index-overlap", "index-beyond-data",
    "data-gap", "data-region-short", "data-region-long", "header-metadata-offset",
    "header-tensor-count-low", "header-column-major", "header-version-3",
]


def main(argv):
    if argv == ["list"]:
        print("\n".join(DEFECTS))
        return 0
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    c, entries, meta, data = load(argv[0])
    out = mutate(c, entries, meta, data, argv[1])
    with open(argv[2], "wb") as f:
        f.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
