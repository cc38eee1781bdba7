/**
 * Builds the playground into dist/: the page (src/index.html), one esbuild bundle of src/main.ts for the
 * browser (the `browser` export condition picks Strata's browser entries), tfjs's wasm binaries (loaded at
 * run time through `setWasmPaths`), and the training text — the first part of the Brown corpus, the
 * default corpus of `strata train`, read here in Node because a page cannot read node_modules.
 *
 *   tsx scripts/build.ts [--minify=false]
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBrownCorpus } from '@strata/core';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(root, 'dist');

/** Characters of the Brown corpus the page trains on (≈ 300 kB: small to download, large enough not to be memorized in a few hundred steps). */
const CORPUS_CHARS = 300_000;

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile: join(dist, 'main.js'),
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: !process.argv.includes('--minify=false'),
  sourcemap: false,
  legalComments: 'linked',
  // The workspace's tsconfig paths point at sources; bundle what an application installing the packages gets.
  tsconfigRaw: {},
  logLevel: 'warning',
});

copyFileSync(join(root, 'src', 'index.html'), join(dist, 'index.html'));
const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
for (const f of readdirSync(wasmDir).filter((n) => n.endsWith('.wasm')))
  copyFileSync(join(wasmDir, f), join(dist, f));

const brown = loadBrownCorpus();
const cut = brown.text.lastIndexOf('\n\n', CORPUS_CHARS);
writeFileSync(join(dist, 'corpus.txt'), brown.text.slice(0, cut > 0 ? cut : CORPUS_CHARS));
process.stdout.write(`playground built in ${dist}\n`);
