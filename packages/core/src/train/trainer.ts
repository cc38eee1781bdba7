import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import type { LanguageModel } from '../model/family.js';
import { strataKernelsActive, sumSquaresFast, tokenLoss } from '../ops.js';
import type { DataParallelPool, WorkerSetup } from '../parallel/pool.js';
import { maybeNodeBuiltin } from '../util/node-builtin.js';

export type { WorkerSetup } from '../parallel/pool.js';

import { AdamW, type OptimizerState } from './adamw.js';
import { lrScaleLifetime, type TrainConfig } from './config.js';
import { learningRateAt, lrScaleWeightAt, type ScheduleConfig, validateSchedule } from './schedule.js';

/** One batch of next-token data: `x` and `y` are `[batchSize·seqLen]` row-major, `y` is `x` shifted by one. */
export interface Batch {
  /** Input token ids. */
  x: Int32Array;
  /** Target ids: the next token of each input position. */
  y: Int32Array;
}

/** Where the trainer gets data. `trainBatch` must depend only on `step`, so resumed runs see the same data. */
export interface BatchSource {
  /** Training batch number `step` (a pure function of the step and the data seed). */
  trainBatch(step: number, batchSize: number, seqLen: number): Batch;
  /** A fixed list of validation batches. */
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[];
}

/** What one training step reports. */
export interface StepMetrics {
  /** Number of completed steps after this one (1-based). */
  step: number;
  /** Mean cross-entropy of the batch, in nats per token (before this step's update). */
  loss: number;
  /** Learning rate applied in this step (after warmup and decay). */
  lr: number;
  /** Global gradient L2 norm before clipping. */
  gradNorm: number;
  /** Whether the update was skipped because the loss or gradients were not finite. */
  skipped: boolean;
  /** Wall time of this step in milliseconds. */
  ms: number;
  /** Tokens processed per second in this step. */
  tokensPerSec: number;
  /** Live tensors after the step (flat from step to step when nothing leaks). */
  numTensors: number;
  /** Depth-stability diagnostics, on steps where they are recorded. */
  diagnostics?: Diagnostics;
}

/** DeepNet §3 diagnostics. */
export interface Diagnostics {
  /** L2 norm of the gradient of each block's parameters, by block index. */
  layerGradNorms: number[];
  /** Mean L2 norm of the input of each norm, by norm name (e.g. `blocks.3.attn.norm`). */
  normInputs: Record<string, number>;
  /**
   * ‖F(x, θ_t) − F(x, θ_0)‖ over the logits of a fixed probe batch, divided by √positions; NaN after a resume
   * without {@link TrainerOptions.initialModel}.
   */
  deltaF: number;
}

/** Result of an evaluation. */
export interface EvalResult {
  /** Mean cross-entropy over the validation tokens, in nats per token. */
  loss: number;
  /** `exp(loss)`. */
  perplexity: number;
  /** Number of target tokens evaluated. */
  tokens: number;
}

/** The run state saved in `state.json`, enough to continue as if never stopped. */
export interface TrainState {
  /** Completed steps. */
  step: number;
  /** Seconds of training so far (excluding evaluation). */
  trainSeconds: number;
  /** Last validation loss, if any. */
  lastValLoss?: number;
  /** Steps skipped for non-finite values. */
  skippedSteps: number;
}

/** Extra options of a {@link Trainer} (not recorded in checkpoints: they change speed and memory, not results). */
export interface TrainerOptions {
  /**
   * Data-parallel ranks (default 1). With `workers: 2` the batch is split between this thread and one
   * `worker_thread` with its own tfjs + wasm backend; gradients are averaged over shared memory and the
   * optimizer runs once, here, so results equal single-threaded training up to float rounding and
   * checkpoints are identical in format. Needs the wasm or cpu backend. Call {@link Trainer.close} (or
   * `dispose`) to stop the workers.
   */
  workers?: number;
  /**
   * Modules the workers import before building their model replica, e.g. the norm plugins the model uses:
   * `[{ module: import.meta.resolve('@strata/norms'), call: 'registerBuiltinNorms' }]`. Strata's built-in
   * `gpt` family with `pre-ln` needs none.
   */
  workerSetup?: WorkerSetup[];
  /**
   * Per-block activation recomputation: run the blocks forward without a tape keeping only the residual
   * stream, then backpropagate block by block. Gradients are bit-identical; peak memory drops from all
   * activations of all blocks to those of one block (what lets 1,000-layer models fit the 4 GB wasm heap),
   * for about one extra forward pass of time. The model must implement {@link StagedModel} (the GPT does).
   */
  recompute?: boolean;
  /**
   * The model as it was at step 0, for the ‖ΔF‖ diagnostic of a resumed run (DeepNet §3 measures the update
   * from the initialization, θ_0). A run started from step 0 needs none. A resumed run without it reports
   * `deltaF: NaN` rather than an update measured from the checkpoint it resumed from. Only its forward pass
   * on the probe batch is used, once; the caller disposes it.
   */
  initialModel?: LanguageModel;
}

