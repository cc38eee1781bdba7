import { getModelFamily, type ModelConfigBase, type ParamSpec, Rng, StrataError } from '@strata/core';
import type { StageTensor } from './host.js';
import type { DepthRule, LayoutContext } from './rules.js';
import type { ParamLayout, ResidualMode } from './spaces.js';

/** The sizes growth changes. */
export interface ModelDims {
  /** Residual width d_model. */
  readonly dModel: number;
  /** Attention heads. */
  readonly nHeads: number;
  /** Width of each head (d_model = nHeads × headDim for the families here). */
  readonly headDim: number;
  /** MLP hidden width. */
  readonly dFF: number;
  /** Number of blocks. */
  readonly nLayers: number;
}

/** What growth needs to know about a model, read from its config by its {@link GrowthFamily}. */
export interface FamilyInfo extends ModelDims {
  /** Vocabulary size (never grown). */
  readonly vocabSize: number;
  /** Context length (never grown). */
  readonly contextLength: number;
  /** Position encoding: RoPE constrains head-dim growth, learned tables grow with d_model. */
  readonly positions: 'learned' | 'rope' | 'none';
  /** Whether the output head is the token embedding matrix (tied). */
  readonly tied: boolean;
  /** LN flavor of every norm slot; undefined for families without LN/RMSNorm (nGPT's L2 `Norm`). */
  readonly normKind?: 'layernorm' | 'rmsnorm';
  /** Norm epsilon (the isometric map divides it by k). */
  readonly normEps?: number;
  /**
   * False when every norm is parameter-free (`normAffine: false`): no γ to rescale, so only maps that keep
   * each norm input's RMS (the tile map, with an untied head) stay exact.
   */
  readonly normAffine?: boolean;
  /** Residual-normalization strategy (GPT family). */
  readonly strategy?: string;
  /** The strategy's options as configured (e.g. DeepNorm's α). */
  readonly strategyOptions: Readonly<Record<string, unknown>>;
  /** How many times each RoPE frequency is repeated (1 = the standard table); see {@link ropeRepeatKey}. */
  readonly ropeRepeat: number;
  /**
   * The stacks of blocks, bottom to top, for models with more than one (encoder-decoder: encoder, decoder; the
   * output head reads the last). Absent: one stack of `nLayers` blocks named `blocks.{i}.…` (see {@link stacksOf}).
   */
  readonly stacks?: readonly StackInfo[];
}

/** One stack of blocks of a model. */
export interface StackInfo {
  /** Which stack: `encoder` or `decoder`. */
  readonly name: 'encoder' | 'decoder';
  /** Name prefix of its blocks' parameters before `blocks.{i}.` (`encoder.`, `decoder.`; `` for one stack). */
  readonly prefix: string;
  /** Number of blocks. */
  readonly layers: number;
  /** The residual sites of each block, in forward order (`attn`, `mlp`; a decoder's `attn`, `cross`, `mlp`). */
  readonly sites: readonly string[];
}

/** The stacks of a model: {@link FamilyInfo.stacks}, or its one stack of `nLayers` blocks. */
export function stacksOf(info: FamilyInfo): readonly StackInfo[] {
  return info.stacks ?? [{ name: 'decoder', prefix: '', layers: info.nLayers, sites: ['attn', 'mlp'] }];
}

/** What a stage asks a family to build. */
export interface ConfigTarget extends ModelDims {
  /** Norm epsilon of the grown model. */
  readonly normEps?: number;
  /** Strategy options of the grown model (e.g. DeepNorm's pinned α). */
  readonly strategyOptions?: Readonly<Record<string, unknown>>;
  /** RoPE frequency repetition of the grown model. */
  readonly ropeRepeat?: number;
  /** nGPT: signed α (for new α = 0 blocks). */
  readonly signedAlpha?: boolean;
  /** Multi-stack models: the grown number of blocks of each stack by name (absent stacks keep theirs). */
  readonly stackLayers?: Readonly<Partial<Record<StackInfo['name'], number>>>;
}

