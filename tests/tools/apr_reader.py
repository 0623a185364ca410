#!/usr/bin/env python3
"""apr_reader.py - an independent APR v2 reader and checker (standard library only).

Written from the format description alone (doc/apr-format.md), not from aprfs' C code, so
that it can catch aprfs misreading the contract.

usage: apr_reader.py FILE.apr [--source SOURCE] [--tolerance-check] [--root DIR]
                     [--exact-limit N] [--variant V] [--max-errors N] [--quiet]

Without --source: checks the container (header, header CRC, flags, typed metadata, tensor
index, extents, sizes per dtype, zero padding, footer CRC).

With --source (X.safetensors or X.safetensors.index.json) also, per tensor:
  (a) the dtype the variant rules demand, the source name and shape;
  (b) decoded values within the scheme's precision of the source;
  (c) the byte-exact encoding re-derived in Python for f32/f16/bf16/q8/q4/nf4/ternary and
      pass-through tensors (tensors above --exact-limit elements, default 300000, get only
      the statistical checks of (b) for the schemes where (b) is not itself exact),
      sources holding NaN, +-inf or values beyond +-65504 included (the contract's rules:
      q8/ternary statistics over the finite values, block codecs sanitise each block);
  (d) every decoded value of a quantized tensor is a finite binary32.
--tolerance-check skips (c): only the precision checks of (b) are done.
--root DIR: also check that metadata "source" is SOURCE's path relative to DIR.

Exit 0 printing "OK: N tensors" when everything holds, else 1 printing the reasons.
"""

import json
import math
import os
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_left

# ---------------------------------------------------------------- constants from the contract

MAGIC = b"APR\0"
FLAG_LZ4, FLAG_ZSTD, FLAG_ENCRYPTED, FLAG_SIGNED = 0x1, 0x2, 0x4, 0x8
FLAG_SHARDED, FLAG_QUANTIZED = 0x10, 0x20
FLAG_ROW_MAJOR, FLAG_COL_MAJOR = 0x400, 0x800
KNOWN_FLAGS = 0x0FFF

DT_F32, DT_F16, DT_F64, DT_I32, DT_I64, DT_I8, DT_U8 = 0, 1, 3, 4, 5, 6, 7
DT_Q4K, DT_Q6K, DT_BF16 = 12, 14, 30
DT_Q4, DT_Q8, DT_NF4, DT_TERN = 128, 129, 130, 131
DTYPE_NAMES = {
    0: "F32", 1: "F16", 3: "F64", 4: "I32", 5: "I64", 6: "I8", 7: "U8", 12: "Q4_K",
    14: "Q6_K", 30: "BF16", 128: "APR_Q4", 129: "APR_Q8", 130: "NF4", 131: "TERNARY",
}
QUANT_DTYPES = {DT_Q4, DT_Q8, DT_Q4K, DT_Q6K, DT_NF4, DT_TERN}
VARIANTS = ("f32", "f16", "bf16", "q8", "q4", "q4k", "q6k", "nf4", "ternary", "q4km")
QUANT_VARIANTS = ("q8", "q4", "q4k", "q6k", "nf4", "ternary", "q4km")
VARIANT_DTYPE = {"f32": DT_F32, "f16": DT_F16, "bf16": DT_BF16, "q8": DT_Q8, "q4": DT_Q4,
                 "q4k": DT_Q4K, "q6k": DT_Q6K, "nf4": DT_NF4, "ternary": DT_TERN,
                 "q4km": DT_Q4K}
VARIANT_BITS = {"f16": 16, "bf16": 16, "q8": 8, "q4": 4, "q4k": 4, "q6k": 6, "nf4": 4,
                "ternary": 2, "q4km": 4}

NF4_LEVELS = [
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]

# safetensors dtype -> (element size, struct code or None); the APR id it passes through as
ST_DTYPES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I8": 1,
             "U8": 1, "BOOL": 1}
ST_FLOAT = ("F32", "F16", "BF16")
ST_PASSTHROUGH = {"F64": DT_F64, "I64": DT_I64, "I32": DT_I32, "I8": DT_I8, "U8": DT_U8,
                  "BOOL": DT_U8}

META_STRINGS = ("description", "author", "version", "created_at", "chat_template",
                "chat_format", "hf_architecture", "hf_model_type", "model_type", "name",
                "original_format", "source", "license", "data_source", "data_license",
                "architecture")
META_UINTS = ("rope_type", "head_dim", "num_experts", "num_experts_per_tok",
              "moe_intermediate_size", "total_size", "param_count", "hidden_size",
              "num_layers", "num_heads", "num_kv_heads", "vocab_size", "intermediate_size",
              "max_position_embeddings")
META_F32 = ("rope_theta", "rms_norm_eps")
META_OBJECTS = ("special_tokens", "sharding", "quantization")
CONFIG_INT_KEYS = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "vocab_size",
                   "intermediate_size", "max_position_embeddings")
CONFIG_KEYS = ("architecture", "hf_architecture") + CONFIG_INT_KEYS + META_F32
# config.json spellings that must never be copied beside (or instead of) the canonical keys
ALIASES = ("num_hidden_layers", "num_attention_heads", "num_key_value_heads",
           "layer_norm_eps", "layer_norm_epsilon", "rms_norm_epsilon", "n_layer", "n_layers",
           "n_head", "n_heads", "n_embd", "n_ctx", "n_positions", "d_model", "n_kv_heads",
           "architectures", "torch_dtype")


def align64(n):
    return (n + 63) & ~63


class Fail(Exception):
    pass


# ---------------------------------------------------------------- float helpers

F32_MAX = 3.4028234663852886e38


def f32(x):
    """Round a double to the nearest binary32 (overflow to inf, NaN stays NaN)."""
    return array("f", (x,))[0]


def f32_list(xs):
    """Bulk binary32 rounding of a list of doubles."""
    return array("f", xs).tolist()


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f32_from_bits(u):
    return struct.unpack("<f", struct.pack("<I", u))[0]


def f16_bits(x):
    """binary16 bits of x (x exactly representable in binary32), round to nearest even;
    overflow to +-inf; NaN -> a quiet NaN."""
    if math.isnan(x):
        return 0x7E00
    try:
        return struct.unpack("<H", struct.pack("<e", x))[0]
    except OverflowError:
        return 0xFC00 if x < 0 else 0x7C00


