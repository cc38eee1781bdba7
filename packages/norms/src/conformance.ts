/**
 * A conformance suite for norm strategies — the built-ins and third-party plugins alike. Plain TypeScript
 * with no test-framework dependency: call it from any test runner (or a script) after choosing a backend.
 *
 * ```ts
 * import { initBackend } from '@strata/core';
 * import { runNormConformance } from '@strata/norms';
 * await initBackend('wasm');
 * const report = await runNormConformance(myNorm, { options: { scale: 0.5 } }); // throws on the first failure
 * ```
 *
 * @module
 */

import {
  type AnyNormStrategy,
  crossEntropy,
  getModelFamily,
  type LanguageModel,
  listNorms,
  NORM_API_VERSION,
  type NormKind,
  type OptionsSchema,
  registerNorm,
  unregisterNorm,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

/** Options of {@link runNormConformance}. */
export interface ConformanceOptions {
  /** Raw options for the strategy (as from JSON or the CLI); default `{}`. */
  options?: Record<string, unknown>;
  /** Norm kinds to test under (default both `layernorm` and `rmsnorm`). */
  normKinds?: readonly NormKind[];
  /** Depth of the test models (default 4). */
  nLayers?: number;
  /** Width of the test models (default 16, 2 heads). */
  dModel?: number;
  /** Init seed (default 1). */
  seed?: number;
  /** Maximum |Δ| tolerated between logits that must be identical (default 0: bitwise). */
  tolerance?: number;
}

/** One passed check. */
export interface ConformanceCheck {
  /** Check name, e.g. `gradients finite`. */
  readonly check: string;
  /** `options`, `metadata`, or the model variant (`layernorm`, `rmsnorm`). */
  readonly variant: string;
  /** What was measured. */
  readonly detail: string;
}

/** What {@link runNormConformance} returns when every check passed. */
export interface ConformanceReport {
  /** Name of the strategy checked. */
  readonly strategy: string;
  /** Its version. */
  readonly version: string;
  /** The parsed options the models were built with. */
  readonly options: Record<string, unknown>;
  /** Every check that ran, in order, with what it measured. */
  readonly checks: ConformanceCheck[];
  /** Names of the weights the strategy owns, per variant. */
  readonly strategyParams: Record<string, string[]>;
  /** Wall time in milliseconds. */
  readonly ms: number;
}

/** Thrown by {@link runNormConformance} on the first failed check. */
export class NormConformanceError extends Error {
  constructor(
    /** Name of the strategy that failed. */
    readonly strategy: string,
    /** The check that failed (as named in {@link ConformanceCheck}). */
    readonly check: string,
    /** Where it failed: `options`, `metadata`, or the model variant (`layernorm`, `rmsnorm`). */
    readonly variant: string,
    detail: string,
    /** Checks that passed before this one. */
    readonly passed: readonly ConformanceCheck[],
  ) {
    super(`norm conformance failed for "${strategy}" [${variant}] ${check}: ${detail}`);
    this.name = 'NormConformanceError';
  }
}

const VOCAB = 24;
const CONTEXT = 8;
const BATCH = 2;
const SEQ = 6;

/** Parameter names the GPT family itself owns (everything else belongs to the strategy). */
const GPT_OWN =
  /^(tok_emb\.weight|pos_emb\.weight|lm_head\.weight|blocks\.\d+\.attn\.(qkv|proj)\.(weight|bias)|blocks\.\d+\.mlp\.(fc|gate|proj)\.(weight|bias))$/;

function sameOptions(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && Object.is(a[k], b[k]));
}

function ids(seed: number, n: number): Int32Array {
  const out = new Int32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % VOCAB;
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
}

/**
 * Runs the conformance suite on `strategy` and returns a report; throws a {@link NormConformanceError}
 * describing the first failed check. For each norm kind it builds small GPTs (LayerNorm with GELU, learned
 * positions, biases and a tied head; RMSNorm with SwiGLU, RoPE, no biases and an untied head) and checks:
 * - metadata (name, semver version, contract version) and options (defaults parse, `parseOptions(parsed)`
 *   and its JSON round trip deep-equal `parsed`, an unknown option is rejected, every option is described);
 * - construction is deterministic for a seed, output shape `[B, T, V]`, finite logits;
 * - the strategy's own weights are named under a site prefix (`blocks.{i}.attn.`, `blocks.{i}.mlp.`,
 *   `final.`) with the right `layer`;
 * - every parameter receives a gradient of a cross-entropy loss and all gradients are finite;
 * - repeated forward + backward passes leak no tensors, and disposing the model frees everything;
 * - weights survive a save/load round trip (read → a model with another seed → assign → identical logits);
 * - `afterStep` runs after an SGD step and logits stay finite; LN-input diagnostics are finite.
 *
 * The strategy is registered for the duration of the run (an existing registration under its name is
 * restored afterwards). Call `initBackend` first; gradients must be registered.
 */
