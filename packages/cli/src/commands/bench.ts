import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  BACKENDS,
  type BackendName,
  type Batch,
  type BatchSource,
  createIncrementalDecoder,
  getModelFamily,
  initBackend,
  kernelsVariant,
  type LanguageModel,
  parseTrainConfig,
  probeWebGPU,
  Rng,
  StrataError,
  setStrataKernels,
  strataKernelsActive,
  Trainer,
  type TrainerOptions,
  trainingFlopsPerToken,
  webgpuAutoSkipReason,
} from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';
import type { ParsedArgs } from '../args.js';
import { BENCH_TOKENIZERS, benchTokenizers, formatTokenizerReport } from '../bench-tokenizers.js';
import { formatCount } from '../progress.js';
import { registerBuiltins } from '../setup.js';

/**
 * Random byte batches: the benchmark measures compute, not data loading. With `targetLength` (encoder-decoder
 * packed rows) each row has `targetLength` targets instead of `seqLen`.
 */
class RandomBatches implements BatchSource {
  constructor(
    private readonly vocab: number,
    private readonly targetLength?: number,
  ) {}
  trainBatch(step: number, batchSize: number, seqLen: number): Batch {
    const rng = Rng.derive(7, 'bench', step);
    const n = batchSize * seqLen;
    const x = new Int32Array(n);
    const y = new Int32Array(batchSize * (this.targetLength ?? seqLen));
    for (let i = 0; i < n; i++) x[i] = rng.int(this.vocab);
    for (let i = 0; i < y.length; i++) y[i] = rng.int(this.vocab);
    return { x, y };
  }
  valBatches(batchSize: number, seqLen: number, maxBatches: number): Batch[] {
    return Array.from({ length: maxBatches }, (_, i) => this.trainBatch(1e6 + i, batchSize, seqLen));
  }
}

/** One benchmarked model configuration. */
export interface BenchConfig {
  name: string;
  dModel: number;
  nLayers: number;
  nHeads: number;
  contextLength: number;
  batchSize: number;
  norm: { name: string; options: Record<string, unknown> };
  /**
   * Model family (default `gpt`); `ngpt` ignores `norm` and trains with nGPT's settings; `encdec` is an
   * encoder-decoder with `nLayers` encoder blocks, {@link nDecoderLayers} decoder blocks, source length
   * `contextLength` and {@link targetLength} decoder positions (packed rows of both).
   */
  family?: string;
  /** Encoder-decoder: decoder blocks (M). */
  nDecoderLayers?: number;
  /** Encoder-decoder: decoder positions per row. */
  targetLength?: number;
  /** nGPT's SwiGLU width per branch (default 4·d_model, NVIDIA's). */
  dFF?: number;
  /** Further model config keys (suite `gau`: GAU layers). */
  model?: Record<string, unknown>;
  /** Timed steps (after one warm-up step). */
  steps: number;
}

/** DeepNet's 1,000 layers as the paper built them: 500 encoder + 500 decoder blocks (thin; recomputed). */
const ENCDEC_1000: Omit<BenchConfig, 'steps'> & { steps?: number } = {
  name: 'encdec1000',
  family: 'encdec',
  dModel: 32,
  nLayers: 500,
  nDecoderLayers: 500,
  nHeads: 2,
  dFF: 64,
  contextLength: 32,
  targetLength: 32,
  batchSize: 8,
  norm: { name: 'deepnorm', options: {} },
  steps: 2,
};

/** The model keys of suite `gau`: GAU-α's layer (the norm strategy stays the bench's `--norm`). */
const GAU_BENCH_MODEL = { block: 'gau', attentionNorm: 'softmax_plus', positions: 'rope' } as const;

/** Named configurations (`--suite`). `reference` takes the model flags. */
export const SUITES: Record<string, Omit<BenchConfig, 'steps'> & { steps?: number }> = {
  deep100: {
    name: 'deep100',
    dModel: 64,
    nLayers: 100,
    nHeads: 2,
    contextLength: 64,
    batchSize: 8,
    norm: { name: 'deepnorm', options: {} },
  },
  deep1000: {
    name: 'deep1000',
    dModel: 64,
    nLayers: 1000,
    nHeads: 2,
    contextLength: 64,
    batchSize: 8,
    norm: { name: 'deepnorm', options: {} },
    steps: 2,
  },
  encdec1000: ENCDEC_1000,
  // The same shape at 1 + 1 blocks: a seconds-long smoke test of the encoder-decoder rows.
  'encdec-smoke': { ...ENCDEC_1000, name: 'encdec-smoke', nLayers: 1, nDecoderLayers: 1 },
};

