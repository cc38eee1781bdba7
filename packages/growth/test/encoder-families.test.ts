/**
 * Growth of the encoder-only (`encoder`) and encoder-decoder (`encdec`) families: every built-in strategy ×
 * width / FFN / heads / depth. Function preservation is checked independently of the growth code: the grown
 * model's logits against the small model's on a probe of our own (random tokens with padded rows; for the
 * encoder-decoder, packed rows whose sources end in padding), to 1e-5 of max |logit| for exact transforms and
 * 1e-4 for Post-LN-type depth insertion (exact up to O(eps/var)). Expected outcomes come from the table below
 * (Growth guide), not from the implementation; transforms without an exact rule must be refused by name.
 */
import { getModelFamily, initBackend, type LanguageModel, Rng } from '@strata/core';
import { registerBuiltinNorms } from '@strata/norms';
import { beforeAll, describe, expect, it } from 'vitest';
import { type GrowthSpec, growModel } from '../src/index.js';
import { logits, maxAbsDiff, randomize } from './helpers.js';
import { OPTIONS, type Outcome, POST_TYPE, STRATEGIES, type Strategy } from './matrix.js';

beforeAll(async () => {
  await initBackend('cpu');
  registerBuiltinNorms();
});

const V = 20;
const PAD = 17;
const BOS = 18;
const EOS = 19;
const S = 6;
const T = 5;

type Arch = 'encoder' | 'encdec';

function tiny(
  arch: Arch,
  norm: string,
  options: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): LanguageModel {
  const shared = {
    vocabSize: V,
    dModel: 8,
    nHeads: 2,
    dFF: 12,
    positions: 'learned',
    normKind: 'layernorm',
    activation: 'gelu',
    bias: true,
    norm: { name: norm, options },
    ...extra,
  };
  const fam = getModelFamily(arch);
  const cfg =
    arch === 'encoder'
      ? fam.parseConfig({ ...shared, nLayers: 2, contextLength: 8, padId: PAD })
      : fam.parseConfig({
          ...shared,
          nEncoderLayers: 2,
          nDecoderLayers: 2,
          sourceLength: S,
          targetLength: T,
          padId: PAD,
          bosId: BOS,
          eosId: EOS,
        });
  const m = fam.create(cfg, { seed: 3 });
  randomize(m, 5);
  return m;
}

/** Our own probe: 3 rows of random ids; rows 1 and 2 end in padding (the encoder-decoder's sources). */
function probe(arch: Arch): number[][] {
  const rng = Rng.derive(99, 'encoder-families-probe');
  const tok = () => rng.int(PAD);
  return [0, 2, 4].map((pad) =>
    arch === 'encoder'
      ? Array.from({ length: 8 }, (_, t) => (t >= 8 - pad ? PAD : tok()))
      : [
          ...Array.from({ length: S }, (_, t) => (t >= S - pad ? PAD : tok())),
          BOS,
          ...Array.from({ length: T - 1 }, tok),
        ],
  );
}

/** max |Δlogits| / max |logit| of the grown model against the small one on {@link probe}. */
async function relDelta(arch: Arch, small: LanguageModel, big: LanguageModel): Promise<number> {
  const x = probe(arch);
  const a = await logits(small, x);
  const b = await logits(big, x);
  expect(b.length).toBe(a.length);
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return maxAbsDiff(a, b) / m;
}

/**
 * The expected outcome of each transform (Growth guide): width, FFN and head growth carry over unchanged from
 * the GPT; depth too for the encoder (its blocks are the GPT's), while in an encoder-decoder DeepNorm's α and
 * Mix-LN's postLayers follow both stacks' depths, so those two are refused there (unless α is stored/pinned).
 */
const TRANSFORMS: Record<string, { spec: GrowthSpec; outcome: (s: Strategy, arch: Arch) => Outcome }> = {
  'd_model ×2': { spec: { width: 2 }, outcome: () => 'exact' },
  'd_model ×2, tile map': {
    spec: { width: 2, map: 'tile' },
    outcome: (s) => (s === 'rezero' ? 'refuse' : 'exact'),
  },
  'd_ff ×2': { spec: { ffn: 2 }, outcome: () => 'exact' },
  'heads 2→3 (d_model 8→12)': {
    spec: { heads: 3 },
    // LayerNorm: average coordinates are exact for pre-norm strategies only; ReZero has no norms.
    outcome: (s) => (s === 'pre-ln' || s === 'rezero' ? 'exact' : 'refuse'),
  },
  'depth ×2 (both stacks)': {
    spec: { depth: 2 },
    outcome: (s, arch) => {
      if (arch === 'encdec' && (s === 'deepnorm' || s === 'mix-ln')) return 'refuse';
      return POST_TYPE.has(s) ? 'eps' : 'exact';
    },
  },
  'depth: 1 block on top': {
    spec: { depth: { insertAt: [2], ...{} } },
    outcome: (s, arch) => {
      if (arch === 'encdec') return 'refuse'; // insertAt names one stack: needs depth.stack
      return POST_TYPE.has(s) ? 'eps' : 'exact';
    },
  },
};

