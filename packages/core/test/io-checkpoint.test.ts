import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError } from '../src/errors.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointData,
  encodeSafetensors,
  isCheckpointDir,
  readCheckpoint,
  readSafetensorsFile,
  type SafetensorsTensor,
  type TensorData,
  writeCheckpoint,
} from '../src/io/index.js';

let root: string;
let good: string;
let counter = 0;
const fresh = () => join(root, `ckpt${++counter}`);

function sample(): CheckpointData {
  const nanBits = new Float32Array(new Uint32Array([0x7fc00123, 0xff800001, 0x80000000, 0x00000001]).buffer);
  return {
    config: {
      format: CHECKPOINT_FORMAT,
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      family: 'gpt',
      familyVersion: '1',
      model: { dModel: 4, layers: 1, norm: { name: 'pre-ln', version: '1', options: {} } },
      tokenizer: { kind: 'byte', vocabSize: 256 },
      training: { lr: 1e-3 },
      createdBy: { '@strata/core': '0.1.0' },
      extra: [1, 2],
    },
    weights: new Map<string, TensorData>([
      ['wte', { shape: [2, 2], data: nanBits }],
      ['ln.g', { shape: [3], data: new Float32Array([1, -0, 1e-45]) }],
      ['scalar', { shape: [], data: new Float32Array([Math.PI]) }],
    ]),
    optimizer: new Map([['wte.m', { shape: [2, 2], data: new Float32Array([0.1, 0.2, 0.3, 0.4]) }]]),
    state: { step: 12, rng: [1, 2, 3, 4], data: { epoch: 0, position: 99 } },
  };
}

const bits = (t: TensorData | undefined) => [
  ...new Uint32Array(t!.data.buffer, t!.data.byteOffset, t!.data.length),
];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-ckpt-'));
  good = join(root, 'good');
  await writeCheckpoint(good, sample());
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A copy of the good checkpoint, altered by `damage`. */
async function damaged(damage: (dir: string) => Promise<unknown>): Promise<string> {
  const dir = fresh();
  await cp(good, dir, { recursive: true });
  await damage(dir);
  return dir;
}

const patchConfig = (dir: string, patch: Record<string, unknown>) =>
  readFile(join(dir, 'config.json'), 'utf8').then((text) =>
    writeFile(join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(text), ...patch })),
  );

describe('checkpoint round trip', () => {
  it('is bit-exact for weights, optimizer state, config and run state', async () => {
    const expected = sample();
    const back = await readCheckpoint(good);
    expect(back.config).toEqual(expected.config);
    expect(back.state).toEqual(expected.state);
    for (const [name, t] of expected.weights) {
      expect(back.weights.get(name)!.shape).toEqual(t.shape);
      expect(bits(back.weights.get(name))).toEqual(bits(t));
    }
    expect(bits(back.optimizer!.get('wte.m'))).toEqual(bits(expected.optimizer!.get('wte.m')));
    expect((await readdir(good)).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'optimizer.safetensors',
      'state.json',
    ]);
    expect((await readSafetensorsFile(join(good, 'model.safetensors'))).metadata).toEqual({
      format: 'strata',
      family: 'gpt',
    });
  });

  it('skips the optimizer when asked, and writes only what is given', async () => {
    expect((await readCheckpoint(good, { optimizer: false })).optimizer).toBeUndefined();
    const dir = fresh();
    const { config, weights } = sample();
    await writeCheckpoint(dir, { config, weights });
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
    const back = await readCheckpoint(dir);
    expect(back.optimizer).toBeUndefined();
    expect(back.state).toBeUndefined();
  });

  it('refuses to overwrite without the flag, and replaces with it', async () => {
    const dir = fresh();
    await writeCheckpoint(dir, sample());
    await expect(writeCheckpoint(dir, sample())).rejects.toMatchObject({
      code: 'E_IO',
      message: `${dir} exists; pass overwrite: true (CLI: --force) to replace it`,
    });
    const next = sample();
    next.state = { step: 13 };
    await writeCheckpoint(dir, next, { overwrite: true });
    expect((await readCheckpoint(dir)).state).toEqual({ step: 13 });
  });

  it('rejects invalid data before touching the disk', async () => {
    const dir = fresh();
    const bad = sample();
    bad.weights.set('oops', { shape: [3], data: new Float32Array(2) });
    await expect(writeCheckpoint(dir, bad)).rejects.toMatchObject({
      code: 'E_CHECKPOINT',
      message: expect.stringMatching(/cannot write checkpoint .*"oops".*3 elements but data has 2/),
    });
    const noFormat = sample();
    (noFormat.config as { format: string }).format = 'other';
    await expect(writeCheckpoint(dir, noFormat)).rejects.toMatchObject({ code: 'E_CHECKPOINT' });
    expect((await readdir(root)).filter((n) => n.includes(`ckpt${counter}`))).toEqual([]);
  });

  it('loads the previous checkpoint after a crash between the directory renames', async () => {
    const dir = fresh();
    await writeCheckpoint(dir, sample());
    await rename(dir, join(root, `.ckpt${counter}.old-99999999-deadbeef`));
    expect(await isCheckpointDir(dir)).toBe(true);
    expect((await readCheckpoint(dir)).state).toEqual(sample().state);
  });
});

