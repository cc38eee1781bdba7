import { formatChoices, StrataError } from '../errors.js';
import type { OptionsSchema } from '../options.js';
import { type AnyNormStrategy, NORM_API_VERSION, type NormStrategy } from './contract.js';
import { preLN } from './pre-ln.js';

/**
 * Strategy names known at compile time, mapped to their strategy types. Built-in packages and plugins
 * extend it by declaration merging, so `getNorm('deepnorm')` is fully typed:
 *
 * ```ts
 * declare module '@strata/core' {
 *   interface NormRegistry { 'acme/my-norm': typeof myNorm }
 * }
 * ```
 */
// biome-ignore lint/suspicious/noEmptyInterface: extended by declaration merging
export interface NormRegistry {}

/** A registered name: a key of {@link NormRegistry} or any string for strategies registered at run time. */
export type NormName = Extract<keyof NormRegistry, string>;

const KEY = Symbol.for('strata.normRegistry');
type Store = { strategies: Map<string, AnyNormStrategy>; loaders: (() => void)[] };
function store(): Store {
  const g = globalThis as unknown as Record<symbol, Store>;
  g[KEY] ??= { strategies: new Map(), loaders: [() => registerNorm(preLN)] };
  return g[KEY];
}

/**
 * Registers a strategy. A name that is already taken is refused unless `override` is set; a strategy built
 * for another contract version is refused.
 */
export function registerNorm(strategy: AnyNormStrategy, options: { override?: boolean } = {}): void {
  if (!strategy || typeof strategy !== 'object' || typeof strategy.name !== 'string' || !strategy.name) {
    throw new StrataError('E_PLUGIN', 'registerNorm: expected a strategy object with a non-empty "name"');
  }
  if (strategy.apiVersion !== NORM_API_VERSION) {
    throw new StrataError(
      'E_PLUGIN',
      `norm "${strategy.name}" was built for plugin API version ${String(strategy.apiVersion)}, but this @strata/core speaks version ${NORM_API_VERSION}`,
    );
  }
  for (const fn of ['createSite', 'parseOptions'] as const) {
    if (typeof strategy[fn] !== 'function') {
      throw new StrataError('E_PLUGIN', `norm "${strategy.name}" is missing its ${fn}() function`);
    }
  }
  if (typeof strategy.version !== 'string' || !/^\d+\.\d+\.\d+/.test(strategy.version)) {
    throw new StrataError(
      'E_PLUGIN',
      `norm "${strategy.name}" needs a semver "version", got ${JSON.stringify(strategy.version)}`,
    );
  }
  const s = store();
  const existing = s.strategies.get(strategy.name);
  if (existing && existing !== strategy && !options.override) {
    throw new StrataError(
      'E_PLUGIN',
      `a norm strategy named "${strategy.name}" (version ${existing.version}) is already registered; pass { override: true } to replace it`,
    );
  }
  s.strategies.set(strategy.name, strategy);
}

/** Removes a strategy (mostly for tests). */
export function unregisterNorm(name: string): boolean {
  return store().strategies.delete(name);
}

/**
 * Adds a function that registers strategies on first lookup, so packages of built-ins can stay free of
 * import side effects (`registerBuiltinNorms` in `@strata/norms` is the explicit alternative).
 */
export function addNormLoader(loader: () => void): void {
  store().loaders.push(loader);
}

function runLoaders(): void {
  const s = store();
  while (s.loaders.length) s.loaders.shift()!();
}

/** Looks up a strategy by name; the error for an unknown name lists every registered strategy. */
export function getNorm<N extends NormName>(name: N): NormRegistry[N];
export function getNorm(name: string): AnyNormStrategy;
export function getNorm(name: string): AnyNormStrategy {
  runLoaders();
  const s = store().strategies.get(name);
  if (!s) {
    throw new StrataError(
      'E_PLUGIN',
      `unknown norm strategy "${name}"; registered: ${formatChoices(listNorms().map((n) => n.name))}` +
        (name.includes('/') ? ` (register the plugin that defines it first: registerNorm(strategy))` : ''),
    );
  }
  return s;
}

/** All registered strategies, sorted by name. */
export function listNorms(): AnyNormStrategy[] {
  runLoaders();
  return [...store().strategies.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** A strategy with validated options: what a model config holds. */
export interface NormSelection {
  /** The strategy's registered name. */
  readonly name: string;
  /** The strategy's version when the selection was made (checkpoints record it). */
  readonly version: string;
  /** The parsed options, every default filled in. */
  readonly options: Record<string, unknown>;
}

/** Resolves and validates a `{ name, options }` pair. */
export function selectNorm(
  name: string,
  rawOptions: unknown = {},
): {
  /** The registered strategy. */
  strategy: AnyNormStrategy;
  /** Its name, version and validated options. */
  selection: NormSelection;
} {
  const strategy = getNorm(name);
  const options = strategy.parseOptions(rawOptions) as Record<string, unknown>;
  return { strategy, selection: { name: strategy.name, version: strategy.version, options } };
}

export type { NormStrategy, OptionsSchema };
