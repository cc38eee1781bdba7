import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  type ActiveBackend,
  type AnyNormStrategy,
  getNorm,
  initBackend,
  type ModelFamily,
  registerModelFamily,
  registerNorm,
  StrataError,
  type WorkerSetup,
} from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { shareCliPackages } from './plugin-resolution.js';

const loadedPluginUrls: string[] = [];
let sharingPackages = false;

/**
 * What a data-parallel worker must import to rebuild the same model: the built-in strategies and families,
 * and every `--plugin` module (its exports registered as `--plugin` does, after the same module resolution
 * hooks as the main thread).
 */
export function workerSetup(): WorkerSetup[] {
  return [
    { module: import.meta.resolve('@strata/norms'), call: 'registerBuiltinNorms' },
    { module: import.meta.resolve('@strata/ngpt'), call: 'registerNGPT' },
    ...(sharingPackages && loadedPluginUrls.length
      ? [{ module: import.meta.resolve('./plugin-resolution.js'), call: 'shareCliPackages' }]
      : []),
    ...loadedPluginUrls.map((module) => ({ module, registerExports: true })),
  ];
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * The URL of a `--plugin` module: a path (relative to the working directory), or a package name resolved from
 * the working directory (then from the CLI's own location). Errors name what was looked for and why it failed.
 */
function resolvePlugin(spec: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) {
    const path = resolve(spec);
    if (!existsSync(path)) throw new StrataError('E_PLUGIN', `--plugin ${spec}: no such file ${path}`);
    return pathToFileURL(path).href;
  }
  try {
    return pathToFileURL(createRequire(resolve('package.json')).resolve(spec)).href;
  } catch (local) {
    try {
      return import.meta.resolve(spec);
    } catch {
      throw new StrataError(
        'E_PLUGIN',
        `--plugin ${spec}: cannot resolve the package from ${process.cwd()}: ${firstLine(local)} (install it in this project, or pass a path such as ./plugin.mjs)`,
      );
    }
  }
}

/** Registers the built-in strategies and model families shipped with the CLI. */
export function registerBuiltins(): void {
  registerBuiltinNorms();
  registerNGPT();
}

function isStrategy(v: unknown): v is AnyNormStrategy {
  const s = v as AnyNormStrategy;
  return (
    !!s &&
    typeof s === 'object' &&
    typeof s.name === 'string' &&
    typeof s.createSite === 'function' &&
    'apiVersion' in s
  );
}
// biome-ignore lint/suspicious/noExplicitAny: families of any config type
function isFamily(v: unknown): v is ModelFamily<any> {
  // biome-ignore lint/suspicious/noExplicitAny: duck typing
  const f = v as ModelFamily<any>;
  return (
    !!f &&
    typeof f === 'object' &&
    typeof f.name === 'string' &&
    typeof f.parseConfig === 'function' &&
    typeof f.create === 'function'
  );
}

/**
 * Loads plugin modules given with `--plugin`: a path (relative to the working directory) or a package name
 * (resolved from the working directory). Exported strategies and model families are registered; a
 * `register()` export is called. Returns the names registered.
 */
export async function loadPlugins(specs: readonly string[] = []): Promise<string[]> {
  const registered: string[] = [];
  loadedPluginUrls.length = 0;
  if (specs.length) sharingPackages = shareCliPackages();
  for (const spec of specs) {
    const url = resolvePlugin(spec);
    let mod: Record<string, unknown>;
    loadedPluginUrls.push(url);
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      // The module was found, so a failure here is its own: a missing dependency, a syntax error, a throw.
      const where = url.startsWith('file:') ? fileURLToPath(url) : url;
      throw new StrataError('E_PLUGIN', `--plugin ${spec}: loading ${where} failed: ${firstLine(e)}`);
    }
    let found = 0;
    for (const value of Object.values(mod)) {
      const items = Array.isArray(value) ? value : [value];
      for (const item of items) {
        if (isStrategy(item)) {
          let same = false;
          try {
            same = getNorm(item.name) === item;
          } catch {
            // not registered yet
          }
          if (!same) registerNorm(item);
          registered.push(item.name);
          found++;
        } else if (isFamily(item)) {
          registerModelFamily(item, { override: false });
          registered.push(item.name);
          found++;
        }
      }
    }
    if (typeof mod.register === 'function') {
      (mod.register as () => void)();
      found++;
    }
    if (found === 0) {
      throw new StrataError(
        'E_PLUGIN',
        `--plugin ${spec}: the module exports no norm strategy (made with defineNorm), model family, or register() function`,
      );
    }
  }
  return registered;
}

/** Backend + built-ins + plugins: what every computing command does first. */
export async function setupRuntime(args: { backend?: unknown; plugin?: unknown }): Promise<ActiveBackend> {
  registerBuiltins();
  await loadPlugins((args.plugin as string[] | undefined) ?? []);
  return initBackend(String(args.backend ?? 'auto'));
}
