/**
 * The screenshot in the backends guide: Post-LN, Pre-LN and DeepNorm at one depth, trained in the playground on
 * wasm in headless Chromium, captured when sampling is done. Build the page first.
 *
 *   tsx examples/playground/scripts/screenshot.ts [--out docs/guides/img/playground.png] [--steps 200] [--layers 8] [--lr 0.001]
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { collectErrors, findChromium, launchChromium, runPlayground } from './chromium.js';
import { DIST, serveStatic } from './serve.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const out = resolve(arg('out', 'docs/guides/img/playground.png'));
const steps = Number(arg('steps', '200'));
if (!Number.isInteger(steps) || steps < 1) {
  process.stderr.write(`error: --steps must be a positive integer, got ${arg('steps', '')}\n`);
  process.exit(1);
}
const chromium = findChromium();
if (!chromium) {
  process.stderr.write('error: no Chromium binary: set STRATA_CHROMIUM or `apt-get install chromium`\n');
  process.exit(1);
}

const server = await serveStatic(DIST);
const browser = await launchChromium(chromium);
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900, deviceScaleFactor: 1 });
  const errors = collectErrors(page);
  const s = await runPlayground(
    page,
    server.url,
    {
      backend: 'wasm',
      strategies: 'post-ln,pre-ln,deepnorm',
      layers: Number(arg('layers', '8')),
      width: 64,
      heads: 2,
      context: 64,
      batch: 8,
      steps,
      lr: Number(arg('lr', '0.001')),
      sample: 200,
    },
    { timeoutMs: 30 * 60_000, pollMs: 1000 },
  );
  if (s.state !== 'done' || errors.length)
    throw new Error(`the playground failed: ${s.error ?? errors.join('; ')}`);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out as `${string}.png`, fullPage: true });
  process.stdout.write(
    `${out}: ${s.runs.map((r) => `${r.strategy} ${r.losses.at(-1)?.[1].toFixed(3)}`).join(', ')} after ${steps} steps\n`,
  );
} finally {
  await browser.close();
  await server.close();
}
