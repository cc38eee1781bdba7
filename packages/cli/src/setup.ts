import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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

const loadedPluginUrls: string[] = [];

/**
 * What a data-parallel worker must import to rebuild the same model: the built-in strategies and families,
 * and every `--plugin` module (its exports registered as `--plugin` does).
 */
export function workerSetup(): WorkerSetup[] {
  return [
    { module: import.meta.resolve('@strata/norms'), call: 'registerBuiltinNorms' },
    { module: import.meta.resolve('@strata/ngpt'), call: 'registerNGPT' },
    ...loadedPluginUrls.map((module) => ({ module, registerExports: true })),
  ];
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
  for (const spec of specs) {
    let url: string;
    if (spec.startsWith('.') || isAbsolute(spec)) url = pathToFileURL(resolve(spec)).href;
    else {
      try {
        url = pathToFileURL(createRequire(resolve('package.json')).resolve(spec)).href;
      } catch {
        try {
          url = import.meta.resolve(spec);
        } catch (e) {
          throw new StrataError(
            'E_PLUGIN',
            `--plugin ${spec}: cannot find the module (${(e as Error).message.split('\n')[0]})`,
          );
        }
      }
    }
    let mod: Record<string, unknown>;
    loadedPluginUrls.push(url);
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (e) {
      const code = (e as { code?: string }).code;
      const why = code === 'ERR_MODULE_NOT_FOUND' ? 'file not found' : (e as Error).message.split('\n')[0];
      throw new StrataError('E_PLUGIN', `--plugin ${spec}: cannot load it: ${why}`);
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
