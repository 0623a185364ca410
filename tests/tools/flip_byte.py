#!/usr/bin/env python3
"""flip_byte.py - corrupt APR files for the tests (standard library only).

  flip_byte.py flip FILE OFFSET [-o OUT] [--xor MASK] [--fix-crc]
      XOR the byte at OFFSET (negative counts from the end) with MASK (default 0x01),
      writing OUT (default: FILE in place). --fix-crc then recomputes the header checksum
      and the footer CRC so that only the semantic checks can notice the change.
  flip_byte.py plan FILE N
      print about N offsets spread over every section of FILE, one "OFFSET<TAB>SECTION"
      a line: the first and last byte, every section's first and last byte, padding bytes
      when there are any, and evenly spaced bytes in between. The section layout is read
      from the header alone (the file must be valid).
"""

import argparse
import struct
import sys
import zlib


def align64(n):
    return (n + 63) & ~63


def fix_crcs(b):
    h = b[:64]
    struct.pack_into("<I", b, 40, zlib.crc32(bytes(h[0:40]) + bytes(h[44:64])))
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))


def sections(b):
    """[(start, end, label)] covering the whole file."""
    meta_size = struct.unpack_from("<I", b, 20)[0]
    index_off, data_off = struct.unpack_from("<QQ", b, 24)
    count = struct.unpack_from("<I", b, 8)[0]
    size = len(b)
    out = [(0, 40, "header"), (40, 44, "header-checksum"), (44, 64, "header-reserved"),
           (64, 64 + meta_size, "metadata"), (64 + meta_size, index_off, "metadata-padding")]
    p = index_off
    ents = []
    for _ in range(count):
        nl = struct.unpack_from("<H", b, p)[0]
        ndim = b[p + 2 + nl + 1]
        q = p + 2 + nl + 2 + 8 * ndim
        off, sz = struct.unpack_from("<QQ", b, q)
        ents.append((off, sz))
        p = q + 16
    out += [(index_off, p, "index"), (p, data_off, "index-padding")]
    for off, sz in sorted(ents):
        if sz:
            out.append((data_off + off, data_off + off + sz, "tensor-data"))
            out.append((data_off + off + sz, data_off + off + align64(sz), "tensor-padding"))
    out.append((size - 4, size, "footer"))
    return [s for s in out if s[1] > s[0]]


def plan(b, n):
    secs = sections(b)
    picks = {}
    for s, e, label in secs:
        picks.setdefault(s, label)
        picks.setdefault(e - 1, label)
    # fill up with evenly spaced offsets
    size = len(b)
    extra = max(0, n - len(picks))
    for k in range(extra):
        off = (size - 1) * (k + 1) // (extra + 1)
        label = next(l for s, e, l in secs if s <= off < e)
        picks.setdefault(off, label)
    items = sorted(picks.items())
    if len(items) > n:
        # keep the first, the last, and a spread of the others, every section represented
        keep = {0: items[0], len(items) - 1: items[-1]}
        seen = set()
        for i, (off, label) in enumerate(items):
            if label not in seen:
                seen.add(label)
                keep[i] = (off, label)
        rest = [i for i in range(len(items)) if i not in keep]
        room = max(0, n - len(keep))
        for j in range(room):
            i = rest[j * len(rest) // room]
            keep[i] = items[i]
        items = [keep[i] for i in sorted(keep)]
    return items


def main(argv):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flip")
    f.add_argument("file")
    f.add_argument("offset", type=int)
    f.add_argument("-o", "--out")
    f.add_argument("--xor", default="0x01")
    f.add_argument("--fix-crc", action="store_true")
    p = sub.add_parser("plan")
    p.add_argument("file")
    p.add_argument("n", type=int)
    a = ap.parse_args(argv)
    with open(a.file, "rb") as fh:
        b = bytearray(fh.read())
    if a.cmd == "plan":
        for off, label in plan(b, a.n):
            print("%d\t%s" % (off, label))
        return 0
    off = a.offset if a.offset >= 0 else len(b) + a.offset
    if not 0 <= off < len(b):
        print("flip_byte.py: offset %d outside the file (%d bytes)" % (a.offset, len(b)),
              file=sys.stderr)
        return 2
    b[off] ^= int(a.xor, 0)
    if a.fix_crc:
        fix_crcs(b)
    with open(a.out or a.file, "wb") as fh:
        fh.write(b)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
