/**
 * Module resolution hooks (registered with `module.register` by plugin-resolution.ts): imports of the packages
 * the CLI shares with its plugins resolve to the CLI's own copies, so that a plugin installed next to a
 * project and a CLI installed globally run on one tfjs engine and one Strata registry.
 */
import type { InitializeHook, ResolveHook } from 'node:module';

/** What the CLI passes to the hooks thread. */
export interface SharedResolution {
  /** A module URL inside the CLI: shared packages are resolved as if imported from there. */
  parentURL: string;
  /** Package names whose imports (and sub-path imports) are redirected. */
  packages: string[];
}

let shared: SharedResolution | undefined;

/** Receives the CLI's location and the shared package names. */
export const initialize: InitializeHook<SharedResolution> = (data) => {
  shared = data;
};

function isShared(specifier: string, packages: readonly string[]): boolean {
  return packages.some((p) => specifier === p || specifier.startsWith(`${p}/`));
}

/**
 * Resolves a shared package from the CLI's location; anything else, or a shared package the CLI cannot
 * resolve itself (an optional one it was installed without), resolves as usual.
 */
export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  if (shared && context.parentURL && isShared(specifier, shared.packages)) {
    try {
      return await nextResolve(specifier, { ...context, parentURL: shared.parentURL });
    } catch {
      // not resolvable from the CLI: fall through to the importer's own resolution
    }
  }
  return nextResolve(specifier, context);
};
