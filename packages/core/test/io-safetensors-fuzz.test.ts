import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isStrataError } from '../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsFile,
  type SafetensorsTensor,
} from '../src/io/index.js';

const DTYPES = Object.keys(SAFETENSORS_DTYPES) as SafetensorsDtype[];
const HALF = new Set<SafetensorsDtype>(['F16', 'BF16']);

/** A random tensor whose data is random bytes, so every bit pattern (NaNs, denormals, -0) shows up. */
const tensorArb: fc.Arbitrary<SafetensorsTensor> = fc
  .record({
    dtype: fc.constantFrom(...DTYPES),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .chain(({ dtype, shape }) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const size = SAFETENSORS_DTYPES[dtype].size;
    return fc.uint8Array({ minLength: count * size, maxLength: count * size }).map((bytes) => {
      const data = new (HALF.has(dtype) ? Uint16Array : SAFETENSORS_DTYPES[dtype].array)(count);
      new Uint8Array(data.buffer).set(bytes);
      return { dtype, shape, data };
    });
  });

const tensorsArb = fc.uniqueArray(
  fc.tuple(
    fc.string({ maxLength: 6 }).filter((s) => s !== '__metadata__'),
    tensorArb,
  ),
  {
    selector: ([name]) => name,
    maxLength: 5,
  },
);
const metadataArb = fc.option(
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  {
    nil: undefined,
  },
);

const rawBytes = (d: ArrayBufferView) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** Checks that a decoded file is self-consistent and survives a re-encode unchanged. */
function checkConsistent(file: SafetensorsFile, inputLength: number): void {
  let total = 0;
  for (const t of file.tensors.values()) {
    expect(DTYPES).toContain(t.dtype);
    const count = t.shape.reduce((a, b) => a * b, 1);
    expect(t.data.length).toBe(count);
    total += count * SAFETENSORS_DTYPES[t.dtype].size;
  }
  expect(total).toBeLessThanOrEqual(inputLength);
  for (const v of Object.values(file.metadata)) expect(typeof v).toBe('string');
  const again = decodeSafetensors(encodeSafetensors(file.tensors, file.metadata));
  expect(again.tensors.size).toBe(file.tensors.size);
  for (const [name, t] of file.tensors) {
    const u = again.tensors.get(name)!;
    expect(u.shape).toEqual(t.shape);
    expect(rawBytes(u.data)).toEqual(rawBytes(t.data));
  }
}

/** Decodes `bytes`: it must either succeed consistently or throw a StrataError E_SAFETENSORS. */
function decodeOrTypedError(bytes: Uint8Array): void {
  let file: SafetensorsFile;
  try {
    file = decodeSafetensors(bytes, 'fuzz.safetensors');
  } catch (err) {
    if (!isStrataError(err)) throw err;
    expect(err.code).toBe('E_SAFETENSORS');
    expect(err.message).toContain('fuzz.safetensors');
    return;
  }
  checkConsistent(file, bytes.length);
}

const FUZZ = { numRuns: 300, interruptAfterTimeLimit: 2_000 };

const validFile = encodeSafetensors(
  new Map<string, SafetensorsTensor>([
    ['a', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
    ['b', { dtype: 'I64', shape: [2], data: new BigInt64Array([1n, -1n]) }],
    ['c', { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0x7c01, 0x8001]) }],
    ['d', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }],
  ]),
  { format: 'strata' },
);
const headerLen = Number(new DataView(validFile.buffer).getBigUint64(0, true));

describe('safetensors properties', () => {
  it('random tensors round-trip bit-exactly', () => {
    fc.assert(
      fc.property(tensorsArb, metadataArb, (entries, metadata) => {
        const tensors = new Map(entries);
        const bytes = encodeSafetensors(tensors, metadata);
        const file = decodeSafetensors(bytes);
        expect(file.metadata).toEqual(metadata ?? {});
        expect([...file.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
        for (const [name, t] of tensors) {
          const d = file.tensors.get(name)!;
          expect(d.dtype).toBe(t.dtype);
          expect(d.shape).toEqual(t.shape);
          // Half floats come back as float32 (checked below through the re-encode); the rest as stored.
          if (!HALF.has(t.dtype)) expect(rawBytes(d.data)).toEqual(rawBytes(t.data));
        }
        // Re-encoding what was decoded reproduces the file byte for byte (F16/BF16 included).
        expect(encodeSafetensors(file.tensors, metadata)).toEqual(bytes);
      }),
      FUZZ,
    );
  });

  it('random byte mutations decode consistently or throw E_SAFETENSORS', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(validFile.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (edits) => {
          const bytes = validFile.slice();
          for (const [pos, value] of edits) bytes[pos] = value;
          decodeOrTypedError(bytes);
        },
      ),
      FUZZ,
    );
  });

  it('mutations aimed at the header and its length decode consistently or throw E_SAFETENSORS', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.nat(headerLen + 7),
            fc.constantFrom(...'{}[],:"0123456789-.e '.split('').map((c) => c.charCodeAt(0))),
          ),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (edits) => {
          const bytes = validFile.slice();
          for (const [pos, value] of edits) bytes[pos] = value;
          decodeOrTypedError(bytes);
        },
      ),
      FUZZ,
    );
  });

  it('truncations and extensions throw E_SAFETENSORS', () => {
    fc.assert(
      fc.property(fc.nat(validFile.length - 1), fc.uint8Array({ maxLength: 16 }), (cut, extra) => {
        decodeOrTypedError(validFile.subarray(0, cut));
        const longer = new Uint8Array(validFile.length + extra.length);
        longer.set(validFile);
        longer.set(extra, validFile.length);
        decodeOrTypedError(longer);
      }),
      FUZZ,
    );
    // Every strict prefix is invalid.
    for (let cut = 0; cut < validFile.length; cut++)
      expect(() => decodeSafetensors(validFile.subarray(0, cut))).toThrow(/not a valid safetensors file/);
  });

  it('rewritten headers (random entries, values and JSON) decode consistently or throw E_SAFETENSORS', () => {
    const anyValue = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.integer({ min: -4, max: 64 }),
      fc.constantFrom(...DTYPES, 'F8_E5M2', ''),
    );
    const entryArb = fc.record(
      {
        dtype: fc.oneof(fc.constantFrom(...DTYPES), anyValue),
        shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 6 }), { maxLength: 3 }), anyValue),
        data_offsets: fc.oneof(
          fc.tuple(fc.integer({ min: -2, max: 40 }), fc.integer({ min: -2, max: 40 })),
          anyValue,
        ),
      },
      { requiredKeys: [] },
    );
    const headerArb = fc.oneof(
      fc.dictionary(
        fc.oneof(fc.string({ maxLength: 3 }), fc.constant('__metadata__')),
        fc.oneof(entryArb, anyValue),
        {
          maxKeys: 4,
        },
      ),
      fc.jsonValue({ maxDepth: 3 }),
    );
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ maxLength: 40 }), fc.boolean(), (header, data, pad) => {
        let json = new TextEncoder().encode(JSON.stringify(header) ?? '');
        if (pad) {
          const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
          padded.set(json);
          json = padded;
        }
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        decodeOrTypedError(bytes);
      }),
      FUZZ,
    );
  });

  it('fully random bytes throw E_SAFETENSORS (or decode consistently)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodeOrTypedError(bytes)),
      FUZZ,
    );
  });
});
