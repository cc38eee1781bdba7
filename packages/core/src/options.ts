/**
 * A tiny declarative schema for plugin options: it validates JSON options, coerces CLI strings
 * (`--norm-opt alpha=2`), documents every option, and infers the options type for `defineNorm`.
 */
import { formatChoices, StrataError } from './errors.js';

interface OptionBase<T> {
  /** One line for `strata norms`, `--help` and the docs. */
  readonly description: string;
  /** The value when the option is not given. */
  readonly default: T;
}
/** A numeric option. */
export interface NumberOption extends OptionBase<number> {
  /** Discriminant: a number. */
  readonly type: 'number';
  /** Inclusive lower bound. */
  readonly min?: number;
  /** Inclusive upper bound. */
  readonly max?: number;
  /** Exclusive lower bound. */
  readonly gt?: number;
  /** Whether only integers are accepted. */
  readonly integer?: boolean;
}
/** A boolean option. */
export interface BooleanOption extends OptionBase<boolean> {
  /** Discriminant: a boolean (`true`/`false`, also as strings from the command line). */
  readonly type: 'boolean';
}
/** One of a fixed set of strings. */
export interface EnumOption<V extends string = string> extends OptionBase<V> {
  /** Discriminant: one of `values`. */
  readonly type: 'enum';
  /** The accepted strings. */
  readonly values: readonly V[];
}
/** A numeric option that may be left unset (`null`: derived, e.g. DeepNorm's α from depth). */
export interface OptionalNumberOption extends OptionBase<number | null> {
  /** Discriminant: a number or `null` (`null`, `auto` from the command line). */
  readonly type: 'number?';
  /** Inclusive lower bound. */
  readonly min?: number;
  /** Exclusive lower bound. */
  readonly gt?: number;
}
/** Any option. */
export type OptionSpec = NumberOption | BooleanOption | EnumOption | OptionalNumberOption;
/** A schema: option name → spec. */
export type OptionsSchema = Readonly<Record<string, OptionSpec>>;

/** The options object a schema describes. */
export type OptionsOf<S extends OptionsSchema> = {
  -readonly [K in keyof S]: S[K] extends EnumOption<infer V> ? V : S[K]['default'];
};

/** Helpers to declare options with literal types kept. */
export const opt = {
  /** A numeric option with bounds. */
  number: (o: Omit<NumberOption, 'type'>): NumberOption => ({ type: 'number', ...o }),
  /** A number that may be left unset (`null`: derived from other settings). */
  optionalNumber: (
    o: Omit<OptionalNumberOption, 'type' | 'default'> & { default?: null },
  ): OptionalNumberOption => ({
    type: 'number?',
    default: null,
    ...o,
  }),
  /** A boolean option. */
  boolean: (o: Omit<BooleanOption, 'type'>): BooleanOption => ({ type: 'boolean', ...o }),
  /** One of a fixed set of strings. */
  enum: <const V extends string>(
    values: readonly V[],
    o: { description: string; default: NoInfer<V> },
  ): EnumOption<V> => ({
    type: 'enum',
    values,
    ...o,
  }),
};

/**
 * Validates `raw` (an object, possibly with string values from the command line) against `schema`,
 * fills defaults, and returns a new options object. Errors name the owner (`where`) and the field.
 */
export function parseOptions<S extends OptionsSchema>(schema: S, raw: unknown, where: string): OptionsOf<S> {
  if (raw == null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new StrataError('E_CONFIG', `${where}: options must be an object, got ${JSON.stringify(raw)}`);
  }
  const input = raw as Record<string, unknown>;
  const keys = Object.keys(schema);
  for (const k of Object.keys(input)) {
    if (!keys.includes(k)) {
      throw new StrataError(
        'E_CONFIG',
        `${where}: unknown option "${k}"; valid options: ${keys.length ? formatChoices(keys) : '(none)'}`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(schema)) {
    const v = input[k];
    out[k] = v === undefined ? spec.default : coerce(spec, v, `${where}: option "${k}"`);
  }
  return out as OptionsOf<S>;
}

function coerce(spec: OptionSpec, v: unknown, where: string): unknown {
  switch (spec.type) {
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (v === 'true' || v === '1') return true;
      if (v === 'false' || v === '0') return false;
      throw new StrataError('E_CONFIG', `${where} must be true or false, got ${JSON.stringify(v)}`);
    case 'enum':
      if (typeof v === 'string' && spec.values.includes(v)) return v;
      throw new StrataError(
        'E_CONFIG',
        `${where} must be ${formatChoices(spec.values)}, got ${JSON.stringify(v)}`,
      );
    case 'number':
    case 'number?': {
      if (spec.type === 'number?' && (v === null || v === 'null' || v === 'auto')) return null;
      const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
      if (!Number.isFinite(n))
        throw new StrataError('E_CONFIG', `${where} must be a finite number, got ${JSON.stringify(v)}`);
      if (spec.type === 'number' && spec.integer && !Number.isInteger(n)) {
        throw new StrataError('E_CONFIG', `${where} must be an integer, got ${n}`);
      }
      if (spec.min !== undefined && n < spec.min)
        throw new StrataError('E_CONFIG', `${where} must be >= ${spec.min}, got ${n}`);
      if (spec.type === 'number' && spec.max !== undefined && n > spec.max) {
        throw new StrataError('E_CONFIG', `${where} must be <= ${spec.max}, got ${n}`);
      }
      if (spec.gt !== undefined && !(n > spec.gt))
        throw new StrataError('E_CONFIG', `${where} must be > ${spec.gt}, got ${n}`);
      return n;
    }
  }
}

/** Parses `key=value` strings (from repeated CLI flags) into a raw options object. */
export function parseKeyValues(pairs: readonly string[], where: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw new StrataError('E_USAGE', `${where}: expected key=value, got "${p}"`);
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

/** One line per option, for `--help` and docs. */
export function describeOptions(schema: OptionsSchema): string[] {
  return Object.entries(schema).map(([k, s]) => {
    const kind = s.type === 'enum' ? s.values.join('|') : s.type === 'number?' ? 'number|auto' : s.type;
    return `${k} (${kind}, default ${s.default === null ? 'auto' : String(s.default)}): ${s.description}`;
  });
}
