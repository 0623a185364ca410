#!/usr/bin/env python3
"""gguf_ref.py - an independent GGUF reader and dequantizer for aprfs' tests, standard
library only, written from the GGUF specification (ggml docs/gguf.md, llama.cpp's gguf.cpp)
and GGML's block layouts (ggml-common.h, ggml-quants.c's dequantize_row_*).

    gguf_ref.py FILE.gguf                 header, metadata and tensor table as JSON
    gguf_ref.py --table FILE.gguf         the tensor table only, one line, exactly as
                                          tests/tools/gguf-js/gguf_table.mjs prints it
    gguf_ref.py --check FILE.gguf         also verify what llama.cpp's writer guarantees
                                          (tensors back to back in order, zero padding,
                                          file ends at the padded end); exit 1 naming a fault
    gguf_ref.py --dequant NAME FILE.gguf  tensor NAME as little-endian f32 on stdout

Dequantization rounds to float32 after every operation, in GGML's order (a scale product
such as d*sc once per sub-block, then the element's product, then at most one addition or
subtraction), so its bytes are GGML's. Python computes in double and each result is
rounded to float32 (array('f')): for one +, - or * of float32 operands that is the
correctly rounded float32 result, since double has more than 2*24+2 bits. When both
operands of Q4_1/Q5_1's q*d + m are NaN the product's NaN is kept (what GGML's builds
give). F32, F16 and BF16 are converted bit for bit (F16 NaNs quieted, payload kept).

GGUF facts used: magic "GGUF", u32 version (1, 2 or 3; v1 wrote tensor/KV counts, string
and array lengths and tensor dimensions as u32, v2 made them u64, v3 added big-endian
files, detectable only by the byte order of the version, which this reader refuses);
u32 value types 0..12, arrays holding a u32 element type, a count and the elements (arrays
of arrays allowed); tensor infos of name, u32 n_dims, dims (ne[0] the row length), u32
GGML type, u64 offset relative to the data section; the data section starts at the end of
the infos rounded up to general.alignment (u32, default 32).
"""
import json
import math
import operator
import struct
import sys
from array import array

# ---- GGML types: id -> (name, elements per block, bytes per block) ----

GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
    28: ("F64", 1, 8), 30: ("BF16", 1, 2),
}

VALUE_TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr",
               "u64", "i64", "f64"]
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 10: "<Q",
          11: "<q", 12: "<d"}


class GGUFError(Exception):
    pass


class Reader:
    def __init__(self, data, version=3):
        self.d = data
        self.at = 0
        self.version = version

    def take(self, n, what):
        if n < 0 or self.at + n > len(self.d):
            raise GGUFError(f"{what} at byte {self.at} runs past the end of the file")
        b = self.d[self.at:self.at + n]
        self.at += n
        return b

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def size(self, what):
        """A count or length: u32 in GGUF v1, u64 since v2."""
        return self.unpack("<I" if self.version == 1 else "<Q", what)

    def string(self, what):
        n = self.size(what + " length")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise GGUFError(f"{what} is not valid UTF-8: {e}") from None

    def value(self, vtype, what, depth=0):
        if vtype in SCALAR:
            return self.unpack(SCALAR[vtype], what)
        if vtype == 7:
            b = self.unpack("<B", what)
            if b > 1:
                raise GGUFError(f"{what}: bool byte {b} is neither 0 nor 1")
            return bool(b)
        if vtype == 8:
            return self.string(what)
        if vtype == 9:
            if depth > 64:
                raise GGUFError(f"{what}: arrays nested too deep")
            etype = self.unpack("<I", what + " element type")
            if etype >= len(VALUE_TYPES):
                raise GGUFError(f"{what}: unknown array element type {etype}")
            n = self.size(what + " count")
            if n > len(self.d):
                raise GGUFError(f"{what}: array count {n} exceeds the file size")
            items = [self.value(etype, f"{what}[{i}]", depth + 1) for i in range(n)]
            return {"elem": VALUE_TYPES[etype], "value": items}
        raise GGUFError(f"{what}: unknown value type {vtype}")


