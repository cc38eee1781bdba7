/**
 * The Hugging Face safetensors format, read strictly (files may be untrusted) and written like the
 * reference Python library.
 *
 * Layout: an 8-byte little-endian unsigned integer `N`, then `N` bytes of UTF-8 JSON (padded with spaces
 * to a multiple of 8 bytes), then the data region. The JSON maps each tensor name to
 * `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`, byte offsets relative to the start of
 * the data region, and may hold `"__metadata__": {string: string}`. Tensor data is row-major (C order),
 * little-endian; the tensors must cover the data region exactly, without gaps or overlaps.
 *
 * @module
 */
import * as fsp from 'node:fs/promises';
import { StrataError } from '../errors.js';
import { ioError, writeFileAtomic } from './atomic.js';

/** Element types of the safetensors format that Strata reads and writes. */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/** The typed arrays that hold safetensors data (per {@link SafetensorsDtype}: see {@link SAFETENSORS_DTYPES}). */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/**
 * One tensor: its element type, its shape (`[]` for a scalar) and its elements in row-major order
 * (`data.length` = product of `shape`).
 *
 * `data` is the typed array listed in {@link SAFETENSORS_DTYPES}, except for the half-precision types:
 * `F16` and `BF16` tensors are decoded to a `Float32Array` (exactly; NaN payloads kept), and are encoded from
 * a `Float32Array` (rounded to nearest, ties to even) or from a `Uint16Array` of raw bit patterns.
 */
export interface SafetensorsTensor {
  /** Element type as named in the file header, e.g. `F32`. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (`[]` for a scalar). */
  shape: number[];
  /** The elements in row-major order (see above for F16/BF16). */
  data: SafetensorsData;
}

/**
 * A decoded safetensors file: tensors by name (in storage order), and the `__metadata__` string map (`{}`
 * when absent).
 */
export interface SafetensorsFile {
  /** Tensors by name, in storage order. */
  tensors: Map<string, SafetensorsTensor>;
  /** The header's `__metadata__` string map (`{}` when absent). */
  metadata: Record<string, string>;
}

/** How a dtype is stored: bytes per element in a file, and the typed array that holds it in memory. */
export interface SafetensorsDtypeInfo {
  /** Bytes per element in the file. */
  size: number;
  /** Constructor of the in-memory typed array. */
  array: {
    /** Allocates a zero-filled array of `length` elements. */
    new (length: number): SafetensorsData;
    /** The constructor's name, e.g. `Float32Array` (for error messages). */
    readonly name: string;
  };
}

/** Bytes per element and in-memory typed array of each dtype (F16/BF16: see {@link SafetensorsTensor}). */
export const SAFETENSORS_DTYPES: Readonly<Record<SafetensorsDtype, Readonly<SafetensorsDtypeInfo>>> = {
  F64: { size: 8, array: Float64Array },
  F32: { size: 4, array: Float32Array },
  F16: { size: 2, array: Float32Array },
  BF16: { size: 2, array: Float32Array },
  I64: { size: 8, array: BigInt64Array },
  I32: { size: 4, array: Int32Array },
  I16: { size: 2, array: Int16Array },
  I8: { size: 1, array: Int8Array },
  U64: { size: 8, array: BigUint64Array },
  U32: { size: 4, array: Uint32Array },
  U16: { size: 2, array: Uint16Array },
  U8: { size: 1, array: Uint8Array },
  BOOL: { size: 1, array: Uint8Array },
};

/** Largest header the decoder accepts (100 MB); real headers are kilobytes. */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

/**
 * Storage order of the reference implementation: larger (more aligned) dtypes first, so every tensor in the
 * data region is aligned to its element size. Index = rank; written in descending rank.
 */