/**
 * A model whose forward pass can run in stages, for {@link TrainerOptions.recompute}. `block(i, x)` may be
 * called twice for the same `i` (forward, then under the tape) and must compute the same function both times
 * (replaying dropout masks).
 */
export interface StagedModel {
  /** Splits the forward pass into stages for block-wise recomputation. */
  stages(ids: tf.Tensor2D, options?: { training?: boolean; seed?: number }): ModelStages;
}

/** The stages of one forward pass; see {@link StagedModel}. */
export interface ModelStages {
  /** Number of blocks, called in order by `block(i, x)`. */
  readonly numBlocks: number;
  /** Embedding: the initial residual stream `[rows, d]`. */
  embed(): tf.Tensor2D;
  /** Block `i` on the residual stream. */
  block(i: number, x: tf.Tensor2D): tf.Tensor2D;
  /** Final norm and output head: logits `[rows, vocab]`. */
  head(x: tf.Tensor2D): tf.Tensor2D;
  /** Trainable variables used by each stage (a variable may appear in the embedding and the head). */
  embedVariables(): tf.Variable[];
  /** Trainable variables of block `i`. */
  blockVariables(i: number): tf.Variable[];
  /** Trainable variables of the embedding and head (everything outside the blocks). */
  headVariables(): tf.Variable[];
}

function isStaged(m: LanguageModel): m is LanguageModel & StagedModel {
  return typeof (m as Partial<StagedModel>).stages === 'function';
}

/**
 * Mean next-token loss of `rows` sequences and its gradient with respect to every trainable parameter (by
 * parameter name). This is what one training step (or one data-parallel rank) computes.
 * @param x `[rows·seqLen]` int32 ids; `y` the targets, same shape
 */
export function computeLossAndGrads(
  model: LanguageModel,
  x: Int32Array,
  y: Int32Array,
  rows: number,
  seqLen: number,
  options: { training: boolean; seed: number; recompute?: boolean },
): {
  /** Mean cross-entropy over the `rows·seqLen` targets (nats). */
  loss: tf.Scalar;
  /** Gradient of the loss for each trainable parameter, by parameter name. */
  grads: Map<string, tf.Tensor>;
} {
  const varToParam = new Map<string, string>();
  for (const [name, v] of model.params.variables()) varToParam.set(v.name, name);
  const xs = tf.tensor2d(x, [rows, seqLen], 'int32');
  const ys = tf.tensor1d(y, 'int32');
  // Targets -1 (masked-LM positions that were not masked, padded seq2seq targets) do not count.
  const hasIgnored = y.some((v) => v < 0);
  try {
    if (options.recompute) {
      if (!isStaged(model)) {
        throw new StrataError(
          'E_CONFIG',
          `recompute: the "${model.family}" model does not implement stages(), which per-block recomputation needs`,
        );
      }
      return recomputeGrads(model.stages(xs, options), ys, varToParam, hasIgnored);
    }
    const vars = model.params
      .variables()
      .map(([, v]) => v)
      .filter((v) => v.trainable);
    const { value, grads } = tf.variableGrads(() => {
      return tokenLoss(model.forward(xs, options), ys, hasIgnored);
    }, vars);
    const byName = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) byName.set(varToParam.get(vn) ?? vn, g);
    return { loss: value, grads: byName };
  } finally {
    xs.dispose();
    ys.dispose();
  }
}

/**
 * Per-block activation recomputation. Forward: embedding and blocks run outside any tape, keeping only the
 * residual stream between blocks. Backward: the head under a tape gives d(loss)/d(x_L); then for each block
 * from the last, the block is re-run under a tape and `dx` flows through it (`tf.engine().gradients` with an
 * upstream gradient). Each stage accumulates into a variable's gradient in the order the full tape would,
 * so the result is bit-identical to `tf.variableGrads` on the whole forward pass.
 */
