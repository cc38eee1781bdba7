/**
 * KV-cached incremental decoding computes the same logits as the full forward pass, and the cached decoder
 * produces the same greedy continuation as running the model on the whole window each step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createIncrementalDecoder,
  getModelFamily,
  initBackend,
  type LanguageModel,
  supportsKVCache,
} from '../src/index.js';
import type { GPT } from '../src/model/gpt.js';

function model(over: Record<string, unknown> = {}): GPT {
  const fam = getModelFamily('gpt');
  return fam.create(
    fam.parseConfig({ vocabSize: 50, contextLength: 16, dModel: 32, nLayers: 2, nHeads: 4, ...over }),
    { seed: 4 },
  ) as GPT;
}

const seq = Array.from({ length: 16 }, (_, i) => (i * 7 + 3) % 50);

beforeAll(async () => {
  await initBackend('wasm');
});

describe('KV cache', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    for (const [label, over] of [
      ['learned positions', {}],
      ['RoPE, untied, SwiGLU', { positions: 'rope', tiedEmbeddings: false, activation: 'swiglu' }],
    ] as const) {
      it(`incremental logits equal the full forward pass (${label}, ${backend})`, async () => {
        await initBackend(backend);
        const m = model(over);
        expect(supportsKVCache(m)).toBe(true);
        const full = tf.tidy(() =>
          m.forward(tf.tensor2d([seq, seq.map((t) => (t + 1) % 50)], [2, 16], 'int32')).arraySync(),
        );
        const cache = m.createKVCache(2);
        const rows: number[][][] = [[], []];
        // prefill 5 positions, then one at a time, then 3 at once
        for (const [a, b] of [
          [0, 5],
          [5, 6],
          [6, 7],
          [7, 10],
          [10, 16],
        ] as const) {
          const ids = [seq.slice(a, b), seq.slice(a, b).map((t) => (t + 1) % 50)];
          const out = tf.tidy(() =>
            m.forwardIncremental(tf.tensor2d(ids, [2, b - a], 'int32'), cache).arraySync(),
          );
          out.forEach((r, bi) => {
            rows[bi]!.push(...r);
          });
        }
        expect(cache.length).toBe(16);
        let max = 0;
        for (let bi = 0; bi < 2; bi++)
          for (let t = 0; t < 16; t++)
            for (let v = 0; v < 50; v++) max = Math.max(max, Math.abs(rows[bi]![t]![v]! - full[bi]![t]![v]!));
        expect(max).toBeLessThan(1e-5);
        expect(() =>
          tf.tidy(() => m.forwardIncremental(tf.tensor2d([[1], [2]], [2, 1], 'int32'), cache)),
        ).toThrow(/exceed/);
        cache.dispose();
        m.dispose();
        await initBackend('wasm');
      });
    }
  }

  it('the decoder continues exactly like full-window decoding, also past the context length', async () => {
    const m = model();
    const dec = createIncrementalDecoder(m as LanguageModel)!;
    const before = tf.memory().numTensors;
    const greedy = (l: Float32Array) => l.indexOf(Math.max(...l));
    const a = [1, 2, 3];
    const b = [1, 2, 3];
    for (let i = 0; i < 24; i++) {
      a.push(greedy(await dec.next(a)));
      const w = b.slice(-16);
      const l = tf.tidy(() => {
        const lg = m.forward(tf.tensor2d(w, [1, w.length], 'int32'));
        return tf.reshape(tf.slice(lg, [0, w.length - 1, 0], [1, 1, 50]), [50]);
      });
      b.push(greedy((await l.data()) as Float32Array));
      l.dispose();
    }
    expect(a).toEqual(b);
    dec.dispose();
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
  });
});
