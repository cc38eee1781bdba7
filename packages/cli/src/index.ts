/**
 * `@strata/cli`: the `strata` command. Its programmatic surface is small: {@link main} runs the CLI with an
 * argv array and returns the exit code (tests and wrappers use it).
 *
 * @packageDocumentation
 */

export type { CommandDef, OptionDef } from './args.js';
export { main, reportError, UsageError } from './main.js';
export { COMMANDS } from './specs.js';
