import { type AnyNormStrategy, preLN, registerNorm } from '@strata/core';
import { admin } from './strategies/admin.js';
import { deepNorm } from './strategies/deepnorm.js';
import { layerScale } from './strategies/layerscale.js';
import { mixLN } from './strategies/mix-ln.js';
import { postLN } from './strategies/post-ln.js';
import { reZero } from './strategies/rezero.js';
import { sandwichLN } from './strategies/sandwich-ln.js';
import { subLN } from './strategies/subln.js';

declare module '@strata/core' {
  interface NormRegistry {
    'pre-ln': typeof preLN;
    'post-ln': typeof postLN;
    deepnorm: typeof deepNorm;
    subln: typeof subLN;
    'sandwich-ln': typeof sandwichLN;
    rezero: typeof reZero;
    layerscale: typeof layerScale;
    admin: typeof admin;
    'mix-ln': typeof mixLN;
  }
}

/**
 * Every strategy this package ships, plus core's `pre-ln` (re-exported for completeness): Pre-LN, Post-LN,
 * DeepNorm, SubLN, Sandwich-LN, ReZero, LayerScale, Admin and Mix-LN.
 */
export const builtinNorms = Object.freeze([
  preLN,
  postLN,
  deepNorm,
  subLN,
  sandwichLN,
  reZero,
  layerScale,
  admin,
  mixLN,
] as const) satisfies readonly AnyNormStrategy[];

/**
 * Registers {@link builtinNorms} with `@strata/core`'s norm registry. Explicit (importing this package has no
 * side effects) and idempotent: registering the same strategy object twice is a no-op. A different strategy
 * already registered under a built-in name is an error unless `override` is set.
 */
export function registerBuiltinNorms(options: { override?: boolean } = {}): void {
  for (const s of builtinNorms) registerNorm(s, options);
}