/** Family-specific fixes after a stage mapped the tensors. */
export interface AdjustContext {
  /** Raw config of the model before this stage. */
  readonly smallConfig: Readonly<Record<string, unknown>>;
  /** Raw config of the model after this stage. */
  readonly bigConfig: Readonly<Record<string, unknown>>;
  /** The small spec a grown parameter was made from (by name after depth renumbering). */
  smallSpecOf(bigName: string): ParamSpec | undefined;
  /** Negative controls (tests only): leave a family-specific correction out. */
  readonly ablate?: {
    /** `false`: skip nGPT's rescaling of its re-parameterized scales (the transform then is not exact). */
    readonly ngptScaleFix?: false;
  };
  /** Adds a line to the growth report's notes. */
  note(text: string): void;
}

/**
 * How growth handles one model family. Built in: `gpt`, `ngpt`, `encoder` and `encdec`; register others with
 * {@link registerGrowthFamily}.
 */
export interface GrowthFamily {
  /** The model family it describes (its registry name, e.g. `gpt`). */
  readonly name: string;
  /** Sizes and layout facts of a config, for the growth planner. */
  info(config: ModelConfigBase): FamilyInfo;
  /** Space and use of each axis of a parameter; undefined when the family does not know it. */
  layout(spec: ParamSpec, info: FamilyInfo, ctx: LayoutContext): ParamLayout | undefined;
  /** How readers of duplicated internal units scale them: `mean` (÷ copies) or `copy` (×1, output re-normalized). */
  readonly internalRead: 'mean' | 'copy';
  /** Whether only uniform replication of heads / FFN units is exact (nGPT's unit-norm rows). */
  readonly uniformInternalOnly: boolean;
  /** Residual maps this family supports. */
  readonly residualModes: readonly ResidualMode[];
  /** Extra factor on q and k when the head dim grows by b. */
  qkFactor(b: number): number;
  /** The raw config of the grown model. */
  config(small: ModelConfigBase, target: ConfigTarget): Record<string, unknown>;
  /** Adjusts grown tensors after a stage (nGPT's re-parameterized scales). */
  adjust?(values: Map<string, StageTensor>, specs: ReadonlyMap<string, ParamSpec>, ctx: AdjustContext): void;
  /** The depth rule of families without residual strategies. */
  depthRule?(info: FamilyInfo): DepthRule | undefined;
  /** Symmetry breaking: additive zero-sum noise, or norm-preserving noise (nGPT). */
  readonly noise: 'additive' | 'unit';
  /**
   * The default probe batch for a config (`seed` makes it reproducible), for families whose inputs are not
   * plain token sequences (encoder-decoder packed rows) or need padding in the probe (encoders). Absent:
   * random tokens (`makeProbe`).
   */
  probe?(config: ModelConfigBase, seed: number): number[][];
}

const KEY = Symbol.for('strata.growthFamilies');
function store(): Map<string, GrowthFamily> {
  const g = globalThis as unknown as Record<symbol, Map<string, GrowthFamily>>;
  g[KEY] ??= new Map();
  return g[KEY];
}

/** Registers how a model family grows (refused when taken, unless `override`). */
export function registerGrowthFamily(family: GrowthFamily, options: { override?: boolean } = {}): void {
  const s = store();
  const e = s.get(family.name);
  if (e && e !== family && !options.override) {
    throw new StrataError('E_PLUGIN', `growth for model family "${family.name}" is already registered`);
  }
  s.set(family.name, family);
}

/** The growth adapter of a model family; the error lists the supported ones. */
export function getGrowthFamily(name: string): GrowthFamily {
  ensureBuiltinFamilies();
  const f = store().get(name);
  if (!f) {
    throw new StrataError(
      'E_GROWTH',
      `growth does not know model family "${name}"; supported: ${[...store().keys()].sort().join(', ')} (register one with registerGrowthFamily)`,
    );
  }
  return f;
}