def parse(data):
    """The file's header, metadata and tensor infos, validated against the spec."""
    r = Reader(data)
    if r.take(4, "magic") != b"GGUF":
        raise GGUFError("not a GGUF file (magic is not 'GGUF')")
    version = r.unpack("<I", "version")
    if version & 0xFFFF == 0 and version:
        raise GGUFError(f"version {version:#x}: a big-endian file, not supported")
    if version not in (1, 2, 3):
        raise GGUFError(f"unsupported GGUF version {version}")
    r.version = version
    n_tensors = r.size("tensor count")
    n_kv = r.size("metadata count")

    kv = {}
    for i in range(n_kv):
        k = r.string(f"key {i}")
        if k in kv:
            raise GGUFError(f"duplicate key '{k}'")
        vtype = r.unpack("<I", f"type of '{k}'")
        if vtype >= len(VALUE_TYPES):
            raise GGUFError(f"key '{k}': unknown value type {vtype}")
        v = r.value(vtype, f"'{k}'")
        if vtype == 9:
            kv[k] = {"type": "arr", "elem": v["elem"], "value": v["value"]}
        else:
            kv[k] = {"type": VALUE_TYPES[vtype], "value": v}

    alignment = 32
    if "general.alignment" in kv:
        a = kv["general.alignment"]
        if a["type"] != "u32":
            raise GGUFError(f"general.alignment is {a['type']}, not u32")
        alignment = a["value"]
        if alignment == 0 or alignment & (alignment - 1):
            raise GGUFError(f"general.alignment {alignment} is not a power of two")

    tensors, names = [], set()
    for i in range(n_tensors):
        name = r.string(f"tensor {i} name")
        if name in names:
            raise GGUFError(f"duplicate tensor name '{name}'")
        names.add(name)
        n_dims = r.unpack("<I", f"'{name}' n_dims")
        if n_dims > 4:
            raise GGUFError(f"'{name}': {n_dims} dimensions (at most 4)")
        ne = [r.size(f"'{name}' dimension {d}") for d in range(n_dims)]
        t = r.unpack("<I", f"'{name}' type")
        if t not in GGML_TYPES:
            raise GGUFError(f"'{name}': unknown GGML type {t}")
        tname, be, bb = GGML_TYPES[t]
        offset = r.unpack("<Q", f"'{name}' offset")
        nelem = math.prod(ne)
        if ne and ne[0] % be:
            raise GGUFError(f"'{name}': row length {ne[0]} is not a multiple of {tname}'s "
                            f"block of {be}")
        if offset % alignment:
            raise GGUFError(f"'{name}': offset {offset} is not a multiple of {alignment}")
        tensors.append({"name": name, "type": tname, "type_id": t, "ne": ne,
                        "offset": offset, "nelem": nelem, "nbytes": nelem // be * bb})

    infos_end = r.at
    data_offset = -(-infos_end // alignment) * alignment if n_tensors else infos_end
    if data_offset > len(data):
        raise GGUFError("the data section starts past the end of the file")
    spans = sorted((t["offset"], t["offset"] + t["nbytes"], t["name"]) for t in tensors)
    for (b0, e0, n0), (b1, _, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise GGUFError(f"'{n0}' and '{n1}' overlap")
    for t in tensors:
        t["abs_offset"] = data_offset + t["offset"]
        if t["abs_offset"] + t["nbytes"] > len(data):
            raise GGUFError(f"'{t['name']}' runs past the end of the file")
    return {"version": version, "alignment": alignment, "data_offset": data_offset,
            "infos_end": infos_end, "tensor_count": n_tensors, "kv_count": n_kv, "kv": kv,
            "tensors": tensors, "file_size": len(data)}


def table(g):
    """The tensor table as gguf_table.mjs prints it."""
    return {"version": g["version"], "alignment": g["alignment"],
            "data_offset": g["data_offset"],
            "tensors": [{"name": t["name"], "type": t["type"], "ne": t["ne"],
                         "offset": t["offset"], "abs_offset": t["abs_offset"]}
                        for t in g["tensors"]]}


def check(g, data):
    """What llama.cpp's writer guarantees beyond the spec; a list of faults."""
    faults = []
    a, at = g["alignment"], 0
    if any(data[g["infos_end"]:g["data_offset"]]):
        faults.append("padding before the data section is not zero")
    for t in g["tensors"]:
        if t["offset"] != at:
            faults.append(f"'{t['name']}' at offset {t['offset']}, expected {at}")
        end = t["abs_offset"] + t["nbytes"]
        padded = -(-t["nbytes"] // a) * a
        if any(data[end:t["abs_offset"] + padded]):
            faults.append(f"padding after '{t['name']}' is not zero")
        if len(t["name"].encode()) >= 64:
            faults.append(f"'{t['name']}': name of 64 bytes or more")
        at = t["offset"] + padded
    if g["data_offset"] + at != len(data):
        faults.append(f"file is {len(data)} bytes, the padded data ends at "
                      f"{g['data_offset'] + at}")
    return faults


# ---- dequantization ----

def r32(values):
    """Each value rounded to float32 (C's double -> float conversion, round to nearest)."""
    return array("f", values)


def f32(x):
    return array("f", [x])[0]


def f16_bits_to_f32_bits(h):
    """IEEE binary16 -> binary32 bits, exact; NaNs quieted with their payload kept."""
    sign, e, m = (h & 0x8000) << 16, (h >> 10) & 0x1F, h & 0x3FF
    if e == 0x1F:
        return sign | 0x7F800000 | (m << 13) | (0x400000 if m else 0)
    if e:
        return sign | ((e + 112) << 23) | (m << 13)
    if m == 0:
        return sign
    e = 113  # subnormal: shift the leading one into the implicit bit
    while not m & 0x400:
        m <<= 1
        e -= 1
    return sign | (e << 23) | ((m & 0x3FF) << 13)


F16_BITS = None


def f16(h):
    global F16_BITS
    if F16_BITS is None:
        F16_BITS = array("I", (f16_bits_to_f32_bits(i) for i in range(65536)))
    return struct.unpack("<f", struct.pack("<I", F16_BITS[h]))[0]


def u16(b, at):
    return b[at] | b[at + 1] << 8


def nib32(qs, e):
    """32-element blocks: element e (< 16) is byte e's low nibble, e+16 its high one."""
    return qs[e] & 15 if e < 16 else qs[e - 16] >> 4


def low2(qs, e):
    """Q2_K/Q3_K: element e = 128h + 32k + l has bits 2k..2k+1 of byte 32h + l."""
    return qs[32 * (e // 128) + e % 32] >> (2 * (e % 128 // 32)) & 3


def k4_scale_min(s, j):
    """Q4_K/Q5_K: sub-block j's 6-bit scale and min from the 12 packed bytes."""
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 15) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4


def blocks_32(raw, bb, fn):
    """Per element of 32-element blocks: fn(block) -> (a list, code list, b list or None)."""
    A, Q, B = [], [], []
    for i in range(0, len(raw), bb):
        a, q, b = fn(raw[i:i + bb])
        A += a
        Q += q
        if b is not None:
            B += b
    return A, Q, B


def q8_0(b):
    d = f16(u16(b, 0))
    return [d] * 32, list(struct.unpack("<32b", b[2:34])), None


def q4_0(b):
    d = f16(u16(b, 0))
    return [d] * 32, [nib32(b[2:], e) - 8 for e in range(32)], None


def q4_1(b):
    d, m = f16(u16(b, 0)), f16(u16(b, 2))
    return [d] * 32, [nib32(b[4:], e) for e in range(32)], [m] * 32


def q5_0(b):
    d, qh = f16(u16(b, 0)), struct.unpack("<I", b[2:6])[0]
    return [d] * 32, [(nib32(b[6:], e) | (qh >> e & 1) << 4) - 16 for e in range(32)], None


def q5_1(b):
    d, m, qh = f16(u16(b, 0)), f16(u16(b, 2)), struct.unpack("<I", b[4:8])[0]
    return [d] * 32, [nib32(b[8:], e) | (qh >> e & 1) << 4 for e in range(32)], [m] * 32


def q2_k(b):
    d, dmin = f16(u16(b, 80)), f16(u16(b, 82))
    A, Q, B = [], [], []
    for j in range(16):  # sub-block j: elements 16j..16j+15, scale byte j
        dl, ml = f32(d * (b[j] & 15)), f32(dmin * (b[j] >> 4))
        A += [dl] * 16
        B += [ml] * 16
        Q += [low2(b[16:80], e) for e in range(16 * j, 16 * j + 16)]
    return A, Q, B


def q3_k(b):
    d = f16(u16(b, 108))
    s = b[96:108]
    A, Q = [], []
    for j in range(16):
        # 6-bit scale: low nibble in byte j%8 (high half for j >= 8), top two bits in
        # byte 8 + j%4 at bit 2*(j//4); stored +32
        sc = ((s[j % 8] >> (4 * (j // 8)) & 15) | (s[8 + j % 4] >> (2 * (j // 4)) & 3) << 4)
        A += [f32(d * (sc - 32))] * 16
        # high bit of element e: bit e//32 of hmask byte e%32; clear means minus 4
        Q += [low2(b[32:96], e) - (0 if b[e % 32] >> (e // 32) & 1 else 4)
              for e in range(16 * j, 16 * j + 16)]
    return A, Q, None


def q4_k(b):
    d, dmin = f16(u16(b, 0)), f16(u16(b, 2))
    A, Q, B = [], [], []
    for j in range(8):  # element e = 64c + 32h + l: byte 16 + 32c + l, nibble h
        sc, m = k4_scale_min(b[4:16], j)
        A += [f32(d * sc)] * 32
        B += [f32(dmin * m)] * 32
        c, h = j // 2, j % 2
        Q += [b[16 + 32 * c + l] >> (4 * h) & 15 for l in range(32)]
    return A, Q, B


def q5_k(b):
    d, dmin = f16(u16(b, 0)), f16(u16(b, 2))
    A, Q, B = [], [], []
    for j in range(8):  # as Q4_K, plus bit 2c + h of qh byte 16 + l (+16)
        sc, m = k4_scale_min(b[4:16], j)
        A += [f32(d * sc)] * 32
        B += [f32(dmin * m)] * 32
        c, h = j // 2, j % 2
        Q += [(b[48 + 32 * c + l] >> (4 * h) & 15) + 16 * (b[16 + l] >> (2 * c + h) & 1)
              for l in range(32)]
    return A, Q, B


def q6_k(b):
    d = f16(u16(b, 208))
    A, Q = [], []
    for e in range(256):
        # element e = 128h + 32k + l: low nibble in ql byte 64h + l + 32(k&1) (high half
        # for k >= 2), two bits in qh byte 128 + 32h + l at bit 2k; int8 scale e//16
        h, k, l = e // 128, e % 128 // 32, e % 32
        lo = b[64 * h + l + 32 * (k & 1)] >> (4 if k >= 2 else 0) & 15
        hi = b[128 + 32 * h + l] >> (2 * k) & 3
        sc = struct.unpack("<b", b[192 + e // 16:193 + e // 16])[0]
        A.append(f32(d * sc))
        Q.append((lo | hi << 4) - 32)
    return A, Q, None


# type -> (block decoder, how the per-element term B combines: "add", "sub" or None)
QUANT = {"Q8_0": (q8_0, None), "Q4_0": (q4_0, None), "Q4_1": (q4_1, "add"),
         "Q5_0": (q5_0, None), "Q5_1": (q5_1, "add"), "Q2_K": (q2_k, "sub"),
         "Q3_K": (q3_k, None), "Q4_K": (q4_k, "sub"), "Q5_K": (q5_k, "sub"),
         "Q6_K": (q6_k, None)}


def add_pm(p, m):
    # both NaN: the product's NaN (GGML's x0*d + m as its builds compile it)
    return p if p != p and m != m else p + m


def dequant(t, raw):
    """Tensor t's elements as little-endian float32 bytes."""
    name = t["type"]
    if name == "F32":
        return bytes(raw)
    if name in ("F16", "BF16"):
        f16(0)
        h = array("H", raw)
        if sys.byteorder != "little":
            h.byteswap()
        y = array("I", (F16_BITS[v] for v in h) if name == "F16" else (v << 16 for v in h))
        if sys.byteorder != "little":
            y.byteswap()
        return y.tobytes()
    if name not in QUANT:
        raise GGUFError(f"'{t['name']}': {name} is not a type this tool dequantizes")
    fn, combine = QUANT[name]
    A, Q, B = blocks_32(raw, GGML_TYPES[t["type_id"]][2], fn)
    y = r32(map(operator.mul, A, Q))  # (scale) * code, rounded
    if combine == "add":
        y = r32(map(add_pm, y, B))
    elif combine == "sub":
        y = r32(map(operator.sub, y, B))
    if sys.byteorder != "little":
        y.byteswap()
    return y.tobytes()


def main(argv):
    mode, name, args = "json", None, argv[1:]
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt in ("--table", "--check"):
            mode = opt[2:]
        elif opt == "--dequant" and args:
            mode, name = "dequant", args.pop(0)
        else:
            args = []
            break
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    path = args[0]
    try:
        with open(path, "rb") as f:
            data = f.read()
        g = parse(data)
        if mode == "dequant":
            t = next((t for t in g["tensors"] if t["name"] == name), None)
            if t is None:
                raise GGUFError(f"no tensor named '{name}'")
            out = dequant(t, data[t["abs_offset"]:t["abs_offset"] + t["nbytes"]])
            sys.stdout.buffer.write(out)
            return 0
        if mode == "check":
            faults = check(g, data)
            if faults:
                raise GGUFError("; ".join(faults))
            print("ok")
            return 0
        if mode == "table":
            print(json.dumps(table(g), separators=(",", ":"), ensure_ascii=False))
            return 0
        full = table(g)
        for t, src in zip(full["tensors"], g["tensors"]):
            t["nbytes"] = src["nbytes"]
        full.update(tensor_count=g["tensor_count"], kv_count=g["kv_count"], kv=g["kv"])
        print(json.dumps(full, indent=1, ensure_ascii=False))
        return 0
    except (OSError, GGUFError) as e:
        sys.stderr.write(f"gguf_ref.py: {path}: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
