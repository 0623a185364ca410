#!/usr/bin/env python3
"""special_st.py - hand-made safetensors checkpoints for the edges of the APR v2 encodings
(standard library only). genmodel makes realistic models; this makes the corner cases the
contract's rounding rules are about.

usage: special_st.py OUTDIR
writes
  OUTDIR/special.safetensors      F32 tensors: exact rounding ties for q8/q4/nf4/ternary,
                                  f16/bf16 ties, f16 overflow/underflow, an all-zero tensor,
                                  tiny and subnormal scales, 3-D shapes, the variant-rule
                                  boundaries (4095 vs 4096 elements, 1-D, last dim not a
                                  multiple of 256, n not a multiple of the NF4 block), BOOL,
                                  and names that sort differently byte-wise than
                                  case-insensitively or in UTF-16
  OUTDIR/special16.safetensors    F16 source with inf, NaN, subnormals and bf16 ties
  OUTDIR/specialbf.safetensors    BF16 source with values beyond the f16 range and f16 ties
  OUTDIR/nonfinite.safetensors    F32 tensors big enough to be quantized holding NaN, +-inf,
                                  +-1e30 and values just beyond +-65504 (the contract:
                                  they never spread beyond their own block): "mixed",
                                  "one_nan", "all_nonfinite", and "rows.special" [16, 256]
                                  whose even rows hold specials (one row = one Q4_K/Q6_K
                                  block) beside "rows.clean", the same values without them
  OUTDIR/escaped.safetensors      names with quotes, backslashes, tabs and non-ASCII, the
                                  header \\u-escaped (surrogate pairs); rawnames: the same raw
  OUTDIR/longname.safetensors     a tensor name of 257 bytes (the contract allows 256)
  OUTDIR/name256.safetensors      a tensor name of exactly 256 bytes
"""

import json
import math
import os
import struct
import sys


