import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { SharedResolution } from './plugin-hooks.js';

/**
 * The packages a plugin shares with the CLI: one tfjs engine (with its backends) and one copy of each Strata
 * package, whichever `node_modules` the plugin itself would find them in.
 */
export const SHARED_PACKAGES: readonly string[] = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  '@strata/core',
  '@strata/norms',
  '@strata/ngpt',
  '@strata/growth',
];

let installed = false;

/**
 * Makes every later `import` of a {@link SHARED_PACKAGES} package resolve to the CLI's own copy (a module
 * resolution hook, `module.register`). Without it, a globally installed CLI that loads a plugin from a project
 * would load a second `@tensorflow/tfjs-core` from the project ("Platform node has already been set") and a
 * second `@strata/core`. Idempotent per thread; `--plugin` calls it in the main thread and in every
 * data-parallel worker (hooks are per thread in Node 20). Returns whether the hooks are active (they are not
 * when running from the TypeScript sources, where there is no compiled hooks module).
 */
export function shareCliPackages(): boolean {
  if (installed) return true;
  const hooks = new URL('./plugin-hooks.js', import.meta.url);
  if (!existsSync(fileURLToPath(hooks))) return false;
  const data: SharedResolution = { parentURL: import.meta.url, packages: [...SHARED_PACKAGES] };
  register(hooks, { data });
  installed = true;
  return true;
}