/**
 * The config key a family needs for head-dim growth with RoPE: `ropeRepeat` = how many times each frequency
 * of the small model's RoPE table is repeated across consecutive pair slots (Growth guide: RoPE). With it, pair
 * `p` of a head of dim `hd` rotates at `base^(−2·(p mod (hd/2r))/(hd/r))`.
 */
export const ropeRepeatKey = 'ropeRepeat';

/** Whether a family's config accepts `key` (tries to parse a config with it). */
export function acceptsConfigKey(
  family: string,
  config: ModelConfigBase,
  key: string,
  value: unknown,
): boolean {
  try {
    getModelFamily(family).parseConfig({ ...stripNormVersion(config), [key]: value });
    return true;
  } catch {
    return false;
  }
}

/** A saved/parsed GPT config carries `norm: {name, version, options}`; parseConfig takes `{name, options}`. */
export function stripNormVersion(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const norm = config.norm as { name?: string; options?: unknown } | undefined;
  if (!norm || typeof norm !== 'object') return { ...config };
  return { ...config, norm: { name: norm.name, options: norm.options ?? {} } };
}

const L = (space: ParamLayout[number]['space'], use: ParamLayout[number]['use']) => ({ space, use });

/** Layout of the matrices, embeddings and biases shared by GPT and nGPT, by role (and name for biases). */
export function coreLayout(spec: ParamSpec): ParamLayout | undefined {
  switch (spec.role) {
    case 'tok_embedding':
    case 'pos_embedding':
      return [L('fixed', 'fixed'), L('residual', 'write')];
    case 'qkv':
      return [L('residual', 'read'), L('qkv', 'write')];
    case 'attn_out':
      return [L('attn', 'read'), L('residual', 'write')];
    case 'ffn_in':
    case 'ffn_gate':
      return [L('residual', 'read'), L('ffn', 'write')];
    case 'ffn_out':
      return [L('ffn', 'read'), L('residual', 'write')];
    case 'head':
      return [L('residual', 'read'), L('fixed', 'fixed')];
    case 'bias': {
      if (/\.attn\.qkv\.bias$/.test(spec.name)) return [L('qkv', 'write')];
      if (/\.(attn|mlp)\.proj\.bias$/.test(spec.name)) return [L('residual', 'write')];
      if (/\.mlp\.(fc|gate)\.bias$/.test(spec.name)) return [L('ffn', 'write')];
      return undefined;
    }
    default:
      return undefined;
  }
}

function num(c: Readonly<Record<string, unknown>>, k: string): number {
  const v = c[k];
  if (typeof v !== 'number') throw new StrataError('E_GROWTH', `model config has no numeric "${k}"`);
  return v;
}

/**
 * GPT: weights by role (`@strata/core` GPT class doc), strategy weights through the strategy's growth rules.
 * Readers of duplicated heads/units average them (`mean`); q, k × b^(−1/4) when the head dim grows by b
 * (scaled dot product 1/√d_head; HyperCloning, arXiv 2409.12903: "(old/new)^(1/4)").
 */
export const gptGrowth: GrowthFamily = {
  name: 'gpt',
  info(config) {
    const c = config as Record<string, unknown>;
    const norm = c.norm as { name: string; options?: Record<string, unknown> };
    const dModel = num(c, 'dModel');
    const nHeads = num(c, 'nHeads');
    return {
      dModel,
      nHeads,
      headDim: dModel / nHeads,
      dFF: num(c, 'dFF'),
      nLayers: num(c, 'nLayers'),
      vocabSize: num(c, 'vocabSize'),
      contextLength: num(c, 'contextLength'),
      positions: c.positions as FamilyInfo['positions'],
      tied: c.tiedEmbeddings === true,
      normKind: c.normKind as FamilyInfo['normKind'],
      normEps: num(c, 'normEps'),
      ...(c.normAffine === false ? { normAffine: false } : {}),
      strategy: norm.name,
      strategyOptions: { ...(norm.options ?? {}) },
      ropeRepeat: typeof c.ropeRepeat === 'number' ? c.ropeRepeat : 1,
    };
  },
  layout: (spec) => coreLayout(spec),
  internalRead: 'mean',
  uniformInternalOnly: false,
  residualModes: ['isometric', 'tile', 'zero-pad', 'average'],
  qkFactor: (b) => b ** -0.25,
  config(small, t) {
    const c = stripNormVersion(small);
    const norm = c.norm as { name: string; options: Record<string, unknown> };
    const raw: Record<string, unknown> = {
      ...c,
      dModel: t.dModel,
      nHeads: t.nHeads,
      dFF: t.dFF,
      nLayers: t.nLayers,
      norm: { name: norm.name, options: { ...(t.strategyOptions ?? norm.options) } },
    };
    if (t.normEps !== undefined) raw.normEps = t.normEps;
    if (t.ropeRepeat !== undefined && (t.ropeRepeat !== 1 || ropeRepeatKey in c))
      raw[ropeRepeatKey] = t.ropeRepeat;
    return raw;
  },
  noise: 'additive',
};

