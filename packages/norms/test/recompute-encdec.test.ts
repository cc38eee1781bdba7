/**
 * Per-block recomputation of the encoder-decoder (the 500L-500L run needs it) with the strategies whose
 * constants differ per stack: the gradients of every parameter of both stacks equal the plain backward pass,
 * with dropout (masks replayed), padded sources and ignored targets.
 */
import { computeLossAndGrads, getModelFamily, initBackend, Rng } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerBuiltinNorms } from '../src/index.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const S = 6;
const T = 5;
const PAD = 256;

const CASES: [string, Record<string, unknown>][] = [
  ['deepnorm', {}],
  ['deepnorm', { perLayerAlpha: true }],
  ['post-ln', {}],
  ['subln', {}],
  ['admin', {}],
];

describe('encoder-decoder recomputation', () => {
  for (const [norm, options] of CASES) {
    it(`${norm} ${JSON.stringify(options)}: recomputed gradients equal the plain ones (3L-3L, dropout)`, () => {
      const fam = getModelFamily('encdec');
      const m = fam.create(
        fam.parseConfig({
          dModel: 8,
          nHeads: 2,
          dFF: 16,
          nEncoderLayers: 3,
          nDecoderLayers: 3,
          sourceLength: S,
          targetLength: T,
          dropout: 0.1,
          norm: { name: norm, options },
        }),
        { seed: 2 },
      );
      const rng = Rng.derive(4, 'recompute-encdec');
      const tok = () => rng.int(256);
      // Row 0: full source; row 1: source padded after 3 tokens; targets −1 after the decoder's end.
      const x = Int32Array.from([
        ...Array.from({ length: S }, tok),
        258,
        ...Array.from({ length: T - 1 }, tok),
        ...[tok(), tok(), tok(), PAD, PAD, PAD],
        258,
        tok(),
        tok(),
        PAD,
        PAD,
      ]);
      const y = Int32Array.from([...Array.from({ length: T }, tok), tok(), tok(), 259, -1, -1]);
      const run = (recompute: boolean) =>
        computeLossAndGrads(m, x, y, 2, S + T, { training: true, seed: 7, recompute });
      const a = run(false);
      const b = run(true);
      expect(b.loss.dataSync()[0]).toBeCloseTo(a.loss.dataSync()[0]!, 5);
      const names = [...a.grads.keys()].sort();
      expect([...b.grads.keys()].sort()).toEqual(names);
      for (const stack of ['encoder', 'decoder'])
        for (let i = 0; i < 3; i++)
          expect(names.some((n) => n.startsWith(`${stack}.blocks.${i}.`))).toBe(true);
      for (const [name, g] of a.grads) {
        const ga = g.dataSync();
        const gb = b.grads.get(name)!.dataSync();
        let err = 0;
        let top = 0;
        for (let i = 0; i < ga.length; i++) {
          err = Math.max(err, Math.abs(ga[i]! - gb[i]!));
          top = Math.max(top, Math.abs(ga[i]!));
        }
        // Relative to the largest entry; Post-LN's encoder gradients at init are ~1e-7 (std-0.02 cross-attention).
        expect(err / Math.max(top, 1e-9), name).toBeLessThan(1e-4);
        // Every block of both stacks is reached by the gradient.
        if (/\.(attn|cross|mlp)\.proj\.weight$/.test(name)) expect(top, name).toBeGreaterThan(0);
      }
      tf.dispose([a.loss, b.loss, ...a.grads.values(), ...b.grads.values()]);
      m.dispose();
    });
  }
});
