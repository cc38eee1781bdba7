/**
 * The playground in headless Chromium (Debian's `chromium`, driven by puppeteer-core): the built page loads,
 * trains on wasm, webgl and webgpu, its curves update while it trains, it samples text, and nothing is logged
 * as an error. The losses are compared with the same training run here in Node on tfjs's cpu backend.
 *
 * Skipped, with a notice, where no Chromium binary exists (`$STRATA_CHROMIUM`, /usr/bin/chromium, …).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ByteTokenizer, initBackend, TextDataset, Trainer } from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collectErrors,
  findChromium,
  launchChromium,
  type PlaygroundSnapshot,
  runPlayground,
} from '../scripts/chromium.js';
import { DIST, type StaticServer, serveStatic } from '../scripts/serve.js';
import { familyOf, modelConfig, type PlaygroundSettings, SEEDS, trainConfig } from '../src/setup.js';

const here = dirname(fileURLToPath(import.meta.url));
const chromium = findChromium();
if (!chromium)
  console.warn(
    'playground.test: no Chromium binary (set STRATA_CHROMIUM or `apt-get install chromium`); the browser tests are skipped',
  );

/** Two strategies, two blocks, a few steps: seconds on wasm, tens of seconds on webgl (SwiftShader). */
const SMALL: PlaygroundSettings = {
  strategies: ['post-ln', 'pre-ln'],
  nLayers: 2,
  dModel: 32,
  nHeads: 2,
  contextLength: 32,
  batchSize: 4,
  steps: 8,
  lr: 3e-3,
};
/** WebGPU on SwiftShader compiles a shader per kernel and runs slowly on a CPU: one strategy, three steps. */
const TINY: PlaygroundSettings = { ...SMALL, strategies: ['deepnorm'], steps: 3 };

function query(s: PlaygroundSettings, backend: string): Record<string, string | number> {
  return {
    backend,
    strategies: s.strategies.join(','),
    layers: s.nLayers,
    width: s.dModel,
    heads: s.nHeads,
    context: s.contextLength,
    batch: s.batchSize,
    steps: s.steps,
    lr: s.lr,
    sample: 12,
  };
}

/** The same training in Node on the cpu backend: training losses of each strategy, by step. */
async function cpuReference(s: PlaygroundSettings, corpus: string): Promise<Record<string, number[]>> {
  const data = new TextDataset(corpus, new ByteTokenizer(), {
    valFraction: SEEDS.valFraction,
    seed: SEEDS.data,
  });
  const out: Record<string, number[]> = {};
  for (const strategy of s.strategies) {
    const model = familyOf(strategy).create(modelConfig(s, strategy), { seed: SEEDS.model });
    const trainer = new Trainer(model, data, trainConfig(s, strategy));
    const losses: number[] = [];
    for (let i = 0; i < s.steps; i++) losses.push((await trainer.step()).loss);
    trainer.dispose();
    model.dispose();
    out[strategy] = losses;
  }
  return out;
}