function recomputeGrads(
  st: ModelStages,
  targets: tf.Tensor1D,
  varToParam: Map<string, string>,
  hasIgnored = false,
): { loss: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const engine = tf.engine();
  const grads = new Map<string, tf.Tensor>();
  const accumulate = (vars: tf.Variable[], gs: tf.Tensor[]) => {
    vars.forEach((v, i) => {
      const g = gs[i];
      if (!g) return;
      const name = varToParam.get(v.name) ?? v.name;
      const prev = grads.get(name);
      if (prev) {
        grads.set(name, tf.keep(tf.add(prev, g)));
        prev.dispose();
        g.dispose();
      } else grads.set(name, g);
    });
  };
  const stream: tf.Tensor2D[] = [tf.tidy(() => st.embed())];
  for (let i = 0; i < st.numBlocks; i++) stream.push(tf.tidy(() => st.block(i, stream[i]!)));
  const headVars = st.headVariables();
  const xL = stream[st.numBlocks]!;
  const h = engine.gradients(
    () => tokenLoss(st.head(xL), targets, hasIgnored),
    [xL, ...headVars],
    undefined,
    true,
  );
  const loss = h.value as tf.Scalar;
  let dx = h.grads[0] as tf.Tensor2D;
  accumulate(headVars, h.grads.slice(1));
  xL.dispose();
  for (let i = st.numBlocks - 1; i >= 0; i--) {
    const xin = stream[i]!;
    const vars = st.blockVariables(i);
    const r = engine.gradients(() => st.block(i, xin), [xin, ...vars], dx, true);
    r.value.dispose();
    dx.dispose();
    dx = r.grads[0] as tf.Tensor2D;
    accumulate(vars, r.grads.slice(1));
    if (i > 0) xin.dispose();
  }
  const x0 = stream[0]!;
  x0.dispose();
  const embedVars = st.embedVariables();
  if (embedVars.length > 0) {
    const r = engine.gradients(() => st.embed(), embedVars, dx, true);
    r.value.dispose();
    accumulate(embedVars, r.grads);
  }
  dx.dispose();
  return { loss, grads };
}

/**
 * Runs the optimization: deterministic batches per step, warmup + cosine learning rate, global-norm
 * clipping, AdamW, the model's post-step hook, periodic evaluation and optional diagnostics.
 *
 * Resuming: construct with the saved optimizer state and {@link TrainState}; because batches, dropout seeds
 * and the schedule depend only on the step, the continued run matches an uninterrupted one.
 */
export class Trainer {
  /** The AdamW instance (its `exportState()` is what checkpoints save). */
  readonly optimizer: AdamW;
  /** Progress of the run (step, training time, last validation loss, skipped steps). */
  readonly state: TrainState;
  private readonly schedule: ScheduleConfig;
  private probe?: { x: tf.Tensor2D; logits0: Float32Array | undefined };
  private valCache?: Batch[];
  private pool?: DataParallelPool;
  private poolStarting?: Promise<DataParallelPool>;
  /** Consecutive steps whose loss exceeded the explosion threshold (see {@link TrainConfig.explodeFactor}). */
  private aboveLimit = 0;

