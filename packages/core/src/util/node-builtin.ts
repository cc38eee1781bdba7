/**
 * Node built-in modules for the few functions of otherwise portable modules that need them (reading a file a
 * tokenizer or corpus lives in), fetched at call time through `process.getBuiltinModule` (Node ≥ 20.16) rather
 * than imported: a module that imports `node:fs` cannot be bundled for a browser at all, while one that asks
 * for it here bundles, runs, and fails only when such a function is called, with an error that says why.
 */
import { StrataError } from '../errors.js';

interface NodeBuiltins {
  'node:crypto': typeof import('node:crypto');
  'node:fs': typeof import('node:fs');
  'node:module': typeof import('node:module');
  'node:path': typeof import('node:path');
}

type ProcessWithBuiltins = { getBuiltinModule?: (id: string) => unknown };

/** The Node built-in module `id`, or undefined outside Node (a browser). */
export function maybeNodeBuiltin<K extends keyof NodeBuiltins>(id: K): NodeBuiltins[K] | undefined {
  const proc = (globalThis as { process?: ProcessWithBuiltins }).process;
  return proc?.getBuiltinModule?.(id) as NodeBuiltins[K] | undefined;
}

/**
 * The Node built-in module `id`; outside Node a StrataError (`E_USAGE`) saying that `what` needs Node.
 *
 * @param what - what the caller does, for the error (e.g. `reading a tokenizer.json file`).
 */
export function nodeBuiltin<K extends keyof NodeBuiltins>(id: K, what: string): NodeBuiltins[K] {
  const mod = maybeNodeBuiltin(id);
  if (mod === undefined)
    throw new StrataError(
      'E_USAGE',
      `${what} needs Node.js (${id}), which this environment (a browser?) does not have; in a browser, pass the data in memory instead`,
    );
  return mod;
}
