/**
 * Loading tfjs's `webgpu` backend: in a browser on its own `navigator.gpu`, in Node on Dawn's binding (the
 * `webgpu` npm package), which needs a Vulkan driver on Linux — a GPU driver's ICD, or a software one
 * (SwiftShader, shipped in Debian's `chromium` package; Mesa's lavapipe from Mesa 24 on).
 */
import * as tf from '@tensorflow/tfjs-core';
import { StrataError } from './errors.js';
import { isModuleNotFound } from './util/module-not-found.js';

/** The npm packages the webgpu backend needs in Node. */
export const WEBGPU_PACKAGES = ['webgpu', '@tensorflow/tfjs-backend-webgpu'] as const;

/** What the webgpu backend runs on: the adapter WebGPU chose. */
export interface WebGPUAdapterSummary {
  /** One line for logs: vendor, architecture and device name, then the description (Dawn: the driver). */
  device: string;
  /** `adapter.info.vendor`. */
  vendor: string;
  /** `adapter.info.architecture`. */
  architecture: string;
  /** `adapter.info.description` (Dawn puts the driver's name and version here). */
  description: string;
  /** True for a CPU (software) implementation: SwiftShader, lavapipe/llvmpipe, or a fallback adapter. */
  software: boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: WebGPU's types are not part of this package's type environment
type GPU = any;

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software/i;

/** Summarizes an adapter's `info` (WebGPU's `GPUAdapterInfo`). */
export function summarizeAdapter(adapter: GPU): WebGPUAdapterSummary {
  const info = adapter?.info ?? {};
  const vendor = String(info.vendor ?? '');
  const architecture = String(info.architecture ?? '');
  const description = String(info.description ?? '');
  const deviceName = String(info.device ?? '');
  const name = [vendor, architecture, deviceName].filter((x) => x !== '').join(' ');
  const software =
    adapter?.isFallbackAdapter === true ||
    info.isFallbackAdapter === true ||
    SOFTWARE.test(`${vendor} ${architecture} ${description} ${deviceName}`);
  return {
    device: `${name || 'unnamed adapter'}${description ? ` (${description})` : ''}`,
    vendor,
    architecture,
    description,
    software,
  };
}

const isNode = (): boolean =>
  typeof process !== 'undefined' && typeof process.versions === 'object' && !!process.versions?.node;

const installHint = `run \`npm install ${WEBGPU_PACKAGES.join(' ')}\``;

async function importOrExplain(pkg: string): Promise<Record<string, unknown>> {
  try {
    // A variable specifier: bundlers must not pull Dawn's Node binding into browser builds.
    return (await import(/* @vite-ignore */ pkg)) as Record<string, unknown>;
  } catch (e) {
    if (isModuleNotFound(e, pkg)) {
      throw new StrataError(
        'E_BACKEND',
        `backend "webgpu" needs the package ${pkg}, which is not installed: ${installHint}`,
        { cause: e },
      );
    }
    throw new StrataError('E_BACKEND', `backend "webgpu": ${pkg} failed to load: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

let nodeGpu: GPU | undefined;

/** `navigator.gpu`, creating it from Dawn in Node (and installing the WebGPU globals tfjs expects). */
async function gpuObject(): Promise<GPU> {
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator?.gpu) return g.navigator.gpu;
  if (!isNode()) {
    throw new StrataError(
      'E_BACKEND',
      'backend "webgpu": this browser has no navigator.gpu (WebGPU is off or unsupported; Chromium on Linux needs --enable-unsafe-webgpu)',
    );
  }
  if (!nodeGpu) {
    const dawn = await importOrExplain('webgpu');
    const create = dawn.create as (flags: string[]) => GPU;
    const globals = (dawn.globals ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(globals)) {
      if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    }
    // Dawn's other Linux backends (OpenGL ES through EGL) only add noise: its WebGPU on Linux is Vulkan.
    nodeGpu = create(process.platform === 'linux' ? ['backend=vulkan'] : []);
  }
  if (g.navigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: nodeGpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', {
      value: { gpu: nodeGpu },
      configurable: true,
      writable: true,
    });
  }
  return nodeGpu;
}

/**
 * Why Dawn found no adapter on Linux, as precisely as the file system tells: no Vulkan loader, no driver
 * (ICD) manifest, or a `VK_ICD_FILENAMES` that names missing files.
 */
async function diagnoseNoAdapter(): Promise<string> {
  const generic =
    'WebGPU found no adapter (no usable Vulkan driver: a GPU driver with Vulkan, or software Vulkan: `apt-get install chromium` and VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)';
  if (!isNode() || process.platform !== 'linux') return generic;
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  const libDirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== ''),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  if (!libDirs.some((d) => fs.existsSync(`${d}/libvulkan.so.1`))) {
    return 'WebGPU found no adapter: the Vulkan loader (libvulkan.so.1) is not installed (`apt-get install libvulkan1`)';
  }
  const listed = (process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? '')
    .split(':')
    .filter((f) => f !== '');
  if (listed.length > 0) {
    const missing = listed.filter((f) => !fs.existsSync(f));
    if (missing.length > 0) {
      return `WebGPU found no adapter: VK_ICD_FILENAMES names ${missing.join(', ')}, which does not exist${
        missing.some((m) => m.includes('swiftshader')) ? ' (`apt-get install chromium` provides it)' : ''
      }`;
    }
    return `WebGPU found no adapter: the Vulkan driver(s) in VK_ICD_FILENAMES (${listed.join(', ')}) offered none Dawn accepts (too old a driver?)`;
  }
  const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const icds = icdDirs.flatMap((d) => {
    try {
      return fs.readdirSync(d).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
  });
  if (icds.length === 0) {
    return `WebGPU found no adapter: the Vulkan loader has no driver (no ICD manifest in ${icdDirs.join(', ')}); install the GPU driver's Vulkan ICD, or for software Vulkan \`apt-get install chromium\` and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json`;
  }
  return `WebGPU found no adapter: the installed Vulkan driver(s) (${icds.join(', ')}) offered none Dawn accepts (Debian bookworm's lavapipe is too old; software Vulkan: \`apt-get install chromium\` and VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)`;
}

const SOFTWARE_ICD = /swiftshader|lvp_icd|lavapipe|llvmpipe/i;

/**
 * Why `auto` should not even load Dawn here (undefined: worth trying). On Linux it tries only with a GPU
 * device node (`/dev/dri/renderD*`, `/dev/nvidia*`) and a Vulkan driver that is not a software one: on a
 * CPU-only machine the answer would be a software adapter, which `auto` refuses anyway, and probing prints
 * the Vulkan loader's warnings on every run.
 */
export async function webgpuAutoSkipReason(): Promise<string | undefined> {
  if (!isNode() || process.platform !== 'linux') return undefined;
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  const list = (d: string) => {
    try {
      return fs.readdirSync(d);
    } catch {
      return [];
    }
  };
  const gpuNodes = [
    ...list('/dev/dri').filter((f) => f.startsWith('renderD')),
    ...list('/dev').filter((f) => /^nvidia\d+$/.test(f)),
  ];
  if (gpuNodes.length === 0)
    return 'backend "webgpu": no GPU device (/dev/dri/renderD*, /dev/nvidia*) on this machine';
  const listed = (process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? '')
    .split(':')
    .filter((f) => f !== '');
  const icds =
    listed.length > 0
      ? listed
      : ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'].flatMap(list);
  if (!icds.some((f) => !SOFTWARE_ICD.test(f)))
    return 'backend "webgpu": no hardware Vulkan driver (only software ones, which are slower than wasm)';
  return undefined;
}

/** What {@link probeWebGPU} found. */
export interface WebGPUProbe {
  /** The adapter WebGPU offers, if any. */
  adapter?: WebGPUAdapterSummary;
  /** Why there is none: the missing package, Vulkan loader or driver. */
  reason?: string;
}

/**
 * Asks WebGPU for an adapter without registering or activating anything: the adapter, or why there is none
 * (package, Vulkan loader, driver), in the words {@link initBackend} would use.
 */
export async function probeWebGPU(): Promise<WebGPUProbe> {
  try {
    const adapter = await (await gpuObject()).requestAdapter({ powerPreference: 'high-performance' });
    return adapter ? { adapter: summarizeAdapter(adapter) } : { reason: await diagnoseNoAdapter() };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

/**
 * Makes tfjs's `webgpu` backend available (registers it; does not activate it) and returns the adapter it
 * will run on. With `allowSoftware: false` a CPU (software) adapter is refused: it is slower than `wasm`, so
 * `auto` skips it, while `--backend webgpu` takes it.
 */
export async function prepareWebGPU(allowSoftware: boolean): Promise<WebGPUAdapterSummary> {
  if (!allowSoftware) {
    const reason = await webgpuAutoSkipReason();
    if (reason) throw new StrataError('E_BACKEND', reason);
  }
  const gpu = await gpuObject();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new StrataError('E_BACKEND', `backend "webgpu": ${await diagnoseNoAdapter()}`);
  const summary = summarizeAdapter(adapter);
  if (summary.software && !allowSoftware) {
    throw new StrataError(
      'E_BACKEND',
      `backend "webgpu": the only adapter is software Vulkan (${summary.device}), slower than wasm; --backend webgpu uses it anyway`,
    );
  }
  if (!isNode()) {
    // In a browser the application imports '@tensorflow/tfjs-backend-webgpu' (as for every tfjs backend);
    // with navigator.gpu present, that import registers the backend.
    if (tf.findBackendFactory('webgpu') == null) {
      throw new StrataError(
        'E_BACKEND',
        "backend \"webgpu\" is not registered: import '@tensorflow/tfjs-backend-webgpu' in the page before initBackend('webgpu')",
      );
    }
    return summary;
  }
  // In Node, importing the backend package registers its own factory only if navigator.gpu existed at that
  // moment; register ours (tfjs's device limits) on the adapter just inspected, either way.
  const mod = await importOrExplain('@tensorflow/tfjs-backend-webgpu');
  const WebGPUBackend = mod.WebGPUBackend as new (device: GPU, info?: unknown) => tf.KernelBackend;
  if (tf.findBackend('webgpu') != null) return summary;
  if (tf.findBackendFactory('webgpu') != null) tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const limits = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
          maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
          maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
          maxBufferSize: limits.maxBufferSize,
          maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
          maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        },
      });
      return new WebGPUBackend(device, adapter.info);
    },
    3,
  );
  return summary;
}
