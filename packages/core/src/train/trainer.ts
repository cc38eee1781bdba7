import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import type { LanguageModel } from '../model/family.js';
import { crossEntropy } from '../ops.js';
import { AdamW, type OptimizerState } from './adamw.js';
import type { TrainConfig } from './config.js';
import { learningRateAt, type ScheduleConfig, validateSchedule } from './schedule.js';

/** One batch of next-token data: `x` and `y` are `[batchSize·seqLen]` row-major, `y` is `x` shifted by one. */
export interface Batch {
  x: Int32Array;
  y: Int32Array;
}

/** Where the trainer gets data. `trainBatch` must depend only on `step`, so resumed runs see the same data. */
export interface BatchSource {
  trainBatch(step: number, batchSize: number, seqLen: number): Batch;
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[];
}

/** What one training step reports. */
export interface StepMetrics {
  /** Number of completed steps after this one (1-based). */
  step: number;
  loss: number;
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
  /** ‖F(x, θ_t) − F(x, θ_0)‖ over the logits of a fixed probe batch, divided by √positions. */
  deltaF: number;
}

/** Result of an evaluation. */
export interface EvalResult {
  loss: number;
  perplexity: number;
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

/**
 * Runs the optimization: deterministic batches per step, warmup + cosine learning rate, global-norm
 * clipping, AdamW, the model's post-step hook, periodic evaluation and optional diagnostics.
 *
 * Resuming: construct with the saved optimizer state and {@link TrainState}; because batches, dropout seeds
 * and the schedule depend only on the step, the continued run matches an uninterrupted one.
 */
export class Trainer {
  readonly optimizer: AdamW;
  readonly state: TrainState;
  private readonly schedule: ScheduleConfig;
  private readonly varToParam = new Map<string, string>();
  private probe?: { x: tf.Tensor2D; logits0: Float32Array };
  private valCache?: Batch[];

  constructor(
    readonly model: LanguageModel,
    readonly data: BatchSource,
    readonly config: TrainConfig,
    resume?: { optimizer?: OptimizerState; state?: TrainState },
  ) {
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
      totalSteps: config.steps,
      decay: config.decay,
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
    for (const [name, v] of model.params.variables()) this.varToParam.set(v.name, name);
  }

  /** Learning rate the next step will use. */
  get lr(): number {
    return learningRateAt(this.state.step, this.schedule);
  }

  /** Tokens per step. */
  get tokensPerStep(): number {
    return this.config.batchSize * this.config.seqLen;
  }

  private lossOf(batch: Batch, training: boolean, seed: number): tf.Scalar {
    const { batchSize: B } = this.config;
    const T = batch.x.length / B;
    const x = tf.tensor2d(batch.x, [B, T], 'int32');
    const y = tf.tensor1d(batch.y, 'int32');
    const logits = this.model.forward(x, { training, seed });
    return crossEntropy(tf.reshape(logits, [B * T, this.model.config.vocabSize]) as tf.Tensor2D, y);
  }

  /** Runs one optimization step and returns its metrics. */
  async step(): Promise<StepMetrics> {
    const t0 = performance.now();
    const c = this.config;
    const stepIndex = this.state.step;
    const diag = c.diagnosticsEvery > 0 && (stepIndex % c.diagnosticsEvery === 0 || stepIndex < 10);
    if (diag) await this.ensureProbe();
    const batch = this.data.trainBatch(stepIndex, c.batchSize, c.seqLen);
    const lr = learningRateAt(stepIndex, this.schedule);
    this.model.setDiagnostics?.(diag);
    const { value, grads } = tf.variableGrads(
      () => this.lossOf(batch, true, c.seed * 1_000_003 + stepIndex),
      this.model.params.trainableVariables().map(([, v]) => v),
    );
    const byName = new Map<string, tf.Tensor>();
    for (const [vn, g] of Object.entries(grads)) byName.set(this.varToParam.get(vn) ?? vn, g);
    const sq = tf.tidy(() => tf.addN([...byName.values()].map((g) => tf.sum(tf.mul(g, g)))));
    const [lossArr, sqArr] = await Promise.all([value.data(), sq.data()]);
    sq.dispose();
    value.dispose();
    const loss = lossArr[0]!;
    const gradNorm = Math.sqrt(sqArr[0]!);
    let layerGradNorms: number[] | undefined;
    if (diag) layerGradNorms = await this.layerGradNorms(byName);
    const finite = Number.isFinite(loss) && Number.isFinite(gradNorm);
    let skipped = false;
    if (finite) {
      const scale = c.gradClip > 0 && gradNorm > c.gradClip ? c.gradClip / (gradNorm + 1e-6) : 1;
      this.optimizer.apply(byName, lr, scale);
      this.model.afterStep();
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
    const logits = this.model.forward(x);
    this.probe = { x, logits0: (await logits.data()) as Float32Array };
    logits.dispose();
  }

  private async deltaF(): Promise<number> {
    await this.ensureProbe();
    const p = this.probe!;
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

  /** Frees the optimizer state and probe tensors (not the model). */
  dispose(): void {
    this.optimizer.dispose();
    this.probe?.x.dispose();
  }
}

/** Mean next-token loss of `model` over `batches` (each `[batchSize·seqLen]`), and its perplexity. */
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
    const loss = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [batchSize, T], 'int32');
      const logits = model.forward(x);
      return crossEntropy(
        tf.reshape(logits, [batchSize * T, model.config.vocabSize]) as tf.Tensor2D,
        tf.tensor1d(b.y, 'int32'),
      );
    });
    total += (await loss.data())[0]! * b.x.length;
    tokens += b.x.length;
    loss.dispose();
  }
  const mean = total / tokens;
  return { loss: mean, perplexity: Math.exp(mean), tokens };
}