/** nGPT's d-dependent constants and their derived defaults (`@strata/ngpt` `parseNGPTConfig`). */
const NGPT_DERIVED: Record<string, (d: number, dk: number) => number> = {
  alphaScale: (d) => 1 / Math.sqrt(d),
  sQKScale: (d) => 1 / Math.sqrt(d),
  sZScale: (d) => 1 / Math.sqrt(d),
  nuGain: (d) => Math.sqrt(d),
  attnScale: (_d, dk) => Math.sqrt(dk),
};

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

/** Numeric `sInit`, `sScale`, `gain` of a re-parameterized scale (nGPT `meta`), else undefined. */
function scaleMeta(
  spec: ParamSpec | undefined,
): { sInit: number; sScale: number; gain: number; abs: boolean; symbol: string } | undefined {
  const m = spec?.meta;
  if (!m || typeof m.sInit !== 'number' || typeof m.sScale !== 'number') return undefined;
  return {
    sInit: m.sInit,
    sScale: m.sScale,
    gain: typeof m.gain === 'number' ? m.gain : 1,
    abs: m.abs === true,
    symbol: String(m.symbol ?? ''),
  };
}

/**
 * nGPT (nGPT, arXiv 2410.01131; Growth guide): the isometric map keeps every unit-norm invariant; heads and FFN units are
 * duplicated and their readers (W_o, W_oM) copy rows without ÷count, because their output is
 * re-normalized — which keeps those rows unit-norm. With a non-integer ratio (d_ff 12 → 18) the copy counts
 * differ between units, so each group of c copied rows w is split into unit rows w/c + p_i with Σ p_i = 0,
 * p_i ⟂ w (exact: the copies sum to w). The d-dependent constants (`alphaScale`, `sQKScale`,
 * `sZScale` = 1/√d, `nuGain` = √d, `attnScale` = √d_k) are re-derived for the new size when the small model
 * used the defaults, and every stored scale is rescaled so its effective value is unchanged:
 * `stored′ = stored · (sInit·gain/sScale)_old / (sInit·gain/sScale)_new` (§3.5 "derive it per implementation");
 * s_qk also × (attnScale_old/attnScale_new)^½ (b^(−1/4) for head dim × b, row 35).
 */
