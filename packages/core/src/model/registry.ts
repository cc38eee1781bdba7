import { encDecFamily } from './encdec.js';
import {
  getModelFamily as getFamily,
  listModelFamilies as listFamilies,
  registerModelFamily,
} from './family.js';
import { encoderFamily, gptFamily } from './gpt.js';

let builtins = false;
function ensureBuiltins(): void {
  if (builtins) return;
  builtins = true;
  for (const family of [gptFamily, encoderFamily, encDecFamily]) {
    try {
      registerModelFamily(family);
    } catch {
      // another copy registered it already
    }
  }
}

/**
 * Looks up a model family by name (`gpt`, `encoder` and `encdec` are built in; `ngpt` comes from
 * `@strata/ngpt`).
 */
export function getModelFamily(name: string): ReturnType<typeof getFamily> {
  ensureBuiltins();
  return getFamily(name);
}

/** Names of all registered model families. */
export function listModelFamilies(): string[] {
  ensureBuiltins();
  return listFamilies();
}