/** Tokens of one packed row: the context, plus the decoder positions of an encoder-decoder. */
function rowLength(c: BenchConfig): number {
  return c.contextLength + (c.targetLength ?? 0);
}

/** The raw model config of a benchmarked configuration. */
function benchModelConfig(c: BenchConfig): Record<string, unknown> {
  const family = c.family ?? 'gpt';
  const shape = { dModel: c.dModel, nLayers: c.nLayers, nHeads: c.nHeads, contextLength: c.contextLength };
  if (family === 'gpt') return { ...shape, norm: c.norm, ...(c.model ?? {}) };
  if (family === 'encdec')
    return {
      dModel: c.dModel,
      nHeads: c.nHeads,
      ...(c.dFF ? { dFF: c.dFF } : {}),
      nEncoderLayers: c.nLayers,
      nDecoderLayers: c.nDecoderLayers ?? c.nLayers,
      sourceLength: c.contextLength,
      targetLength: c.targetLength ?? c.contextLength,
      norm: c.norm,
    };
  return { ...shape, ...(c.dFF ? { dFF: c.dFF } : {}) };
}

/** One row of the benchmark table. */
export interface BenchRow {
  config: string;
  backend: BackendName;
  workers: number;
  /** `strata` (Strata's wasm kernels) or `tfjs` (tfjs's own kernels, the pre-kernels baseline). */
  kernels: 'strata' | 'tfjs';
  recompute: boolean;
  steps: number;
  /** Median over the timed steps. */
  msPerStep: number;
  minMsPerStep: number;
  /** CPU time of the process per step (all threads), median: close to the unloaded wall time on a busy machine. */
  cpuMsPerStep: number;
  /** The smallest CPU time of a step: the least sensitive to other processes' load (ratios use it too). */
  minCpuMsPerStep?: number;
  tokensPerSec: number;
  gflopsPerSec: number;
  peakRssMB: number;
  /** Size of the main thread's wasm heap (it only grows, so this is its peak), when on wasm. */
  wasmHeapMB?: number;
  peakTensorMB: number;
  numTensorsFlat: boolean;
  params: number;
  /** PyTorch's ms/step divided by ours (1 = as fast as PyTorch), when measured. */
  vsPyTorch?: number;
}

/** A PyTorch reference measurement (bench/torch_gpt.py). */
export interface TorchRow {
  config: string;
  /** OPENBLAS_NUM_THREADS used. */
  threads: number;
  msPerStep: number;
  cpuMsPerStep: number;
  tokensPerSec: number;
  peakRssMB: number;
}

/** Generation throughput with and without the KV cache. */
export interface GenerationRow {
  config: string;
  backend: BackendName;
  tokens: number;
  tokensPerSecCached: number;
  tokensPerSecUncached: number;
}

/** Everything `strata bench` measured. */
export interface BenchReport {
  machine: {
    cpus: number;
    cpu: string;
    node: string;
    tfjs: string;
    wasmKernels: string;
    /** The device each backend that reports one computed on (webgpu: adapter and driver). */
    devices?: Record<string, string>;
    /** 1-minute load average when the benchmark started and ended (other processes share the cores). */
    loadavg: [number, number];
  };
  configs: BenchConfig[];
  rows: BenchRow[];
  pytorch: { status: string; rows: TorchRow[] };
  generation: GenerationRow[];
}

/** Options of {@link runBench}. */
export interface BenchOptions {
  backends: BackendName[] | 'available';
  configs: BenchConfig[];
  /** Data-parallel rank counts to measure (1 = single thread). */
  workers: number[];
  /** Timed steps on the slow cpu backend. */
  cpuSteps: number;
  /** Also measure wasm with tfjs's own kernels (STRATA_KERNELS=0), single thread: the "before" figure. */
  baseline: boolean;
  /** Activation recomputation: `auto` = on when the activations would not fit comfortably (see activationBytes). */
  recompute: 'auto' | 'on' | 'off';
  /** Tokens to generate in the KV-cache benchmark (0: skip). */
  generate: number;
  /** Run the PyTorch reference (`auto`: when python3 with torch is found). */
  pytorch: boolean | 'auto';
  log: (line: string) => void;
  /**
   * Run each measured row in a fresh process (default), so that its peak RSS and wasm heap are its own: the
   * wasm heap only grows, so in one process a row would report the largest heap of the rows before it.
   */
  isolate: boolean;
}

