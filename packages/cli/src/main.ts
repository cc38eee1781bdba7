import { readFileSync } from 'node:fs';
import { type CommandDef, formatHelp, type ParsedArgs, parseCommandArgs, UsageError } from './args.js';
import { COMMANDS } from './specs.js';
import { guardOutputStreams } from './stop.js';

type Runner = (args: ParsedArgs) => Promise<number | undefined>;

/** Command runners, imported only when the command runs (so `--help` never loads tfjs). */
const RUNNERS: Record<string, () => Promise<{ run: Runner }>> = {
  train: () => import('./commands/train.js'),
  compare: () => import('./commands/compare.js'),
  grow: () => import('./commands/grow.js'),
  export: () => import('./commands/export.js'),
  import: () => import('./commands/import.js'),
  eval: () => import('./commands/eval.js'),
  generate: () => import('./commands/generate.js'),
  info: () => import('./commands/info.js'),
  norms: () => import('./commands/norms.js'),
  bench: () => import('./commands/bench.js'),
  tokenizer: () => import('./commands/tokenizer.js'),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function mainHelp(commands: CommandDef[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'strata — build, train and grow very deep and normalized Transformers on TensorFlow.js',
    '',
    'Usage: strata <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width + 2)}${c.summary}`),
    '',
    'Run `strata <command> --help` for its options.',
    'Quick start: strata train && strata generate --checkpoint <the run directory it prints>',
  ].join('\n');
}

/**
 * Runs the CLI and returns the process exit code. User mistakes (`StrataError`, {@link UsageError}) print one
 * line with no stack trace; anything else is a bug and prints its stack.
 */
export async function main(argv: string[]): Promise<number> {
  const commands = COMMANDS;
  guardOutputStreams();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp(commands)}\n`);
    return name ? 0 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === '__compare-job') {
    // Internal: one run of a `strata compare` grid, in its own process (see commands/compare.ts).
    try {
      return await (await import('./commands/compare.js')).runJob(rest[0] ?? '');
    } catch (e) {
      return reportError(e);
    }
  }
  const spec = commands.find((c) => c.name === name);
  if (!spec) {
    process.stderr.write(
      `error: unknown command "${name}"; commands: ${commands.map((c) => c.name).join(', ')}\n`,
    );
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${formatHelp(spec)}\n`);
    return 0;
  }
  try {
    if (name === 'tokenizer' && rest[0] !== 'train')
      throw new UsageError(
        `strata tokenizer: the action is train (strata tokenizer train --vocab-size N --out FILE)`,
      );
    const args = parseCommandArgs(spec, name === 'tokenizer' ? rest.slice(1) : rest);
    const loader = RUNNERS[name]!;
    const mod = await loader();
    return (await mod.run(args)) ?? 0;
  } catch (e) {
    return reportError(e);
  }
}

/** Prints an error the way users should see it and returns the exit code. */
export function reportError(e: unknown): number {
  const err = e as { name?: string; code?: string; message?: string; stack?: string };
  if (err?.name === 'UsageError') {
    process.stderr.write(`error: ${err.message}\n`);
    return 2;
  }
  if (err?.name === 'StrataError') {
    // Library errors speak of code (registerNorm); on the command line the remedy is --plugin.
    const message = (err.message ?? '').replace(
      /\(register the plugin that defines it first: [^)]*\)\)$/,
      '(load the plugin that defines it with --plugin <module>)',
    );
    process.stderr.write(`error [${err.code}]: ${message}\n`);
    return 1;
  }
  process.stderr.write(`internal error (please report): ${err?.stack ?? String(e)}\n`);
  return 70;
}

export { UsageError };