export const ngptGrowth: GrowthFamily = {
  name: 'ngpt',
  info(config) {
    const c = config as Record<string, unknown>;
    const dModel = num(c, 'dModel');
    const nHeads = num(c, 'nHeads');
    return {
      dModel,
      nHeads,
      headDim: dModel / nHeads,
      dFF: num(c, 'dFF'),
      nLayers: num(c, 'nLayers'),
      vocabSize: num(c, 'vocabSize'),
      contextLength: num(c, 'contextLength'),
      positions: 'rope',
      tied: false,
      normEps: num(c, 'normEps'),
      strategyOptions: {},
      ropeRepeat: typeof c.ropeRepeat === 'number' ? c.ropeRepeat : 1,
    };
  },
  layout(spec) {
    if (spec.role === 'scale') {
      switch (spec.meta?.symbol) {
        case 'alpha_A':
        case 'alpha_M':
          return [L('residual', 'mult')];
        case 's_qk':
          return [L('attn', 'mult')];
        case 's_u':
        case 's_nu':
          return [L('ffn', 'mult')];
        case 's_z':
          return [L('fixed', 'fixed')];
        default:
          return undefined;
      }
    }
    return coreLayout(spec);
  },
  internalRead: 'copy',
  // Non-uniform copies are exact too: their W_o/W_oM rows are split into unit rows that sum to the original
  // (width/split.ts), since a per-unit factor would not cancel in the following Norm.
  uniformInternalOnly: false,
  // non-integer d_model: the isometric map with unequal copy counts (every invariant is a norm or a dot product)
  residualModes: ['isometric', 'weighted'],
  qkFactor: () => 1,
  config(small, t) {
    const c: Record<string, unknown> = { ...small };
    const d0 = num(c, 'dModel');
    const dk0 = d0 / num(c, 'nHeads');
    const dk = t.dModel / t.nHeads;
    for (const [k, f] of Object.entries(NGPT_DERIVED)) {
      if (typeof c[k] === 'number' && close(c[k] as number, f(d0, dk0))) c[k] = f(t.dModel, dk);
    }
    c.dModel = t.dModel;
    c.nHeads = t.nHeads;
    c.dFF = t.dFF;
    c.nLayers = t.nLayers;
    if (t.signedAlpha) c.alphaAbs = false;
    if (t.ropeRepeat !== undefined && (t.ropeRepeat !== 1 || ropeRepeatKey in c))
      c[ropeRepeatKey] = t.ropeRepeat;
    return c;
  },
  adjust(values, specs, ctx) {
    const attnOld = ctx.smallConfig.attnScale as number;
    const attnNew = ctx.bigConfig.attnScale as number;
    for (const [name, t] of values) {
      const big = scaleMeta(specs.get(name));
      const small = scaleMeta(ctx.smallSpecOf(name));
      if (!big || !small) continue;
      const muOld = (small.sInit * small.gain) / small.sScale;
      const muNew = (big.sInit * big.gain) / big.sScale;
      let f = muOld / muNew;
      if (big.symbol === 's_qk') f *= Math.sqrt(attnOld / attnNew);
      if (big.symbol === 's_nu' && ctx.ablate?.ngptScaleFix === false) {
        f = 1;
        ctx.note('ablation: s_ν not rescaled for the new √d_model gain (negative control)');
      }
      const flip = small.abs && !big.abs;
      const data = t.data as Float64Array;
      const s = t.origin.s as Float64Array;
      for (let i = 0; i < data.length; i++) {
        const sign = flip && data[i]! * muOld < 0 ? -1 : 1;
        data[i] = data[i]! * f * sign;
        s[i] = s[i]! * f * sign;
      }
      if (flip) ctx.note(`${name}: |α| → signed α (stored values made non-negative: same effective α)`);
    }
  },
  depthRule: () => ngptDepthRule,
  noise: 'unit',
};

/**
 * nGPT depth (Growth guide, "Depth"): a block with α_A = α_M = 0 computes `Norm(h + 0) = h` — exact.
 * The grown model uses signed α (`alphaAbs: false`; existing α are stored as |α|, the same effective value),
 * so the new α = 0 receive a gradient and can learn (under |α| PyTorch's gradient is 0 at 0).
 */
export const ngptDepthRule: DepthRule = {
  description: 'new nGPT blocks with α_A = α_M = 0 (signed α): h ← Norm(h + 0·…) = h',
  check: () => ({ exactness: 'exact' }),
  apply(run, ed) {
    for (const l of run.layers) {
      ed.zero(`blocks.${l}.attn.alpha_A`);
      ed.zero(`blocks.${l}.mlp.alpha_M`);
    }
  },
};

let builtinsDone = false;
function ensureBuiltinFamilies(): void {
  if (builtinsDone) return;
  builtinsDone = true;
  for (const f of [gptGrowth, ngptGrowth, encoderGrowth, encDecGrowth])
    if (!store().has(f.name)) store().set(f.name, f);
}