/**
 * Rough activation memory of one training step without recomputation: about 47 floats per token, layer and
 * model dimension (measured with Strata's kernels: the 100-layer d=64 model at 512 tokens grows the wasm heap
 * to ≈ 0.6 GB). `--recompute auto` turns recomputation on above 1.5 GB (the wasm heap is capped at 4 GB).
 */
function activationBytes(c: BenchConfig): number {
  return 47 * 4 * c.batchSize * rowLength(c) * (c.nLayers + (c.nDecoderLayers ?? 0)) * c.dModel;
}

function wasmHeapMB(): number | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  const n = b.wasm?.HEAPU8?.byteLength;
  return n === undefined ? undefined : n / 2 ** 20;
}

/** Modules the data-parallel workers import (the CLI's built-in norms and families). */
function workerSetup(): TrainerOptions['workerSetup'] {
  const out: NonNullable<TrainerOptions['workerSetup']> = [];
  for (const [spec, call] of [
    ['@strata/norms', 'registerBuiltinNorms'],
    ['@strata/ngpt', 'registerNGPT'],
  ] as const) {
    try {
      out.push({ module: import.meta.resolve(spec), call });
    } catch {
      // not installed: the workers build what core knows
    }
  }
  return out;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function benchTraining(
  c: BenchConfig,
  backend: BackendName,
  workers: number,
  kernels: 'strata' | 'tfjs',
  recompute: boolean,
  steps: number,
  log: (s: string) => void,
): Promise<BenchRow> {
  setStrataKernels(kernels === 'strata');
  const family = c.family ?? 'gpt';
  const fam = getModelFamily(family);
  const model = fam.create(fam.parseConfig(benchModelConfig(c)), { seed: 1 });
  const L = rowLength(c);
  const training = parseTrainConfig(
    {
      ...(fam.trainingDefaults ?? {}),
      steps: 1000,
      batchSize: c.batchSize,
      seqLen: L,
      lr: 1e-3,
      minLr: 1e-4,
      warmupSteps: 0,
      evalBatches: 1,
    },
    L,
  );
  const trainer = new Trainer(model, new RandomBatches(256, c.targetLength), training, undefined, {
    workers,
    recompute,
    ...(workers > 1 ? { workerSetup: workerSetup() } : {}),
  });
  const label = `${c.name} ${backend} workers=${workers} kernels=${kernels}${recompute ? ' recompute' : ''}`;
  try {
    let peakRss = process.memoryUsage().rss;
    let peakBytes = tf.memory().numBytes;
    const w = await trainer.step();
    log(`${label}: warm-up step ${w.ms.toFixed(0)} ms`);
    const tensorsAfterWarmup = w.numTensors;
    const times: number[] = [];
    const cpuTimes: number[] = [];
    let flat = true;
    for (let i = 0; i < steps; i++) {
      const c0 = process.cpuUsage();
      const m = await trainer.step();
      const cu = process.cpuUsage(c0);
      cpuTimes.push((cu.user + cu.system) / 1000);
      times.push(m.ms);
      if (m.numTensors !== tensorsAfterWarmup) flat = false;
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      peakBytes = Math.max(peakBytes, tf.memory().numBytes);
      log(`${label}: step ${i + 1}/${steps} ${m.ms.toFixed(0)} ms (loss ${m.loss.toFixed(3)})`);
    }
    const ms = median(times);
    const tokens = c.batchSize * L;
    const params = model.params.count();
    const heap = wasmHeapMB();
    return {
      config: c.name,
      backend,
      workers,
      kernels,
      recompute,
      steps,
      msPerStep: ms,
      minMsPerStep: Math.min(...times),
      cpuMsPerStep: median(cpuTimes),
      minCpuMsPerStep: Math.min(...cpuTimes),
      tokensPerSec: (tokens * 1000) / ms,
      gflopsPerSec: (trainingFlopsPerToken(model, L) * tokens) / (ms / 1000) / 1e9,
      peakRssMB: peakRss / 2 ** 20,
      ...(heap !== undefined ? { wasmHeapMB: heap } : {}),
      peakTensorMB: peakBytes / 2 ** 20,
      numTensorsFlat: flat,
      params,
    };
  } finally {
    await trainer.close();
    trainer.dispose();
    model.dispose();
    setStrataKernels(true);
  }
}

async function benchGeneration(
  c: BenchConfig,
  backend: BackendName,
  tokens: number,
  log: (s: string) => void,
): Promise<GenerationRow> {
  const fam = getModelFamily('gpt');
  const model: LanguageModel = fam.create(
    fam.parseConfig({
      dModel: c.dModel,
      nLayers: c.nLayers,
      nHeads: c.nHeads,
      contextLength: c.contextLength,
      norm: c.norm,
      ...(c.model ?? {}),
    }),
    { seed: 1 },
  );
  const n = Math.min(tokens, c.contextLength - 1);
  const greedy = (l: Float32Array) => {
    let best = 0;
    for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
    return best;
  };
  try {
    // with the cache
    const dec = createIncrementalDecoder(model);
    if (!dec) throw new StrataError('E_CONFIG', 'the model has no KV-cache path');
    // warm-up of both paths (JIT tier-up, kernel registration, workspace allocation)
    const w = [10];
    for (let i = 0; i < 16; i++) w.push(greedy(await dec.next(w)));
    dec.dispose();
    for (let i = 0; i < 4; i++) {
      const l = tf.tidy(() => model.forward(tf.tensor2d(w, [1, w.length], 'int32')));
      await l.data();
      l.dispose();
    }
    const a = [10];
    const dec2 = createIncrementalDecoder(model)!;
    let t0 = performance.now();
    for (let i = 0; i < n; i++) a.push(greedy(await dec2.next(a)));
    const cached = (n * 1000) / (performance.now() - t0);
    dec2.dispose();
    // without: the whole window each token (what `generate` does today)
    const b = [10];
    t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const w = b.slice(-c.contextLength);
      const l = tf.tidy(() => {
        const lg = model.forward(tf.tensor2d(w, [1, w.length], 'int32'));
        return tf.reshape(tf.slice(lg, [0, w.length - 1, 0], [1, 1, 256]), [256]);
      });
      b.push(greedy((await l.data()) as Float32Array));
      l.dispose();
    }
    const uncached = (n * 1000) / (performance.now() - t0);
    const same = a.every((t, i) => t === b[i]);
    log(
      `${c.name} ${backend} generation of ${n} tokens: ${cached.toFixed(0)} tokens/s with the KV cache, ${uncached.toFixed(0)} without${same ? '' : ' (outputs differ!)'}`,
    );
    return { config: c.name, backend, tokens: n, tokensPerSecCached: cached, tokensPerSecUncached: uncached };
  } finally {
    model.dispose();
  }
}

