/** `--backend webgpu` without a usable Vulkan driver fails with one line naming what is missing. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { strata, TINY_MODEL } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-webgpu-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(process.platform !== 'linux')('webgpu backend errors', () => {
  it('a VK_ICD_FILENAMES that names a missing driver is named in a one-line error', () => {
    const r = strata(['train', '--backend', 'webgpu', '--steps', '1', '--out', join(tmp, 'run')], {
      env: { VK_ICD_FILENAMES: '/nonexistent/vk_icd.json' },
    });
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^error \[E_BACKEND\]: backend "webgpu": WebGPU found no adapter: VK_ICD_FILENAMES names \/nonexistent\/vk_icd\.json, which does not exist$/,
    );
  });

  it('auto skips webgpu there and trains on wasm', () => {
    const r = strata(
      ['train', '--steps', '1', ...TINY_MODEL.slice(0, -2), '--json', '--out', join(tmp, 'auto')],
      { env: { VK_ICD_FILENAMES: '/nonexistent/vk_icd.json' } },
    );
    expect(r.code).toBe(0);
    expect(readFileSync(join(tmp, 'auto', 'metrics.jsonl'), 'utf8')).toMatch(/"backend":"wasm"/);
    // auto does not load Dawn without a GPU device: no Vulkan loader warnings
    if (!existsSync('/dev/dri')) expect(r.stderr).not.toMatch(/vkCreateInstance|Warning/);
  });
});
