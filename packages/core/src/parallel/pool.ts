/**
 * Data-parallel gradient computation over `worker_threads`, for backends that cannot use several cores by
 * themselves (tfjs's wasm backend runs single-threaded in Node).
 *
 * Rank 0 is the calling thread; ranks 1…N−1 are worker threads, each with its own tfjs engine, wasm backend
 * and a replica of the model. A step splits the batch by rows, every rank computes the loss and gradients of
 * its shard, the workers write theirs into SharedArrayBuffers, and rank 0 averages them weighted by shard size
 * (the average equals the full-batch gradient up to float rounding). The optimizer runs once, on rank 0; the
 * new parameters are published through a shared buffer that every worker loads before its next step. So the
 * optimizer state and checkpoints are exactly those of single-threaded training.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from '../errors.js';
import type { LanguageModel } from '../model/family.js';

/** A module a worker imports before building its model replica (e.g. the one that registers a norm plugin). */
export interface WorkerSetup {
  /** Module specifier or URL, resolved from this file (prefer an absolute `file:` URL, see `resolveSetup`). */
  module: string;
  /** Name of an exported function to call after importing it (e.g. `registerBuiltinNorms`). */
  call?: string;
  /**
   * Register what the module exports, as `strata --plugin` does: every norm strategy (made with `defineNorm`)
   * and model family, and call its `register()` export if it has one.
   */
  registerExports?: boolean;
}

/** Options of a {@link DataParallelPool}. */
export interface PoolOptions {
  /** Number of data-parallel ranks, counting the calling thread (2 = this thread + one worker thread). */
  ranks: number;
  /** Strata backend name to initialize in the workers (`wasm` or `cpu`). */
  backend: string;
  /** Modules the workers import first (norm plugins, model families). */
  setup?: WorkerSetup[];
  /** Recompute activations per block in the workers too. */
  recompute?: boolean;
  /** Seed for the replicas' (immediately overwritten) initialization. */
  seed?: number;
}

/** What one rank contributes to a step. */
export interface ShardResult {
  loss: number;
  /** Gradient per parameter name (tensors owned by the caller). */
  grads: Map<string, tf.Tensor>;
}

interface WorkerHandle {
  worker: Worker;
  grads: Float32Array;
  loss: Float64Array;
  pending?: { resolve: () => void; reject: (e: Error) => void };
  exited: Promise<number>;
}

/** Splits `rows` into `n` contiguous shards as evenly as possible: returns `[start, count]` per rank. */
export function shardRows(rows: number, n: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let r = 0; r < n; r++) {
    const count = Math.floor(rows / n) + (r < rows % n ? 1 : 0);
    out.push([start, count]);
    start += count;
  }
  return out;
}

function workerUrl(): { url: URL; ts: boolean } {
  const ts = import.meta.url.endsWith('.ts');
  return { url: new URL(ts ? './worker.ts' : './worker.js', import.meta.url), ts };
}

function spawn(workerData: unknown): Worker {
  const { url, ts } = workerUrl();
  if (!ts) return new Worker(url, { workerData });
  // Running from TypeScript sources (tests, `tsx`): load the worker through tsx's loader.
  let api = createRequire(import.meta.url).resolve('tsx/esm/api');
  if (api.endsWith('.cjs') && existsSync(api.replace(/\.cjs$/, '.mjs'))) api = api.replace(/\.cjs$/, '.mjs');
  const api_ = pathToFileURL(api).href;
  const src =
    `import(${JSON.stringify(api_)}).then((m) => { (m.register ?? m.default?.register)(); ` +
    `return import(${JSON.stringify(url.href)}); }).catch((e) => { console.error(e); process.exit(1); });`;
  return new Worker(src, { eval: true, workerData });
}

/** Coordinates the worker ranks of data-parallel training. Create with {@link DataParallelPool.create}. */
export class DataParallelPool {
  private closed = false;
  /** Exit codes of the worker threads, once {@link close} has returned (0 = clean exit). */
  readonly exitCodes: number[] = [];