def write_st(path, tensors, ascii_header=False):
    """tensors: list of (name, dtype, shape, raw bytes); ascii_header: JSON \\u escapes
    (surrogate pairs beyond the BMP) instead of raw UTF-8."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dt, shape, raw in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=ascii_header).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, raw in tensors:
            f.write(raw)


def f32s(xs):
    return struct.pack("<%df" % len(xs), *xs)


def lcg(seed):
    s = seed & 0xFFFFFFFF
    while True:
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        yield s


def gauss(n, std, seed):
    g = lcg(seed)
    out = []
    for _ in range(n):
        v = sum(next(g) / 4294967296.0 for _ in range(4)) - 2.0  # Irwin-Hall(4), var 1/3
        out.append(v * std * math.sqrt(3.0))
    return out


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
       -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
       0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
       0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]


def special(out):
    t = []
    n = 64 * 64
    # q8: maxabs 127 -> s = 1 exactly; every other value a .5 tie (away from zero)
    v = [127.0, -127.0] + [((k % 253) - 126) + 0.5 * (1 if k % 2 else -1) for k in range(n - 2)]
    t.append(("ties.q8", "F32", [64, 64], f32s(v)))
    # q4: every 32-block holds +-7 (s = 1) or +-3.5 (s = 0.5), the rest ties
    v = []
    for b in range(n // 32):
        if b % 2:
            blk = [7.0, -7.0] + [((k % 14) - 7) + 0.5 for k in range(30)]
        else:
            blk = [3.5, -3.5] + [((k % 14) - 7) * 0.25 + 0.125 * (k % 3 - 1) for k in range(30)]
        v += blk
    t.append(("ties.q4", "F32", [64, 64], f32s(v)))
    # nf4: blocks with absmax 1 holding the levels and the f32 midpoints between them
    L = [f32(x) for x in NF4]
    mids = [f32(f32(L[i] + L[i + 1]) / 2) for i in range(15)]
    pool = L + mids + [math.nextafter(m, 2) for m in mids] + [math.nextafter(m, -2)
                                                              for m in mids]
    pool = [f32(x) for x in pool]
    v = []
    for b in range(n // 64):
        blk = [1.0, -1.0] + [pool[(b * 7 + k) % len(pool)] for k in range(62)]
        v += blk
    t.append(("ties.nf4", "F32", [64, 64], f32s(v)))
    # ternary: mean|x| = 1 exactly, so x/alpha = +-0.5 ties and +-1.5 clamps
    v = [(0.5, -0.5, 1.5, -1.5)[k % 4] for k in range(n)]
    t.append(("ties.ternary", "F32", [64, 64], f32s(v)))
    # f16 / bf16 round-to-nearest-even ties, overflow, underflow, subnormals, signed zero
    v = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -11),
         65504.0, 65519.99, 65520.0, -65520.0, 1e6, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001,
         3 * 2 ** -26, 1e-9, -0.0, 0.0, 2 ** -14, 2 ** -14 - 2 ** -24, 3.3895313892515355e38,
         f32(3.4028234663852886e38), 1.17549435e-38, 1e-45, -1e-45]
    v = [f32(x) for x in v]
    t.append(("rounding.vector", "F32", [len(v)], f32s(v)))
    t.append(("zeros", "F32", [64, 64], f32s([0.0] * n)))
    t.append(("tiny", "F32", [64, 64], f32s(gauss(n, 1e-6, 3))))
    t.append(("subnormal", "F32", [64, 64], f32s([f32(x) for x in gauss(n, 1e-39, 4)])))
    t.append(("huge", "F32", [64, 64], f32s(gauss(n, 2e5, 5))))
    # variant-rule boundaries
    t.append(("rule.4095", "F32", [63, 65], f32s(gauss(4095, 0.02, 6))))
    t.append(("rule.4096_row", "F32", [1, 4096], f32s(gauss(4096, 0.02, 7))))
    t.append(("rule.4096_col", "F32", [4096, 1], f32s(gauss(4096, 0.02, 8))))
    t.append(("rule.1d_5000", "F32", [5000], f32s(gauss(5000, 0.02, 9))))
    t.append(("rule.3d", "F32", [3, 8, 256], f32s(gauss(6144, 0.02, 10))))
    t.append(("rule.48x100", "F32", [48, 100], f32s(gauss(4800, 0.02, 11))))  # 4800 % 128
    t.append(("rule.65x65", "F32", [65, 65], f32s(gauss(4225, 0.02, 12))))
    t.append(("rule.4d", "F32", [2, 2, 4, 512], f32s(gauss(8192, 0.02, 13))))
    t.append(("mask", "BOOL", [8, 8], bytes(int(i % 8 <= i // 8) for i in range(64))))
    # names: byte-wise order differs from case-insensitive and from UTF-16 order
    for name in ("B.weight", "a.weight", "\u00e9t\u00e9", "\U0001d538.bias", "\ufffd.x",
                 "a.weight.0", "a.weight_"):
        t.append((name, "F32", [2], f32s([1.0, -2.0])))
    write_st(os.path.join(out, "special.safetensors"), t)

    # F16 source
    h = [0x3C00, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x8001, 0x03FF, 0x7BFF, 0x3C01, 0x3C02,
         0x3C03, 0x3C04, 0x3C08, 0x3C18, 0x8000]
    t = [("f16.vector", "F16", [len(h)], struct.pack("<%dH" % len(h), *h)),
         ("f16.matrix", "F16", [64, 64], struct.pack("<%de" % n, *gauss(n, 0.02, 14)))]
    write_st(os.path.join(out, "special16.safetensors"), t)
    # BF16 source: beyond the f16 range, f16 ties
    b = [0x3F80, 0x4780, 0x477F, 0x4780 | 0x7F, 0x7F7F, 0xFF7F, 0x7F80, 0x7FC0, 0x0001,
         0x3380, 0x3300, 0x3F81, 0x8000]
    t = [("bf16.vector", "BF16", [len(b)], struct.pack("<%dH" % len(b), *b)),
         ("bf16.matrix", "BF16", [64, 64],
          struct.pack("<%dH" % n, *[struct.unpack("<I", struct.pack("<f", x))[0] >> 16
                                    for x in gauss(n, 0.02, 15)]))]
    write_st(os.path.join(out, "specialbf.safetensors"), t)
    # non-finite values inside quantized tensors
    v = gauss(n, 0.02, 16)
    v[5], v[100], v[2000] = float("nan"), float("inf"), float("-inf")
    w = gauss(n, 0.02, 17)
    w[33] = float("nan")
    nan, inf = float("nan"), float("inf")
    above = 65504.0 + 2.0 ** -8  # the next binary32 after 65504
    specials = {0: {17: inf}, 2: {3: nan, 200: -nan}, 4: {0: -inf}, 6: {40: 1e30, 41: -1e30},
                8: {5: above, 77: -above, 255: 65520.0, 128: -65505.0},
                10: {k: nan for k in range(256)},
                12: {k: (inf if k % 2 else -inf) for k in range(256)},
                14: {9: nan, 10: inf, 11: -1e30, 12: -3e38, 250: -inf}}
    clean = gauss(n, 0.02, 18)
    rows = list(clean)
    for r, vals in specials.items():
        for k, x in vals.items():
            rows[256 * r + k] = x
    write_st(os.path.join(out, "nonfinite.safetensors"),
             [("mixed", "F32", [64, 64], f32s(v)), ("one_nan", "F32", [64, 64], f32s(w)),
              ("all_nonfinite", "F32", [64, 64],
               f32s([(nan, inf, -inf, -nan)[k % 4] for k in range(n)])),
              ("rows.special", "F32", [16, 256], f32s(rows)),
              ("rows.clean", "F32", [16, 256], f32s(clean))])
    # names that need JSON escapes, written once raw and once \\u-escaped
    names = ("q\"uote", "back\\slash", "tab\there", "\u00e9t\u00e9", "\U0001d538.bias",
             "slash/and.dot")
    t = [(nm, "F32", [2], f32s([1.0, float(i)])) for i, nm in enumerate(names)]
    write_st(os.path.join(out, "escaped.safetensors"), t, ascii_header=True)
    write_st(os.path.join(out, "rawnames.safetensors"), t)
    write_st(os.path.join(out, "longname.safetensors"),
             [("x" * 257, "F32", [2], f32s([1.0, 2.0]))])
    write_st(os.path.join(out, "name256.safetensors"),
             [("y" * 256, "F32", [2], f32s([1.0, 2.0])), ("z", "F32", [1], f32s([3.0]))])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        sys.exit(2)
    os.makedirs(sys.argv[1], exist_ok=True)
    special(sys.argv[1])
