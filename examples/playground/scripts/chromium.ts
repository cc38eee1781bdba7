/**
 * Drives the playground in headless Chromium through puppeteer-core (no browser download: it runs the system's
 * Chromium, Debian's `chromium` package). Used by the browser test, the measurement script and the screenshot.
 */
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { PlaygroundState } from '../src/setup.js';

/** Where a Chromium binary is looked for, after `$STRATA_CHROMIUM`. */
export const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium to drive: `$STRATA_CHROMIUM`, else the first of {@link CHROMIUM_PATHS} that exists. */
export function findChromium(): string | undefined {
  const env = process.env.STRATA_CHROMIUM;
  if (env) return env;
  return CHROMIUM_PATHS.find((p) => existsSync(p));
}

/**
 * Chromium's flags. WebGL in headless Chromium without a GPU runs on SwiftShader through ANGLE, which Chromium
 * only allows with `--enable-unsafe-swiftshader` since it stopped falling back to it silently. WebGPU on Linux
 * is behind `--enable-unsafe-webgpu`, and runs on Vulkan: `--enable-features=Vulkan` with SwiftShader's Vulkan
 * (`--use-vulkan=swiftshader`), the driver Debian's chromium package ships.
 */
export const CHROMIUM_FLAGS = [
  '--no-sandbox', // CI runs as root
  '--headless=new',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-dev-shm-usage',
];

/** Launches headless Chromium. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return puppeteer.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS, protocolTimeout: 600_000 });
}

/** `window.playground` as the page exposes it. */
export type PlaygroundSnapshot = PlaygroundState;

/** Reads `window.playground`. */
export function snapshot(page: Page): Promise<PlaygroundSnapshot> {
  return page.evaluate(() =>
    structuredClone((window as unknown as { playground: PlaygroundSnapshot }).playground),
  );
}

/** Console errors and uncaught page errors, collected from the moment this is called. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${(e as Error).message ?? String(e)}`));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  return errors;
}

/**
 * Opens the playground at `baseUrl` with `params` (plus `autostart=1`) and waits until it is done or failed;
 * `onProgress` sees each snapshot (every `pollMs`) while it trains.
 */
export async function runPlayground(
  page: Page,
  baseUrl: string,
  params: Record<string, string | number>,
  options: { timeoutMs?: number; pollMs?: number; onProgress?: (s: PlaygroundSnapshot) => void } = {},
): Promise<PlaygroundSnapshot> {
  const url = new URL(baseUrl);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
  url.searchParams.set('autostart', '1');
  await page.goto(url.href, { waitUntil: 'load' });
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    const s = await snapshot(page);
    options.onProgress?.(s);
    if (s.state === 'done' || s.state === 'error') return s;
    if (Date.now() > deadline)
      throw new Error(
        `the playground did not finish in ${options.timeoutMs ?? 120_000} ms (state ${s.state})`,
      );
    await new Promise((r) => setTimeout(r, options.pollMs ?? 250));
  }
}