for (const arch of ['encoder', 'encdec'] as const) {
  describe(`growth of ${arch} models`, () => {
    for (const s of STRATEGIES) {
      for (const [what, t] of Object.entries(TRANSFORMS)) {
        const outcome = t.outcome(s, arch);
        it(`${s}: ${what} → ${outcome}`, async () => {
          const small = tiny(arch, s, OPTIONS[s]);
          try {
            if (outcome === 'refuse') {
              await expect(growModel(small, t.spec)).rejects.toThrow(/cannot be exact|stack/);
              return;
            }
            const { model: big, report } = await growModel(small, t.spec);
            try {
              const rel = await relDelta(arch, small, big);
              expect(rel).toBeLessThan(outcome === 'exact' ? 1e-5 : 1e-4);
              expect(report.exactness).toBe(outcome);
              expect(report.withinTolerance).toBe(true);
              expect(big.params.count()).toBeGreaterThan(small.params.count());
            } finally {
              big.dispose();
            }
          } finally {
            small.dispose();
          }
        });
      }
    }
  });
}

describe('encoder-decoder depth, one stack at a time', () => {
  for (const stack of ['encoder', 'decoder'] as const) {
    for (const s of ['pre-ln', 'post-ln', 'sandwich-ln', 'rezero', 'admin'] as const) {
      it(`${s}: one new ${stack} block after block 0 and one on top`, async () => {
        const small = tiny('encdec', s);
        const { model: big, report } = await growModel(small, { depth: { insertAt: [1, 2], stack } });
        try {
          const c = big.config as Record<string, unknown>;
          expect(c.nEncoderLayers).toBe(stack === 'encoder' ? 4 : 2);
          expect(c.nDecoderLayers).toBe(stack === 'decoder' ? 4 : 2);
          expect(await relDelta('encdec', small, big)).toBeLessThan(POST_TYPE.has(s) ? 1e-4 : 1e-5);
          expect(report.transforms.map((x) => x.description).join(' ')).toContain(`${stack} layers 2→4`);
        } finally {
          big.dispose();
          small.dispose();
        }
      });
    }
  }

  it('a new decoder block really is new: its cross-attention output projection is zero (pre-ln)', async () => {
    const small = tiny('encdec', 'pre-ln');
    const { model: big } = await growModel(small, { depth: { insertAt: [2], stack: 'decoder' } });
    try {
      const w = await big.params.read();
      for (const n of ['cross.proj.weight', 'cross.proj.bias', 'attn.proj.weight', 'mlp.proj.weight'])
        expect(Math.max(...w.get(`decoder.blocks.2.${n}`)!.map(Math.abs)), n).toBe(0);
      expect(Math.max(...w.get('decoder.blocks.1.cross.proj.weight')!.map(Math.abs))).toBeGreaterThan(0);
    } finally {
      big.dispose();
      small.dispose();
    }
  });

  it('DeepNorm: refused with the reason unless α is stored per site or pinned', async () => {
    const plain = tiny('encdec', 'deepnorm');
    await expect(growModel(plain, { depth: 2 })).rejects.toThrow(
      /each stack’s α from both depths.*perLayerAlpha=true/,
    );
    plain.dispose();
    for (const options of [{ perLayerAlpha: true }, { alpha: 1.7 }]) {
      const small = tiny('encdec', 'deepnorm', options);
      const { model: big, report } = await growModel(small, { depth: 2, width: 2 });
      try {
        expect(report.exactness).toBe('eps');
        expect(await relDelta('encdec', small, big)).toBeLessThan(1e-4);
      } finally {
        big.dispose();
        small.dispose();
      }
    }
  });

  it('Mix-LN with Post-LN layers is refused (one postLayers for two stacks); without them it grows', async () => {
    const small = tiny('encdec', 'mix-ln', { fraction: 0.5 });
    await expect(growModel(small, { depth: { factor: 2, stack: 'decoder' } })).rejects.toThrow(
      /one postLayers option counts the leading Post-LN layers of both stacks/,
    );
    small.dispose();
    const pre = tiny('encdec', 'mix-ln', { fraction: 0.1 });
    const { model: big } = await growModel(pre, { depth: 2 });
    expect(await relDelta('encdec', pre, big)).toBeLessThan(1e-5);
    big.dispose();
    pre.dispose();
  });

  it('bad depth requests name the stack problem', async () => {
    const ed = tiny('encdec', 'pre-ln');
    await expect(growModel(ed, { depth: { layers: 3 } })).rejects.toThrow(
      /count the blocks of one stack; name it with stack "encoder" or "decoder"/,
    );
    ed.dispose();
    const enc = tiny('encoder', 'pre-ln');
    await expect(growModel(enc, { depth: { factor: 2, stack: 'decoder' } })).rejects.toThrow(
      /depth.stack "decoder": this model has one encoder stack/,
    );
    enc.dispose();
  });

  it('symmetry-breaking noise keeps an encoder-decoder exact (width ×2, depth ×2)', async () => {
    const small = tiny('encdec', 'pre-ln', {}, { normKind: 'rmsnorm' });
    const { model: big, report } = await growModel(small, { width: 2, depth: 2, noise: 0.05, seed: 4 });
    try {
      expect(report.transforms.map((t) => t.name)).toEqual(['ffn', 'width', 'depth', 'depth', 'noise']);
      expect(await relDelta('encdec', small, big)).toBeLessThan(1e-5);
    } finally {
      big.dispose();
      small.dispose();
    }
  });
});