const DTYPE_RANK: readonly SafetensorsDtype[] = [
  'BOOL',
  'U8',
  'I8',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
];
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.hasOwn(SAFETENSORS_DTYPES, s);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A name from a file, quoted and shortened for an error message. */
function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/** A shape for an error message, shortened when a file claims absurdly many dimensions. */
function formatShape(shape: readonly unknown[]): string {
  const dims = shape.length > 8 ? [...shape.slice(0, 8), `... (${shape.length} dims)`] : shape;
  return `[${dims.join(', ')}]`;
}

/** Reverses the byte order of each `size`-byte element of `bytes` in place (for big-endian hosts). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

// ---------------------------------------------------------------------------------------------------------
// Half-precision conversions (bit-exact; NaN payloads kept where they fit)

/** float16 bit pattern → float32 bit pattern (exact). */
function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal: normalize the mantissa.
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** float32 bit pattern → float16 bit pattern, rounding to nearest, ties to even; NaN stays NaN. */
function f32ToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | (mant >>> 13 || 0x200);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = full & ((1 << shift) - 1);
    let m = full >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

/** float32 bit pattern → bfloat16 bit pattern, rounding to nearest, ties to even; NaN stays NaN. */
function f32ToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    const hi = bits >>> 16;
    return (hi & 0x7f) === 0 ? hi | 0x40 : hi;
  }
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Decodes little-endian 16-bit half floats (`F16` or `BF16`) to float32. */
function halfToFloat32(raw: Uint16Array, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(raw.length);
  const bits = new Uint32Array(out.buffer);
  if (dtype === 'BF16') for (let i = 0; i < raw.length; i++) bits[i] = raw[i]! << 16;
  else for (let i = 0; i < raw.length; i++) bits[i] = f16ToF32Bits(raw[i]!);
  return out;
}

/** Encodes float32 values as 16-bit half floats (`F16` or `BF16`). */
function float32ToHalf(values: Float32Array, dtype: 'F16' | 'BF16'): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  const convert = dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

/** Product of `shape`, validated as a list of non-negative safe integers. */
function elementCount(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
  }
  // Products past 2^53 are imprecise but still far larger than any real buffer, which is all callers compare.
  return Number.isFinite(n) ? n : Number.MAX_VALUE;
}

/** The bytes (little-endian) that store `t` in a file, checking that `data` fits `dtype` and `shape`. */
function tensorBytes(name: string, t: SafetensorsTensor): Uint8Array {
  const fail = (what: string) =>
    new StrataError('E_SAFETENSORS', `cannot encode tensor ${quote(name)}: ${what}`);
  if (!isDtype(t.dtype)) throw fail(`unknown dtype ${quote(String(t.dtype))}`);
  const n = elementCount(t.shape);
  if (n === undefined)
    throw fail(
      `shape ${Array.isArray(t.shape) ? formatShape(t.shape) : String(t.shape)} is not a list of non-negative integers`,
    );
  let data: SafetensorsData = t.data;
  const half = t.dtype === 'F16' || t.dtype === 'BF16';
  if (half && data instanceof Float32Array) data = float32ToHalf(data, t.dtype as 'F16' | 'BF16');
  const expected = half ? Uint16Array : SAFETENSORS_DTYPES[t.dtype].array;
  if (!(data instanceof expected)) {
    const allowed = half ? 'Float32Array or Uint16Array' : expected.name;
    throw fail(`dtype ${t.dtype} needs a ${allowed}, got ${data?.constructor?.name ?? typeof data}`);
  }
  if (data.length !== n)
    throw fail(`shape ${formatShape(t.shape)} has ${n} elements but data has ${data.length}`);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN_HOST) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, SAFETENSORS_DTYPES[t.dtype].size);
  return copy;
}