/** Locates bench/torch_gpt.py (a source checkout only) and a python3 that imports torch. */
function findTorch(): { python: string; script: string } | string {
  const script =
    process.env.STRATA_TORCH_SCRIPT ??
    fileURLToPath(new URL('../../../../bench/torch_gpt.py', import.meta.url));
  if (!existsSync(script)) return `skipped: ${script} not found (it ships with the source repository only)`;
  const candidates = [process.env.STRATA_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (p): p is string => !!p,
  );
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return { python, script };
  }
  return 'skipped: no python3 with torch found (Debian: apt-get install python3-torch; or set STRATA_PYTHON)';
}

function runTorch(
  t: { python: string; script: string },
  c: BenchConfig,
  threads: number,
  log: (s: string) => void,
): TorchRow {
  const args = [
    t.script,
    '--d-model',
    String(c.dModel),
    '--layers',
    String(c.nLayers),
    '--heads',
    String(c.nHeads),
    '--context',
    String(c.contextLength),
    '--batch-size',
    String(c.batchSize),
    '--norm',
    c.norm.name === 'deepnorm' ? 'deepnorm' : 'pre-ln',
    '--steps',
    String(Math.max(2, Math.min(c.steps, 10))),
  ];
  log(`pytorch ${c.name}: OPENBLAS_NUM_THREADS=${threads} ${t.python} ${args.join(' ')}`);
  const r = spawnSync(t.python, args, {
    encoding: 'utf8',
    env: {
      ...process.env,
      OPENBLAS_NUM_THREADS: String(threads),
      OMP_NUM_THREADS: '1',
      MKL_NUM_THREADS: '1',
    },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0)
    throw new StrataError(
      'E_BACKEND',
      `bench/torch_gpt.py failed: ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}`,
    );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const j = JSON.parse(line) as {
    msPerStep: number;
    cpuMsPerStep: number;
    tokensPerSec: number;
    peakRssMB: number;
  };
  log(`pytorch ${c.name} (${threads} BLAS threads): ${j.msPerStep.toFixed(0)} ms/step`);
  return { config: c.name, threads, ...j };
}

/** One training measurement, as handed to a child process. */
interface RowSpec {
  config: BenchConfig;
  backend: BackendName;
  workers: number;
  kernels: 'strata' | 'tfjs';
  recompute: boolean;
  steps: number;
}

const ROW_ENV = 'STRATA_BENCH_ROW';
const ROW_PREFIX = 'STRATA_BENCH_ROW_RESULT ';

async function benchRow(r: RowSpec, log: (s: string) => void): Promise<BenchRow> {
  await initBackend(r.backend);
  return benchTraining(r.config, r.backend, r.workers, r.kernels, r.recompute, r.steps, log);
}

/** Runs one row in a child process: the same entry point and flags, with the row in the environment. */
function runRowInChild(r: RowSpec): BenchRow {
  const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, [ROW_ENV]: JSON.stringify(r) },
    encoding: 'utf8',
    // progress lines stream to our stderr
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  const line = (child.stdout ?? '').split('\n').find((l) => l.startsWith(ROW_PREFIX));
  if (child.status !== 0 || !line) {
    throw new StrataError(
      'E_BACKEND',
      `benchmark of ${r.config.name} (${r.backend}, ${r.workers} workers, ${r.kernels} kernels) failed in its child process (exit ${child.status})`,
    );
  }
  return JSON.parse(line.slice(ROW_PREFIX.length)) as BenchRow;
}

