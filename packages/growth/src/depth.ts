/**
 * Depth: new blocks that are identities (growth guide "Depth"). The grown layer sequence is planned from the insertion positions; new blocks start as copies of the
 * block below (or a fresh init), and the strategy's {@link DepthRule} turns each run of new blocks into an
 * identity (zero output projections, the Post-LN LN-affine move, DeepNorm's α, nGPT's α = 0).
 *
 * @module
 */
import type { ParamSpec } from '@strata/core';
import { deepNormAbsorb, zeroOutputDepthRule } from './builtin-rules.js';
import { type GrowthFamily, type StackInfo, stacksOf } from './families.js';
import { identityOrigin, readParams, type StageTensor, specsOf } from './host.js';
import {
  type Ablations,
  type DepthChoices,
  type DepthEditor,
  type DepthPlanContext,
  type DepthRule,
  type DepthRun,
  getGrowthRules,
} from './rules.js';
import {
  addOnce,
  assign,
  buildModel,
  type Current,
  dimsOf,
  fail,
  refuse,
  type StageResult,
  traceOf,
  worst,
} from './stage.js';

/** The choices of a depth stage. */
export interface DepthRequest {
  readonly allowApprox?: boolean;
  readonly deepnormAlpha?: 'keep' | 'absorb';
  readonly depthInit?: 'copy' | 'random';
  readonly initSeed?: number;
  readonly ablate?: Ablations;
}

/**
 * Inserts new identity blocks before the small model's blocks `insertAt` (sorted; the stack's layer count = on
 * top) of one stack (default: the model's only or last stack). Rules see the stack's blocks as `blocks.{i}.…`
 * (the editor adds the stack's name prefix) and its residual sites in {@link DepthPlanContext.sites}.
 */
export async function depthStage(
  cur: Current,
  family: GrowthFamily,
  insertAt: readonly number[],
  req: DepthRequest,
  stackName?: StackInfo['name'],
): Promise<StageResult> {
  const info = cur.info;
  const stacks = stacksOf(info);
  const stack = stacks.find((s) => s.name === stackName) ?? stacks[stacks.length - 1]!;
  const multi = stacks.length > 1;
  const N = stack.layers;
  const N2 = N + insertAt.length;
  const prefix = stack.prefix;
  const rules = info.strategy ? getGrowthRules(info.strategy) : undefined;
  const reasons: string[] = [];
  const notes: string[] = [];
  let rule: DepthRule | undefined = family.depthRule?.(info) ?? rules?.depth;
  if (!rule) {
    reasons.push(
      `strategy "${info.strategy}" declares no depth rule (registerGrowthRules); new blocks get zero output projections, which is an identity only for pre-norm strategies`,
    );
    rule = zeroOutputDepthRule;
  }
  // Layer sequence of the grown model.
  const count = new Array<number>(N + 1).fill(0);
  for (const p of insertAt) count[p]! += 1;
  type Entry = { isNew: false; src: number } | { isNew: true; neighbor: number };
  const seq: Entry[] = [];
  const oldBig: number[] = [];
  const runs: DepthRun[] = [];
  for (let p = 0; p <= N; p++) {
    if (count[p]) {
      const layers: number[] = [];
      for (let c = 0; c < count[p]!; c++) {
        layers.push(seq.length);
        seq.push({ isNew: true, neighbor: p > 0 ? p - 1 : 0 });
      }
      runs.push({
        position: p,
        layers,
        ...(p > 0 ? { prev: oldBig[p - 1]! } : {}),
        ...(p < N ? { next: seq.length } : {}),
      });
    }
    if (p < N) {
      oldBig.push(seq.length);
      seq.push({ isNew: false, src: p });
    }
  }
  const choices: DepthChoices = {
    deepnormAlpha: req.deepnormAlpha ?? 'keep',
    ...(req.ablate ? { ablate: req.ablate } : {}),
  };
  const ctx: DepthPlanContext = {
    family: family.name,
    ...(info.strategy ? { strategy: info.strategy } : {}),
    options: info.strategyOptions,
    smallLayers: N,
    bigLayers: N2,
    runs,
    config: cur.config,
    choices,
    sites: stack.sites,
    ...(multi ? { stack: stack.name } : {}),
  };
  const verdicts = runs.map((r) => rule!.check(r, ctx));
  for (const v of verdicts)
    if (v.exactness === 'approx' && v.reason && !reasons.includes(v.reason)) reasons.push(v.reason);
  const ab = req.ablate ?? {};
  if (ab.postLnAffine === false || ab.deepnormAlpha === false) reasons.push('ablation (negative control)');
  const exactness = worst([...verdicts.map((v) => v.exactness), reasons.length ? 'approx' : 'exact']);
  if (exactness === 'approx' && !req.allowApprox) refuse('depth', reasons);
  const strategyOptions = rule.options?.(ctx);
  const epsF = rule.epsFactor?.(ctx) ?? 1;
  const signedAlpha = cur.config.alphaAbs === true;
  const raw = family.config(cur.config, {
    ...dimsOf(info),
    nLayers: info.nLayers + insertAt.length,
    ...(multi ? { stackLayers: { [stack.name]: N2 } } : {}),
    ...(strategyOptions ? { strategyOptions } : {}),
    ...(info.normEps !== undefined ? { normEps: info.normEps * epsF } : {}),
    ...(signedAlpha ? { signedAlpha } : {}),
  });
  const big = buildModel(family.name, raw, req.initSeed ?? 0);
  const bigSpecs = specsOf(big);
  const fresh = req.depthInit === 'random' ? await readParams(big) : undefined;
  const values = new Map<string, StageTensor>();
  const srcName = new Map<string, string>();
  for (const bs of bigSpecs.values()) {
    const m = bs.name.startsWith(`${prefix}blocks.`)
      ? /^blocks\.(\d+)\.(.+)$/.exec(bs.name.slice(prefix.length))
      : null;
    let from = bs.name;
    let isNew = false;
    if (m) {
      const e = seq[Number(m[1])]!;
      isNew = e.isNew;
      from = `${prefix}blocks.${e.isNew ? e.neighbor : e.src}.${m[2]}`;
    }
    const x = cur.values.get(from);
    if (!x) {
      big.dispose();
      fail(`depth growth: no source "${from}" for "${bs.name}"`);
    }
    const origin = identityOrigin(from, x.data.length);
    const data = isNew && fresh ? Float64Array.from(fresh.get(bs.name)!.data) : Float64Array.from(x.data);
    values.set(bs.name, {
      shape: [...x.shape],
      data,
      origin: isNew ? { ...origin, fresh: new Uint8Array(x.data.length).fill(1) } : origin,
    });
    srcName.set(bs.name, from);
  }
  const editor = makeEditor(values, bigSpecs, notes, prefix);
  deepNormAbsorb(ctx, editor, oldBig);
  for (const r of runs) rule.apply(r, editor, ctx);
  family.adjust?.(values, bigSpecs, {
    smallConfig: cur.config,
    bigConfig: big.config,
    smallSpecOf: (n) => cur.specs.get(srcName.get(n) ?? n),
    note: (s) => addOnce(notes, s),
  });
  if (signedAlpha) notes.push('α made signed (alphaAbs: false) so the new α = 0 can learn');
  if (strategyOptions) notes.push(`strategy options of the grown model: ${JSON.stringify(strategyOptions)}`);
  if (epsF !== 1) notes.push(`norm eps × ${epsF.toPrecision(6)}`);
  assign(big, values);
  const where = runs.map((r) => `${r.layers.length}×@${r.position}`).join(', ');
  return {
    next: { model: big, values, specs: bigSpecs, config: big.config, info: family.info(big.config) },
    report: {
      name: 'depth',
      description: `${multi ? `${stack.name} ` : ''}layers ${N}→${N2} (new blocks before small-model block index: ${where}; ${req.depthInit === 'random' ? 'fresh init' : 'copies of the block below'}); ${rule.description}`,
      exactness,
      reasons,
      notes,
      from: dimsOf(info),
      to: dimsOf(family.info(big.config)),
    },
    trace: traceOf('depth', values),
  };
}