/**
 * Serializes tensors to safetensors bytes, byte for byte as the reference Python/Rust library does: tensors
 * are stored contiguously from offset 0, ordered by element size (8-byte dtypes first, so each tensor is
 * aligned to its element size) and then by name (UTF-8 byte order; for a single dtype, plain name order);
 * the JSON header lists `__metadata__` first (when `metadata` is given, even empty) and then the tensors in
 * storage order, and is padded with spaces to a multiple of 8 bytes.
 *
 * @param tensors tensors by name (`__metadata__` is reserved).
 * @param metadata optional string-to-string map stored as `__metadata__`.
 * @returns the complete file content.
 * @throws StrataError `E_SAFETENSORS` when a tensor's data does not match its dtype or shape.
 */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const utf8 = (s: string) => Buffer.from(s, 'utf8');
  const names = [...tensors.keys()].sort(
    (a, b) =>
      DTYPE_RANK.indexOf(tensors.get(b)!.dtype) - DTYPE_RANK.indexOf(tensors.get(a)!.dtype) ||
      Buffer.compare(utf8(a), utf8(b)),
  );
  // Serialized entry by entry, not through an object, so that names keep their order (an object would put
  // integer-like names first) and a name like `__proto__` stays an ordinary key.
  const header: [string, unknown][] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== 'string')
        throw new StrataError('E_SAFETENSORS', `cannot encode metadata ${quote(k)}: values must be strings`);
    header.push([METADATA_KEY, { ...metadata }]);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY)
      throw new StrataError('E_SAFETENSORS', `cannot encode a tensor named "${METADATA_KEY}" (reserved)`);
    const t = tensors.get(name)!;
    const bytes = tensorBytes(name, t);
    header.push([
      name,
      { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] },
    ]);
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(
    `{${header.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`,
  );
  const headerLen = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.fill(0x20, 8, 8 + headerLen);
  out.set(json, 8);
  let pos = 8 + headerLen;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Decoding

/** A header entry that passed validation. */
interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses safetensors bytes, validating everything a file could lie about. Nothing is allocated beyond the
 * size of `bytes`; each tensor is copied into its own aligned typed array (file offsets need not be aligned).
 *
 * @param bytes the whole file.
 * @param source a name for error messages (the file path).
 * @throws StrataError `E_SAFETENSORS` naming `source` and the problem: a file shorter than 8 bytes, a header
 *   length beyond the file or over {@link SAFETENSORS_MAX_HEADER_BYTES}, a header that is not UTF-8 JSON
 *   or not an object, an entry with a missing or invalid dtype, shape or data_offsets, an unknown dtype,
 *   a byte length that is not product(shape) × dtype size, offsets outside the data region, overlapping
 *   or leaving gaps, or metadata values that are not strings.
 */
export function decodeSafetensors(bytes: Uint8Array, source = '<buffer>'): SafetensorsFile {
  const fail = (what: string) =>
    new StrataError('E_SAFETENSORS', `${source} is not a valid safetensors file: ${what}`);
  if (bytes.length < 8) throw fail(`it is ${bytes.length} bytes long, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const claimed = view.getBigUint64(0, true);
  if (claimed > BigInt(SAFETENSORS_MAX_HEADER_BYTES))
    throw fail(`header length ${claimed} is absurd (the limit is ${SAFETENSORS_MAX_HEADER_BYTES} bytes)`);
  const headerLen = Number(claimed);
  if (8 + headerLen > bytes.length)
    throw fail(`header length ${headerLen} exceeds the file size (${bytes.length} bytes; truncated?)`);

  let header: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
    header = JSON.parse(text);
  } catch (err) {
    throw fail(`header is not valid UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isPlainObject(header)) throw fail('header is not a JSON object');

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw, fail);
      continue;
    }
    entries.push(parseEntry(name, raw, dataLen, fail));
  }

  // The entries must tile [0, dataLen) exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const e of sorted) {
    if (e.begin > covered)
      throw fail(`gap in the data region: no tensor covers bytes ${covered}..${e.begin}`);
    if (e.begin < covered)
      throw fail(`tensor ${quote(e.name)} (bytes ${e.begin}..${e.end}) overlaps another tensor`);
    covered = e.end;
  }
  if (covered !== dataLen)
    throw fail(`the data region has ${dataLen} bytes but the tensors cover only ${covered} (trailing bytes)`);

  const tensors = new Map<string, SafetensorsTensor>(); // in storage order
  for (const e of sorted) {
    const src = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: copyTensorData(src, e.dtype) });
  }
  return { tensors, metadata };
}

