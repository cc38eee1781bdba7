import { parseArgs } from 'node:util';

/** One command-line option, declared as data (help text and parsing come from the same declaration). */
export interface OptionDef {
  /** Long name without dashes, e.g. `d-model`. */
  name: string;
  /** Value type: `integer` and `number` are validated; `boolean` also accepts `--no-<name>`. */
  type: 'string' | 'number' | 'integer' | 'boolean';
  /** One line of help text; a trailing `[default: ...]` is shown in the default column of the reference. */
  description: string;
  /** Shown in help; also the parsed value when the flag is absent (except `undefined`). */
  default?: string | number | boolean;
  /** Allowed values for strings. */
  choices?: readonly string[];
  /** Smallest allowed value for numbers (a smaller one is a usage error, exit code 2). */
  min?: number;
  /** Repeatable. */
  multiple?: boolean;
  /** Placeholder shown in help, e.g. `DIR`. */
  arg?: string;
  /** Help section. */
  group?: string;
  /** One-letter alias, e.g. `h` for `-h`. */
  short?: string;
}

/** A command, declared as data so `--help` never loads tfjs. */
export interface CommandDef {
  /** The command word, e.g. `train`. */
  name: string;
  /** One line for `strata --help` and the reference's heading. */
  summary: string;
  /** The synopsis line of `--help`. */
  usage: string;
  /** Longer help text, printed under the usage line. */
  description?: string;
  /** Every flag the command accepts, in help order. */
  options: OptionDef[];
  /** Example command lines, printed at the end of `--help`. */
  examples?: string[];
}

/** An error in how the command was invoked (printed as one line, exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parsed flag values by long name. */
export type ParsedArgs = Record<string, string | number | boolean | string[] | undefined>;

/** The flags each parse result got from the command line (as opposed to defaults). */
const explicit = new WeakMap<ParsedArgs, ReadonlySet<string>>();

/**
 * The flags the user actually typed for a result of {@link parseCommandArgs} (defaults excluded), or
 * `undefined` for an object that did not come from it.
 */
export function explicitFlags(args: ParsedArgs): ReadonlySet<string> | undefined {
  return explicit.get(args);
}

/** Parses argv for `cmd`; numbers are validated and errors name the flag. */
export function parseCommandArgs(
  cmd: CommandDef,
  argv: string[],
  settings: { defaults?: boolean } = {},
): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const o of cmd.options) {
    options[o.name] = {
      type: o.type === 'boolean' ? 'boolean' : 'string',
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short ? { short: o.short } : {}),
    };
    if (o.type === 'boolean') options[`no-${o.name}`] = { type: 'boolean' };
  }
  // A string value that is itself a list of flags (`--grow "--width 2 --noise 0.01"`) would read as a flag:
  // one that holds whitespace is the option's value.
  const words = argv.flatMap((w, i) =>
    i > 0 && /\s/.test(w) && w.startsWith('-') && options[argv[i - 1]!.replace(/^--/, '')]?.type === 'string'
      ? []
      : i + 1 < argv.length &&
          /\s/.test(argv[i + 1]!) &&
          argv[i + 1]!.startsWith('-') &&
          w.startsWith('--') &&
          options[w.slice(2)]?.type === 'string'
        ? [`${w}=${argv[i + 1]}`]
        : [w],
  );
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: words, options, strict: true, allowPositionals: false }));
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(`${msg} (see \`strata ${cmd.name} --help\`)`);
  }
  const out: ParsedArgs = {};
  const given = new Set<string>();
  explicit.set(out, given);
  for (const o of cmd.options) {
    let v = values[o.name];
    if (o.type === 'boolean' && values[`no-${o.name}`]) v = false;
    if (v === undefined) {
      if (settings.defaults !== false) out[o.name] = o.default;
      continue;
    }
    given.add(o.name);
    if (o.multiple) {
      out[o.name] = v as string[];
      continue;
    }
    if (o.type === 'number' || o.type === 'integer') {
      const n = Number(v);
      if (String(v).trim() === '' || !Number.isFinite(n) || (o.type === 'integer' && !Number.isInteger(n))) {
        throw new UsageError(
          `--${o.name} must be ${o.type === 'integer' ? 'an integer' : 'a number'}, got "${String(v)}"`,
        );
      }
      if (o.min !== undefined && n < o.min)
        throw new UsageError(`--${o.name} must be at least ${o.min}, got ${String(v)}`);
      out[o.name] = n;
    } else if (o.choices && !o.choices.includes(v as string)) {
      throw new UsageError(`--${o.name} must be one of ${o.choices.join(', ')}; got "${String(v)}"`);
    } else out[o.name] = v as string | boolean;
  }
  return out;
}

/** Renders `--help` for a command. */
export function formatHelp(cmd: CommandDef): string {
  const lines = [`strata ${cmd.name} — ${cmd.summary}`, '', `Usage: ${cmd.usage}`];
  if (cmd.description) lines.push('', cmd.description);
  const groups = new Map<string, OptionDef[]>();
  for (const o of cmd.options) {
    const g = o.group ?? 'Options';
    groups.set(g, [...(groups.get(g) ?? []), o]);
  }
  for (const [g, opts] of groups) {
    lines.push('', `${g}:`);
    for (const o of opts) {
      const flag = `--${o.name}${o.type === 'boolean' ? '' : ` ${o.arg ?? (o.type === 'string' ? 'VALUE' : 'N')}`}${o.multiple ? ' (repeatable)' : ''}`;
      const def = o.default !== undefined && o.default !== false ? ` [default: ${String(o.default)}]` : '';
      const choices = o.choices ? ` (${o.choices.join('|')})` : '';
      lines.push(`  ${flag.padEnd(30)} ${o.description}${choices}${def}`);
    }
  }
  if (cmd.examples?.length) lines.push('', 'Examples:', ...cmd.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** Splits a flag string (`--norm deepnorm --lr "3e-3"`) into argv words, honoring simple quotes. */
export function splitWords(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}