describe('readCheckpoint errors', () => {
  const f32 = (n: number): SafetensorsTensor => ({ dtype: 'F32', shape: [n], data: new Float32Array(n) });
  const cases: [string, () => Promise<string>, RegExp][] = [
    [
      'a missing directory',
      async () => join(root, 'nope'),
      /^no checkpoint at .*nope: the directory does not exist$/,
    ],
    [
      'a file instead of a directory',
      async () => {
        const p = join(root, `file${++counter}`);
        await writeFile(p, 'x');
        return p;
      },
      /no checkpoint at .*: it is a file, not a directory/,
    ],
    [
      'a missing config.json',
      () => damaged((d) => rm(join(d, 'config.json'))),
      /no checkpoint at .*: config\.json is missing/,
    ],
    [
      'a config.json that is not JSON',
      () => damaged((d) => writeFile(join(d, 'config.json'), '{"format": ')),
      /config\.json is not valid JSON/,
    ],
    [
      'a config.json that is not UTF-8',
      () => damaged((d) => writeFile(join(d, 'config.json'), new Uint8Array([0x7b, 0xff, 0x7d]))),
      /config\.json is not valid JSON/,
    ],
    [
      'a config.json that is an array',
      () => damaged((d) => writeFile(join(d, 'config.json'), '[]')),
      /config\.json is not valid: expected a JSON object/,
    ],
    [
      'a config.json over 10 MB',
      () => damaged((d) => writeFile(join(d, 'config.json'), `{"pad": "${' '.repeat(10_000_001)}"}`)),
      /config\.json is too large \(10000012 bytes; the limit is 10000000\)/,
    ],
    [
      'a config.json of another program',
      () => damaged((d) => writeFile(join(d, 'config.json'), JSON.stringify({ model_type: 'gpt2' }))),
      /config\.json is not a Strata checkpoint \(its "format" is null, expected "strata-checkpoint"\)/,
    ],
    [
      'a newer format version',
      () => damaged((d) => patchConfig(d, { formatVersion: 2 })),
      /config\.json was written by a newer Strata \(format version 2\); this one reads version 1 — upgrade @strata\/cli/,
    ],
    [
      'a bad format version',
      () => damaged((d) => patchConfig(d, { formatVersion: '1' })),
      /"formatVersion" must be a positive integer/,
    ],
    [
      'a missing family',
      () => damaged((d) => patchConfig(d, { family: undefined })),
      /config\.json: "family" must be a non-empty string/,
    ],
    [
      'a model that is not an object',
      () => damaged((d) => patchConfig(d, { model: 3 })),
      /config\.json: "model" must be an object/,
    ],
    [
      'bad createdBy',
      () => damaged((d) => patchConfig(d, { createdBy: { a: 1 } })),
      /"createdBy" must be an object of strings/,
    ],
    [
      'a missing model.safetensors',
      () => damaged((d) => rm(join(d, 'model.safetensors'))),
      /checkpoint .* is incomplete: .*model\.safetensors is missing/,
    ],
    [
      'a truncated model.safetensors',
      () => damaged((d) => truncate(join(d, 'model.safetensors'), 100)),
      /checkpoint .* is damaged: .*model\.safetensors is not a valid safetensors file: /,
    ],
    [
      'a model.safetensors whose header lies about offsets',
      () => damaged((d) => writeFile(join(d, 'model.safetensors'), lyingFile())),
      /model\.safetensors is not a valid safetensors file: tensor "w": data_offsets \[0, 4000\] lie outside/,
    ],
    [
      'non-F32 weights',
      () =>
        damaged((d) =>
          writeFile(
            join(d, 'model.safetensors'),
            encodeSafetensors(new Map([['w', { dtype: 'F16', shape: [1], data: new Uint16Array(1) }]])),
          ),
        ),
      /model\.safetensors: tensor "w" is F16; Strata checkpoints store F32/,
    ],
    [
      'weights of another family',
      () =>
        damaged((d) =>
          writeFile(
            join(d, 'model.safetensors'),
            encodeSafetensors(new Map([['w', f32(1)]]), { family: 'ngpt' }),
          ),
        ),
      /model\.safetensors holds weights of model family "ngpt" but .*config\.json says "gpt"/,
    ],
    [
      'a corrupt optimizer.safetensors',
      () => damaged((d) => writeFile(join(d, 'optimizer.safetensors'), 'junk')),
      /optimizer\.safetensors is not a valid safetensors file/,
    ],
    [
      'a state.json that is not JSON',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": 1')),
      /state\.json is not valid JSON/,
    ],
    [
      'a state.json that is not an object',
      () => damaged((d) => writeFile(join(d, 'state.json'), '12')),
      /state\.json is not valid: expected a JSON object/,
    ],
    [
      'a state.json without a valid step',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": "12"}')),
      /state\.json: "step" must be an integer >= 0, got "12"$/,
    ],
    [
      'a state.json with a non-numeric optimizerStep',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": 12, "optimizerStep": "x"}')),
      /state\.json: "optimizerStep" must be an integer >= 0, got "x"$/,
    ],
    [
      'a state.json whose optimizer is ahead of the run',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": 12, "optimizerStep": 13}')),
      /"optimizerStep" \(13\) cannot exceed "step" \(12\)/,
    ],
    [
      'a state.json with a negative training time',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": 1, "trainSeconds": -5}')),
      /"trainSeconds" must be a finite number >= 0, got -5$/,
    ],
    [
      'a state.json with a fingerprint that is not a string',
      () => damaged((d) => writeFile(join(d, 'state.json'), '{"step": 1, "dataFingerprint": {}}')),
      /"dataFingerprint" must be a string, got an object$/,
    ],
    [
      'a state.json that is a directory',
      () =>
        damaged(async (d) => {
          await rm(join(d, 'state.json'));
          await mkdir(join(d, 'state.json'));
        }),
      /state\.json is not a regular file/,
    ],
  ];

  it.each(cases)('%s gives a clear E_CHECKPOINT', async (_what, make, message) => {
    const dir = await make();
    await expect(readCheckpoint(dir)).rejects.toMatchObject({
      name: 'StrataError',
      code: 'E_CHECKPOINT',
      message: expect.stringMatching(message),
    });
  });

  it('isCheckpointDir tells checkpoints from other directories', async () => {
    expect(await isCheckpointDir(good)).toBe(true);
    expect(await isCheckpointDir(join(root, 'nope'))).toBe(false);
    expect(await isCheckpointDir(await damaged((d) => rm(join(d, 'config.json'))))).toBe(false);
    expect(await isCheckpointDir(await damaged((d) => writeFile(join(d, 'config.json'), '{')))).toBe(false);
    expect(await isCheckpointDir(await damaged((d) => patchConfig(d, { format: 'x' })))).toBe(false);
    expect(await isCheckpointDir(join(good, 'config.json'))).toBe(false);
  });
});