/** Validates the `__metadata__` entry: a JSON object of strings. */
function parseMetadata(raw: unknown, fail: (what: string) => StrataError): Record<string, string> {
  if (!isPlainObject(raw)) throw fail(`"${METADATA_KEY}" is not an object`);
  for (const [k, v] of Object.entries(raw))
    if (typeof v !== 'string') throw fail(`metadata value ${quote(k)} is not a string`);
  return Object.fromEntries(Object.entries(raw)) as Record<string, string>;
}

/** Validates one tensor entry of the header against the size of the data region. */
function parseEntry(name: string, raw: unknown, dataLen: number, fail: (what: string) => StrataError): Entry {
  const bad = (what: string) => fail(`tensor ${quote(name)}: ${what}`);
  if (!isPlainObject(raw)) throw bad('entry is not an object');
  const { dtype, shape, data_offsets: offsets } = raw;
  if (dtype === undefined) throw bad('missing "dtype"');
  if (typeof dtype !== 'string') throw bad('"dtype" is not a string');
  if (!isDtype(dtype)) throw bad(`unknown dtype ${quote(dtype)}`);
  if (shape === undefined) throw bad('missing "shape"');
  if (!Array.isArray(shape)) throw bad('"shape" is not an array');
  const n = elementCount(shape);
  if (n === undefined) throw bad('"shape" must hold non-negative integers');
  if (offsets === undefined) throw bad('missing "data_offsets"');
  if (!Array.isArray(offsets) || offsets.length !== 2) throw bad('"data_offsets" is not a [begin, end] pair');
  const [begin, end] = offsets as unknown[];
  if (
    !Number.isSafeInteger(begin) ||
    !Number.isSafeInteger(end) ||
    (begin as number) < 0 ||
    (end as number) < 0
  )
    throw bad('"data_offsets" must be non-negative integers');
  const b = begin as number;
  const e = end as number;
  if (e < b) throw bad(`data_offsets [${b}, ${e}] end before they begin`);
  if (e > dataLen) throw bad(`data_offsets [${b}, ${e}] lie outside the ${dataLen}-byte data region`);
  const expected = n * SAFETENSORS_DTYPES[dtype].size;
  if (expected !== e - b)
    throw bad(
      `shape ${formatShape(shape)} of ${dtype} needs ${expected} bytes but data_offsets span ${e - b}`,
    );
  return { name, dtype, shape: shape as number[], begin: b, end: e };
}

/** Copies little-endian tensor bytes into a fresh, aligned typed array of the dtype's in-memory type. */
function copyTensorData(src: Uint8Array, dtype: SafetensorsDtype): SafetensorsData {
  const info = SAFETENSORS_DTYPES[dtype];
  const count = src.length / info.size;
  const half = dtype === 'F16' || dtype === 'BF16';
  const out = half ? new Uint16Array(count) : new info.array(count);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  outBytes.set(src);
  if (!LITTLE_ENDIAN_HOST) swapBytes(outBytes, info.size);
  return half ? halfToFloat32(out as Uint16Array, dtype) : out;
}

// ---------------------------------------------------------------------------------------------------------
// Files

/**
 * Reads and decodes a safetensors file (see {@link decodeSafetensors}); errors name `path`.
 *
 * @throws StrataError `E_IO` when the file cannot be read, `E_SAFETENSORS` when it is invalid.
 */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(path);
  } catch (err) {
    throw ioError(err, 'read', path);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * Encodes tensors (see {@link encodeSafetensors}) and writes them to `path` atomically
 * (see {@link writeFileAtomic}).
 *
 * @throws StrataError `E_SAFETENSORS` for invalid tensors, `E_IO` when the file cannot be written.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: ReadonlyMap<string, SafetensorsTensor>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