/** Runs the benchmarks and returns the report (no printing except through `log`). */
export async function runBench(o: BenchOptions): Promise<BenchReport> {
  const loadStart = loadavg()[0]!;
  let loadEnd = loadStart;
  const list = o.backends === 'available' ? [...BACKENDS] : o.backends;
  const rows: BenchRow[] = [];
  const generation: GenerationRow[] = [];
  let wasmKernels = 'not used';
  const devices: Record<string, string> = {};
  for (const name of list) {
    try {
      if (name === 'webgpu' && o.backends === 'available') {
        // software Vulkan (SwiftShader, lavapipe) is slower than wasm: measured only when asked for by name
        const why = await webgpuAutoSkipReason();
        if (why) {
          o.log(`webgpu: skipped (${why.replace(/^backend "webgpu": /, '')}; --backends webgpu measures it)`);
          continue;
        }
        const probe = await probeWebGPU();
        if (probe.adapter?.software) {
          o.log(`webgpu: skipped (software adapter ${probe.adapter.device}; --backends webgpu measures it)`);
          continue;
        }
      }
      const active = await initBackend(name);
      if (active.device) {
        devices[name] = active.device;
        o.log(`${name}: ${active.device}`);
      }
    } catch (e) {
      if (o.backends === 'available') {
        o.log(`${name}: skipped (${(e as Error).message.split(':').slice(-1)[0]!.trim()})`);
        continue;
      }
      throw e;
    }
    if (name === 'wasm')
      wasmKernels = strataKernelsActive() ? kernelsVariant() : 'unavailable (tfjs kernels)';
    for (const c of o.configs) {
      const recompute =
        o.recompute === 'on' || (o.recompute === 'auto' && activationBytes(c) > 1.5 * 2 ** 30);
      const steps = name === 'cpu' ? o.cpuSteps : c.steps;
      if (name === 'cpu' && c.nLayers + (c.nDecoderLayers ?? 0) > 4) {
        o.log(`${c.name} cpu: skipped (pure-JS backend; minutes per step)`);
        continue;
      }
      const variants: { workers: number; kernels: 'strata' | 'tfjs' }[] = [];
      if (o.baseline && name === 'wasm') variants.push({ workers: 1, kernels: 'tfjs' });
      const canThread = name === 'wasm'; // cpu could, but its steps take a minute
      for (const w of o.workers) if (w === 1 || canThread) variants.push({ workers: w, kernels: 'strata' });
      for (const v of variants) {
        const spec: RowSpec = {
          config: c,
          backend: name,
          workers: v.workers,
          kernels: v.kernels,
          recompute,
          steps,
        };
        const row = o.isolate ? runRowInChild(spec) : await benchRow(spec, o.log);
        if (name === 'wasm' && v.kernels === 'strata' && !strataKernelsActive())
          o.log('note: Strata kernels could not load; tfjs kernels were used');
        rows.push(row);
      }
      if (o.generate > 0 && c.nLayers <= 12 && name !== 'cpu' && (c.family ?? 'gpt') === 'gpt')
        generation.push(await benchGeneration(c, name, o.generate, o.log));
    }
  }
  let pytorch: BenchReport['pytorch'] = { status: 'not requested (--pytorch)', rows: [] };
  if (o.pytorch) {
    const t = findTorch();
    if (typeof t === 'string') {
      pytorch = { status: t, rows: [] };
      o.log(`pytorch: ${t}`);
    } else {
      const trows: TorchRow[] = [];
      for (const c of o.configs.filter((x) => (x.family ?? 'gpt') === 'gpt')) {
        for (const threads of [2, 1]) {
          try {
            trows.push(runTorch(t, c, threads, o.log));
          } catch (e) {
            o.log(`pytorch ${c.name}: ${(e as Error).message}`);
          }
        }
      }
      pytorch = { status: `${t.python} ${t.script}`, rows: trows };
      // The reference is PyTorch's best setting on this machine (2 BLAS threads on 2 cores; when other
      // processes load the cores, OpenBLAS's spinning threads can make 1 thread faster).
      for (const r of rows) {
        const refs = trows.filter((x) => x.config === r.config);
        if (refs.length > 0) r.vsPyTorch = Math.min(...refs.map((x) => x.msPerStep)) / r.msPerStep;
      }
    }
  }
  loadEnd = loadavg()[0]!;
  return {
    machine: {
      loadavg: [loadStart, loadEnd],
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? '?',
      node: process.version,
      tfjs: tf.version_core,
      wasmKernels,
      ...(Object.keys(devices).length > 0 ? { devices } : {}),
    },
    configs: o.configs,
    rows,
    pytorch,
    generation,
  };
}