def f16_to_float(h):
    return struct.unpack("<e", struct.pack("<H", h))[0]


def bf16_bits(x):
    """top 16 bits of binary32(x), round to nearest even; NaN stays NaN."""
    u = f32_bits(x)
    if (u & 0x7F800000) == 0x7F800000 and (u & 0x7FFFFF):
        return (u >> 16) | 0x40  # quiet NaN keeping the sign
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def rhaz(v):
    """round half away from zero of a binary32 value (C roundf); v must be finite."""
    if v >= 0:
        return int(v + 0.5)
    return -int(-v + 0.5)


def qcode(v, lo, hi):
    """clamp(round(v), lo, hi) of a binary32 quotient; NaN is 0 (the contract: a NaN
    quotient encodes as the zero code), +-inf clamp."""
    if math.isnan(v):
        return 0
    return max(lo, min(hi, rhaz(max(lo - 1.0, min(hi + 1.0, v)))))


def fdiv(x, s):
    """binary32 x / s with IEEE semantics (Python raises on a zero divisor)."""
    if s == 0:
        if x == 0 or math.isnan(x):
            return float("nan")
        return math.copysign(float("inf"), x) * math.copysign(1.0, s)
    return x / s


BLOCK_LIMIT = 65504.0


def sanitize(x):
    """The block codecs' input rule (q4, nf4, Q4_K, Q6_K): NaN reads as 0, +-inf and
    anything beyond +-65504 as +-65504."""
    if math.isnan(x):
        return 0.0
    return max(-BLOCK_LIMIT, min(BLOCK_LIMIT, x))


def finite_abs(xs):
    return [abs(x) for x in xs if math.isfinite(x)]


def decode_floats(raw, st_dtype):
    """Source bytes -> list of doubles (exact)."""
    if st_dtype == "F32":
        a = array("f")
        a.frombytes(raw)
        if sys.byteorder != "little":
            a.byteswap()
        return a.tolist()
    if st_dtype == "F64":
        a = array("d")
        a.frombytes(raw)
        if sys.byteorder != "little":
            a.byteswap()
        return a.tolist()
    n = len(raw) // 2
    if st_dtype == "F16":
        return list(struct.unpack("<%de" % n, raw))
    if st_dtype == "BF16":
        h = struct.unpack("<%dH" % n, raw)
        return list(struct.unpack("<%df" % n, struct.pack("<%dI" % n, *[x << 16 for x in h])))
    raise Fail("not a float dtype: " + st_dtype)


def bf16_decode(raw):
    return decode_floats(raw, "BF16")


# ---------------------------------------------------------------- source checkpoints


class SourceTensor:
    def __init__(self, name, dtype, shape, path, begin, end):
        self.name, self.dtype, self.shape = name, dtype, shape
        self.path, self.begin, self.end = path, begin, end

    @property
    def n(self):
        return math.prod(self.shape)

    def raw(self):
        with open(self.path, "rb") as f:
            f.seek(self.begin)
            return f.read(self.end - self.begin)


def read_safetensors(path):
    with open(path, "rb") as f:
        hl = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(hl).decode("utf-8"))
    base = 8 + hl
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = SourceTensor(name, t["dtype"], list(t["shape"]), path, base + b, base + e)
    return out


def read_source(path):
    if path.endswith(".index.json"):
        with open(path, "rb") as f:
            idx = json.load(f)
        d = os.path.dirname(path)
        files = sorted(set(idx["weight_map"].values()))
        out = {}
        for fn in files:
            for name, t in read_safetensors(os.path.join(d, fn)).items():
                out[name] = t
        return out
    return read_safetensors(path)


# ---------------------------------------------------------------- the container


def no_dup_hook(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Fail("metadata: duplicate key %r" % k)
        d[k] = v
    return d


def bad_constant(c):
    raise Fail("metadata: non-JSON number %s" % c)


def is_uint(v, bits=64):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << bits)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_compact(text):
    """No whitespace outside strings."""
    in_str = esc = False
    for i, c in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in " \t\r\n":
            raise Fail("metadata: not compact JSON (whitespace at byte %d)" % i)


def check_metadata(meta, errors):
    if not isinstance(meta, dict):
        raise Fail("metadata: not a JSON object")
    for k in ALIASES:
        if k in meta:
            errors.append("metadata: config alias key %r must not be written" % k)
    for k in META_STRINGS:
        if k in meta and not (meta[k] is None or isinstance(meta[k], str)):
            errors.append("metadata: %r must be a string, not %s" % (k, json.dumps(meta[k])))
    for k in META_UINTS:
        if k in meta and not (meta[k] is None or is_uint(meta[k])):
            errors.append("metadata: %r must be an unsigned integer, not %s"
                          % (k, json.dumps(meta[k])))
    for k in META_F32:
        if k in meta:
            v = meta[k]
            if not (v is None or is_number(v)):
                errors.append("metadata: %r must be a number" % k)
            elif v is not None and abs(v) > F32_MAX:
                errors.append("metadata: %r does not fit an f32" % k)
    for k in META_OBJECTS:
        if k in meta and not (meta[k] is None or isinstance(meta[k], dict)):
            errors.append("metadata: %r must be an object" % k)
    sh = meta.get("sharding")
    if isinstance(sh, dict):
        for k in ("shard_count", "shard_index", "total_size"):
            if not is_uint(sh.get(k)):
                errors.append("metadata: sharding.%s missing or not an unsigned integer" % k)
    # keys aprfs always writes
    for k in ("model_type", "name", "original_format", "source", "total_size", "param_count",
              "license", "data_source", "data_license"):
        if k not in meta:
            errors.append("metadata: key %r missing" % k)
    if meta.get("original_format") not in ("safetensors", "gguf"):
        errors.append("metadata: original_format %r" % meta.get("original_format"))
    q = meta.get("quantization")
    variant = "f32"
    if q is not None:
        if not isinstance(q, dict):
            raise Fail("metadata: quantization is not an object")
        want = {"quant_type", "bits", "block_size", "symmetric"}
        if set(q) - {"imatrix"} != want:
            errors.append("metadata: quantization keys %s, want %s" % (sorted(q), sorted(want)))
        if "imatrix" in q:
            check_imatrix_meta(q["imatrix"], q.get("quant_type"), errors)
        if not isinstance(q.get("quant_type"), str):
            raise Fail("metadata: quantization.quant_type must be a string")
        variant = q["quant_type"]
        if variant not in VARIANTS or variant == "f32":
            raise Fail("metadata: quantization.quant_type %r is not a variant" % variant)
        if not is_uint(q.get("bits"), 8):
            errors.append("metadata: quantization.bits must be a u8")
        elif q["bits"] != VARIANT_BITS[variant]:
            errors.append("metadata: quantization.bits %d for %s (want %d)"
                          % (q["bits"], variant, VARIANT_BITS[variant]))
        bs = q.get("block_size")
        if not (bs is None or is_uint(bs)):
            errors.append("metadata: quantization.block_size must be a non-negative integer "
                          "or null, not %s" % json.dumps(bs))
        want_bs = {"q4": 32, "q4k": 256, "q6k": 256, "q4km": 256}.get(variant)
        if want_bs is not None and bs != want_bs:
            errors.append("metadata: quantization.block_size %s for %s (want %d)"
                          % (json.dumps(bs), variant, want_bs))
        if variant == "nf4" and not (is_uint(bs) and bs > 0 and bs % 2 == 0):
            errors.append("metadata: nf4 block_size %s is not a positive even integer"
                          % json.dumps(bs))
        if not isinstance(q.get("symmetric"), bool):
            errors.append("metadata: quantization.symmetric must be a bool")
    return variant


