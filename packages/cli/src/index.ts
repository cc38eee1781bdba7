/**
 * `@strata/cli`: the `strata` command. Its programmatic surface is small: {@link main} runs the CLI with an
 * argv array and returns the exit code (tests and wrappers use it); {@link compare} runs a fair comparison
 * (variants × learning rates × seeds) from code, and the analysis and plot helpers behind its report are
 * exported for runs made elsewhere.
 *
 * @packageDocumentation
 */

export type { CommandDef, OptionDef, ParsedArgs } from './args.js';
export {
  analyzeSweeps,
  bandOf,
  type CompareOptions,
  type CompareSpec,
  compare,
  defaultLrGrid,
  extensionLr,
  flopsAt,
  markStalled,
  type RunSummary,
  type Variant,
  type VariantSweep,
} from './commands/compare.js';
export type { GrowthRecord } from './commands/compare-growth.js';
export { main, reportError, UsageError } from './main.js';
export {
  type BandPoint,
  type BandSeries,
  bandChart,
  type ChartOptions,
  emaPoints,
  informativeRange,
  lineChart,
  PALETTE,
  renderSVG,
  type SweepCell,
  sensitivityChart,
  writePlot,
} from './plots.js';
export { COMMANDS } from './specs.js';