function makeEditor(
  values: Map<string, StageTensor>,
  specs: ReadonlyMap<string, ParamSpec>,
  notes: string[],
  prefix: string,
): DepthEditor {
  // Rules name the stack's blocks `blocks.{i}.…`; the model names them `<prefix>blocks.{i}.…`.
  const real = (n: string) => (n.startsWith('blocks.') ? `${prefix}${n}` : n);
  const need = (n: string) => {
    const t = values.get(real(n));
    if (!t) fail(`depth rule: no parameter "${real(n)}"`);
    return t;
  };
  const markFresh = (t: StageTensor): StageTensor => ({
    ...t,
    origin: { ...t.origin, fresh: new Uint8Array(t.data.length).fill(1) },
  });
  return {
    has: (n) => values.has(real(n)),
    get: (n) => need(n),
    fill(n, v) {
      const t = markFresh(need(n));
      (t.data as Float64Array).fill(v);
      values.set(real(n), t);
    },
    zero(n) {
      this.fill(n, 0);
    },
    scale(n, f) {
      const t = need(n);
      const s = Float64Array.from(t.origin.s, (x) => x * f);
      values.set(real(n), {
        shape: t.shape,
        data: Float64Array.from(t.data, (x) => x * f),
        origin: { ...t.origin, s },
      });
    },
    move(from, to) {
      const t = need(from);
      need(to);
      values.set(real(to), {
        shape: t.shape,
        data: Float64Array.from(t.data),
        origin: {
          from: t.origin.from,
          src: Int32Array.from(t.origin.src),
          s: Float64Array.from(t.origin.s),
          n: Float64Array.from(t.origin.n),
          ...(t.origin.fresh ? { fresh: Uint8Array.from(t.origin.fresh) } : {}),
        },
      });
    },
    branchOutputs(layer) {
      const out: string[] = [];
      const block = `${prefix}blocks.${layer}.`;
      for (const s of specs.values()) {
        if (!s.name.startsWith(block) || (s.role !== 'attn_out' && s.role !== 'ffn_out')) continue;
        const name = s.name.slice(prefix.length);
        out.push(name);
        const bias = name.replace(/\.weight$/, '.bias');
        if (bias !== name && values.has(real(bias))) out.push(bias);
      }
      return out;
    },
    note(text) {
      addOnce(notes, text);
    },
  };
}