/** The report as text tables. */
export function formatReport(r: BenchReport): string {
  const header = [
    'config',
    'backend',
    'workers',
    'kernels',
    'ms/step',
    'CPU ms/step',
    'tokens/s',
    'GFLOP/s',
    'peak RSS MB',
    'wasm heap MB',
    'no leak',
    'vs PyTorch',
  ];
  const table = r.rows.map((x) => [
    `${x.config}${x.recompute ? ' (recompute)' : ''}`,
    x.backend,
    String(x.workers),
    x.kernels,
    x.msPerStep.toFixed(0),
    x.cpuMsPerStep.toFixed(0),
    formatCount(x.tokensPerSec),
    x.gflopsPerSec.toFixed(2),
    x.peakRssMB.toFixed(0),
    x.wasmHeapMB === undefined ? '-' : x.wasmHeapMB.toFixed(0),
    x.numTensorsFlat ? 'yes' : 'NO',
    x.vsPyTorch === undefined ? '-' : `${x.vsPyTorch.toFixed(2)}×`,
  ]);
  const fmt = (rows: string[][], head: string[]) => {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (row: string[]) =>
      row.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    return [line(head), ...rows.map(line)].join('\n');
  };
  const m = r.machine;
  const parts = [
    `${m.cpus} × ${m.cpu}, Node ${m.node}, tfjs ${m.tfjs}, Strata wasm kernels: ${m.wasmKernels}; load average ${m.loadavg[0].toFixed(1)} → ${m.loadavg[1].toFixed(1)}${Object.entries(
      m.devices ?? {},
    )
      .map(([b, d]) => `; ${b} on ${d}`)
      .join('')}`,
    fmt(table, header),
  ];
  if (r.pytorch.rows.length > 0) {
    parts.push(
      fmt(
        r.pytorch.rows.map((x) => [
          x.config,
          `pytorch, ${x.threads} BLAS thread${x.threads > 1 ? 's' : ''}`,
          x.msPerStep.toFixed(0),
          x.cpuMsPerStep.toFixed(0),
          formatCount(x.tokensPerSec),
          x.peakRssMB.toFixed(0),
        ]),
        ['config', 'reference', 'ms/step', 'CPU ms/step', 'tokens/s', 'peak RSS MB'],
      ),
    );
  } else parts.push(`PyTorch reference: ${r.pytorch.status}`);
  // nGPT against the GPT of the same d_model, layers, heads, context and batch (suites `ngpt` and `reference`);
  // GAU (suite `gau`, twice the layers) against the same GPT.
  ratioTable(r, ['ngpt', 'ngpt-matched'], 'nGPT vs reference GPT', parts, fmt);
  ratioTable(r, ['gau'], 'GAU vs reference GPT', parts, fmt);
  if (r.generation.length > 0) {
    parts.push(
      fmt(
        r.generation.map((g) => [
          g.config,
          g.backend,
          String(g.tokens),
          g.tokensPerSecCached.toFixed(0),
          g.tokensPerSecUncached.toFixed(0),
          `${(g.tokensPerSecCached / g.tokensPerSecUncached).toFixed(1)}×`,
        ]),
        ['generation', 'backend', 'tokens', 'tokens/s (KV cache)', 'tokens/s (no cache)', 'speed-up'],
      ),
    );
  }
  return `${parts.join('\n\n')}\n`;
}

