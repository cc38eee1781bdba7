/**
 * A data-parallel worker thread (see pool.ts): its own tfjs engine and backend, a replica of the model, and a
 * loop that loads the published parameters, computes the loss and gradients of one shard, and writes them
 * into shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../backend.js';
import { registerModelFamily } from '../model/family.js';
import { getModelFamily } from '../model/registry.js';
import type { AnyNormStrategy } from '../norm/contract.js';
import { getNorm, registerNorm } from '../norm/registry.js';
import { computeLossAndGrads } from '../train/trainer.js';
import type { WorkerSetup } from './pool.js';

interface Init {
  rank: number;
  backend: string;
  family: string;
  config: Record<string, unknown>;
  seed: number;
  setup: WorkerSetup[];
  recompute: boolean;
  names: string[];
  params: Float32Array;
  grads: Float32Array;
  loss: Float64Array;
}

interface StepMsg {
  type: 'step';
  x: Int32Array;
  y: Int32Array;
  rows: number;
  seqLen: number;
  seed: number;
  training: boolean;
}

/** Registers the norm strategies and model families a plugin module exports (like `strata --plugin`). */
function registerExports(mod: Record<string, unknown>): void {
  for (const value of Object.values(mod)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      const o = item as Record<string, unknown> | null;
      if (!o || typeof o !== 'object' || typeof o.name !== 'string') continue;
      try {
        if (typeof o.createSite === 'function' && 'apiVersion' in o) {
          let same = false;
          try {
            same = getNorm(o.name) === (o as unknown);
          } catch {
            // not registered yet
          }
          if (!same) registerNorm(o as unknown as AnyNormStrategy);
        } else if (typeof o.parseConfig === 'function' && typeof o.create === 'function') {
          registerModelFamily(o as unknown as Parameters<typeof registerModelFamily>[0]);
        }
      } catch {
        // already registered under that name (e.g. by a `call` above)
      }
    }
  }
  if (typeof mod.register === 'function') (mod.register as () => void)();
}

const port = parentPort!;
const init = workerData as Init;

async function main(): Promise<void> {
  await initBackend(init.backend);
  for (const s of init.setup) {
    const mod = (await import(s.module)) as Record<string, unknown>;
    if (s.call) {
      const fn = mod[s.call];
      if (typeof fn !== 'function') throw new Error(`setup module ${s.module} has no function "${s.call}"`);
      (fn as () => void)();
    }
    if (s.registerExports) registerExports(mod);
  }
  const family = getModelFamily(init.family);
  const model = family.create(init.config, { seed: init.seed });
  const names = model.params
    .variables()
    .filter(([, v]) => v.trainable)
    .map(([n]) => n);
  if (names.join('\n') !== init.names.join('\n')) {
    throw new Error('the worker built a model with different parameters than the main thread');
  }
  const offsets: number[] = [];
  let total = 0;
  for (const n of names) {
    offsets.push(total);
    total += model.params.get(n).size;
  }
  const loadParams = () => {
    names.forEach((n, i) => {
      const v = model.params.get(n);
      const t = tf.tensor(init.params.subarray(offsets[i]!, offsets[i]! + v.size), v.shape, 'float32');
      v.assign(t);
      t.dispose();
    });
  };
  port.on('message', (msg: StepMsg | { type: 'close' }) => {
    if (msg.type === 'close') {
      model.dispose();
      port.close();
      process.exit(0);
    }
    try {
      loadParams();
      const { loss, grads } = computeLossAndGrads(model, msg.x, msg.y, msg.rows, msg.seqLen, {
        training: msg.training,
        seed: msg.seed,
        recompute: init.recompute,
      });
      init.loss[0] = loss.dataSync()[0]!;
      loss.dispose();
      names.forEach((n, i) => {
        const g = grads.get(n);
        const dst = init.grads.subarray(offsets[i]!, offsets[i]! + model.params.get(n).size);
        if (g) dst.set(g.dataSync() as Float32Array);
        else dst.fill(0);
      });
      for (const g of grads.values()) g.dispose();
      port.postMessage({ type: 'done' });
    } catch (e) {
      port.postMessage({ type: 'error', message: (e as Error).stack ?? String(e) });
    }
  });
  port.postMessage({ type: 'ready' });
}

main().catch((e) => {
  port.postMessage({ type: 'error', message: (e as Error).stack ?? String(e) });
});