def check_imatrix_meta(im, variant, errors):
    """quantization.imatrix (issue 19): the importance matrix a k-quant view was weighted by."""
    if variant not in ("q4k", "q6k", "q4km"):
        errors.append("metadata: quantization.imatrix on a %r view" % variant)
    if not isinstance(im, dict) or set(im) != {"file", "sha256", "entries_used"}:
        errors.append("metadata: quantization.imatrix must be {file, sha256, entries_used}")
        return
    if not isinstance(im["file"], str) or not im["file"]:
        errors.append("metadata: quantization.imatrix.file must be a non-empty string")
    if not (isinstance(im["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", im["sha256"])):
        errors.append("metadata: quantization.imatrix.sha256 must be 64 lowercase hex digits")
    if not (is_uint(im["entries_used"]) and im["entries_used"] > 0):
        errors.append("metadata: quantization.imatrix.entries_used must be a positive integer")


class Entry:
    pass


def parse_container(data, errors):
    size = len(data)
    if size < 64 + 4:
        raise Fail("file too short (%d bytes) for a header and a footer" % size)
    h = data[:64]
    if h[0:4] != MAGIC:
        raise Fail("bad magic %s" % h[0:4].hex())
    crc = struct.unpack_from("<I", h, 40)[0]
    want = zlib.crc32(h[0:40] + h[44:64])
    if crc != want:
        raise Fail("header checksum mismatch (stored %08x, computed %08x)" % (crc, want))
    if (h[4], h[5]) != (2, 0):
        raise Fail("version %d.%d, want 2.0" % (h[4], h[5]))
    flags, count, meta_off, meta_size, index_off, data_off = struct.unpack_from(
        "<HIQIQQ", h, 6)
    if any(h[44:64]):
        raise Fail("header reserved bytes 44..64 are not zero")
    if flags & FLAG_COL_MAJOR:
        raise Fail("LAYOUT_COLUMN_MAJOR flag set")
    if flags & ~KNOWN_FLAGS:
        raise Fail("unknown flags 0x%04x" % flags)
    if not flags & FLAG_ROW_MAJOR:
        errors.append("LAYOUT_ROW_MAJOR flag not set")
    for bit, what in ((FLAG_LZ4, "LZ4_COMPRESSED"), (FLAG_ZSTD, "ZSTD"),
                      (FLAG_ENCRYPTED, "ENCRYPTED"), (FLAG_SIGNED, "SIGNED"),
                      (FLAG_SHARDED, "SHARDED")):
        if flags & bit:
            errors.append("flag %s set" % what)
    if meta_off != 64:
        raise Fail("metadata_offset %d, want 64" % meta_off)
    if index_off != 64 + align64(meta_size):
        raise Fail("tensor_index_offset %d, want 64 + align64(%d) = %d"
                   % (index_off, meta_size, 64 + align64(meta_size)))
    if data_off < index_off or data_off > size - 4 or index_off > size - 4:
        raise Fail("data_offset %d / tensor_index_offset %d out of the file (size %d)"
                   % (data_off, index_off, size))
    # footer
    foot = struct.unpack_from("<I", data, size - 4)[0]
    fcrc = zlib.crc32(data[:size - 4])
    if foot != fcrc:
        raise Fail("footer CRC mismatch (stored %08x, computed %08x)" % (foot, fcrc))
    # metadata
    mraw = data[64:64 + meta_size]
    if any(data[64 + meta_size:index_off]):
        raise Fail("metadata padding is not zero")
    try:
        text = mraw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Fail("metadata is not valid UTF-8: %s" % e)
    try:
        meta = json.loads(text, object_pairs_hook=no_dup_hook, parse_constant=bad_constant)
    except ValueError as e:
        raise Fail("metadata is not valid JSON: %s" % e)
    check_compact(text)
    variant = check_metadata(meta, errors)
    # tensor index
    p = index_off
    entries = []
    for i in range(count):
        e = Entry()
        if p + 2 > data_off:
            raise Fail("tensor index entry %d runs past data_offset" % i)
        nl = struct.unpack_from("<H", data, p)[0]
        p += 2
        if nl == 0 or nl > 256:
            raise Fail("tensor index entry %d: name length %d" % (i, nl))
        if p + nl + 2 > data_off:
            raise Fail("tensor index entry %d runs past data_offset" % i)
        e.raw_name = data[p:p + nl]
        try:
            e.name = e.raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise Fail("tensor index entry %d: name is not valid UTF-8" % i)
        p += nl
        e.dtype, e.ndim = data[p], data[p + 1]
        p += 2
        if e.dtype not in DTYPE_NAMES:
            raise Fail("tensor %r: unknown dtype id %d" % (e.name, e.dtype))
        if e.ndim > 8:
            raise Fail("tensor %r: ndim %d > 8" % (e.name, e.ndim))
        if p + 8 * e.ndim + 16 > data_off:
            raise Fail("tensor index entry %d runs past data_offset" % i)
        e.shape = list(struct.unpack_from("<%dQ" % e.ndim, data, p))
        p += 8 * e.ndim
        e.offset, e.size = struct.unpack_from("<QQ", data, p)
        p += 16
        e.n = math.prod(e.shape)
        entries.append(e)
    if align64(p - index_off) != data_off - index_off:
        raise Fail("data_offset %d, want tensor_index_offset + align64(%d) = %d"
                   % (data_off, p - index_off, index_off + align64(p - index_off)))
    if any(data[p:data_off]):
        raise Fail("tensor index padding is not zero")
    for a, b in zip(entries, entries[1:]):
        if not a.raw_name < b.raw_name:
            raise Fail("tensor index not sorted/unique: %r then %r" % (a.name, b.name))
    # sizes per dtype
    nf4_b = None
    if variant == "nf4":
        bs = meta["quantization"].get("block_size")
        nf4_b = bs if is_uint(bs) and bs > 0 else 64
    for e in entries:
        want = expected_size(e, nf4_b)
        if want is None:
            raise Fail("tensor %r: dtype %s impossible for shape %s"
                       % (e.name, DTYPE_NAMES[e.dtype], e.shape))
        if e.size != want:
            raise Fail("tensor %r: size %d, want %d for %s %s"
                       % (e.name, e.size, want, DTYPE_NAMES[e.dtype], e.shape))
        if e.offset % 64:
            raise Fail("tensor %r: offset %d is not a multiple of 64" % (e.name, e.offset))
    # extents: the non-empty tensors tile the data section exactly
    data_len = size - 4 - data_off
    want_total = sum(align64(e.size) for e in entries)
    if want_total != data_len:
        raise Fail("file size %d, want data_offset + sum(align64(size)) + 4 = %d"
                   % (size, data_off + want_total + 4))
    at = 0
    for e in sorted((e for e in entries if e.size), key=lambda e: e.offset):
        if e.offset != at:
            raise Fail("tensor %r at data offset %d, expected %d (gap or overlap)"
                       % (e.name, e.offset, at))
        end = data_off + e.offset + e.size
        if any(data[end:data_off + e.offset + align64(e.size)]):
            raise Fail("tensor %r: padding after the data is not zero" % e.name)
        at += align64(e.size)
    for e in entries:
        if not e.size and e.offset > data_len:
            raise Fail("tensor %r: offset %d beyond the data section" % (e.name, e.offset))
    # totals
    if is_uint(meta.get("total_size")) and meta["total_size"] != sum(e.size for e in entries):
        errors.append("metadata: total_size %d != sum of tensor sizes %d"
                      % (meta["total_size"], sum(e.size for e in entries)))
    if is_uint(meta.get("param_count")) and meta["param_count"] != sum(e.n for e in entries):
        errors.append("metadata: param_count %d != sum of element counts %d"
                      % (meta["param_count"], sum(e.n for e in entries)))
    has_q = any(e.dtype in QUANT_DTYPES for e in entries)
    if has_q and not flags & FLAG_QUANTIZED:
        errors.append("QUANTIZED flag not set although quantized tensors are present")
    if variant in ("f32", "f16", "bf16") and flags & FLAG_QUANTIZED:
        errors.append("QUANTIZED flag set on variant %s" % variant)
    return {"flags": flags, "count": count, "meta": meta, "variant": variant, "nf4_b": nf4_b,
            "entries": entries, "data_offset": data_off}


def expected_size(e, nf4_b):
    n, d = e.n, e.dtype
    fixed = {DT_F32: 4, DT_F16: 2, DT_BF16: 2, DT_F64: 8, DT_I32: 4, DT_I64: 8, DT_I8: 1,
             DT_U8: 1}
    if d in fixed:
        return fixed[d] * n
    if d == DT_Q8:
        return 4 + n
    if d == DT_Q4:
        return 18 * ((n + 31) // 32)
    if d in (DT_Q4K, DT_Q6K):
        if e.ndim == 0 or e.shape[-1] % 256:
            return None
        return (144 if d == DT_Q4K else 210) * (n // 256)
    if d == DT_NF4:
        if nf4_b is None or n % nf4_b:
            return None
        return (4 + nf4_b // 2) * (n // nf4_b)
    if d == DT_TERN:
        return 4 + (n + 3) // 4
    return None


# ---------------------------------------------------------------- decoders


def dec_q8(b, n):
    s = struct.unpack_from("<f", b, 0)[0]
    q = array("b")
    q.frombytes(b[4:4 + n])
    return [s * v for v in q], s


def dec_q4(b, n):
    out = []
    nb = (n + 31) // 32
    for i in range(nb):
        blk = b[18 * i:18 * i + 18]
        s = f16_to_float(struct.unpack_from("<H", blk, 0)[0])
        if math.isnan(s) or math.isinf(s) or s < 6.1e-5:
            vals = [0.0] * 32
        else:
            vals = []
            for byte in blk[2:18]:
                vals.append(s * ((byte & 15) - 8))
                vals.append(s * ((byte >> 4) - 8))
        out.extend(vals)
    return out[:n]


def dec_nf4(b, n, B):
    out = []
    step = 4 + B // 2
    L = [f32(x) for x in NF4_LEVELS]
    for i in range(n // B):
        blk = b[step * i:step * (i + 1)]
        a = struct.unpack_from("<f", blk, 0)[0]
        lv = [l * a for l in L]
        for byte in blk[4:]:
            out.append(lv[byte & 15])
            out.append(lv[byte >> 4])
    return out


def dec_ternary(b, n):
    a = struct.unpack_from("<f", b, 0)[0]
    table = (0.0, a, -a, None)
    out = []
    for byte in b[4:]:
        out.extend((table[byte & 3], table[byte >> 2 & 3], table[byte >> 4 & 3],
                    table[byte >> 6]))
    out = out[:n]
    if None in out:
        raise Fail("invalid trit code 3")
    return out, a


def scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def dec_q4k(b, n):
    """GGML dequantize_row_q4_K: blocks of 256 = f16 d, f16 dmin, scales[12], qs[128]."""
    out = []
    for i in range(n // 256):
        blk = b[144 * i:144 * (i + 1)]
        d = f16_to_float(struct.unpack_from("<H", blk, 0)[0])
        dmin = f16_to_float(struct.unpack_from("<H", blk, 2)[0])
        sc = blk[4:16]
        qs = blk[16:144]
        for j in range(4):  # 64 elements per step, two sub-blocks of 32
            s1, m1 = scale_min_k4(2 * j, sc)
            s2, m2 = scale_min_k4(2 * j + 1, sc)
            d1, mm1, d2, mm2 = d * s1, dmin * m1, d * s2, dmin * m2
            q = qs[32 * j:32 * j + 32]
            out.extend([d1 * (x & 0xF) - mm1 for x in q])
            out.extend([d2 * (x >> 4) - mm2 for x in q])
    return out


def dec_q6k(b, n):
    """GGML dequantize_row_q6_K: ql[128], qh[64], scales i8[16], f16 d."""
    out = []
    for i in range(n // 256):
        blk = b[210 * i:210 * (i + 1)]
        ql, qh = blk[0:128], blk[128:192]
        sc = struct.unpack_from("<16b", blk, 192)
        d = f16_to_float(struct.unpack_from("<H", blk, 208)[0])
        for half in range(2):
            y = [0.0] * 128
            l0, h0, s0 = 64 * half, 32 * half, 8 * half
            for l in range(32):
                is_ = l // 16
                a, c, hh = ql[l0 + l], ql[l0 + l + 32], qh[h0 + l]
                q1 = ((a & 0xF) | ((hh & 3) << 4)) - 32
                q2 = ((c & 0xF) | (((hh >> 2) & 3) << 4)) - 32
                q3 = ((a >> 4) | (((hh >> 4) & 3) << 4)) - 32
                q4 = ((c >> 4) | (((hh >> 6) & 3) << 4)) - 32
                y[l] = d * sc[s0 + is_] * q1
                y[l + 32] = d * sc[s0 + is_ + 2] * q2
                y[l + 64] = d * sc[s0 + is_ + 4] * q3
                y[l + 96] = d * sc[s0 + is_ + 6] * q4
            out.extend(y)
    return out


# ---------------------------------------------------------------- encoders (byte-exact)


def q8_scale(xs):
    """f32(maxabs / 127) over the finite values (1.0 if that maxabs is 0)."""
    m = max(finite_abs(xs), default=0.0)
    return f32(m / 127.0) if m > 0 else 1.0


def enc_q8(xs):
    s = q8_scale(xs)
    qs = f32_list([x / s for x in xs])
    q = array("b", [qcode(v, -127, 127) for v in qs])
    return struct.pack("<f", s) + q.tobytes()


def enc_q4(xs):
    out = bytearray()
    n = len(xs)
    for i in range(0, n, 32):
        blk = [sanitize(x) for x in xs[i:i + 32]]
        m = max(abs(x) for x in blk)
        s = f32(m / 7.0) if m > 0 else 1.0
        qs = f32_list([fdiv(x, s) for x in blk])
        codes = [qcode(v, -8, 7) + 8 for v in qs]
        # short last block: "zero-filled" read byte-wise: the missing nibbles are 0.
        # (The contract could also be read as zero-filled input, x = 0 -> code 8; aprfs
        # writes 0 nibbles, and so does this reader's reference encoding.)
        codes += [0] * (32 - len(codes))
        out += struct.pack("<H", f16_bits(s))
        out += bytes(codes[2 * k] | codes[2 * k + 1] << 4 for k in range(16))
    return bytes(out)


NF4_MIDS = None


def nf4_mids():
    global NF4_MIDS
    if NF4_MIDS is None:
        L = [f32(x) for x in NF4_LEVELS]
        NF4_MIDS = [f32(f32(L[i] + L[i + 1]) / 2.0) for i in range(15)]
    return NF4_MIDS


def enc_nf4(xs, B):
    mids = nf4_mids()
    out = bytearray()
    for i in range(0, len(xs), B):
        blk = [sanitize(x) for x in xs[i:i + B]]
        a = max(abs(x) for x in blk)
        if a == 0:
            codes = [7] * B
        else:  # a > 0 and |x| <= a: the quotient is never NaN
            codes = [bisect_left(mids, v) for v in f32_list([x / a for x in blk])]
        out += struct.pack("<f", a)
        out += bytes(codes[2 * k] | codes[2 * k + 1] << 4 for k in range(B // 2))
    return bytes(out)


def tern_alphas(xs):
    """f32(mean|x|) over the finite elements (sum of finite |x| / their count, 0 if
    none), the sum accumulated in double: sequentially (as a C loop does) and exactly
    (math.fsum); an implementation may land on either."""
    a = finite_abs(xs)
    n = len(a)
    if not n:
        return (0.0,)
    seq = 0.0
    for x in a:
        seq += x
    return (f32(seq / n), f32(math.fsum(a) / n))


def enc_ternary(xs, alpha):
    if alpha == 0:
        trits = [0] * len(xs)
    else:
        trits = [qcode(v, -1, 1) for v in f32_list([x / alpha for x in xs])]
    codes = [(0, 1, 2)[t] for t in trits]  # index -1 -> 2
    codes += [0] * (-len(codes) % 4)
    body = bytes(codes[k] | codes[k + 1] << 2 | codes[k + 2] << 4 | codes[k + 3] << 6
                 for k in range(0, len(codes), 4))
    return struct.pack("<f", alpha) + body


def enc_f16(xs):
    return struct.pack("<%dH" % len(xs), *[f16_bits(x) for x in xs])


def enc_bf16(xs):
    return struct.pack("<%dH" % len(xs), *[bf16_bits(x) for x in xs])


# ---------------------------------------------------------------- per-tensor checks


# q4km (llama.cpp's Q4_K_M choice, issue 19): Q6_K for the output matrix, for the token
# embedding when no output matrix exists (tied), and for attn_v / ffn_down in the layers
# where llama.cpp's use_more_bits(i, n) holds; Q4_K elsewhere q4k writes Q4_K.
LAYER_RE = re.compile(r"^(?:blk\.|layers\.|.*\.layers\.)(\d{1,9})\.(.*)$")


def q4km_role(name):
    m = LAYER_RE.match(name)
    if m:
        rest = m.group(2)
        if rest in ("attn_v.weight", "self_attn.v_proj.weight"):
            return "attn_v", int(m.group(1))
        if rest in ("ffn_down.weight", "mlp.down_proj.weight"):
            return "ffn_down", int(m.group(1))
        return None, int(m.group(1))
    if name in ("output.weight", "lm_head.weight") or name.endswith(".lm_head.weight"):
        return "output", None
    if name in ("token_embd.weight", "embed_tokens.weight") or \
            name.endswith(".embed_tokens.weight"):
        return "token_embd", None
    return None, None


def use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def q4km_facts(meta, names):
    """(layer count, tied): num_layers from the metadata, else from the names."""
    roles = [q4km_role(n) for n in names]
    tied = not any(r == "output" for r, _ in roles)
    layers = meta.get("num_layers")
    if not isinstance(layers, int) or layers <= 0:
        layers = 1 + max([i for _, i in roles if i is not None], default=-1)
    return layers, tied


def want_dtype(st, variant, nf4_b, mix=None):
    if st.dtype not in ST_FLOAT:
        return ST_PASSTHROUGH.get(st.dtype)
    if variant in ("f32", "f16", "bf16"):
        return VARIANT_DTYPE[variant]
    if len(st.shape) < 2 or st.n < 4096:
        return DT_F32
    if variant in ("q4k", "q6k", "q4km") and st.shape[-1] % 256:
        return DT_Q8
    if variant == "nf4" and st.n % nf4_b:
        return DT_Q8
    if variant == "q4km":
        layers, tied = mix
        role, i = q4km_role(st.name)
        if role == "output" or (role == "token_embd" and tied) or \
                (role in ("attn_v", "ffn_down") and i < layers and use_more_bits(i, layers)):
            return DT_Q6K
    return VARIANT_DTYPE[variant]


def rel_rmse(xs, ys):
    num = math.fsum((x - y) * (x - y) for x, y in zip(xs, ys))
    den = math.fsum(x * x for x in xs)
    if den == 0:
        return 0.0 if num == 0 else float("inf")
    return math.sqrt(num / den)


def first_diff(a, b, unit):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i // unit
    return min(len(a), len(b)) // unit


NOTES = []
RMSE_BOUND = {DT_NF4: 0.12, DT_TERN: 0.75, DT_Q4K: 0.08, DT_Q6K: 0.025}


def check_tensor(e, st, blob, ctx, errs):
    name = e.name
    if e.shape != st.shape:
        errs.append("%s: shape %s, source %s" % (name, e.shape, st.shape))
        return
    want = want_dtype(st, ctx["variant"], ctx["nf4_b"], ctx.get("mix"))
    if want is None:
        errs.append("%s: source dtype %s has no APR mapping" % (name, st.dtype))
        return
    if e.dtype != want:
        errs.append("%s: dtype %s, the %s rules demand %s (source %s %s)"
                    % (name, DTYPE_NAMES[e.dtype], ctx["variant"], DTYPE_NAMES[want],
                       st.dtype, st.shape))
        return
    raw = st.raw()
    if st.dtype not in ST_FLOAT:
        if blob != raw:
            errs.append("%s: pass-through bytes differ from the source (first at byte %d)"
                        % (name, first_diff(blob, raw, 1)))
        elif st.dtype == "BOOL" and any(b > 1 for b in raw):
            errs.append("%s: BOOL source holds bytes other than 0/1" % name)
        return
    xs = decode_floats(raw, st.dtype)
    n = len(xs)
    exact = ctx["exact"] and n <= ctx["exact_limit"]
    d = e.dtype
    if d == DT_F32:
        if st.dtype == "F32":
            if blob != raw:
                errs.append("%s: F32 bytes differ from the source (first at element %d)"
                            % (name, first_diff(blob, raw, 4)))
            return
        got = struct.unpack("<%df" % n, blob)
        bad = [i for i in range(n) if not (got[i] == xs[i] or (math.isnan(got[i]) and
                                                                math.isnan(xs[i])))]
        if bad:
            errs.append("%s: F32 values differ from the %s source at %d elements (first %d)"
                        % (name, st.dtype, len(bad), bad[0]))
        return
    if d in (DT_F16, DT_BF16):
        # re-rounding is exactly defined: the byte check is the precision check
        want_b = enc_f16(xs) if d == DT_F16 else enc_bf16(xs)
        if blob != want_b:
            i = first_diff(blob, want_b, 2)
            got = struct.unpack_from("<H", blob, 2 * i)[0]
            exp = struct.unpack_from("<H", want_b, 2 * i)[0]
            nan_only = all(
                (g == w) or ((g & 0x7C00 if d == DT_F16 else g & 0x7F80) ==
                             (0x7C00 if d == DT_F16 else 0x7F80) and math.isnan(x))
                for g, w, x in zip(struct.unpack("<%dH" % n, blob),
                                   struct.unpack("<%dH" % n, want_b), xs))
            if not nan_only:
                errs.append("%s: %s element %d is %04x, round-to-nearest-even of %r is %04x"
                            % (name, DTYPE_NAMES[d], i, got, xs[i], exp))
        return
    # Non-finite and out-of-range values never spread (the contract): q8 and ternary take
    # their statistic over the finite values only; the block codecs read NaN as 0 and
    # clamp to +-65504 before choosing a block's scales. So NaN/inf in the source never
    # make a decoded value non-finite (as binary32, what readers compute in).
    ys_all = decode_any(e, blob, ctx["nf4_b"])
    if d == DT_Q8 and n and not math.isfinite(f32(127 * struct.unpack_from("<f", blob)[0])):
        # finite data near FLT_MAX: s = f32(maxabs/127) can round up so that s*127
        # overflows binary32; that follows from the contract's q8 rule, not from NaN/inf
        NOTES.append("%s: q8 scale * 127 overflows binary32" % name)
        ys_all = None
    if ys_all is not None:
        bad = [i for i, y in enumerate(ys_all) if not math.isfinite(f32(y))]
        if bad:
            errs.append("%s: %s decodes to %d non-finite values (first element %d, source "
                        "%r)" % (name, DTYPE_NAMES[d], len(bad), bad[0], xs[bad[0]]))
            return
    if d == DT_Q8:
        ys, s = dec_q8(blob, n)
        want_s = q8_scale(xs)
        if s != want_s:
            errs.append("%s: q8 scale %r, want f32(maxabs of the finite values/127) = %r"
                        % (name, s, want_s))
        bound = s / 2 * (1 + 1e-5) + 1e-30
        # +-inf encode as +-127, NaN as 0; the finite values within s/2
        want_y = [x if math.isfinite(x) else 0.0 if math.isnan(x) else
                  math.copysign(127 * s, x) for x in xs]
        bad = [i for i in range(n) if not abs(want_y[i] - ys[i]) <= bound]
        if bad:
            i = bad[0]
            errs.append("%s: q8 error %g > s/2 = %g at %d elements (first %d: %r -> %r)"
                        % (name, abs(xs[i] - ys[i]), s / 2, len(bad), i, xs[i], ys[i]))
        if exact and blob != enc_q8(xs):
            want_b = enc_q8(xs)
            i = first_diff(blob, want_b, 1)
            errs.append("%s: q8 bytes differ from the contract's encoding at byte %d "
                        "(got %d, want %d; x = %r)" % (name, i, blob[i], want_b[i],
                                                       xs[i - 4] if i >= 4 else None))
        return
    if d in (DT_Q4, DT_NF4, DT_Q4K, DT_Q6K):
        xs = [sanitize(x) for x in xs]  # what the block codecs quantize (a no-op on
        # finite values within +-65504)
    if d == DT_Q4:
        ys = ys_all
        nbad = 0
        first = None
        for bi in range(0, n, 32):
            blk = xs[bi:bi + 32]
            m = max(abs(x) for x in blk)
            s32 = f32(m / 7.0) if m > 0 else 1.0
            s16 = f16_to_float(struct.unpack_from("<H", blob, 18 * (bi // 32))[0])
            zero = math.isnan(s16) or math.isinf(s16) or s16 < 6.1e-5
            for k, x in enumerate(blk):
                y = ys[bi + k]
                if zero:
                    ok = y == 0.0 and abs(x) <= 7 * s32 * (1 + 1e-6) + 1e-30
                else:
                    ok = abs(x - y) <= s16 / 2 * 1.01 + 1e-30
                if not ok:
                    nbad += 1
                    if first is None:
                        first = (bi + k, x, y, s16)
        if nbad:
            errs.append("%s: q4 error beyond s/2 at %d elements (first %d: %r -> %r, s=%r)"
                        % ((name, nbad) + first))
        if exact:
            want_b = enc_q4(xs)
            if blob != want_b:
                i = first_diff(blob, want_b, 1)
                errs.append("%s: q4 bytes differ from the contract's encoding at byte %d "
                            "(block %d: got %02x, want %02x)"
                            % (name, i, i // 18, blob[i], want_b[i]))
        return
    if d == DT_NF4:
        B = ctx["nf4_b"]
        ys = ys_all
        if exact:
            want_b = enc_nf4(xs, B)
            # the byte-exact match is the stronger check; the RMSE bound is calibrated on
            # Gaussian weights and need not hold for the crafted tensors
            check_rmse(name, d, xs, ys, errs if blob != want_b else None)
            if blob != want_b:
                i = first_diff(blob, want_b, 1)
                blk, off = divmod(i, 4 + B // 2)
                errs.append("%s: nf4 bytes differ from the contract's encoding at byte %d "
                            "(block %d offset %d: got %02x, want %02x)"
                            % (name, i, blk, off, blob[i], want_b[i]))
        else:
            check_rmse(name, d, xs, ys, errs)
        return
    if d == DT_TERN:
        ys, a = dec_ternary(blob, n)
        refs = tern_alphas(xs)
        if a not in refs:
            errs.append("%s: ternary alpha %r, want f32(mean of the finite |x|) = %r"
                        % (name, a, refs[-1]))
        # the error statistics are about the finite values
        fin = [i for i in range(n) if math.isfinite(xs[i])]
        xf, yf = [xs[i] for i in fin], [ys[i] for i in fin]
        if exact:
            want_b = enc_ternary(xs, a)
            check_rmse(name, d, xf, yf, errs if blob != want_b else None)
            if blob != want_b:
                i = first_diff(blob, want_b, 1)
                errs.append("%s: ternary trits differ from clamp(round(x/alpha)) at byte %d "
                            "(got %02x, want %02x)" % (name, i, blob[i], want_b[i]))
        else:
            check_rmse(name, d, xf, yf, errs)
        return
    if d == DT_Q4K:
        for i in range(n // 256):
            dd, dm = struct.unpack_from("<HH", blob, 144 * i)
            if (dd & 0x7C00) == 0x7C00 or (dm & 0x7C00) == 0x7C00:
                errs.append("%s: q4k block %d has a non-finite d/dmin" % (name, i))
                return
        check_rmse(name, d, xs, ys_all, errs, 1.5 if ctx.get("weighted") else 1.0)
        return
    if d == DT_Q6K:
        for i in range(n // 256):
            dd = struct.unpack_from("<H", blob, 210 * i + 208)[0]
            if (dd & 0x7C00) == 0x7C00:
                errs.append("%s: q6k block %d has a non-finite d" % (name, i))
                return
        check_rmse(name, d, xs, ys_all, errs, 1.5 if ctx.get("weighted") else 1.0)
        return
    errs.append("%s: unexpected dtype %s" % (name, DTYPE_NAMES[d]))


def decode_any(e, blob, nf4_b):
    """Decoded values of a float APR tensor, as doubles."""
    d, n = e.dtype, e.n
    if d == DT_F32:
        return list(struct.unpack("<%df" % n, blob))
    if d == DT_F16:
        return list(struct.unpack("<%de" % n, blob))
    if d == DT_BF16:
        return bf16_decode(blob)
    if d == DT_Q8:
        return dec_q8(blob, n)[0]
    if d == DT_Q4:
        return dec_q4(blob, n)
    if d == DT_NF4:
        return dec_nf4(blob, n, nf4_b)
    if d == DT_TERN:
        return dec_ternary(blob, n)[0]
    if d == DT_Q4K:
        return dec_q4k(blob, n)
    if d == DT_Q6K:
        return dec_q6k(blob, n)
    return None


def check_rmse(name, d, xs, ys, errs, slack=1.0):
    """errs None: only note a bound exceeded (the bytes were checked exactly). slack: an
    importance-weighted view trades plain error on the columns its matrix calls unimportant
    for less where it matters, so its plain error may be half again as large (1.5)."""
    sink = NOTES if errs is None else errs
    if any(not math.isfinite(y) for y in ys):
        sink.append("%s: %s decodes to non-finite values" % (name, DTYPE_NAMES[d]))
        return
    r = rel_rmse(xs, ys)
    if not r < RMSE_BOUND[d] * slack:
        sink.append("%s: %s relative RMSE %.4f >= %.3f" % (name, DTYPE_NAMES[d], r,
                                                           RMSE_BOUND[d] * slack))


def check_config(meta, source, errs):
    cfg_path = os.path.join(os.path.dirname(source), "config.json")
    if not os.path.exists(cfg_path):
        for k in CONFIG_KEYS:
            if k in meta:
                errs.append("metadata: %r present without a config.json" % k)
        return
    with open(cfg_path, "rb") as f:
        cfg = json.load(f)
    aliases = {
        "hidden_size": ("hidden_size", "n_embd", "d_model"),
        "num_layers": ("num_hidden_layers", "num_layers", "n_layer"),
        "num_heads": ("num_attention_heads", "num_heads", "n_head"),
        "num_kv_heads": ("num_key_value_heads", "num_kv_heads"),
        "vocab_size": ("vocab_size",),
        "intermediate_size": ("intermediate_size", "n_inner"),
        "max_position_embeddings": ("max_position_embeddings", "n_positions"),
        "rope_theta": ("rope_theta",),
        "rms_norm_eps": ("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"),
    }
    for key, names in aliases.items():
        v = next((cfg[k] for k in names if k in cfg), None)
        if v is None or isinstance(v, bool):
            continue
        if key in META_F32 and is_number(v) and not math.isfinite(f32(v)):
            # the contract: a value a reader cannot hold as f32 is left out
            if key in meta:
                errs.append("metadata: %s %r written, but config.json's %r is outside the "
                            "f32 range" % (key, meta[key], v))
            continue
        if key not in meta:
            errs.append("metadata: %r missing although config.json has it" % key)
        elif key in META_F32:
            if not is_number(meta[key]) or f32(meta[key]) != f32(v):
                errs.append("metadata: %s %r, config.json %r" % (key, meta[key], v))
        elif meta[key] != v:
            errs.append("metadata: %s %r, config.json %r" % (key, meta[key], v))
    # architecture is the model family (config.json's model_type); the class name
    # (architectures[0]) is hf_architecture
    arch = cfg.get("architectures")
    if isinstance(arch, list) and arch and isinstance(arch[0], str):
        if meta.get("hf_architecture") != arch[0]:
            errs.append("metadata: hf_architecture %r, config.json architectures[0] %r"
                        % (meta.get("hf_architecture"), arch[0]))
    elif "hf_architecture" in meta:
        errs.append("metadata: hf_architecture present without architectures in config.json")
    mt = cfg.get("model_type")
    if isinstance(mt, str):
        if meta.get("architecture") != mt:
            errs.append("metadata: architecture %r, config.json model_type %r"
                        % (meta.get("architecture"), mt))
    elif "architecture" in meta:
        errs.append("metadata: architecture present without model_type in config.json")


# ---------------------------------------------------------------- main


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description="independent APR v2 reader/checker")
    ap.add_argument("file")
    ap.add_argument("--source")
    ap.add_argument("--tolerance-check", action="store_true",
                    help="skip the byte-exact re-encoding, keep the precision checks")
    ap.add_argument("--root", help="metadata 'source' must be SOURCE relative to ROOT")
    ap.add_argument("--variant", help="expected variant (default: from the file name)")
    ap.add_argument("--exact-limit", type=int, default=300000)
    ap.add_argument("--max-errors", type=int, default=40)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--stats-json", metavar="OUT",
                    help="with --source: write {name: {mse, rel_rmse}} for the float "
                    "tensors with finite values to OUT")
    args = ap.parse_args(argv)

    errors = []
    try:
        with open(args.file, "rb") as f:
            data = f.read()
        c = parse_container(data, errors)
        variant = c["variant"]
        base = os.path.basename(args.file)
        parts = base.split(".")
        name_variant = parts[-2] if len(parts) >= 3 and parts[-1] == "apr" else None
        expect = args.variant or (name_variant if name_variant in VARIANTS else None)
        if expect and expect != variant:
            errors.append("variant %s (metadata), expected %s" % (variant, expect))
        entries = c["entries"]
        if args.source:
            src = read_source(args.source)
            meta = c["meta"]
            names = {e.name for e in entries}
            for k in sorted(set(src) - names):
                errors.append("%s: source tensor missing from the file" % k)
            for k in sorted(names - set(src)):
                errors.append("%s: tensor not in the source" % k)
            if meta.get("param_count") != sum(t.n for t in src.values()):
                errors.append("metadata: param_count %r, the source has %d elements"
                              % (meta.get("param_count"), sum(t.n for t in src.values())))
            check_config(meta, args.source, errors)
            if args.root:
                rel = os.path.relpath(os.path.realpath(args.source),
                                      os.path.realpath(args.root))
                if meta.get("source") != rel:
                    errors.append("metadata: source %r, want %r" % (meta.get("source"), rel))
            ctx = {"variant": variant, "nf4_b": c["nf4_b"] or 64,
                   "exact": not args.tolerance_check, "exact_limit": args.exact_limit,
                   "mix": q4km_facts(meta, list(src)),
                   "weighted": "imatrix" in (meta.get("quantization") or {})}
            d0 = c["data_offset"]
            stats = {}
            for e in entries:
                if e.name not in src:
                    continue
                blob = data[d0 + e.offset:d0 + e.offset + e.size]
                try:
                    check_tensor(e, src[e.name], blob, ctx, errors)
                except Fail as x:
                    errors.append("%s: %s" % (e.name, x))
                except Exception as x:  # a malformed blob must fail, not crash
                    errors.append("%s: cannot check: %s: %s" % (e.name, type(x).__name__, x))
                st = src[e.name]
                if args.stats_json and st.dtype in ST_FLOAT and st.n:
                    xs = decode_floats(st.raw(), st.dtype)
                    ys = decode_any(e, blob, ctx["nf4_b"])
                    if ys is not None and all(map(math.isfinite, xs)):
                        mse = math.fsum((x - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
                        stats[e.name] = {"mse": mse, "rel_rmse": rel_rmse(xs, ys)}
            if args.stats_json:
                with open(args.stats_json, "w") as f:
                    json.dump(stats, f, indent=1, sort_keys=True)
    except Fail as x:
        errors.insert(0, str(x))
    except OSError as x:
        errors.insert(0, str(x))
    if errors:
        for m in errors[:args.max_errors]:
            print("FAIL: %s: %s" % (args.file, m))
        if len(errors) > args.max_errors:
            print("FAIL: ... and %d more" % (len(errors) - args.max_errors))
        return 1
    if not args.quiet:
        for m in NOTES:
            print("note: %s" % m, file=sys.stderr)
        print("OK: %d tensors" % len(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
