#!/usr/bin/env python3
"""gguf_hostile.py - GGUF files that lie, one defect each: the class of llama.cpp's GGUF
parser CVEs (counts and lengths past the end or overflowing, shapes that overflow, bad
types, misaligned or overlapping offsets, bad UTF-8, truncation). Standard library only.

usage: gguf_hostile.py OUTDIR
writes OUTDIR/<case>.gguf for every case, OUTDIR/ok.gguf (a valid file the cases are
variations of), and OUTDIR/EXPECTED: "<case>.gguf<TAB><substring of the refusal message>".
"""

import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
T_F32, T_Q4_K = 0, 12
M64 = (1 << 64) - 1


def gstr(s):
    b = s if isinstance(s, bytes) else s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


def tinfo(name, ne, ttype, off):
    return (gstr(name) + struct.pack("<I", len(ne)) +
            b"".join(struct.pack("<Q", d & M64) for d in ne) + struct.pack("<IQ", ttype, off))


def base_kvs():
    return [kv("general.architecture", STRING, gstr("llama")),
            kv("llama.embedding_length", U32, struct.pack("<I", 64)),
            kv("tokenizer.ggml.tokens", ARRAY,
               struct.pack("<IQ", STRING, 2) + gstr("a") + gstr("b"))]


def build(kvs=None, infos=None, data=None, nt=None, nkv=None, magic=b"GGUF", version=3,
          align=32):
    kvs = base_kvs() if kvs is None else kvs
    if infos is None:
        infos = [tinfo("w", [256, 16], T_F32, 0), tinfo("b", [256], T_F32, 16384)]
        data = bytes(16384 + 1024)
    head = magic + struct.pack("<IQQ", version, len(infos) if nt is None else nt,
                               len(kvs) if nkv is None else nkv)
    head += b"".join(kvs) + b"".join(infos)
    head += bytes(-len(head) % align)
    return head + (data or b"")


