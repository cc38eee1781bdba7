import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, trainingFlops, trainingFlopsPerToken } from '../src/index.js';
import { tinyGPT } from './helpers.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('trainingFlops: 6·N + 12·T·Σ d_attn (Kaplan et al.; PaLM appendix B)', () => {
  it('the reference GPT (d 128, 4 layers, FFN 512, vocab 256, tied head) by hand', () => {
    const m = tinyGPT({ vocabSize: 256, contextLength: 128, dModel: 128, nLayers: 4, nHeads: 4 });
    // per layer: qkv 128·384 + proj 128·128 + fc 128·512 + proj 512·128 = 196,608; ×4 = 786,432;
    // tied head 256·128 = 32,768 → N = 819,200. Attention: 12 · 128 · (4 · 128) = 786,432.
    const f = trainingFlops(m, 128);
    expect(f.matmulParams).toBe(819_200);
    expect(f.attentionWidth).toBe(512);
    expect(f.flopsPerToken).toBe(6 * 819_200 + 786_432);
    m.dispose();
  });

  it('counts an untied head once, SwiGLU gates, and not biases, norms or position tables', () => {
    const m = tinyGPT({
      vocabSize: 13,
      dModel: 8,
      nLayers: 2,
      nHeads: 2,
      dFF: 16,
      tiedEmbeddings: false,
      activation: 'swiglu',
    });
    // per layer: 8·24 + 8·8 + 8·16 (fc) + 8·16 (gate) + 16·8 = 640; ×2 = 1,280; head 8·13 = 104.
    expect(trainingFlops(m, 8).matmulParams).toBe(1_384);
    // the attention term scales with T; the rest does not
    expect(trainingFlopsPerToken(m, 16) - trainingFlopsPerToken(m, 8)).toBe(12 * 8 * (2 * 8));
    m.dispose();
  });
});
