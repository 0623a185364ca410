// gguf_table.mjs - the ecosystem's GGUF reader (@huggingface/gguf) on a local file: prints
// the tensor table as one line of JSON, in exactly the form `gguf_ref.py --table` prints,
// so the tests can compare the two readers byte for byte.
//   node tests/tools/gguf-js/gguf_table.mjs FILE.gguf
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";

// Integers arrive as BigInt (u64 fields) or Number; both print as plain JSON integers.
function int(v, what) {
	const n = typeof v === "bigint" ? v : BigInt(v);
	if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} ${n} exceeds 2^53`);
	return Number(n);
}

const file = process.argv[2];
if (!file || process.argv.length !== 3) {
	process.stderr.write("usage: node gguf_table.mjs FILE.gguf\n");
	process.exit(2);
}
try {
	const { metadata, tensorInfos, tensorDataOffset } = await gguf(file, { allowLocalFile: true });
	const dataOffset = int(tensorDataOffset, "data offset");
	const table = {
		version: int(metadata.version, "version"),
		alignment: int(metadata["general.alignment"] ?? 32, "alignment"),
		data_offset: dataOffset,
		tensors: tensorInfos.map((t) => ({
			name: t.name,
			type: GGMLQuantizationType[t.dtype] ?? `GGML_TYPE_${t.dtype}`,
			ne: t.shape.map((d) => int(d, `${t.name} dimension`)),
			offset: int(t.offset, `${t.name} offset`),
			abs_offset: dataOffset + int(t.offset, `${t.name} offset`),
		})),
	};
	process.stdout.write(JSON.stringify(table) + "\n");
} catch (e) {
	process.stderr.write(`gguf_table.mjs: ${file}: ${e.message}\n`);
	process.exit(1);
}
