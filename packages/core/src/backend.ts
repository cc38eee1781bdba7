import * as tf from '@tensorflow/tfjs-core';
import { formatChoices, StrataError } from './errors.js';
import { isModuleNotFound } from './util/module-not-found.js';
import { prepareWebGPU } from './webgpu.js';

/** Backends Strata knows how to load, in the order `auto` tries them. */
export const BACKENDS = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
/** A backend name accepted by {@link initBackend}. */
export type BackendName = (typeof BACKENDS)[number];
/** What {@link initBackend} accepts: a backend name or `auto`. */
export type BackendChoice = BackendName | 'auto';

interface BackendInfo {
  /** npm package that provides the backend. */
  pkg: string;
  /** Name tfjs registers the backend under. */
  tfName: string;
  description: string;
}

const INFO: Record<BackendName, BackendInfo> = {
  'tensorflow-gpu': {
    pkg: '@tensorflow/tfjs-node-gpu',
    tfName: 'tensorflow',
    description: 'libtensorflow with CUDA (needs CUDA 11.2 + cuDNN 8.1 for tfjs-node-gpu 4.x)',
  },
  tensorflow: { pkg: '@tensorflow/tfjs-node', tfName: 'tensorflow', description: 'libtensorflow on the CPU' },
  webgpu: {
    pkg: '@tensorflow/tfjs-backend-webgpu',
    tfName: 'webgpu',
    description:
      "WebGPU: the browser's, or in Node Dawn's (the webgpu package) on Vulkan/Metal/D3D12; auto skips software Vulkan",
  },
  wasm: { pkg: '@tensorflow/tfjs-backend-wasm', tfName: 'wasm', description: 'WebAssembly + SIMD (XNNPACK)' },
  cpu: {
    pkg: '@tensorflow/tfjs-backend-cpu',
    tfName: 'cpu',
    description: 'pure JavaScript (slow; a reference)',
  },
};

/** The backend that {@link initBackend} activated. */
export interface ActiveBackend {
  /** Strata's name for it (`wasm`, `cpu`, `tensorflow`, `tensorflow-gpu`). */
  name: BackendName;
  /** The npm package it came from. */
  pkg: string;
  /** tfjs's own backend name (`tf.getBackend()`). */
  tfName: string;
  /** Version of `@tensorflow/tfjs-core` in use. */
  tfjsVersion: string;
  /** The device it computes on, where the backend says (webgpu: the adapter's description and driver). */
  device?: string;
  /** Backends that were tried before this one and why they were skipped (auto mode). */
  skipped: {
    /** The backend that was tried. */
    name: BackendName;
    /** Why it was not used: not installed, or the error it raised while initializing. */
    reason: string;
  }[];
}

let gradientsLoaded: Promise<void> | undefined;

/**
 * Registers tfjs-core's gradient functions (which its Node entry point leaves out). Idempotent; called by
 * {@link initBackend}. Call it yourself if you set a backend without Strata.
 */
export function registerGradients(): Promise<void> {
  if (!gradientsLoaded) {
    gradientsLoaded = (async () => {
      if (tf.getGradient('Sum') != null && tf.getGradient('BatchMatMul') != null) return;
      await import('./generated/tfjs-gradients.js');
    })();
  }
  return gradientsLoaded;
}