export async function runNormConformance(
  strategy: AnyNormStrategy,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const t0 = Date.now();
  const name = typeof strategy?.name === 'string' ? strategy.name : String(strategy?.name);
  const checks: ConformanceCheck[] = [];
  const fail = (check: string, variant: string, detail: string): never => {
    throw new NormConformanceError(name, check, variant, detail, [...checks]);
  };
  const pass = (check: string, variant: string, detail: string) => checks.push({ check, variant, detail });

  // --- metadata ---
  if (!name) fail('metadata', 'metadata', 'strategy has no name');
  if (typeof strategy.version !== 'string' || !/^\d+\.\d+\.\d+/.test(strategy.version)) {
    fail('metadata', 'metadata', `version must be semver, got ${JSON.stringify(strategy.version)}`);
  }
  if (strategy.apiVersion !== NORM_API_VERSION) {
    fail('metadata', 'metadata', `apiVersion ${String(strategy.apiVersion)} != ${NORM_API_VERSION}`);
  }
  if (typeof strategy.description !== 'string' || !strategy.description.trim()) {
    fail('metadata', 'metadata', 'description is empty');
  }
  if (typeof strategy.createSite !== 'function' || typeof strategy.parseOptions !== 'function') {
    fail('metadata', 'metadata', 'createSite and parseOptions must be functions');
  }
  pass('metadata', 'metadata', `${name}@${strategy.version}, API ${strategy.apiVersion}`);

  // --- options ---
  const raw = options.options ?? {};
  let parsed: Record<string, unknown> = {};
  try {
    strategy.parseOptions({});
    parsed = strategy.parseOptions(raw) as Record<string, unknown>;
  } catch (e) {
    fail('options parse', 'options', `parseOptions threw: ${(e as Error).message}`);
  }
  const again = strategy.parseOptions(parsed) as Record<string, unknown>;
  if (!sameOptions(again, parsed)) {
    fail(
      'options round trip',
      'options',
      `parseOptions(parsed) = ${JSON.stringify(again)} != ${JSON.stringify(parsed)}`,
    );
  }
  const viaJson = strategy.parseOptions(JSON.parse(JSON.stringify(parsed))) as Record<string, unknown>;
  if (!sameOptions(viaJson, parsed)) {
    fail(
      'options round trip',
      'options',
      `JSON round trip gives ${JSON.stringify(viaJson)} != ${JSON.stringify(parsed)}`,
    );
  }
  let rejected = false;
  try {
    strategy.parseOptions({ ...parsed, __conformance_unknown_option__: 1 });
  } catch {
    rejected = true;
  }
  if (!rejected) fail('options unknown rejected', 'options', 'an unknown option was accepted');
  for (const [k, spec] of Object.entries((strategy.options ?? {}) as OptionsSchema)) {
    if (!spec || typeof spec.description !== 'string' || !spec.description.trim()) {
      fail('options described', 'options', `option "${k}" has no description`);
    }
  }
  pass(
    'options',
    'options',
    `parsed ${JSON.stringify(parsed)}; round trip, JSON round trip, unknown option rejected`,
  );

  // --- registration for the model builds ---
  const previous = listNorms().find((s) => s.name === name);
  if (previous !== strategy) registerNorm(strategy, { override: true });
  const strategyParams: Record<string, string[]> = {};
  try {
    for (const kind of options.normKinds ?? (['layernorm', 'rmsnorm'] as const)) {
      strategyParams[kind] = await runVariant(strategy, kind, parsed, options, pass, fail);
    }
  } finally {
    if (previous !== strategy) {
      if (previous) registerNorm(previous, { override: true });
      else unregisterNorm(name);
    }
  }
  return {
    strategy: name,
    version: strategy.version,
    options: parsed,
    checks,
    strategyParams,
    ms: Date.now() - t0,
  };
}