def cases():
    ok = build()
    yield "ok", ok, None
    yield "bad-magic", build(magic=b"GGUG"), "not a GGUF file"
    yield "version-1", build(version=1), "version 1 is not supported"
    yield "version-4", build(version=4), "version 4 is not supported"
    yield "big-endian", build(version=3 << 24), "is not supported"
    yield "empty-file", b"", "truncated"
    yield "truncated-header", ok[:70], "truncated"
    yield "counts-beyond-file", ok[:30], "key/value pairs claimed"
    unpadded = len(build(align=1)) - 16384 - 1024  # magic, counts, key/values, tensor infos
    yield "truncated-infos", ok[:unpadded - 5], "truncated"
    yield "truncated-data", ok[:-1000], "run past the end of the file"
    yield "tensor-count-huge", build(nt=1 << 62), "tensors claimed"
    yield "tensor-count-max", build(nt=M64), "tensors claimed"
    yield "kv-count-huge", build(nkv=1 << 60), "key/value pairs claimed"
    yield "kv-count-max", build(nkv=M64), "key/value pairs claimed"
    yield "key-length-past-end", build(kvs=[struct.pack("<Q", 1 << 40) + b"x"]), "truncated"
    yield "key-length-max", build(kvs=[struct.pack("<Q", M64) + b"x"]), "truncated"
    yield "key-too-long", build(kvs=[kv("k" * 70000, U8, b"\0")]), "(at most 65535)"
    # Found by fuzz_gguf: a repeated general.name whose length is cut short freed the
    # first value twice (the duplicate is only seen after all keys are read).
    name_twice = base_kvs() + [kv("general.name", STRING, gstr("a")),
                               gstr("general.name") + struct.pack("<I", STRING)]
    yield "name-repeated-truncated", (b"GGUF" + struct.pack("<IQQ", 3, 0, len(name_twice)) +
                                      b"".join(name_twice) + b"\x01\x00\x00"), "truncated"
    yield "string-value-past-end", build(kvs=[kv("general.name", STRING,
                                                struct.pack("<Q", 1 << 50))]), "truncated"
    yield "array-length-past-end", build(kvs=[kv("x.arr", ARRAY,
                                                struct.pack("<IQ", U32, 1 << 61))]), \
        "does not fit in the file"
    yield "array-length-overflow", build(kvs=[kv("x.arr", ARRAY,
                                                struct.pack("<IQ", U64, M64))]), \
        "does not fit in the file"
    yield "string-array-past-end", build(kvs=[kv("x.arr", ARRAY,
                                                struct.pack("<IQ", STRING, 1 << 40))]), \
        "does not fit in the file"
    deep = struct.pack("<IQ", ARRAY, 1) * 9 + struct.pack("<IQ", U8, 0)
    yield "arrays-too-deep", build(kvs=[kv("x.deep", ARRAY, deep)]), "nested deeper"
    yield "unknown-value-type", build(kvs=[kv("x.y", 13, b"")]), "unknown value type 13"
    yield "unknown-array-type", build(kvs=[kv("x.y", ARRAY, struct.pack("<IQ", 77, 1))]), \
        "unknown array element type 77"
    yield "duplicate-key", build(kvs=base_kvs() + [kv("llama.embedding_length", U32,
                                                       struct.pack("<I", 8))]), \
        "duplicate key 'llama.embedding_length'"
    yield "empty-key", build(kvs=[kv("", U8, b"\0")]), "empty key"
    yield "bad-utf8-key", build(kvs=[kv(b"x\xc0\xaf", U8, b"\0")]), "not valid UTF-8"
    yield "alignment-not-pow2", build(kvs=base_kvs() + [kv("general.alignment", U32,
                                                           struct.pack("<I", 48))]), \
        "not a power of two"
    yield "alignment-zero", build(kvs=base_kvs() + [kv("general.alignment", U32,
                                                       struct.pack("<I", 0))]), \
        "not a power of two"
    yield "alignment-wrong-type", build(kvs=base_kvs() + [kv("general.alignment", STRING,
                                                             gstr("32"))]), "not a u32"
    one = lambda *a: build(infos=[tinfo(*a)], data=bytes(16384))
    yield "too-many-dims", one("w", [1, 1, 1, 1, 256], T_F32, 0), "5 dimensions"
    yield "zero-dims", one("w", [], T_F32, 0), "0 dimensions"
    yield "zero-dim", one("w", [256, 0], T_F32, 0), "must be positive"
    yield "negative-dim", one("w", [256, -1], T_F32, 0), "must be positive"
    yield "elements-overflow", one("w", [1 << 32, 1 << 32, 1 << 32], T_F32, 0), \
        "element count overflows"
    yield "bytes-overflow", one("w", [1 << 62, 2], T_F32, 0), "byte size overflows"
    yield "rows-not-blocks", one("w", [100, 4], T_Q4_K, 0), "not whole Q4_K blocks"
    yield "unknown-tensor-type", one("w", [256], 99, 0), "unknown type 99"
    yield "unsupported-type", one("w", [256], 16, 0), "type IQ2_XXS is not supported"
    yield "ternary-type", one("w", [256], 35, 0), "type TQ2_0 is not supported"
    yield "offset-misaligned", one("w", [256], T_F32, 4), "not a multiple of the alignment"
    yield "offset-past-end", one("w", [256], T_F32, 1 << 40), "past the end of the file"
    yield "size-past-end", one("w", [8192], T_F32, 0), "past the end of the file"
    yield "bad-utf8-name", one(b"w\xed\xa0\x80", [256], T_F32, 0), "not valid UTF-8"
    yield "empty-name", one("", [256], T_F32, 0), "empty tensor name"
    yield "name-too-long", one("n" * 257, [256], T_F32, 0), "(at most 256)"
    two = lambda a, b: build(infos=[a, b], data=bytes(16384))
    yield "overlap", two(tinfo("a", [256, 4], T_F32, 0), tinfo("b", [256], T_F32, 1024)), \
        "overlaps"
    yield "duplicate-name", two(tinfo("a", [256], T_F32, 0), tinfo("a", [256], T_F32, 1024)), \
        "duplicate tensor name 'a'"


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[4], file=sys.stderr)
        return 2
    out = argv[0]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "EXPECTED"), "w") as exp:
        for name, data, want in cases():
            with open(os.path.join(out, name + ".gguf"), "wb") as f:
                f.write(data)
            if want:
                exp.write("%s.gguf\t%s\n" % (name, want))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