async function tryLoad(name: BackendName, auto: boolean): Promise<{ device?: string }> {
  const info = INFO[name];
  let device: string | undefined;
  if (name === 'webgpu') device = (await prepareWebGPU(!auto)).device;
  // A backend already registered (a browser app imports its backends itself) needs no import.
  else if (tf.findBackendFactory(info.tfName) == null)
    try {
      await import(info.pkg);
    } catch (e) {
      if (isModuleNotFound(e, info.pkg)) {
        throw new StrataError(
          'E_BACKEND',
          `backend "${name}" needs the package ${info.pkg}, which is not installed: run \`npm install ${info.pkg}\`` +
            (name.startsWith('tensorflow')
              ? ' (its install script downloads libtensorflow, so it needs internet access)'
              : ''),
          { cause: e },
        );
      }
      throw new StrataError(
        'E_BACKEND',
        `backend "${name}" (${info.pkg}) failed to load: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  if (name === 'tensorflow-gpu') {
    // tfjs-node-gpu silently falls back to the CPU when CUDA libraries are missing; there is no public
    // API to ask, so we trust the package here and report the device in `strata info`/bench output.
  }
  let ok = false;
  try {
    ok = await tf.setBackend(info.tfName);
    await tf.ready();
  } catch (e) {
    throw new StrataError('E_BACKEND', `backend "${name}" failed to initialize: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (!ok || tf.getBackend() !== info.tfName) {
    throw new StrataError('E_BACKEND', `backend "${name}" could not be initialized by tfjs`);
  }
  if (name === 'wasm') registerWasmExtras();
  if (name === 'webgpu') registerWebGPUExtras();
  if (name === 'cpu') {
    // The cpu backend prints a banner recommending tfjs-node on its first write; Strata reports the backend
    // itself (and explains the choices in `strata bench`), so silence it.
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  }
  return device !== undefined ? { device } : {};
}

/**
 * Loads and activates a tfjs backend, and registers gradients.
 *
 * `auto` tries, in order, `@tensorflow/tfjs-node-gpu`, `@tensorflow/tfjs-node`, `webgpu` (on a hardware
 * adapter only), `@tensorflow/tfjs-backend-wasm` and `@tensorflow/tfjs-backend-cpu`, taking the first that is
 * installed and initializes. A forced backend that is not installed fails with an error naming the package
 * (for webgpu also the Vulkan loader or driver that is missing).
 *
 * Libraries never call this on import: the application (or the `strata` CLI) chooses the backend.
 */
export async function initBackend(choice: BackendChoice | string = 'auto'): Promise<ActiveBackend> {
  const valid = ['auto', ...BACKENDS];
  if (!valid.includes(choice)) {
    throw new StrataError('E_BACKEND', `unknown backend "${choice}": expected ${formatChoices(valid)}`);
  }
  await registerGradients();
  const skipped: { name: BackendName; reason: string }[] = [];
  const order: BackendName[] = choice === 'auto' ? [...BACKENDS] : [choice as BackendName];
  for (const name of order) {
    try {
      const { device } = await tryLoad(name, choice === 'auto');
      return {
        name,
        pkg: INFO[name].pkg,
        tfName: INFO[name].tfName,
        tfjsVersion: tf.version_core,
        ...(device !== undefined ? { device } : {}),
        skipped,
      };
    } catch (e) {
      if (choice !== 'auto') throw e;
      skipped.push({ name, reason: (e as Error).message });
    }
  }
  throw new StrataError(
    'E_BACKEND',
    `no tfjs backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

/** A one-line description of a backend, for `--help` and `strata info`. */
export function describeBackend(name: BackendName): string {
  return `${name} (${INFO[name].pkg}): ${INFO[name].description}`;
}

let wasmExtrasRegistered = false;
/**
 * The wasm backend lacks `UnsortedSegmentSum`, the kernel behind `tf.gather`'s gradient. Strata's own
 * embedding uses a custom gradient and does not need it, but user code might; register a plain JS kernel.
 */
function registerWasmExtras(): void {
  if (wasmExtrasRegistered || tf.getKernel('UnsortedSegmentSum', 'wasm') != null) return;
  wasmExtrasRegistered = true;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as { numSegments: number }).numSegments;
      // biome-ignore lint/suspicious/noExplicitAny: the wasm backend class is not exported with types
      const b = backend as any;
      const xv = b.readSync(x.dataId) as Float32Array;
      const ids = b.readSync(segmentIds.dataId) as Int32Array;
      const inner = x.shape.slice(1).reduce((a: number, c: number) => a * c, 1);
      const out = b.makeOutput([numSegments, ...x.shape.slice(1)], x.dtype);
      const o = b.typedArrayFromHeap(out) as Float32Array;
      o.fill(0);
      for (let i = 0; i < ids.length; i++) {
        const seg = ids[i]!;
        if (seg < 0 || seg >= numSegments) continue;
        for (let j = 0; j < inner; j++) o[seg * inner + j]! += xv[i * inner + j]!;
      }
      return out;
    },
  });
}

type KernelArgs = Parameters<tf.KernelFunc>[0];
let webgpuExtrasRegistered = false;
/**
 * tfjs-webgpu's `AddN` binds every input as a storage buffer in one shader, so more than
 * `maxStorageBuffersPerShaderStage - 1` inputs (7 at WebGPU's default limits) make an invalid pipeline and a
 * garbage result — Strata's gradient norm sums one term per parameter. Wrap it to add in chunks.
 */
function registerWebGPUExtras(): void {
  if (webgpuExtrasRegistered) return;
  const original = tf.getKernel('AddN', 'webgpu');
  if (original == null) return;
  webgpuExtrasRegistered = true;
  const add = original.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: (args: KernelArgs) => {
      // biome-ignore lint/suspicious/noExplicitAny: the webgpu backend class is not part of tfjs-core's types
      const backend = args.backend as any;
      const limit = Math.max(2, (backend.device?.limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
      let parts = args.inputs as unknown as tf.TensorInfo[];
      const temporaries: tf.TensorInfo[] = [];
      while (parts.length > limit) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < parts.length; i += limit) {
          const chunk = parts.slice(i, i + limit);
          if (chunk.length === 1) next.push(chunk[0]!);
          else {
            const sum = add({ ...args, inputs: chunk as unknown as tf.NamedTensorInfoMap });
            temporaries.push(sum);
            next.push(sum);
          }
        }
        parts = next;
      }
      const out = add({ ...args, inputs: parts as unknown as tf.NamedTensorInfoMap });
      for (const t of temporaries) backend.disposeData(t.dataId);
      return out;
    },
  });
}
