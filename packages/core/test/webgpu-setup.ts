/**
 * Test setup for the webgpu backend: points the Vulkan loader at SwiftShader (Debian's `chromium` package) when
 * no driver is chosen, and tells whether an adapter exists. Without one the webgpu tests are skipped with a
 * notice — unless STRATA_REQUIRE_WEBGPU=1 (CI sets it after installing the driver), where that is a failure.
 */
import { existsSync } from 'node:fs';
import { probeWebGPU } from '../src/index.js';

/** SwiftShader's Vulkan driver manifest as Debian's `chromium` package installs it. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Undefined when webgpu tests can run; otherwise why not (and a notice is printed). */
export async function webgpuSkipReason(): Promise<string | undefined> {
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD))
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  const probe = await probeWebGPU();
  if (probe.adapter) return undefined;
  if (process.env.STRATA_REQUIRE_WEBGPU === '1') {
    throw new Error(`STRATA_REQUIRE_WEBGPU=1, but ${probe.reason}`);
  }
  console.warn(`NOTICE: webgpu tests skipped: ${probe.reason}`);
  return probe.reason;
}

/** Largest |a − b| over two equally shaped flat arrays, relative to max(1, max |b|). */
export function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let d = 0;
  let s = 1;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(b[i]!));
  }
  return d / s;
}