/** Appends the step-time ratio of the `configs` rows to the `reference` row of the same backend and workers. */
function ratioTable(
  r: BenchReport,
  configs: readonly string[],
  title: string,
  parts: string[],
  fmt: (rows: string[][], head: string[]) => string,
): void {
  const ratios: string[][] = [];
  for (const n of r.rows.filter((x) => configs.includes(x.config))) {
    const g = r.rows.find(
      (x) =>
        x.config === 'reference' &&
        x.backend === n.backend &&
        x.workers === n.workers &&
        x.kernels === n.kernels &&
        x.recompute === n.recompute,
    );
    if (g)
      ratios.push([
        n.config,
        n.backend,
        String(n.workers),
        `${(n.msPerStep / g.msPerStep).toFixed(2)}×`,
        `${(n.cpuMsPerStep / g.cpuMsPerStep).toFixed(2)}×`,
        n.minCpuMsPerStep && g.minCpuMsPerStep
          ? `${(n.minCpuMsPerStep / g.minCpuMsPerStep).toFixed(2)}×`
          : '-',
      ]);
  }
  if (ratios.length > 0)
    parts.push(
      fmt(ratios, [
        title,
        'backend',
        'workers',
        'ms/step ratio',
        'CPU ms/step ratio',
        'min CPU ms/step ratio',
      ]),
    );
}