/**
 * Probe rows of random tokens (bytes, or ids below a smaller vocabulary) whose odd rows end in `padId`
 * padding (their last quarter), so a probe exercises the key-padding mask as well as the tokens.
 */
function paddedRows(rows: number, length: number, vocab: number, padId: number, seed: number): number[][] {
  const rng = Rng.derive(seed, 'growth-probe');
  const pad = Math.max(1, length >> 2);
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length }, (_, t) =>
      r % 2 === 1 && t >= length - pad ? padId : rng.int(Math.min(256, vocab)),
    ),
  );
}

/**
 * Encoder-only models (family `encoder`): the GPT's parameter names, roles and rules (its blocks are the GPT's
 * with bidirectional attention and a key-padding mask), so every GPT transform carries over exactly; DeepNorm's
 * encoder-only α = (2N)^¼ is the decoder-only formula. The probe pads half of its rows.
 */
export const encoderGrowth: GrowthFamily = {
  ...gptGrowth,
  name: 'encoder',
  info(config) {
    const info = gptGrowth.info(config);
    return {
      ...info,
      stacks: [{ name: 'encoder', prefix: '', layers: info.nLayers, sites: ['attn', 'mlp'] }],
    };
  },
  probe(config, seed) {
    const pad = typeof config.padId === 'number' ? config.padId : 256;
    return paddedRows(2, Math.min(16, config.contextLength), config.vocabSize, pad, seed);
  },
};

const ENCDEC_SITES = {
  encoder: ['attn', 'mlp'],
  decoder: ['attn', 'cross', 'mlp'],
} as const;

/**
 * Encoder-decoder models (family `encdec`; Growth guide, "Encoder-only and encoder-decoder models"): the
 * GPT's rules for every block of both stacks, plus the cross-attention — its query `cross.q` `[d, d]` and
 * fused key|value `cross.kv` `[d, 2d]` read the residual stream (the decoder's, and the encoder's output) and
 * write the heads like the self-attention's `qkv`; `cross.proj` reads the heads. The head reads the decoder
 * stack (its final norm, or its last block's last LN). Depth grows one stack at a time.
 */
export const encDecGrowth: GrowthFamily = {
  ...gptGrowth,
  name: 'encdec',
  info(config) {
    const c = config as Record<string, unknown>;
    const N = num(c, 'nEncoderLayers');
    const M = num(c, 'nDecoderLayers');
    return {
      ...gptGrowth.info({ ...config, nLayers: N + M }),
      stacks: [
        { name: 'encoder', prefix: 'encoder.', layers: N, sites: ENCDEC_SITES.encoder },
        { name: 'decoder', prefix: 'decoder.', layers: M, sites: ENCDEC_SITES.decoder },
      ],
    };
  },
  layout(spec) {
    const m = /\.cross\.(q|kv|proj)\.(weight|bias)$/.exec(spec.name);
    if (!m) return coreLayout(spec);
    if (m[1] === 'proj') return m[2] === 'weight' ? coreLayout(spec) : [L('residual', 'write')];
    const out = L(m[1] as 'q' | 'kv', 'write');
    return m[2] === 'weight' ? [L('residual', 'read'), out] : [out];
  },
  config(small, t) {
    const raw = gptGrowth.config(small, t);
    delete raw.nLayers;
    raw.nEncoderLayers = t.stackLayers?.encoder ?? num(small, 'nEncoderLayers');
    raw.nDecoderLayers = t.stackLayers?.decoder ?? num(small, 'nDecoderLayers');
    return raw;
  },
  probe(config, seed) {
    const c = config as Record<string, unknown>;
    const S = num(c, 'sourceLength');
    const T = Math.min(16, num(c, 'targetLength'));
    const src = paddedRows(2, S, config.vocabSize, num(c, 'padId'), seed);
    const tgt = paddedRows(2, T, config.vocabSize, num(c, 'padId'), seed + 1);
    return src.map((row, r) => [...row, num(c, 'bosId'), ...tgt[r]!.slice(1)]);
  },
};