async function runVariant(
  strategy: AnyNormStrategy,
  kind: NormKind,
  parsed: Record<string, unknown>,
  options: ConformanceOptions,
  pass: (check: string, variant: string, detail: string) => void,
  fail: (check: string, variant: string, detail: string) => never,
): Promise<string[]> {
  const v = kind;
  const tol = options.tolerance ?? 0;
  const seed = options.seed ?? 1;
  const dModel = options.dModel ?? 16;
  const nLayers = options.nLayers ?? 4;
  const family = getModelFamily('gpt');
  const rawConfig = {
    vocabSize: VOCAB,
    contextLength: CONTEXT,
    dModel,
    nHeads: 2,
    nLayers,
    dFF: 2 * dModel,
    normKind: kind,
    ...(kind === 'layernorm'
      ? { activation: 'gelu', positions: 'learned', bias: true, tiedEmbeddings: true }
      : { activation: 'swiglu', positions: 'rope', bias: false, tiedEmbeddings: false }),
    norm: { name: strategy.name, options: parsed },
  };
  const baseline = tf.memory().numTensors;
  let cfg: ReturnType<typeof family.parseConfig>;
  try {
    cfg = family.parseConfig(rawConfig);
  } catch (e) {
    return fail('config', v, `the GPT config with these options is refused: ${(e as Error).message}`);
  }
  const input = tf.tensor2d(ids(seed * 31 + 7, BATCH * SEQ), [BATCH, SEQ], 'int32');
  const targets = tf.tensor1d(ids(seed * 17 + 3, BATCH * SEQ), 'int32');
  const models: LanguageModel[] = [];
  const own: string[] = [];
  const build = (s: number): LanguageModel => {
    try {
      const m = family.create(cfg, { seed: s });
      models.push(m);
      return m;
    } catch (e) {
      return fail('build', v, `creating the model threw: ${(e as Error).stack ?? e}`);
    }
  };
  const logitsOf = (m: LanguageModel): Float32Array => {
    const out = m.forward(input);
    const shape = out.shape;
    const data = out.dataSync() as Float32Array;
    out.dispose();
    if (shape.length !== 3 || shape[0] !== BATCH || shape[1] !== SEQ || shape[2] !== VOCAB) {
      fail('forward shape', v, `logits have shape [${shape}], expected [${BATCH}, ${SEQ}, ${VOCAB}]`);
    }
    return new Float32Array(data);
  };
  try {
    const m = build(seed);
    const logits = logitsOf(m);
    pass('forward shape', v, `[${BATCH}, ${SEQ}, ${VOCAB}]`);
    const bad = firstNonFinite(logits);
    if (bad >= 0) fail('finite logits', v, `logit #${bad} is ${logits[bad]}`);
    pass('finite logits', v, `max |logit| ${Math.max(...Array.from(logits, Math.abs)).toPrecision(3)}`);

    const twin = build(seed);
    const d0 = maxAbsDiff(logits, logitsOf(twin));
    if (d0 > tol) fail('deterministic init', v, `two models with seed ${seed} differ by ${d0}`);
    pass('deterministic init', v, `max |Δlogit| ${d0}`);

    // Strategy weights live under a site prefix and carry their block's layer index.
    for (const spec of m.params.specs()) {
      if (GPT_OWN.test(spec.name)) continue;
      own.push(spec.name);
      const blk = /^blocks\.(\d+)\.(attn|mlp)\./.exec(spec.name);
      if (blk) {
        if (spec.layer !== Number(blk[1])) {
          fail('weight names', v, `"${spec.name}" has layer ${spec.layer}, expected ${blk[1]}`);
        }
      } else if (!spec.name.startsWith('final.')) {
        fail('weight names', v, `"${spec.name}" is not under blocks.{i}.attn., blocks.{i}.mlp. or final.`);
      }
      const n = spec.shape.reduce((a, b) => a * b, 1);
      if (!Number.isInteger(n) || n < 1)
        fail('weight names', v, `"${spec.name}" has an empty shape [${spec.shape}]`);
    }
    pass(
      'weight names',
      v,
      own.length
        ? `${own.length} strategy weights, e.g. ${own.slice(0, 3).join(', ')}`
        : 'no strategy weights',
    );

    // Gradients of a cross-entropy loss: present for every trainable parameter, finite. Non-trainable
    // buffers (`trainable: false`, e.g. a pinned per-layer α) are saved with the model but get no gradient.
    const vars = m.params.trainableVariables();
    const byTfName = new Map(vars.map(([n, t]) => [t.name, n]));
    const lossFn = () =>
      tf.tidy(() =>
        crossEntropy(
          tf.reshape(m.forward(input, { training: true }), [BATCH * SEQ, VOCAB]) as tf.Tensor2D,
          targets,
        ),
      );
    const step = (check: boolean): Map<string, Float32Array> => {
      const { value, grads } = tf.variableGrads(
        lossFn,
        vars.map(([, t]) => t),
      );
      const out = new Map<string, Float32Array>();
      for (const [tfName, g] of Object.entries(grads)) {
        if (g) out.set(byTfName.get(tfName) ?? tfName, new Float32Array(g.dataSync() as Float32Array));
      }
      const loss = value.dataSync()[0]!;
      value.dispose();
      tf.dispose(Object.values(grads).filter((g): g is tf.Tensor => g != null));
      if (check) {
        if (!Number.isFinite(loss)) fail('finite loss', v, `loss is ${loss}`);
        for (const [pn] of vars) {
          const g = out.get(pn);
          if (!g)
            fail(
              'gradients present',
              v,
              `parameter "${pn}" receives no gradient (unused in the forward pass?)`,
            );
          const i = firstNonFinite(g!);
          if (i >= 0) fail('gradients finite', v, `gradient of "${pn}"[${i}] is ${g![i]}`);
        }
      }
      return out;
    };
    const grads = step(true);
    pass('gradients finite', v, `${grads.size} parameters, all gradients present and finite`);

    // No tensor leak across repeated forward + backward.
    const before = tf.memory().numTensors;
    step(false);
    step(false);
    const after = tf.memory().numTensors;
    if (after !== before)
      fail('no tensor leak', v, `forward+backward leaked ${after - before} tensors per 2 steps`);
    const beforeFwd = tf.memory().numTensors;
    logitsOf(m);
    if (tf.memory().numTensors !== beforeFwd) {
      fail('no tensor leak', v, `forward leaked ${tf.memory().numTensors - beforeFwd} tensors`);
    }
    pass('no tensor leak', v, `${after} tensors before and after repeated forward+backward`);

    // Diagnostics: LN-input recording is finite and leak-free.
    if (m.setDiagnostics && m.takeNormInputs) {
      m.setDiagnostics(true);
      logitsOf(m);
      const rec = await m.takeNormInputs();
      m.setDiagnostics(false);
      for (const [n, x] of rec) if (!Number.isFinite(x)) fail('diagnostics', v, `norm input of ${n} is ${x}`);
      if (tf.memory().numTensors !== beforeFwd) fail('diagnostics', v, 'norm-input recording leaked tensors');
      pass('diagnostics', v, `${rec.size} norm inputs recorded`);
    }

    // Save / load round trip.
    const saved = await m.params.read();
    const fresh = build(seed + 1000);
    try {
      fresh.params.assign(saved, 'conformance round trip');
    } catch (e) {
      fail('save/load round trip', v, (e as Error).message);
    }
    const dl = maxAbsDiff(logits, logitsOf(fresh));
    if (dl > tol) fail('save/load round trip', v, `logits after load differ by ${dl}`);
    pass('save/load round trip', v, `${saved.size} tensors, max |Δlogit| ${dl}`);

    // afterStep after one SGD step.
    tf.tidy(() => {
      for (const [pn, variable] of vars) {
        const g = grads.get(pn);
        if (g) variable.assign(tf.sub(variable, tf.mul(tf.tensor(g, variable.shape), 0.01)));
      }
    });
    try {
      m.afterStep();
    } catch (e) {
      fail('afterStep', v, `afterStep threw: ${(e as Error).message}`);
    }
    const post = logitsOf(m);
    const bp = firstNonFinite(post);
    if (bp >= 0) fail('afterStep', v, `logit #${bp} is ${post[bp]} after an SGD step and afterStep`);
    pass('afterStep', v, 'ran after an SGD step; logits finite');
  } finally {
    for (const m of models) m.dispose();
    input.dispose();
    targets.dispose();
  }
  const leaked = tf.memory().numTensors - baseline;
  if (leaked !== 0) fail('dispose', v, `${leaked} tensors remain after disposing every model`);
  pass('dispose', v, 'all tensors freed');
  return own;
}
