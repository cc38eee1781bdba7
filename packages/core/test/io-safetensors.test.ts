import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataError } from '../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  type SafetensorsTensor,
  writeSafetensorsFile,
} from '../src/io/index.js';

const enc = new TextEncoder();
const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** Builds a safetensors file by hand, exactly as the format defines: u64 LE length, JSON header, data. */
function build(
  header: unknown,
  data: Uint8Array | number[] = [],
  opts: { pad?: boolean; rawHeader?: string } = {},
) {
  let json = enc.encode(opts.rawHeader ?? JSON.stringify(header));
  if (opts.pad) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Little-endian bytes of float32 values. */
function f32le(...values: number[]): number[] {
  const b = new Uint8Array(values.length * 4);
  const dv = new DataView(b.buffer);
  for (const [i, v] of values.entries()) dv.setFloat32(i * 4, v, true);
  return [...b];
}

function expectError(fn: () => unknown, code: string, ...fragments: (string | RegExp)[]): StrataError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected an error').toBeInstanceOf(StrataError);
  const e = caught as StrataError;
  expect(e.code).toBe(code);
  for (const f of fragments) expect(e.message).toMatch(f);
  return e;
}

const bitsOf = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

describe('encodeSafetensors layout', () => {
  it('matches a hand-built buffer byte for byte', () => {
    const tensors = new Map<string, SafetensorsTensor>([
      ['a', { dtype: 'I32', shape: [1, 1], data: new Int32Array([7]) }],
      ['c', { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) }],
    ]);
    const bytes = encodeSafetensors(tensors, { format: 'strata' });
    // F32 ranks above I32 in the reference storage order, so "c" comes first despite its name.
    const headerJson =
      '{"__metadata__":{"format":"strata"},' +
      '"c":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"a":{"dtype":"I32","shape":[1,1],"data_offsets":[8,12]}}';
    const expected = build(JSON.parse(headerJson), [...f32le(1.5, -2), 7, 0, 0, 0], {
      pad: true,
      rawHeader: headerJson,
    });
    expect([...bytes]).toEqual([...expected]);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(bytes.length).toBe(8 + n + 12);
    // Padding is spaces, which JSON ignores.
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd()).toBe(headerJson);
  });

  it('matches the reference Python library byte for byte (fixtures/reference.safetensors)', async () => {
    const reference = new Uint8Array(await readFile(join(fixtures, 'reference.safetensors')));
    // The same tensors as fixtures/make-reference-safetensors.py, inserted in a different order.
    const tensors = new Map<string, SafetensorsTensor>([
      ['mask', { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) }],
      ['u8', { dtype: 'U8', shape: [3], data: new Uint8Array([0, 1, 255]) }],
      ['f16', { dtype: 'F16', shape: [4], data: new Float32Array([1, -2, 65504, 2 ** -24]) }],
      ['i32', { dtype: 'I32', shape: [2], data: new Int32Array([-7, 2 ** 31 - 1]) }],
      ['i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) }],
      ['f64', { dtype: 'F64', shape: [2], data: new Float64Array([1 / 3, -1e300]) }],
      [
        'wte.weight',
        { dtype: 'F32', shape: [2, 3], data: new Float32Array([1.5, -2, 0, -0, 1e-45, 3.4028235e38]) },
      ],
      ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([3]) }],
      ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
      ['ln_f.bias', { dtype: 'F32', shape: [2], data: new Float32Array([0.25, -0.5]) }],
    ]);
    expect(encodeSafetensors(tensors, { format: 'pt', note: 'reference' })).toEqual(reference);
    const file = decodeSafetensors(reference);
    expect(file.metadata).toEqual({ format: 'pt', note: 'reference' });
    for (const [name, t] of tensors) {
      const d = file.tensors.get(name)!;
      expect(d.dtype, name).toBe(t.dtype);
      expect(d.shape, name).toEqual(t.shape);
      expect(d.data, name).toEqual(t.data);
    }
  });

  it('omits __metadata__ when there is none and sorts one dtype by name', () => {
    const t = (v: number): SafetensorsTensor => ({ dtype: 'U8', shape: [1], data: new Uint8Array([v]) });
    const bytes = encodeSafetensors(
      new Map([
        ['z', t(1)],
        ['B', t(2)],
        ['a', t(3)],
        ['_', t(4)],
        ['9', t(5)],
        ['10', t(6)],
      ]),
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).not.toContain('__metadata__');
    expect(new TextDecoder().decode(encodeSafetensors(new Map(), {}))).toContain('{"__metadata__":{}}');
    // Header order = data order = name order (integer-like names are not moved first as in a JS object).
    const keys = [...text.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(keys).toEqual(['10', '9', 'B', '_', 'a', 'z']);
    expect([...bytes.subarray(8 + n)]).toEqual([6, 5, 2, 4, 3, 1]);
  });

  it('rejects data that does not match dtype or shape', () => {
    const one = (t: Partial<SafetensorsTensor>) =>
      encodeSafetensors(
        new Map([['w', { dtype: 'F32', shape: [2], data: new Float32Array(2), ...t } as SafetensorsTensor]]),
      );
    expectError(() => one({ shape: [3] }), 'E_SAFETENSORS', /"w"/, /3 elements but data has 2/);
    expectError(() => one({ data: new Float64Array(2) }), 'E_SAFETENSORS', /needs a Float32Array/);
    expectError(() => one({ shape: [-2] }), 'E_SAFETENSORS', /non-negative/);
    expectError(() => one({ dtype: 'F8' as never }), 'E_SAFETENSORS', /unknown dtype/);
    expectError(
      () =>
        encodeSafetensors(new Map([['__metadata__', { dtype: 'U8', shape: [0], data: new Uint8Array() }]])),
      'E_SAFETENSORS',
      /reserved/,
    );
  });
});

