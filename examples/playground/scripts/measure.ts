/**
 * Seconds per training step of the playground's GPT on each browser backend, in headless Chromium (the system's,
 * through puppeteer-core). Build the page first (`npm run build -w @strata-examples/playground`).
 *
 *   tsx examples/playground/scripts/measure.ts [--backends wasm,wasm-isolated,webgl,webgpu,cpu] [--steps 6]
 *       [--width 32] [--layers 2] [--heads 2] [--context 32] [--batch 4] [--strategy pre-ln]
 *
 * `wasm-isolated` is wasm in a cross-origin-isolated page (tfjs's multi-threaded build and kernels). The first
 * step (shader compilation, kernel set-up) is left out of the mean. Prints a Markdown table and the machine's
 * load average before and after, which a shared machine's figures depend on.
 */
import { cpus, loadavg } from 'node:os';
import { collectErrors, findChromium, launchChromium, runPlayground } from './chromium.js';
import { DIST, serveStatic } from './serve.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function intFlag(name: string, fallback: number): number {
  const v = Number(flag(name, String(fallback)));
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`error: --${name} must be a positive integer, got ${flag(name, '')}\n`);
    process.exit(1);
  }
  return v;
}

const KNOWN = ['wasm', 'wasm-isolated', 'webgl', 'webgpu', 'cpu'];
const backends = flag('backends', 'wasm,wasm-isolated,webgl,webgpu').split(',');
for (const b of backends)
  if (!KNOWN.includes(b)) {
    process.stderr.write(`error: --backends: unknown backend "${b}"; expected ${KNOWN.join(', ')}\n`);
    process.exit(1);
  }
const steps = intFlag('steps', 6);
if (steps < 2) {
  process.stderr.write('error: --steps must be at least 2 (the first step is not timed)\n');
  process.exit(1);
}
const settings = {
  strategies: flag('strategy', 'pre-ln'),
  layers: intFlag('layers', 2),
  width: intFlag('width', 32),
  heads: intFlag('heads', 2),
  context: intFlag('context', 32),
  batch: intFlag('batch', 4),
  steps,
  sample: 0,
};

const chromium = findChromium();
if (!chromium) {
  process.stderr.write('error: no Chromium binary: set STRATA_CHROMIUM or `apt-get install chromium`\n');
  process.exit(1);
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');
const loadBefore = load();
const plain = await serveStatic(DIST);
const isolated = await serveStatic(DIST, 0, true);
const browser = await launchChromium(chromium);
const rows: string[] = [];
try {
  for (const b of backends) {
    const page = await browser.newPage();
    const errors = collectErrors(page);
    const backend = b === 'wasm-isolated' ? 'wasm' : b;
    const t0 = performance.now();
    const s = await runPlayground(
      page,
      b === 'wasm-isolated' ? isolated.url : plain.url,
      { ...settings, backend },
      {
        timeoutMs: 20 * 60_000,
        pollMs: 500,
      },
    );
    const wall = (performance.now() - t0) / 1000;
    if (s.state !== 'done') throw new Error(`${b}: ${s.error ?? s.state}`);
    const run = s.runs[0]!;
    const last = run.losses.at(-1)?.[1];
    rows.push(
      `| ${b} | ${run.secondsPerStep.toFixed(3)} | ${last?.toFixed(4)} | ${wall.toFixed(0)} | ${s.backend?.device ?? ''} |`,
    );
    process.stderr.write(
      `${b}: ${run.secondsPerStep.toFixed(3)} s/step${errors.length ? `; errors: ${errors.join('; ')}` : ''}\n`,
    );
    await page.close();
  }
} finally {
  await browser.close();
  await plain.close();
  await isolated.close();
}
const version = (await import('puppeteer-core/package.json', { with: { type: 'json' } })).default.version;
process.stdout.write(
  `GPT d ${settings.width}, ${settings.layers} layers, ${settings.heads} heads, ctx ${settings.context}, batch ${settings.batch}, ` +
    `${settings.strategies}; mean of steps 2–${steps}; ${chromium} (puppeteer-core ${version}), ${cpus().length} CPUs, ` +
    `load average (1/5/15 min) ${loadBefore} before, ${load()} after\n\n` +
    '| backend | s/step | loss at the last step | wall s (incl. start-up) | device |\n' +
    '| --- | --- | --- | --- | --- |\n' +
    `${rows.join('\n')}\n`,
);