describe.skipIf(!chromium)('playground in headless Chromium', () => {
  let server: StaticServer;
  let browser: Browser;
  let corpus: string;

  beforeAll(async () => {
    // Build the page from the current sources (the packages' dist must be built: `npm run build`).
    // (asynchronously: a blocked event loop starves vitest's worker RPC on a loaded machine)
    await promisify(execFile)(process.execPath, ['--import', 'tsx', join(here, '..', 'scripts', 'build.ts')]);
    corpus = readFileSync(join(DIST, 'corpus.txt'), 'utf8');
    registerBuiltinNorms();
    registerNGPT();
    await initBackend('cpu');
    server = await serveStatic();
    browser = await launchChromium(chromium!);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Trains in the page, following its progress; returns the final state, the errors and what was seen meanwhile. */
  async function train(
    backend: string,
    s: PlaygroundSettings,
    timeoutMs: number,
    url: string,
  ): Promise<{ final: PlaygroundSnapshot; errors: string[]; seen: number[]; page: Page }> {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    const seen: number[] = [];
    const final = await runPlayground(page, url, query(s, backend), {
      timeoutMs,
      pollMs: 100,
      onProgress: (p) => {
        const n = p.runs[0]?.losses.length ?? 0;
        if (p.state === 'training' && seen.at(-1) !== n) seen.push(n);
      },
    });
    return { final, errors, seen, page };
  }

  async function check(
    backend: string,
    s: PlaygroundSettings,
    timeoutMs: number,
    url = server.url,
  ): Promise<PlaygroundSnapshot> {
    const reference = await cpuReference(s, corpus);
    const { final, errors, seen, page } = await train(backend, s, timeoutMs, url);
    expect(final.error).toBeUndefined();
    expect(errors).toEqual([]);
    expect(final.state).toBe('done');
    expect(final.backend?.name).toBe(backend);
    expect(await page.$eval('#backend-line', (e) => e.textContent)).toContain(`backend: ${backend}`);
    expect(final.corpusBytes).toBeGreaterThan(100_000);
    // The curve grew while the page trained (it was seen part-way, not only at the end).
    expect(seen.some((n) => n > 0 && n < s.steps)).toBe(true);
    expect(final.redraws).toBeGreaterThan(1);
    expect(final.runs.map((r) => r.strategy)).toEqual(s.strategies);
    for (const r of final.runs) {
      expect(r.steps).toBe(s.steps);
      expect(r.losses.map(([step]) => step)).toEqual(Array.from({ length: s.steps }, (_, i) => i + 1));
      // Same data, same initialization, same AdamW: the browser backend's losses are the cpu backend's.
      const ref = reference[r.strategy]!;
      for (const [step, loss] of r.losses)
        expect(loss, `${r.strategy} step ${step}`).toBeCloseTo(ref[step - 1]!, 3);
      expect(r.losses.at(-1)![1]).toBeLessThan(r.losses[0]![1]);
      expect(r.gradNorms).toHaveLength(s.nLayers);
      for (const g of r.gradNorms) expect(g).toBeGreaterThan(0);
      expect(r.valLosses.at(-1)?.[0]).toBe(s.steps);
      expect(r.sample.startsWith('The ')).toBe(true);
      expect(r.sample.length).toBeGreaterThan(4);
    }
    // One loss line per strategy (plus its validation markers) and one gradient line per strategy are drawn.
    const drawn = await page.$$eval('#loss-chart svg path, #grad-chart svg path', (ps) => ps.length);
    expect(drawn).toBeGreaterThanOrEqual(2 * s.strategies.length);
    const samples = await page.$$eval('#samples pre', (ps) => ps.map((p) => p.textContent ?? ''));
    expect(samples).toEqual(final.runs.map((r) => r.sample));
    await page.close();
    return final;
  }

  it('trains on wasm (Strata kernels), matching the cpu backend', async () => {
    // nGPT (@strata/ngpt) trains in the page too.
    const final = await check('wasm', { ...SMALL, strategies: [...SMALL.strategies, 'ngpt'] }, 90_000);
    expect(final.backend?.device).toContain("Strata's kernels");
  }, 120_000);

  it('trains on wasm in a cross-origin-isolated page (tfjs threaded build, tfjs kernels)', async () => {
    const isolated = await serveStatic(DIST, 0, true);
    try {
      const final = await check('wasm', { ...SMALL, strategies: ['pre-ln'], steps: 4 }, 60_000, isolated.url);
      expect(final.backend?.device).toContain(
        "tfjs's kernels (Strata's: tfjs-backend-wasm exposes no memory)",
      );
    } finally {
      await isolated.close();
    }
  }, 120_000);

  it(
    'trains on webgl (SwiftShader), matching the cpu backend',
    () => check('webgl', SMALL, 150_000),
    240_000,
  );

  it(
    'trains on webgpu (SwiftShader Vulkan), matching the cpu backend',
    () => check('webgpu', TINY, 240_000),
    300_000,
  );

  it('says what is wrong with a bad setting, without a console error', async () => {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    const final = await runPlayground(page, server.url, { ...query(SMALL, 'wasm'), layers: 0 });
    expect(final.state).toBe('error');
    expect(final.error).toMatch(/layers must be a number in \[1, 64\], got "0"/);
    expect(await page.$eval('#error', (e) => e.textContent)).toContain('layers must be');
    // showError logs the error with console.error, the one console error expected here.
    expect(errors.filter((e) => !e.includes('layers must be'))).toEqual([]);
    await page.close();
  });
});
