import { describeOptions, listNorms } from '@strata/core';
import type { ParsedArgs } from '../args.js';
import { loadPlugins, registerBuiltins } from '../setup.js';

/** `strata norms`: the registered strategies and their options. */
export async function run(args: ParsedArgs): Promise<number> {
  registerBuiltins();
  await loadPlugins((args.plugin as string[] | undefined) ?? []);
  const norms = listNorms();
  if (args.json) {
    process.stdout.write(
      `${JSON.stringify(norms.map((n) => ({ name: n.name, version: n.version, description: n.description, formula: n.formula, options: n.options })))}\n`,
    );
    return 0;
  }
  for (const n of norms) {
    process.stdout.write(`${n.name}@${n.version}  ${n.description}\n`);
    if (n.formula) process.stdout.write(`    ${n.formula}\n`);
    for (const line of describeOptions(n.options)) process.stdout.write(`    --norm-opt ${line}\n`);
  }
  return 0;
}