const list = (v: unknown, fallback: string) =>
  String(v ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Builds {@link BenchOptions} from CLI flags (flags the spec does not declare yet fall back to defaults). */
export function benchOptionsFromArgs(args: ParsedArgs, log: (s: string) => void): BenchOptions {
  const wanted = String(args.backends ?? 'available');
  const backends = wanted === 'available' ? ('available' as const) : (list(wanted, '') as BackendName[]);
  if (backends !== 'available')
    for (const b of backends) {
      if (!BACKENDS.includes(b))
        throw new StrataError(
          'E_BACKEND',
          `--backends: unknown backend "${b}"; valid: ${BACKENDS.join(', ')}`,
        );
    }
  const steps = (args.steps as number | undefined) ?? 5;
  const configs: BenchConfig[] = [];
  for (const name of list(args.suite, 'reference')) {
    if (name === 'reference' || name === 'ngpt' || name === 'ngpt-matched' || name === 'gau') {
      const d = (args['d-model'] as number | undefined) ?? 128;
      const layers = (args.layers as number | undefined) ?? 4;
      configs.push({
        ...(name === 'reference' || name === 'gau' ? {} : { family: 'ngpt' }),
        // gau: the GAU-α layer (softmax_plus, RoPE, e = 2d, s = min(128, d)), two per reference block (≈ its parameters)
        ...(name === 'gau' ? { model: { ...GAU_BENCH_MODEL } } : {}),
        // ngpt-matched: SwiGLU with 8d/3 per branch, the GPT MLP's parameter count (NVIDIA's 4d has 1.5×)
        ...(name === 'ngpt-matched' ? { dFF: Math.round((8 * d) / 3) } : {}),
        name,
        dModel: d,
        nLayers: name === 'gau' ? 2 * layers : layers,
        nHeads: (args.heads as number | undefined) ?? 4,
        contextLength: (args.context as number | undefined) ?? 128,
        batchSize: (args['batch-size'] as number | undefined) ?? 16,
        norm: { name: String(args.norm ?? 'pre-ln'), options: {} },
        steps,
      });
    } else {
      const s = SUITES[name];
      if (!s)
        throw new StrataError(
          'E_USAGE',
          `--suite: unknown configuration "${name}"; valid: reference, ngpt, ngpt-matched, gau, ${Object.keys(SUITES).join(', ')}`,
        );
      configs.push({ ...s, steps: s.steps ?? steps });
    }
  }
  const workers = list(args.workers, '1,2').map((w) => {
    const n = Number(w);
    if (!Number.isInteger(n) || n < 1)
      throw new StrataError('E_USAGE', `--workers: expected integers >= 1, got "${w}"`);
    return n;
  });
  const recompute = String(args.recompute ?? 'auto');
  if (!['auto', 'on', 'off'].includes(recompute))
    throw new StrataError('E_USAGE', `--recompute must be auto, on or off, got "${recompute}"`);
  return {
    backends,
    configs,
    workers,
    cpuSteps: (args['cpu-steps'] as number | undefined) ?? 1,
    baseline: !!args.baseline,
    recompute: recompute as BenchOptions['recompute'],
    generate: (args.generate as number | undefined) ?? 64,
    pytorch: args.pytorch === undefined ? false : !!args.pytorch,
    isolate: process.env.STRATA_BENCH_ISOLATE !== '0',
    log,
  };
}

/** `strata bench`: training throughput per config, backend and worker count; KV-cache generation; PyTorch ratio. */
export async function run(args: ParsedArgs): Promise<number> {
  registerBuiltins();
  const rowEnv = process.env[ROW_ENV];
  if (rowEnv) {
    // A child process measuring one row (see runRowInChild).
    const spec = JSON.parse(rowEnv) as RowSpec;
    const row = await benchRow(spec, (s) => process.stderr.write(`${s}\n`));
    process.stdout.write(`${ROW_PREFIX}${JSON.stringify(row)}\n`);
    return 0;
  }
  const log = (s: string) => {
    if (!args.json) process.stderr.write(`${s}\n`);
  };
  const o = benchOptionsFromArgs(args, log);
  for (const c of o.configs) {
    const encdec = c.family === 'encdec';
    const layers = encdec ? `${c.nLayers}+${c.nDecoderLayers ?? c.nLayers} (encoder+decoder)` : c.nLayers;
    const context = encdec
      ? `source ${c.contextLength} + target ${c.targetLength}`
      : `context ${c.contextLength}`;
    log(
      `${c.name}: ${c.family && c.family !== 'gpt' ? `${c.family}${c.dFF ? ` (d_ff ${c.dFF})` : ''}, ` : ''}d_model ${c.dModel}, ${layers} ${c.model?.block === 'gau' ? 'GAU ' : ''}layers, ${c.nHeads} heads, ${context}, batch ${c.batchSize}, ${c.family === 'ngpt' ? 'no norm layers' : c.norm.name}, byte vocab, AdamW`,
    );
  }
  const report: BenchReport & { tokenizers?: Awaited<ReturnType<typeof benchTokenizers>> } =
    await runBench(o);
  const tokenizers = list(args.tokenizers, 'byte,gpt2,bpe').filter((t) => t !== 'none');
  for (const t of tokenizers)
    if (!(BENCH_TOKENIZERS as readonly string[]).includes(t))
      throw new StrataError(
        'E_USAGE',
        `--tokenizers: unknown tokenizer "${t}"; valid: ${BENCH_TOKENIZERS.join(', ')}, none`,
      );
  if (tokenizers.length) report.tokenizers = await benchTokenizers(tokenizers, 50, log);
  if (args.out) writeFileSync(String(args.out), `${JSON.stringify(report, null, 2)}\n`);
  if (args.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return 0;
  }
  process.stdout.write(formatReport(report));
  if (report.tokenizers) process.stdout.write(formatTokenizerReport(report.tokenizers));
  return 0;
}
