import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  beamSearch,
  beamSearchSeq2Seq,
  computeLossAndGrads,
  type EncDecConfig,
  type EncoderDecoder,
  getModelFamily,
  greedyDecode,
  initBackend,
  type LanguageModel,
  maskedCrossEntropy,
  type StepScorer,
} from '../src/index.js';
import { encDecReference } from './reference-encdec.js';

beforeAll(async () => {
  await initBackend('cpu');
});

const PAD = 256;

function tinyEncoder(overrides: Record<string, unknown> = {}, seed = 1): LanguageModel {
  const fam = getModelFamily('encoder');
  return fam.create(fam.parseConfig({ contextLength: 8, dModel: 8, nLayers: 2, nHeads: 2, ...overrides }), {
    seed,
  });
}

function tinyEncDec(overrides: Record<string, unknown> = {}, seed = 1): EncoderDecoder {
  const fam = getModelFamily('encdec');
  return fam.create(
    fam.parseConfig({
      dModel: 8,
      nHeads: 2,
      nEncoderLayers: 2,
      nDecoderLayers: 2,
      sourceLength: 6,
      targetLength: 5,
      ...overrides,
    }),
    { seed },
  ) as EncoderDecoder;
}

function run(model: LanguageModel, rows: number[][]): number[][][] {
  return tf.tidy(() => model.forward(tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32')).arraySync());
}

function maxDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((r, i) => {
    r.forEach((v, j) => {
      m = Math.max(m, Math.abs(v - b[i]![j]!));
    });
  });
  return m;
}

/** Randomizes every parameter (norm gains around 1) so that no test passes by symmetry. */
function perturb(model: LanguageModel, seed = 7): void {
  let s = seed;
  for (const [name, v] of model.params.variables()) {
    const noise = tf.randomNormal(v.shape, 0, name.includes('norm') ? 0.2 : 0.3, 'float32', s++);
    v.assign(name.endsWith('norm.weight') ? tf.add(1, noise) : noise);
    noise.dispose();
  }
}

describe('encoder-only model', () => {
  it('is bidirectional: changing a later token changes the outputs at earlier positions', () => {
    const m = tinyEncoder();
    perturb(m);
    const a = run(m, [[1, 2, 3, 4, 5, 6]])[0]!;
    const b = run(m, [[1, 2, 3, 4, 5, 99]])[0]!;
    for (let t = 0; t < 5; t++) expect(maxDiff([a[t]!], [b[t]!])).toBeGreaterThan(1e-4);
    m.dispose();
    // The causal GPT with the same shapes does not see later tokens (control).
    const g = getModelFamily('gpt');
    const gpt = g.create(
      g.parseConfig({ vocabSize: 276, contextLength: 8, dModel: 8, nLayers: 2, nHeads: 2 }),
      {
        seed: 1,
      },
    );
    perturb(gpt);
    const ga = run(gpt, [[1, 2, 3, 4, 5, 6]])[0]!;
    const gb = run(gpt, [[1, 2, 3, 4, 5, 99]])[0]!;
    expect(maxDiff(ga.slice(0, 5), gb.slice(0, 5))).toBeLessThan(1e-5);
    gpt.dispose();
  });

  it('padding mask: padded positions change nothing at the real positions', () => {
    const m = tinyEncoder();
    perturb(m);
    const short = run(m, [[5, 6, 7, 8]])[0]!;
    const padded = run(m, [
      [5, 6, 7, 8, PAD, PAD, PAD],
      [9, 9, 9, 9, 9, 9, 9],
    ])[0]!;
    expect(maxDiff(short, padded.slice(0, 4))).toBeLessThan(1e-5);
    m.dispose();
    // Without a pad id the same padding does change them (the mask is what makes the difference).
    const open = tinyEncoder({ padId: null });
    perturb(open);
    const s2 = run(open, [[5, 6, 7, 8]])[0]!;
    const p2 = run(open, [[5, 6, 7, 8, PAD, PAD, PAD]])[0]!;
    expect(maxDiff(s2, p2.slice(0, 4))).toBeGreaterThan(1e-4);
    open.dispose();
  });

  it('refuses incremental decoding with a clear message', () => {
    const m = tinyEncoder() as unknown as { createKVCache(b: number): unknown; dispose(): void };
    expect(() => m.createKVCache(1)).toThrow(/encoder-only model attends in both directions/);
    m.dispose();
  });

  it('records the encoder-only stack and validates padId', () => {
    const fam = getModelFamily('encoder');
    expect(() => fam.parseConfig({ padId: 999 })).toThrow(
      /model.padId must be null or an integer in \[0, 276\)/,
    );
    expect(() => fam.parseConfig({ architecture: 'decoder-only' })).toThrow(/must be "encoder-only"/);
    expect(fam.parseConfig({}).architecture).toBe('encoder-only');
  });
});

describe('masked cross-entropy', () => {
  it('averages over the targets >= 0 only', () => {
    const logits = tf.tensor2d([
      [1, 2, 3],
      [0, 0, 0],
      [3, 1, 0],
    ]);
    const got = maskedCrossEntropy(logits, tf.tensor1d([2, -1, 0], 'int32')).dataSync()[0]!;
    const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
    const want = (lse([1, 2, 3]) - 3 + (lse([3, 1, 0]) - 3)) / 2;
    expect(got).toBeCloseTo(want, 5);
  });
});

describe('encoder-decoder model', () => {
  it('matches a float64 reference forward pass written separately (Pre-LN, padded source)', async () => {
    const m = tinyEncDec({ dModel: 8, nHeads: 2, dFF: 12 });
    perturb(m, 11);
    const src = [3, 1, 4, 1, PAD, PAD];
    const tgt = [258, 9, 2, 6];
    const got = run(m, [[...src, ...tgt]])[0]!;
    const w = await m.params.read();
    const ref = encDecReference(
      (n) => {
        const v = w.get(n);
        if (!v) throw new Error(`missing ${n}`);
        return v;
      },
      { V: 276, d: 8, H: 2, F: 12, N: 2, M: 2, eps: 1e-5, pad: PAD },
      src,
      tgt,
    );
    const scale = Math.max(...ref.flat().map(Math.abs));
    expect(scale).toBeGreaterThan(0.5);
    expect(maxDiff(got, ref) / scale).toBeLessThan(2e-5);
    m.dispose();
  });

  it('decoder is causal; every decoder position depends on the source (cross-attention wiring)', () => {
    const m = tinyEncDec();
    perturb(m);
    const base = run(m, [[1, 2, 3, 4, 5, 6, 258, 7, 8, 9, 10]])[0]!;
    const laterTgt = run(m, [[1, 2, 3, 4, 5, 6, 258, 7, 8, 99, 10]])[0]!;
    expect(maxDiff(base.slice(0, 3), laterTgt.slice(0, 3))).toBeLessThan(1e-5);
    expect(maxDiff(base.slice(3), laterTgt.slice(3))).toBeGreaterThan(1e-4);
    const lastSrc = run(m, [[1, 2, 3, 4, 5, 77, 258, 7, 8, 9, 10]])[0]!;
    for (let t = 0; t < 5; t++) expect(maxDiff([base[t]!], [lastSrc[t]!])).toBeGreaterThan(1e-4);
    // With the cross-attention output projections (and biases) zeroed the source no longer matters.
    for (const [name, v] of m.params.variables())
      if (name.includes('.cross.proj.')) v.assign(tf.zerosLike(v));
    const a = run(m, [[1, 2, 3, 4, 5, 6, 258, 7, 8, 9, 10]])[0]!;
    const b = run(m, [[9, 9, 9, 9, 9, 77, 258, 7, 8, 9, 10]])[0]!;
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('source padding is masked: a padded source equals the unpadded one', () => {
    const m = tinyEncDec();
    perturb(m);
    const tgt = tf.tensor2d([[258, 7, 8]], [1, 3], 'int32');
    const short = tf.tensor2d([[1, 2, 3]], [1, 3], 'int32');
    const padded = tf.tensor2d([[1, 2, 3, PAD, PAD, PAD]], [1, 6], 'int32');
    const a = tf.tidy(() => m.decode(tgt, m.encode(short), short).arraySync()[0]!);
    const b = tf.tidy(() => m.decode(tgt, m.encode(padded), padded).arraySync()[0]!);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('incremental decoding with the KV cache equals the teacher-forced decoder', () => {
    const m = tinyEncDec();
    perturb(m);
    const src = tf.tensor2d([[1, 2, 3, 4, PAD, PAD]], [1, 6], 'int32');
    const tgt = [258, 7, 8, 9, 10];
    const full = tf.tidy(
      () => m.decode(tf.tensor2d([tgt], [1, 5], 'int32'), m.encode(src), src).arraySync()[0]!,
    );
    const cache = m.startDecoding(src);
    for (let t = 0; t < 5; t++) {
      const l = m.step([tgt[t]!], cache);
      expect(maxDiff(l.arraySync(), [full[t]!])).toBeLessThan(1e-4);
      l.dispose();
    }
    expect(() => m.step([1], cache)).toThrow(/decoder is full/);
    cache.dispose();
    src.dispose();
    m.dispose();
  });

  it('gradients match central finite differences (encoder, cross-attention, decoder MLP, shared embedding)', async () => {
    const m = tinyEncDec({ dropout: 0 });
    perturb(m, 3);
    const x = tf.tensor2d([[1, 2, 3, PAD, PAD, PAD, 258, 7, 8, 9, PAD]], [1, 11], 'int32');
    const y = tf.tensor1d([7, 8, 9, 259, -1], 'int32');
    const loss = () => maskedCrossEntropy(tf.reshape(m.forward(x), [-1, 276]) as tf.Tensor2D, y);
    const names = [
      'encoder.blocks.0.attn.qkv.weight',
      'decoder.blocks.1.cross.kv.weight',
      'decoder.blocks.0.cross.q.weight',
      'decoder.blocks.1.mlp.fc.weight',
      'tok_emb.weight',
    ];
    const vars = names.map((n) => m.params.get(n));
    const { grads } = tf.variableGrads(loss, vars);
    for (const [k, v] of vars.entries()) {
      const g = grads[v.name]!.dataSync();
      const vals = v.dataSync().slice();
      // The largest-gradient coordinate (well above float32 noise) and one more.
      let best = 0;
      for (let i = 0; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[best]!)) best = i;
      for (const i of [best, (best + 5) % g.length]) {
        const h = 1e-2;
        const at = (delta: number) => {
          const w = vals.slice();
          w[i]! += delta;
          v.assign(tf.tensor(w, v.shape));
          return tf.tidy(() => loss().dataSync()[0]!);
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        v.assign(tf.tensor(vals, v.shape));
        expect(Math.abs(fd - g[i]!), `${names[k]}[${i}]`).toBeLessThan(2e-3 + 2e-2 * Math.abs(fd));
      }
    }
    m.dispose();
  });

  it('per-block recomputation gives the plain gradients (dropout masks replayed)', () => {
    const m = tinyEncDec({ dropout: 0.2 });
    perturb(m, 9);
    const x = Int32Array.from([1, 2, 3, PAD, PAD, PAD, 258, 7, 8, 9, PAD, 4, 5, 6, 7, 8, 9, 258, 1, 2, 3, 4]);
    const y = Int32Array.from([7, 8, 9, 259, -1, 1, 2, 3, 4, 259]);
    const run = (recompute: boolean) =>
      computeLossAndGrads(m, x, y, 2, 11, { training: true, seed: 5, recompute });
    const a = run(false);
    const b = run(true);
    expect(b.loss.dataSync()[0]).toBeCloseTo(a.loss.dataSync()[0]!, 5);
    expect([...b.grads.keys()].sort()).toEqual([...a.grads.keys()].sort());
    for (const [name, g] of a.grads) {
      const ga = g.dataSync();
      const gb = b.grads.get(name)!.dataSync();
      let err = 0;
      let scale = 1e-6;
      for (let i = 0; i < ga.length; i++) {
        err = Math.max(err, Math.abs(ga[i]! - gb[i]!));
        scale = Math.max(scale, Math.abs(ga[i]!));
      }
      expect(err / scale, name).toBeLessThan(1e-4);
    }
    m.dispose();
  });

  it('validates its config with clear messages', () => {
    const fam = getModelFamily('encdec');
    expect(() => fam.parseConfig({ nLayers: 4 })).toThrow(
      /model.nEncoderLayers \(N\) and model.nDecoderLayers \(M\)/,
    );
    expect(() => fam.parseConfig({ contextLength: 10 })).toThrow(/sourceLength \+ targetLength = 128/);
    expect(() => fam.parseConfig({ positions: 'rope' })).toThrow(/"rope" is not supported/);
    expect(() => fam.parseConfig({ bosId: 256 })).toThrow(/must differ/);
    const c = fam.parseConfig({}) as EncDecConfig;
    expect(c.contextLength).toBe(c.sourceLength + c.targetLength);
    expect(fam.parseConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('rejects a source longer than sourceLength with a clear error', () => {
    const m = tinyEncDec();
    expect(() => m.encode(tf.tensor2d([[1, 2, 3, 4, 5, 6, 7]], [1, 7], 'int32'))).toThrow(
      /source has 7 tokens, more than the model's sourceLength 6/,
    );
    return greedyDecode(m, [[1, 2, 3, 4, 5, 6, 7]])
      .then(() => expect.unreachable())
      .catch((e) => expect(String(e)).toMatch(/source 0 has 7 tokens, more than the model's sourceLength 6/))
      .finally(() => m.dispose());
  });
});

describe('decoding', () => {
  /**
   * A hand-built "model": next-token probabilities depend only on the previous token. From <bos>(0), token
   * 1 is likelier (0.6) than 2 (0.4), but after 1 every continuation is poor, so the best sequence starts
   * with 2. Vocabulary: 0 = <bos>, 1, 2, 3 = <eos>.
   */
  const table: Record<number, number[]> = {
    0: [0, 0.6, 0.4, 0],
    1: [0, 0.34, 0.33, 0.33],
    2: [0, 0.05, 0.05, 0.9],
  };
  const tableScorer = (): StepScorer => {
    return async (_parents, tokens) => tokens.map((t) => Float32Array.from(table[t]!, (p) => Math.log(p)));
  };

  /** Best finished sequence by exhaustive enumeration up to `maxLen` tokens. */
  function bruteForce(maxLen: number): { tokens: number[]; score: number } {
    let best = { tokens: [] as number[], score: Number.NEGATIVE_INFINITY };
    const visit = (prefix: number[], last: number, score: number) => {
      if (prefix.length >= maxLen) return;
      table[last]!.forEach((p, v) => {
        if (p === 0) return;
        const s = score + Math.log(p);
        if (v === 3) {
          if (s > best.score) best = { tokens: prefix, score: s };
        } else visit([...prefix, v], v, s);
      });
    };
    visit([], 0, 0);
    return best;
  }

  it('beam search finds the best sequence where greedy does not (hand-built model)', async () => {
    const opts = { maxLength: 4, bos: 0, eos: 3 };
    const greedy = (await beamSearch(tableScorer(), { ...opts, beam: 1 }))[0]!;
    const beam = (await beamSearch(tableScorer(), { ...opts, beam: 2 }))[0]!;
    const best = bruteForce(4);
    expect(best.tokens).toEqual([2]);
    expect(greedy.tokens[0]).toBe(1);
    expect(greedy.score).toBeLessThan(best.score);
    expect(beam.tokens).toEqual(best.tokens);
    expect(beam.score).toBeCloseTo(best.score, 5);
    expect(beam.finished).toBe(true);
  });

  it('beam 1 equals greedy decoding on an encoder-decoder, and scores equal the teacher-forced log-probs', async () => {
    const m = tinyEncDec({ targetLength: 6 });
    perturb(m, 5);
    const sources = [
      [1, 2, 3],
      [4, 5, 6, 7, 8],
    ];
    const greedy = await greedyDecode(m, sources);
    for (const [i, s] of sources.entries()) {
      const b1 = (await beamSearchSeq2Seq(m, s, { beam: 1 }))[0]!;
      expect(b1.tokens).toEqual(greedy[i]);
      const b3 = (await beamSearchSeq2Seq(m, s, { beam: 3 }))[0]!;
      expect(b3.score).toBeGreaterThanOrEqual(b1.score - 1e-4);
      // The beam's score is the model's own log-probability of that sequence (checks the cache reordering).
      const seq = [...b3.tokens, ...(b3.finished ? [m.config.eosId] : [])];
      const logp = tf.tidy(() => {
        const src = tf.tensor2d([s], [1, s.length], 'int32');
        const inp = tf.tensor2d([[258, ...seq.slice(0, -1)]], [1, seq.length], 'int32');
        return tf.logSoftmax(m.decode(inp, m.encode(src), src)).arraySync()[0]!;
      });
      const total = seq.reduce((a, v, t) => a + logp[t]![v]!, 0);
      expect(b3.score).toBeCloseTo(total, 3);
    }
    await expect(beamSearchSeq2Seq(m, [1], { beam: 0 })).rejects.toThrow(/--beam must be an integer >= 1/);
    m.dispose();
  });
});