describe('decodeSafetensors', () => {
  it('decodes a file constructed byte by byte from the spec', () => {
    // Unpadded header, data at an odd offset so the typed arrays must be copied to aligned memory.
    const header = {
      w: { dtype: 'F32', shape: [2, 2], data_offsets: [1, 17] },
      c: { dtype: 'U8', shape: [], data_offsets: [0, 1] },
      __metadata__: { note: 'hand made' },
    };
    const raw = build(header, [42, ...f32le(1, 2, 3, 4)]);
    // Place the file at an odd byteOffset inside a larger buffer.
    const shifted = new Uint8Array(raw.length + 3);
    shifted.set(raw, 3);
    const file = decodeSafetensors(shifted.subarray(3));
    expect(file.metadata).toEqual({ note: 'hand made' });
    const w = file.tensors.get('w')!;
    expect(w.dtype).toBe('F32');
    expect(w.shape).toEqual([2, 2]);
    expect(w.data).toBeInstanceOf(Float32Array);
    expect([...w.data]).toEqual([1, 2, 3, 4]);
    expect(file.tensors.get('c')).toEqual({ dtype: 'U8', shape: [], data: new Uint8Array([42]) });
  });

  it('round-trips every dtype bit-exactly, including NaN payloads, -0 and denormals', () => {
    const f32 = new Float32Array(
      new Uint32Array([0x7fc00001, 0xffbfffff, 0x7f800001, 0x80000000, 1, 0x807fffff, 0x7f7fffff]).buffer,
    );
    const f64 = new Float64Array([-0, Number.MIN_VALUE, Number.NaN, Infinity, 1 / 3]);
    new DataView(f64.buffer).setBigUint64(16, 0x7ff0000000000abcn, true); // signalling NaN with payload
    const tensors = new Map<string, SafetensorsTensor>([
      ['f32', { dtype: 'F32', shape: [7], data: f32 }],
      ['f64', { dtype: 'F64', shape: [5], data: f64 }],
      ['i64', { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) }],
      ['u64', { dtype: 'U64', shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) }],
      ['i32', { dtype: 'I32', shape: [3], data: new Int32Array([-1, 2 ** 31 - 1, -(2 ** 31)]) }],
      ['u32', { dtype: 'U32', shape: [1], data: new Uint32Array([0xffffffff]) }],
      ['i16', { dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) }],
      ['u16', { dtype: 'U16', shape: [1], data: new Uint16Array([65535]) }],
      ['i8', { dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) }],
      ['u8', { dtype: 'U8', shape: [2, 1], data: new Uint8Array([0, 255]) }],
      ['bool', { dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) }],
      ['empty', { dtype: 'F32', shape: [0, 5], data: new Float32Array(0) }],
      ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([3]) }],
    ]);
    const decoded = decodeSafetensors(encodeSafetensors(tensors));
    expect([...decoded.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const d = decoded.tensors.get(name)!;
      expect(d.dtype).toBe(t.dtype);
      expect(d.shape).toEqual(t.shape);
      expect(d.data.constructor).toBe(t.data.constructor);
      const a = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      const b = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength);
      expect([...b], name).toEqual([...a]);
    }
  });

  it('converts F16 and BF16 to float32 exactly, and encodes them with round-to-nearest-even', () => {
    // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, Inf, NaN with payload 1.
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7c01]);
    // BF16: 1, -2, largest finite, smallest subnormal, NaN.
    const bf16 = new Uint16Array([0x3f80, 0xc000, 0x7f7f, 0x0001, 0x7fc1]);
    const file = decodeSafetensors(
      encodeSafetensors(
        new Map<string, SafetensorsTensor>([
          ['h', { dtype: 'F16', shape: [7], data: f16 }],
          ['b', { dtype: 'BF16', shape: [5], data: bf16 }],
        ]),
      ),
    );
    const h = file.tensors.get('h')!;
    expect(h.dtype).toBe('F16');
    expect(h.data).toBeInstanceOf(Float32Array);
    expect([...h.data].slice(0, 6)).toEqual([1, -2, 65504, 2 ** -24, -0, Infinity]);
    expect(Object.is(h.data[4], -0)).toBe(true);
    expect(bitsOf(h.data as Float32Array)[6]).toBe(0x7f802000);
    const b = file.tensors.get('b')!.data as Float32Array;
    expect([...b].slice(0, 4)).toEqual([1, -2, 3.3895313892515355e38, 2 ** -133]);
    expect(bitsOf(b)[4]).toBe(0x7fc10000);

    // Re-encoding the float32 values gives back the original bit patterns.
    const again = encodeSafetensors(
      new Map<string, SafetensorsTensor>([
        ['h', { dtype: 'F16', shape: [7], data: h.data }],
        ['b', { dtype: 'BF16', shape: [5], data: b }],
      ]),
    );
    expect(again).toEqual(
      encodeSafetensors(
        new Map<string, SafetensorsTensor>([
          ['h', { dtype: 'F16', shape: [7], data: f16 }],
          ['b', { dtype: 'BF16', shape: [5], data: bf16 }],
        ]),
      ),
    );

    // Rounding: ties to even, overflow to infinity, underflow to zero.
    const roundF16 = (v: number) => {
      const out = decodeSafetensors(
        encodeSafetensors(new Map([['x', { dtype: 'F16', shape: [1], data: new Float32Array([v]) }]])),
      );
      return out.tensors.get('x')!.data[0];
    };
    expect(roundF16(1 + 2 ** -11)).toBe(1); // tie → even (1.0)
    expect(roundF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9); // tie → even (up)
    expect(roundF16(65520)).toBe(Infinity);
    expect(roundF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal → 0
    expect(roundF16(1.5 * 2 ** -25)).toBe(2 ** -24);
    expect(roundF16(Number.NaN)).toBeNaN();
  });

  const dataRegion = f32le(1, 2);
  const goodEntry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const corruptions: [string, () => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', () => new Uint8Array(5), /5 bytes long/],
    [
      'a header length beyond the file',
      () => {
        const b = build({ w: goodEntry }, dataRegion);
        new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true);
        return b;
      },
      /exceeds the file size/,
    ],
    [
      'an absurd header length',
      () => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
        return b;
      },
      /absurd/,
    ],
    [
      'a header that is not JSON',
      () => build(null, dataRegion, { rawHeader: '{"w": {' }),
      /not valid UTF-8 JSON/,
    ],
    [
      'a header that is not UTF-8',
      () => {
        const b = build({ w: goodEntry }, dataRegion);
        b[10] = 0xff;
        return b;
      },
      /not valid UTF-8 JSON/,
    ],
    ['a header that is an array', () => build([1, 2]), /not a JSON object/],
    ['a header that is a string', () => build('x'), /not a JSON object/],
    ['an entry that is not an object', () => build({ w: 3 }), /"w": entry is not an object/],
    [
      'a missing dtype',
      () => build({ w: { shape: [2], data_offsets: [0, 8] } }, dataRegion),
      /missing "dtype"/,
    ],
    [
      'a non-string dtype',
      () => build({ w: { ...goodEntry, dtype: 4 } }, dataRegion),
      /"dtype" is not a string/,
    ],
    [
      'an unknown dtype',
      () => build({ w: { ...goodEntry, dtype: 'F8_E4M3' } }, dataRegion),
      /unknown dtype "F8_E4M3"/,
    ],
    [
      'a missing shape',
      () => build({ w: { dtype: 'F32', data_offsets: [0, 8] } }, dataRegion),
      /missing "shape"/,
    ],
    [
      'a shape that is not an array',
      () => build({ w: { ...goodEntry, shape: 2 } }, dataRegion),
      /not an array/,
    ],
    [
      'a negative dim',
      () => build({ w: { ...goodEntry, shape: [-2] } }, dataRegion),
      /non-negative integers/,
    ],
    [
      'a fractional dim',
      () => build({ w: { ...goodEntry, shape: [1.5] } }, dataRegion),
      /non-negative integers/,
    ],
    ['a string dim', () => build({ w: { ...goodEntry, shape: ['2'] } }, dataRegion), /non-negative integers/],
    [
      'missing data_offsets',
      () => build({ w: { dtype: 'F32', shape: [2] } }, dataRegion),
      /missing "data_offsets"/,
    ],
    [
      'data_offsets of length 3',
      () => build({ w: { ...goodEntry, data_offsets: [0, 4, 8] } }, dataRegion),
      /pair/,
    ],
    [
      'negative data_offsets',
      () => build({ w: { ...goodEntry, data_offsets: [-8, 0] } }, dataRegion),
      /non-negative/,
    ],
    [
      'data_offsets ending before they begin',
      () => build({ w: { ...goodEntry, data_offsets: [8, 0] } }, dataRegion),
      /end before/,
    ],
    [
      'data_offsets beyond the data',
      () => build({ w: { ...goodEntry, shape: [4], data_offsets: [0, 16] } }, dataRegion),
      /outside the 8-byte data region/,
    ],
    [
      'a huge claimed tensor',
      () => build({ w: { ...goodEntry, shape: [2 ** 40, 2 ** 40], data_offsets: [0, 2 ** 52] } }, dataRegion),
      /outside/,
    ],
    [
      'a byte length that does not match the shape',
      () => build({ w: { ...goodEntry, shape: [3] } }, dataRegion),
      /needs 12 bytes but data_offsets span 8/,
    ],
    [
      'an overflowing shape product',
      () =>
        build(
          {
            w: {
              ...goodEntry,
              shape: [
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
                2 ** 52,
              ],
            },
          },
          dataRegion,
        ),
      /needs .* bytes but data_offsets span 8/,
    ],
    [
      'overlapping tensors',
      () =>
        build(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          dataRegion,
        ),
      /overlaps/,
    ],
    [
      'a gap between tensors',
      () =>
        build(
          {
            a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
            b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] },
          },
          dataRegion,
        ),
      /gap in the data region: no tensor covers bytes 4\.\.6/,
    ],
    [
      'trailing bytes after the tensors',
      () => build({ w: goodEntry }, [...dataRegion, 0, 0]),
      /trailing bytes/,
    ],
    ['data without tensors', () => build({}, [1]), /cover only 0/],
    [
      'non-string metadata',
      () => build({ __metadata__: { a: 1 }, w: goodEntry }, dataRegion),
      /metadata value "a" is not a string/,
    ],
    [
      'metadata that is not an object',
      () => build({ __metadata__: ['a'], w: goodEntry }, dataRegion),
      /"__metadata__" is not an object/,
    ],
  ];

  it.each(corruptions)('rejects %s with E_SAFETENSORS naming the source', (_what, make, message) => {
    expectError(
      () => decodeSafetensors(make(), 'bad/model.safetensors'),
      'E_SAFETENSORS',
      /^bad\/model\.safetensors /,
      message,
    );
  });

  it('accepts an empty file (no tensors) and zero-size tensors sharing an offset', () => {
    expect(decodeSafetensors(build({})).tensors.size).toBe(0);
    const file = decodeSafetensors(
      build(
        {
          e1: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
          w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          e2: { dtype: 'I64', shape: [3, 0], data_offsets: [4, 4] },
          v: { dtype: 'U8', shape: [1], data_offsets: [4, 5] },
        },
        [...f32le(9), 7],
      ),
    );
    expect(file.tensors.get('e2')!.data).toEqual(new BigInt64Array(0));
    expect([...file.tensors.get('w')!.data]).toEqual([9]);
    expect([...file.tensors.get('v')!.data]).toEqual([7]);
  });

  it('does not let a __proto__ key touch prototypes', () => {
    const file = decodeSafetensors(
      build({ __metadata__: JSON.parse('{"__proto__": "x"}'), ['__proto__']: goodEntry }, dataRegion, {
        rawHeader:
          '{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
      }),
    );
    expect(Object.getOwnPropertyNames(file.metadata)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value).toBe('x');
    expect([...file.tensors.get('__proto__')!.data]).toEqual([1, 2]);
    const again = decodeSafetensors(encodeSafetensors(file.tensors, file.metadata));
    expect([...again.tensors.keys()]).toEqual(['__proto__']);
    expect(Object.getOwnPropertyNames(again.metadata)).toEqual(['__proto__']);
  });
});