  constructor(
    /** The model being trained (not disposed by the trainer). */
    readonly model: LanguageModel,
    /** Where batches come from (a TextDataset, a MarkovDataset, or your own). */
    readonly data: BatchSource,
    /** The validated training config (see parseTrainConfig). */
    readonly config: TrainConfig,
    resume?: { optimizer?: OptimizerState; state?: TrainState },
    /** Speed/memory options (workers, recompute): they do not change results. */
    readonly options: TrainerOptions = {},
  ) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1)
      throw new StrataError('E_CONFIG', `workers must be an integer >= 1, got ${workers}`);
    if (workers > config.batchSize)
      throw new StrataError(
        'E_CONFIG',
        `workers (${workers}) must not exceed train.batchSize (${config.batchSize}): each needs at least one sequence`,
      );
    if (options.recompute && !isStaged(model))
      throw new StrataError(
        'E_CONFIG',
        `recompute: the "${model.family}" model does not implement stages(), which per-block recomputation needs`,
      );
    const ctx = model.config.contextLength;
    if (config.seqLen > ctx) {
      throw new StrataError(
        'E_CONFIG',
        `train.seqLen (${config.seqLen}) must be <= model.contextLength (${ctx})`,
      );
    }
    this.schedule = {
      lr: config.lr,
      minLr: config.minLr,
      warmupSteps: config.warmupSteps,
      totalSteps: config.scheduleSteps ?? config.steps,
      decay: config.decay,
      phaseStart: config.phaseStart ?? 0,
    };
    validateSchedule(this.schedule);
    this.optimizer = new AdamW(model.params, {
      beta1: config.beta1,
      beta2: config.beta2,
      eps: config.eps,
      weightDecay: config.weightDecay,
    });
    if (resume?.optimizer) this.optimizer.importState(resume.optimizer);
    this.state = resume?.state ? { ...resume.state } : { step: 0, trainSeconds: 0, skippedSteps: 0 };
  }

  /** Learning rate the next step will use. */
  get lr(): number {
    return learningRateAt(this.state.step, this.schedule);
  }

  /**
   * Loss above which a step counts towards a loss explosion: `explodeFactor · ln(vocabSize)`
   * (`Infinity` when the rule is off).
   */
  get lossLimit(): number {
    const f = this.config.explodeFactor;
    return f > 0 ? f * Math.log(this.model.config.vocabSize) : Number.POSITIVE_INFINITY;
  }

  /**
   * True when the last step's loss was within {@link Trainer.lossLimit} (and finite): the weights are worth
   * a checkpoint. Runs keep their last sane checkpoint instead of overwriting it with an exploding one.
   */
  get lossSane(): boolean {
    return this.aboveLimit === 0;
  }

  /** Tokens per step (all micro-batches). */
  get tokensPerStep(): number {
    return this.config.batchSize * (this.config.gradAccum ?? 1) * this.config.seqLen;
  }

  /** Runs one optimization step and returns its metrics. */
  async step(): Promise<StepMetrics> {
    const t0 = performance.now();
    const c = this.config;
    const stepIndex = this.state.step;
    const diag = c.diagnosticsEvery > 0 && (stepIndex % c.diagnosticsEvery === 0 || stepIndex < 10);
    if (diag) await this.ensureProbe();
    const accum = c.gradAccum ?? 1;
    // With gradient accumulation the step's batch is drawn whole and cut into `accum` micro-batches, so it
    // holds exactly the sequences one big batch of `batchSize · accum` would.
    const batch = this.data.trainBatch(stepIndex, c.batchSize * accum, c.seqLen);
    const lr = learningRateAt(stepIndex, this.schedule);
    this.model.setDiagnostics?.(diag);
    const T = batch.x.length / (c.batchSize * accum);
    let loss = 0;
    let byName = new Map<string, tf.Tensor>();
    const recompute = !!this.options.recompute;
    for (let k = 0; k < accum; k++) {
      // micro-batch k draws its own dropout masks (k = 0 keeps the seed of an unaccumulated step)
      const seed = c.seed * 1_000_003 + stepIndex + k * 1_000_000_007;
      const rows = c.batchSize * T;
      const x = accum === 1 ? batch.x : batch.x.subarray(k * rows, (k + 1) * rows);
      // targets per row may differ from inputs per row (an encoder-decoder's packed rows)
      const yRows = batch.y.length / accum;
      const y = accum === 1 ? batch.y : batch.y.subarray(k * yRows, (k + 1) * yRows);
      const local = (x: Int32Array, y: Int32Array, rows: number) => {
        const r = computeLossAndGrads(this.model, x, y, rows, T, { training: true, seed, recompute });
        const l = r.loss.dataSync()[0]!;
        r.loss.dispose();
        return { loss: l, grads: r.grads };
      };
      let r: { loss: number; grads: Map<string, tf.Tensor> };
      if ((this.options.workers ?? 1) > 1) {
        const pool = await this.startPool();
        r = await pool.step(x, y, c.batchSize, T, seed, true, local);
      } else {
        const g = computeLossAndGrads(this.model, x, y, c.batchSize, T, { training: true, seed, recompute });
        const lossArr = await g.loss.data();
        g.loss.dispose();
        r = { loss: lossArr[0]!, grads: g.grads };
      }
      loss += r.loss;
      if (k === 0) byName = r.grads;
      else {
        for (const [name, g] of r.grads) {
          const prev = byName.get(name);
          byName.set(name, prev ? tf.add(prev, g) : g);
          if (prev) {
            prev.dispose();
            g.dispose();
          }
        }
      }
    }
    if (accum > 1) {
      // the mean over micro-batches of equal size is the mean over the whole batch
      loss /= accum;
      for (const [name, g] of byName) {
        byName.set(name, tf.mul(g, 1 / accum));
        g.dispose();
      }
    }
    const gs = [...byName.values()];
    const sq =
      strataKernelsActive() && gs.every((g) => g.dtype === 'float32')
        ? sumSquaresFast(gs)
        : tf.tidy(() => tf.addN(gs.map((g) => tf.sum(tf.mul(g, g)))));
    const sqArr = await sq.data();
    sq.dispose();
    const gradNorm = Math.sqrt(sqArr[0]!);
    let layerGradNorms: number[] | undefined;
    if (diag) layerGradNorms = await this.layerGradNorms(byName);
    const finite = Number.isFinite(loss) && Number.isFinite(gradNorm);
    let skipped = false;
    if (finite) {
      const scale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / (gradNorm + 1e-6) : 1;
      const w = lrScaleWeightAt(stepIndex, c.phaseStart ?? 0, lrScaleLifetime(c));
      this.optimizer.apply(byName, lr, scale, w);
      if (w === 0 && this.optimizer.hasLrScale) this.optimizer.clearLrScale();
      this.model.afterStep();
      this.pool?.publishParams();
    } else if (c.onNonFinite === 'skip') {
      skipped = true;
      this.state.skippedSteps += 1;
    }
    for (const g of byName.values()) g.dispose();
    if (!finite && c.onNonFinite === 'stop') {
      this.model.setDiagnostics?.(false);
      throw new StrataError(
        'E_DIVERGED',
        `training diverged at step ${stepIndex + 1}: ${Number.isFinite(loss) ? `gradient norm is ${gradNorm}` : `loss is ${loss}`}; the update was not applied`,
      );
    }
    this.state.step += 1;
    if (finite) this.checkExplosion(loss);
    const ms = performance.now() - t0;
    this.state.trainSeconds += ms / 1000;
    let diagnostics: Diagnostics | undefined;
    if (diag) {
      const normInputs = Object.fromEntries((await this.model.takeNormInputs?.()) ?? []);
      this.model.setDiagnostics?.(false);
      diagnostics = { layerGradNorms: layerGradNorms ?? [], normInputs, deltaF: await this.deltaF() };
    }
    return {
      step: this.state.step,
      loss,
      lr,
      gradNorm,
      skipped,
      ms,
      tokensPerSec: (this.tokensPerStep * 1000) / ms,
      numTensors: tf.memory().numTensors,
      ...(diagnostics ? { diagnostics } : {}),
    };
  }

  /** Counts steps above {@link Trainer.lossLimit}; throws `E_DIVERGED` after `explodePatience` in a row. */
  private checkExplosion(loss: number): void {
    const limit = this.lossLimit;
    this.aboveLimit = loss > limit ? this.aboveLimit + 1 : 0;
    if (this.aboveLimit >= this.config.explodePatience) {
      this.model.setDiagnostics?.(false);
      throw new StrataError(
        'E_DIVERGED',
        `training diverged at step ${this.state.step}: the loss exploded (${formatLoss(loss)}, above ${formatLoss(limit)} = ${this.config.explodeFactor} × ln ${this.model.config.vocabSize}, the loss of uniform guessing, for ${this.aboveLimit} steps in a row; change the rule with --explode-factor/--explode-patience)`,
      );
    }
  }

  private async layerGradNorms(grads: Map<string, tf.Tensor>): Promise<number[]> {
    const byLayer = new Map<number, tf.Tensor[]>();
    for (const [name, g] of grads) {
      const spec = this.model.params.has(name) ? this.model.params.spec(name) : undefined;
      if (spec?.layer === undefined) continue;
      const list = byLayer.get(spec.layer) ?? [];
      list.push(g);
      byLayer.set(spec.layer, list);
    }
    const n = Math.max(-1, ...byLayer.keys()) + 1;
    const out: number[] = new Array(n).fill(0);
    for (const [layer, list] of byLayer) {
      const s = tf.tidy(() => tf.addN(list.map((g) => tf.sum(tf.mul(g, g)))));
      out[layer] = Math.sqrt((await s.data())[0]!);
      s.dispose();
    }
    return out;
  }

  private async ensureProbe(): Promise<void> {
    if (this.probe) return;
    const b = this.valBatches()[0] ?? this.data.trainBatch(0, this.config.batchSize, this.config.seqLen);
    const x = tf.tensor2d(b.x, [this.config.batchSize, b.x.length / this.config.batchSize], 'int32');
    // F(x, θ_0): the current model at step 0, else the caller's copy of the initial model, else unknown.
    const ref = this.state.step === 0 ? this.model : this.options.initialModel;
    if (!ref) {
      this.probe = { x, logits0: undefined };
      return;
    }
    const logits = ref.forward(x);
    this.probe = { x, logits0: (await logits.data()) as Float32Array };
    logits.dispose();
  }

  private async deltaF(): Promise<number> {
    await this.ensureProbe();
    const p = this.probe!;
    if (!p.logits0) return Number.NaN;
    const logits = this.model.forward(p.x);
    const now = (await logits.data()) as Float32Array;
    logits.dispose();
    let s = 0;
    for (let i = 0; i < now.length; i++) s += (now[i]! - p.logits0[i]!) ** 2;
    const positions = p.x.size;
    return Math.sqrt(s / positions);
  }

  private valBatches(): Batch[] {
    this.valCache ??= this.data.valBatches(
      this.config.batchSize,
      this.config.seqLen,
      this.config.evalBatches,
    );
    return this.valCache;
  }

  /** Mean validation loss over the configured number of fixed validation batches. */
  async evaluate(): Promise<EvalResult> {
    const res = await evaluateLoss(this.model, this.valBatches(), this.config.batchSize);
    this.state.lastValLoss = res.loss;
    return res;
  }

  private startPool(): Promise<DataParallelPool> {
    if (this.pool) return Promise.resolve(this.pool);
    this.poolStarting ??= (async () => {
      // Worker threads are Node's: a variable specifier keeps the pool out of browser bundles.
      if (maybeNodeBuiltin('node:fs') === undefined)
        throw new StrataError(
          'E_CONFIG',
          'workers > 1 needs Node.js (worker_threads); use workers: 1 in a browser',
        );
      const poolModule = '../parallel/pool.js';
      const { DataParallelPool } = (await import(
        /* @vite-ignore */ poolModule
      )) as typeof import('../parallel/pool.js');
      const backend = tf.getBackend();
      const pool = await DataParallelPool.create(this.model, {
        ranks: this.options.workers ?? 1,
        backend,
        setup: this.options.workerSetup ?? [],
        recompute: !!this.options.recompute,
        seed: this.config.seed,
      });
      this.pool = pool;
      return pool;
    })();
    return this.poolStarting;
  }

  /** Stops data-parallel workers (if any) and waits until they have exited. The trainer stays usable. */
  async close(): Promise<void> {
    const starting = this.poolStarting;
    this.pool = undefined;
    this.poolStarting = undefined;
    if (starting) await (await starting.catch(() => undefined))?.close();
  }

  /** Frees the optimizer state and probe tensors (not the model), and stops workers (without waiting). */
  dispose(): void {
    void this.close();
    this.optimizer.dispose();
    this.probe?.x.dispose();
  }
}

function formatLoss(x: number): string {
  return x >= 1e4 ? x.toExponential(2) : x.toFixed(2);
}

/**
 * Mean next-token loss of `model` over `batches` (each `[batchSize·seqLen]`), and its perplexity. Targets
 * `-1` are not counted (masked-LM and padded sequence-to-sequence batches); `tokens` counts the rest.
 */
export async function evaluateLoss(
  model: LanguageModel,
  batches: readonly Batch[],
  batchSize: number,
): Promise<EvalResult> {
  if (batches.length === 0)
    throw new StrataError('E_DATA', 'no validation batches: the validation split is too small');
  let total = 0;
  let tokens = 0;
  for (const b of batches) {
    const T = b.x.length / batchSize;
    let counted = 0;
    for (const v of b.y) if (v >= 0) counted++;
    const loss = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [batchSize, T], 'int32');
      return tokenLoss(model.forward(x), tf.tensor1d(b.y, 'int32'), counted < b.y.length);
    });
    total += (await loss.data())[0]! * counted;
    tokens += counted;
    loss.dispose();
  }
  const mean = total / tokens;
  return { loss: mean, perplexity: Math.exp(mean), tokens };
}