  private constructor(
    readonly model: LanguageModel,
    readonly ranks: number,
    private readonly names: string[],
    private readonly offsets: number[],
    private readonly sizes: number[],
    private readonly params: Float32Array,
    private readonly workers: WorkerHandle[],
  ) {}

  /** Starts `ranks − 1` workers, each building a replica of `model` and loading its current parameters. */
  static async create(model: LanguageModel, options: PoolOptions): Promise<DataParallelPool> {
    const ranks = options.ranks;
    if (!Number.isInteger(ranks) || ranks < 2)
      throw new StrataError('E_CONFIG', `workers must be an integer >= 2, got ${ranks}`);
    if (!['wasm', 'cpu'].includes(options.backend)) {
      throw new StrataError(
        'E_CONFIG',
        `data-parallel workers need the wasm or cpu backend (got "${options.backend}"; tfjs-node cannot load in worker threads and threads itself)`,
      );
    }
    const vars = model.params.variables().filter(([, v]) => v.trainable);
    const names = vars.map(([n]) => n);
    const sizes = vars.map(([, v]) => v.size);
    const offsets: number[] = [];
    let total = 0;
    for (const s of sizes) {
      offsets.push(total);
      total += s;
    }
    const params = new Float32Array(new SharedArrayBuffer(total * 4));
    const pool = new DataParallelPool(model, ranks, names, offsets, sizes, params, []);
    pool.publishParams();
    const started: Promise<void>[] = [];
    for (let r = 1; r < ranks; r++) {
      const grads = new Float32Array(new SharedArrayBuffer(total * 4));
      const loss = new Float64Array(new SharedArrayBuffer(8));
      const worker = spawn({
        rank: r,
        backend: options.backend,
        family: model.family,
        config: JSON.parse(JSON.stringify(model.config)),
        seed: options.seed ?? 0,
        setup: options.setup ?? [],
        recompute: !!options.recompute,
        names,
        params,
        grads,
        loss,
      });
      const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
      const h: WorkerHandle = { worker, grads, loss, exited };
      pool.workers.push(h);
      started.push(
        new Promise<void>((resolve, reject) => {
          const onError = (e: Error) =>
            reject(new StrataError('E_BACKEND', `worker ${r} failed to start: ${e.message}`));
          worker.once('error', onError);
          worker.once('message', (m: { type: string; message?: string }) => {
            if (m.type === 'ready') {
              worker.off('error', onError);
              pool.listen(h, r);
              resolve();
            } else reject(new StrataError('E_BACKEND', `worker ${r} failed to start: ${m.message}`));
          });
          exited.then((code) =>
            reject(new StrataError('E_BACKEND', `worker ${r} exited during start (code ${code})`)),
          );
        }),
      );
    }
    try {
      await Promise.all(started);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private listen(h: WorkerHandle, rank: number): void {
    h.worker.on('message', (m: { type: string; message?: string }) => {
      const p = h.pending;
      h.pending = undefined;
      if (!p) return;
      if (m.type === 'done') p.resolve();
      else p.reject(new StrataError('E_BACKEND', `worker ${rank}: ${m.message ?? m.type}`));
    });
    h.worker.on('error', (e) => {
      const p = h.pending;
      h.pending = undefined;
      p?.reject(new StrataError('E_BACKEND', `worker ${rank} crashed: ${e.message}`));
    });
    h.exited.then((code) => {
      const p = h.pending;
      h.pending = undefined;
      p?.reject(new StrataError('E_BACKEND', `worker ${rank} exited (code ${code})`));
    });
    h.worker.unref();
  }

  /** Copies the model's current parameters into the shared buffer the workers load from. */
  publishParams(): void {
    const vars = this.model.params;
    for (let i = 0; i < this.names.length; i++) {
      const data = vars.get(this.names[i]!).dataSync() as Float32Array;
      this.params.set(data, this.offsets[i]);
    }
  }

  /**
   * Loss and gradients of a whole batch: rank 0 computes its shard with `local` while the workers compute
   * theirs; returns the averages weighted by each shard's scored targets (its rows when all count).
   * @param x `[rows·seqLen]` token ids; `y` the targets, the same number per row (`-1` = not scored)
   * @param local computes this thread's shard (the same function the workers run)
   */
  async step(
    x: Int32Array,
    y: Int32Array,
    rows: number,
    seqLen: number,
    seed: number,
    training: boolean,
    local: (x: Int32Array, y: Int32Array, rows: number) => ShardResult,
  ): Promise<ShardResult> {
    if (this.closed) throw new StrataError('E_CONFIG', 'the data-parallel pool is closed');
    const shards = shardRows(rows, this.ranks);
    // Targets per row (an encoder-decoder's rows have fewer targets than inputs); shards are weighted by
    // their scored targets (targets -1 are ignored), which is the row share when every target counts.
    const yLen = y.length / rows;
    const scored = (start: number, count: number) => {
      let n = 0;
      for (let i = start * yLen; i < (start + count) * yLen; i++) if (y[i]! >= 0) n++;
      return n;
    };
    const total = Math.max(1, scored(0, rows));
    const waits: Promise<void>[] = [];
    this.workers.forEach((h, i) => {
      const [start, count] = shards[i + 1]!;
      h.worker.ref();
      waits.push(
        new Promise<void>((resolve, reject) => {
          h.pending = { resolve, reject };
        }),
      );
      h.worker.postMessage({
        type: 'step',
        x: x.slice(start * seqLen, (start + count) * seqLen),
        y: y.slice(start * yLen, (start + count) * yLen),
        rows: count,
        seqLen,
        seed,
        training,
      });
    });
    const [, count0] = shards[0]!;
    let mine: ShardResult | undefined;
    let failure: unknown;
    try {
      mine = local(x.subarray(0, count0 * seqLen), y.subarray(0, count0 * yLen), count0);
    } catch (e) {
      failure = e;
    }
    // Wait for every worker even if this shard failed, so their buffers are free again.
    const settled = await Promise.allSettled(waits);
    for (const h of this.workers) h.worker.unref();
    const bad = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined || bad || !mine) {
      if (mine) for (const g of mine.grads.values()) g.dispose();
      throw failure ?? bad?.reason;
    }
    const w0 = scored(0, count0) / total;
    const ws = this.workers.map((_, i) => scored(shards[i + 1]![0], shards[i + 1]![1]) / total);
    let loss = mine.loss * w0;
    ws.forEach((w, i) => {
      loss += this.workers[i]!.loss[0]! * w;
    });
    const grads = new Map<string, tf.Tensor>();
    for (let p = 0; p < this.names.length; p++) {
      const name = this.names[p]!;
      const g = mine.grads.get(name);
      const off = this.offsets[p]!;
      const n = this.sizes[p]!;
      const acc = new Float32Array(n);
      if (g) {
        const d = g.dataSync() as Float32Array;
        for (let j = 0; j < n; j++) acc[j] = d[j]! * w0;
      }
      for (let i = 0; i < this.workers.length; i++) {
        const src = this.workers[i]!.grads;
        const w = ws[i]!;
        for (let j = 0; j < n; j++) acc[j]! += src[off + j]! * w;
      }
      const shape = this.model.params.get(name).shape;
      grads.set(name, tf.tensor(acc, shape, 'float32'));
    }
    for (const g of mine.grads.values()) g.dispose();
    return { loss, grads };
  }

  /** Stops the workers and waits until they have exited. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.workers) {
      h.worker.ref();
      h.worker.postMessage({ type: 'close' });
    }
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    const codes = await Promise.all(
      this.workers.map(async (h) => {
        const r = await Promise.race([h.exited, timeout(10_000)]);
        if (r !== 'timeout') return r;
        await h.worker.terminate();
        return -1;
      }),
    );
    this.exitCodes.push(...codes);
  }
}
