/**
 * The published packages bundle for a browser: esbuild (platform `browser`, so the `browser` export condition
 * applies) bundles each package as an application would import it — through node_modules and its package.json
 * `exports`, from the built `dist` — and no Node built-in module may be reached. A negative control bundles
 * core's Node entry and expects the check to find its built-ins.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BUILTIN = new RegExp(
  `^(node:.*|(${builtinModules.map((m) => m.replace(/[/\\^$*+?.()|[\]{}]/g, '\\$&')).join('|')})(/.*)?)$`,
);

/** What bundling `source` for the browser gave: the Node built-ins it reached, esbuild's errors, its inputs. */
interface BundleResult {
  builtins: string[];
  errors: string[];
  inputs: string[];
}

/**
 * Bundles `source` (an ES module importing packages) for the browser. A package may map a built-in away in its
 * package.json `browser` field (tfjs-core maps `util` and `crypto` to nothing); only a built-in that esbuild
 * cannot resolve for the browser counts as reached.
 */
async function bundle(source: string): Promise<BundleResult> {
  const builtins: string[] = [];
  const record: Plugin = {
    name: 'record-node-builtins',
    setup(b) {
      b.onResolve({ filter: BUILTIN }, async (args) => {
        if (args.pluginData === 'inner') return undefined;
        const { importer, kind, resolveDir, namespace, with: attributes } = args;
        const r = await b.resolve(args.path, {
          importer,
          kind,
          resolveDir,
          namespace,
          with: attributes,
          pluginData: 'inner',
        });
        if (r.errors.length === 0) return undefined; // esbuild resolves it (e.g. to an empty module)
        builtins.push(`${args.path} (imported by ${args.importer.replace(`${root}/`, '')})`);
        return { path: args.path, external: true };
      });
    },
  };
  try {
    const result = await build({
      stdin: { contents: source, resolveDir: root, loader: 'js' },
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      metafile: true,
      logLevel: 'silent',
      // The repo's tsconfig paths point the workspace packages at their sources; an application sees dist.
      tsconfigRaw: {},
      plugins: [record],
    });
    return {
      builtins: [...new Set(builtins)].sort(),
      errors: [],
      inputs: Object.keys(result.metafile.inputs),
    };
  } catch (e) {
    const errors = ((e as { errors?: { text: string }[] }).errors ?? [{ text: String(e) }]).map(
      (x) => x.text,
    );
    return { builtins: [...new Set(builtins)].sort(), errors, inputs: [] };
  }
}

const built = ['core', 'norms', 'ngpt', 'growth'].every((p) =>
  existsSync(join(root, 'packages', p, 'dist', 'index.js')),
);

describe.skipIf(!built)('browser bundles (build first: npm run build)', () => {
  it.each(['@strata/core', '@strata/norms', '@strata/ngpt', '@strata/growth'])(
    '%s bundles for the browser without a Node built-in',
    async (pkg) => {
      const r = await bundle(`export * from '${pkg}';`);
      expect(r.builtins).toEqual([]);
      expect(r.errors).toEqual([]);
      // The browser entry itself is what was bundled, not a source file through some alias.
      expect(r.inputs.some((i) => /packages\/core\/dist\/browser\.js$/.test(i))).toBe(true);
      expect(r.inputs.some((i) => /node_modules\/@tensorflow\/tfjs-core\//.test(i))).toBe(true);
    },
  );

  it('the browser entry keeps the training API and leaves out file I/O', async () => {
    // The built entries (a computed specifier: CI type-checks before it builds).
    const built = async (file: string) =>
      (await import(new URL(`../dist/${file}`, import.meta.url).href)) as Record<string, unknown>;
    const core = await built('browser.js');
    for (const name of [
      'initBackend',
      'GPT',
      'gptFamily',
      'Trainer',
      'TextDataset',
      'ByteTokenizer',
      'generate',
    ])
      expect(core, name).toHaveProperty(name);
    for (const name of [
      'saveCheckpoint',
      'writeFileAtomic',
      'loadTextSource',
      'tokenizeSource',
      'exportHFGPT2',
    ])
      expect(core, name).not.toHaveProperty(name);
    // Node's entry is the browser entry plus the Node-only parts.
    const node = await built('index.js');
    for (const name of Object.keys(core)) expect(node, name).toHaveProperty(name);
  });

  it('the check finds Node built-ins where there are some (core without the browser condition)', async () => {
    const r = await bundle(`export * from './packages/core/dist/index.js';`);
    expect(r.builtins.some((b) => b.startsWith('node:fs'))).toBe(true);
  });
});

if (!built) console.warn('browser-bundle.test: packages are not built (npm run build); skipped');