describe('state.json is validated like config.json', () => {
  it('keeps extra keys and reads a null lastValLoss (a NaN saved as JSON) as none', async () => {
    const dir = await damaged((d) =>
      writeFile(
        join(d, 'state.json'),
        '{"step": 3, "optimizerStep": 3, "lastValLoss": null, "grownFrom": "x"}',
      ),
    );
    expect((await readCheckpoint(dir)).state).toEqual({ step: 3, optimizerStep: 3, grownFrom: 'x' });
  });

  it('every mutation of a valid state.json loads well-typed or fails with E_CHECKPOINT', async () => {
    const base = {
      step: 12,
      optimizerStep: 10,
      trainSeconds: 3.5,
      skippedSteps: 2,
      lastValLoss: 2.1,
      dataFingerprint: 'sha256:ab',
      backend: 'wasm',
      savedAt: '2026-01-01',
    };
    const keys = Object.keys(base);
    const value = fc.oneof(fc.jsonValue(), fc.constantFrom(-1, 0.5, 1e308, '', 'x', null, true));
    const dir = await damaged(async () => undefined);
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom(...keys, 'extra'), value, { maxKeys: 3 }),
        fc.subarray(keys),
        async (patch, drop) => {
          const state: Record<string, unknown> = { ...base, ...patch };
          for (const k of drop) delete state[k];
          await writeFile(join(dir, 'state.json'), JSON.stringify(state));
          try {
            const s = (await readCheckpoint(dir, { optimizer: false })).state!;
            for (const k of ['step', 'optimizerStep', 'skippedSteps'])
              if (s[k] !== undefined) expect(Number.isInteger(s[k]) && (s[k] as number) >= 0).toBe(true);
            for (const k of ['trainSeconds', 'lastValLoss'])
              if (s[k] !== undefined) expect(Number.isFinite(s[k])).toBe(true);
            if (typeof s.step === 'number' && typeof s.optimizerStep === 'number')
              expect(s.optimizerStep).toBeLessThanOrEqual(s.step);
          } catch (e) {
            expect(isStrataError(e) && e.code === 'E_CHECKPOINT').toBe(true);
            expect((e as Error).message).toMatch(/state\.json/);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** A safetensors file whose header claims 4000 bytes of data that the file does not have. */
function lyingFile(): Uint8Array {
  const json = new TextEncoder().encode(
    JSON.stringify({ w: { dtype: 'F32', shape: [1000], data_offsets: [0, 4000] } }),
  );
  const out = new Uint8Array(8 + json.length + 4);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}