describe('safetensors files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-st-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes atomically and reads back', async () => {
    const path = join(dir, 'sub', 'w.safetensors');
    const tensors = new Map<string, SafetensorsTensor>([
      ['w', { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) }],
    ]);
    await writeSafetensorsFile(path, tensors, { k: 'v' });
    await writeSafetensorsFile(path, tensors, { k: 'v2' });
    expect(await readdir(join(dir, 'sub'))).toEqual(['w.safetensors']); // no temporaries left
    const file = await readSafetensorsFile(path);
    expect(file.metadata).toEqual({ k: 'v2' });
    expect([...file.tensors.get('w')!.data]).toEqual([1, 2, 3]);
    expect(new Uint8Array(await readFile(path))).toEqual(encodeSafetensors(tensors, { k: 'v2' }));
  });

  it('names the file in errors', async () => {
    const path = join(dir, 'trunc.safetensors');
    await writeFile(path, new Uint8Array([1, 2, 3]));
    await expect(readSafetensorsFile(path)).rejects.toMatchObject({
      code: 'E_SAFETENSORS',
      message: expect.stringContaining(path),
    });
    await expect(readSafetensorsFile(join(dir, 'missing.safetensors'))).rejects.toMatchObject({
      code: 'E_IO',
      message: expect.stringMatching(/cannot read .*missing\.safetensors: no such file/),
    });
  });
});
