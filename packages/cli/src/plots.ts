/**
 * Plots of comparisons, drawn with Vega-Lite and rendered to SVG in Node (no browser, no canvas).
 *
 * Why Vega-Lite rather than more hand-written SVG: bands, log and SI-formatted axes, legends that do not collide
 * with the data and colour-blind-safe palettes come from a maintained grammar; every plot is written next to its
 * spec (`NAME.vl.json`, data inline — restyle it in the Vega editor or any Vega-Lite tool) and its data
 * (`NAME.csv`), so a reader can check a figure or redraw it. The cost is install weight in the CLI only
 * (`vega` + `vega-lite`, pure JS); the libraries keep core's dependency-free `lineChartSVG`.
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/**
 * Okabe & Ito's colour-blind-safe palette (Okabe, Ito 2008, "Color Universal Design"), without its yellow,
 * which is unreadable on white. Variants also differ by dash pattern, so they stay apart in grey-scale print.
 */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const DASHES = [
  [1, 0],
  [6, 3],
  [2, 2],
  [8, 3, 2, 3],
  [4, 4],
  [1, 3],
  [10, 2],
];

/** Exponential moving average of `[x, y]` points (`m ← (1 − a)·m + a·y`, starting at the first y). */
export function emaPoints(points: readonly (readonly [number, number])[], a = 0.1): [number, number][] {
  let m = Number.NaN;
  return points.map(([x, y]) => {
    m = Number.isNaN(m) ? y : (1 - a) * m + a * y;
    return [x, m];
  });
}

/** One point of a mean-with-band curve: the mean over seeds and the band (min–max over seeds). */
export interface BandPoint {
  /** Position on the x axis (step, tokens, FLOPs or seconds). */
  x: number;
  /** Mean over the seeds' runs at this x. */
  mean: number;
  /** Lowest value over the runs (bottom of the band). */
  lo: number;
  /** Highest value over the runs (top of the band). */
  hi: number;
  /** Runs the point averages (a run that diverged early drops out of later points). */
  n: number;
}

/** A curve with a band, one per variant. */
export interface BandSeries {
  /** Variant label, shown in the legend. */
  label: string;
  /** The curve's points, by ascending x. */
  points: BandPoint[];
}

/** Axis and annotation options shared by the charts. */
export interface ChartOptions {
  /** Chart title. */
  title: string;
  /** Line under the title (omitted when absent). */
  subtitle?: string;
  /** Title of the x axis. */
  xLabel: string;
  /** Title of the y axis. */
  yLabel: string;
  /** Logarithmic x axis (default linear). */
  logX?: boolean;
  /** Logarithmic y axis (default linear). */
  logY?: boolean;
  /** d3-format of the x ticks (default `~s`: SI prefixes, 1k, 2.5M, 1G). */
  xFormat?: string;
  /** d3-format of the y ticks (default `~r`; on a log axis, decimals for 0.01–1000 and powers of ten outside). */
  yFormat?: string;
  /** Horizontal reference lines with a label (e.g. the uniform loss, a target). */
  hLines?: {
    /** Height of the line, in data units. */
    y: number;
    /** Text written above the line. */
    label: string;
  }[];
  /** Vertical markers (e.g. a growth phase boundary). */
  vLines?: {
    /** Position of the marker, in data units. */
    x: number;
    /** Text written along the marker. */
    label: string;
  }[];
  /** Fixed y range; values outside are clipped. Default: {@link informativeRange} of the data. */
  yDomain?: [number, number];
  /** Plot width in pixels (default 560). */
  width?: number;
  /** Plot height in pixels (default 320). */
  height?: number;
}

/** Category order and styling shared by every chart of one report, so a variant keeps its colour everywhere. */
function categoryScales(labels: readonly string[]) {
  return {
    color: {
      field: 'variant',
      type: 'nominal' as const,
      title: null,
      sort: [...labels],
      scale: { domain: [...labels], range: labels.map((_, i) => PALETTE[i % PALETTE.length]!) },
      legend: { orient: 'right' as const, labelLimit: 260, symbolType: 'stroke', symbolStrokeWidth: 2.5 },
    },
    strokeDash: {
      field: 'variant',
      type: 'nominal' as const,
      title: null,
      sort: [...labels],
      legend: { orient: 'right' as const, labelLimit: 260, symbolType: 'stroke', symbolStrokeWidth: 2.5 },
      scale: { domain: [...labels], range: labels.map((_, i) => DASHES[i % DASHES.length]!) },
    },
  };
}

/**
 * The y range that shows what differs between curves: from just below the lowest band to the highest mean once
 * the first 5 % of the x range has passed (so the initial loss does not squeeze the end of training into the
 * bottom of the plot), widened by 5 %.
 */
export function informativeRange(series: readonly BandSeries[]): [number, number] | undefined {
  const xs = series.flatMap((s) => s.points.map((p) => p.x)).filter(Number.isFinite);
  if (!xs.length) return undefined;
  const x0 = Math.min(...xs);
  const cut = x0 + 0.05 * (Math.max(...xs) - x0);
  const lows = series.flatMap((s) => s.points.map((p) => p.lo)).filter(Number.isFinite);
  const highs = series
    .flatMap((s) => s.points.filter((p) => p.x >= cut).map((p) => p.mean))
    .filter(Number.isFinite);
  if (!lows.length || !highs.length) return undefined;
  const lo = Math.min(...lows);
  const hi = Math.max(...highs, lo);
  const pad = 0.05 * Math.max(hi - lo, Math.abs(hi) * 1e-3, 1e-9);
  return [lo - pad, hi + pad];
}

function refLayers(o: ChartOptions, yDomain?: [number, number]) {
  const layers: Record<string, unknown>[] = [];
  // a reference line outside a fixed y range would be drawn (and labelled) outside the plot
  const hLines = (o.hLines ?? []).filter((h) => !yDomain || (h.y >= yDomain[0] && h.y <= yDomain[1]));
  // The same y scale as the data layers: a reference line must not widen the range (e.g. back to zero).
  const yRef = { field: 'y', type: 'quantitative' as const, scale: axes(o, yDomain).y.scale };
  if (hLines.length) {
    const values = hLines.map((h) => ({ y: h.y, label: h.label }));
    layers.push(
      {
        data: { values },
        mark: { type: 'rule', color: '#777', strokeDash: [3, 3] },
        encoding: { y: yRef },
      },
      {
        data: { values },
        mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, dy: -2, color: '#555', fontSize: 10 },
        encoding: { y: yRef, x: { value: 0 }, text: { field: 'label' } },
      },
    );
  }
  if (o.vLines?.length) {
    const values = o.vLines.map((v) => ({ x: v.x, label: v.label }));
    layers.push(
      {
        data: { values },
        mark: { type: 'rule', color: '#777', strokeDash: [2, 4] },
        encoding: { x: { field: 'x', type: 'quantitative' } },
      },
      {
        data: { values },
        mark: {
          type: 'text',
          angle: 270,
          align: 'right',
          baseline: 'bottom',
          dy: -3,
          color: '#555',
          fontSize: 10,
        },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
      },
    );
  }
  return layers;
}

function axes(o: ChartOptions, yDomain: [number, number] | undefined) {
  const x = {
    field: 'x',
    type: 'quantitative' as const,
    title: o.xLabel,
    scale: o.logX ? { type: 'log' } : { type: 'linear', nice: true, zero: false },
    axis: { format: o.xFormat ?? '~s', labelOverlap: true, grid: true },
  };
  const yScale: Record<string, unknown> = o.logY ? { type: 'log' } : { type: 'linear', zero: false };
  if (yDomain) yScale.domain = yDomain;
  const y = {
    type: 'quantitative' as const,
    title: o.yLabel,
    scale: yScale,
    axis:
      o.logY && !o.yFormat
        ? {
            // decimals for 0.01–1000, powers of ten outside (never "0.000001" next to "1e-7")
            labelExpr:
              "datum.value >= 0.01 && datum.value < 1000 ? format(datum.value, '~g') : format(datum.value, '.0e')",
            labelOverlap: true,
            grid: true,
          }
        : { format: o.yFormat ?? '~r', labelOverlap: true, grid: true },
  };
  return { x, y };
}

function frame(
  o: ChartOptions,
  layer: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.title, ...(o.subtitle ? { subtitle: o.subtitle } : {}), anchor: 'start' },
    width: o.width ?? 560,
    height: o.height ?? 320,
    config: {
      font: 'DejaVu Sans, Helvetica, Arial, sans-serif',
      view: { stroke: '#ccc' },
      axis: { labelFontSize: 11, titleFontSize: 12 },
    },
    layer,
    ...extra,
  } as unknown as TopLevelSpec;
}

/**
 * Mean line with a min–max band per variant (validation loss against steps, tokens, FLOPs or seconds).
 * Data rows: `{ variant, x, mean, lo, hi, n }`.
 */
export function bandChart(series: readonly BandSeries[], o: ChartOptions): TopLevelSpec {
  const labels = series.map((s) => s.label);
  const values = series.flatMap((s) =>
    s.points.filter((p) => Number.isFinite(p.mean)).map((p) => ({ variant: s.label, ...p })),
  );
  const yDomain = o.yDomain ?? (o.logY ? undefined : informativeRange(series));
  const { x, y } = axes(o, yDomain);
  const cat = categoryScales(labels);
  return frame(o, [
    {
      data: { values },
      layer: [
        {
          mark: { type: 'area', opacity: 0.18, clip: true },
          encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: cat.color },
        },
        {
          mark: { type: 'line', strokeWidth: 1.8, clip: true },
          encoding: { x, y: { ...y, field: 'mean' }, color: cat.color, strokeDash: cat.strokeDash },
        },
      ],
    },
    ...refLayers(o, yDomain),
  ]);
}

/** One (variant, learning rate) cell of a sweep, for {@link sensitivityChart}. */
export interface SweepCell {
  /** Variant label. */
  variant: string;
  /** Learning rate of the cell. */
  lr: number;
  /** Mean final loss over the seeds that finished; NaN when none did. */
  mean: number;
  /** Lowest final loss over the seeds that finished; NaN when none did. */
  lo: number;
  /** Highest final loss over the seeds that finished; NaN when none did. */
  hi: number;
  /** Runs in the cell (one per seed that has a result). */
  runs: number;
  /** Runs that diverged (non-finite loss). */
  diverged: number;
  /** Runs that stalled (finished closer to the uniform loss than to the best run). */
  stalled: number;
}

/**
 * Learning-rate sensitivity: final validation loss against the learning rate (log x), one line per variant,
 * mean with min–max error bars over seeds; a cell where any seed diverged is drawn as a cross at the top edge
 * (ln V, labelled with the count), so failed runs are shown, not dropped. Without a failed cell the y range ends
 * just above the highest bar. The picture DeepNet (Fig. 1) and most
 * normalization papers use to show a stable range.
 */
export function sensitivityChart(
  cells: readonly SweepCell[],
  o: ChartOptions & { ceiling: number },
): TopLevelSpec {
  const labels = [...new Set(cells.map((c) => c.variant))];
  const cat = categoryScales(labels);
  const finite = cells.filter((c) => Number.isFinite(c.mean));
  const lows = finite.map((c) => c.lo);
  const yLo = lows.length ? Math.min(...lows) : 0;
  // The y range ends at ln V only when a cross must be drawn there; otherwise at the highest bar, so that the
  // differences between rates that train are not squeezed into the bottom of the plot.
  const anyFailed = cells.some((c) => c.runs > 0 && (c.diverged > 0 || !Number.isFinite(c.mean)));
  const his = finite.map((c) => c.hi);
  const yHi = his.length ? Math.max(...his) : o.ceiling;
  const top = anyFailed ? o.ceiling : Math.min(o.ceiling, yHi + 0.05 * Math.max(yHi - yLo, 1e-6));
  const yDomain: [number, number] = o.yDomain ?? [yLo - 0.05 * Math.max(top - yLo, 1e-6), top];
  const { x, y } = axes({ ...o, xFormat: o.xFormat ?? '.1e' }, yDomain);
  // One row per cell (the CSV holds them all); failed cells are drawn from the same rows by a filter.
  const values = cells.map((c) => ({
    variant: c.variant,
    x: c.lr,
    mean: Number.isFinite(c.mean) ? Math.min(c.mean, top) : null,
    lo: Number.isFinite(c.lo) ? Math.min(c.lo, top) : null,
    hi: Number.isFinite(c.hi) ? Math.min(c.hi, top) : null,
    runs: c.runs,
    diverged: c.diverged,
    stalled: c.stalled,
    label: c.diverged > 0 ? `${c.diverged}/${c.runs} diverged` : '',
  }));
  const ok = { filter: 'isValid(datum.mean)' };
  const bad = { filter: 'datum.runs > 0 && (datum.diverged > 0 || !isValid(datum.mean))' };
  return frame(o, [
    {
      data: { values },
      layer: [
        {
          transform: [ok],
          mark: { type: 'rule', clip: true },
          encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color: cat.color },
        },
        {
          transform: [ok],
          mark: { type: 'line', point: { size: 40 }, clip: true },
          encoding: { x, y: { ...y, field: 'mean' }, color: cat.color, strokeDash: cat.strokeDash },
        },
        {
          transform: [bad],
          mark: { type: 'point', shape: 'cross', size: 90, filled: true },
          encoding: { x, y: { ...y, datum: top }, color: cat.color },
        },
        {
          transform: [bad],
          mark: { type: 'text', dy: 12, fontSize: 9, color: '#555' },
          encoding: { x, y: { ...y, datum: top }, text: { field: 'label' } },
        },
      ],
    },
    ...refLayers(o, yDomain),
  ]);
}

/** Plain lines (one per label), e.g. gradient norm per block. Data rows: `{ variant, x, y }`. */
export function lineChart(
  series: readonly { label: string; points: readonly [number, number][] }[],
  o: ChartOptions & { facet?: readonly { label: string; series: typeof series }[] },
): TopLevelSpec {
  const labels = [...new Set(series.map((s) => s.label))];
  const values = series.flatMap((s) =>
    s.points
      .filter(([, v]) => Number.isFinite(v) && (!o.logY || v > 0))
      .map(([x, v]) => ({ variant: s.label, x, y: v })),
  );
  const { x, y } = axes(o, o.yDomain);
  const cat = categoryScales(labels);
  return frame(o, [
    {
      data: { values },
      mark: { type: 'line', point: { size: 18 }, strokeWidth: 1.6, clip: true },
      encoding: { x, y: { ...y, field: 'y' }, color: cat.color, strokeDash: cat.strokeDash },
    },
    ...refLayers(o, o.yDomain),
  ]);
}

/** Renders a Vega-Lite spec to an SVG string (headless, no canvas). */
export async function renderSVG(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function csvOf(spec: TopLevelSpec): string {
  // The plotted data: the first inline data set (reference lines and labels are not data).
  let rows: Record<string, unknown>[] | undefined;
  const walk = (node: unknown) => {
    if (rows || !node || typeof node !== 'object') return;
    const n = node as { data?: { values?: Record<string, unknown>[] }; layer?: unknown[] };
    if (n.data?.values) rows = n.data.values;
    for (const l of n.layer ?? []) walk(l);
  };
  walk(spec);
  const data = rows ?? [];
  const cols = [...new Set(data.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => {
    const s = v === undefined || v === null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[cols.join(','), ...data.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n')}\n`;
}

/**
 * Writes `DIR/NAME.svg`, its Vega-Lite spec `DIR/NAME.vl.json` (data inline) and its data `DIR/NAME.csv`.
 * @returns the SVG's file name
 */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<string> {
  writeFileSync(join(dir, `${name}.svg`), await renderSVG(spec));
  writeFileSync(join(dir, `${name}.vl.json`), `${JSON.stringify(spec, null, 1)}\n`);
  writeFileSync(join(dir, `${name}.csv`), csvOf(spec));
  return `${name}.svg`;
}

/**
 * The loss plot of one training run (`loss.svg` in the run folder): the raw training loss (thin, light), its
 * moving average, and the validation loss at its evaluation points; the y range zooms past the first steps; a
 * schedule phase that starts mid-run (e.g. after growth) is marked.
 */
export function runLossChart(
  run: {
    train: readonly [number, number][];
    val: readonly [number, number][];
    /** Steps at which a new schedule phase starts. */
    phases?: readonly number[];
    /** Vocabulary size, for the uniform-loss reference line. */
    vocabSize?: number;
  },
  o: { title: string; subtitle?: string },
): TopLevelSpec {
  const ema = emaPoints(run.train);
  const rows = [
    ...run.train.map(([x, y]) => ({ series: 'training loss', x, y })),
    ...ema.map(([x, y]) => ({ series: 'training loss (EMA 0.1)', x, y })),
    ...run.val.map(([x, y]) => ({ series: 'validation loss', x, y })),
  ].filter((r) => Number.isFinite(r.y));
  const domain = informativeRange([
    { label: 'ema', points: ema.map(([x, y]) => ({ x, mean: y, lo: y, hi: y, n: 1 })) },
    { label: 'val', points: run.val.map(([x, y]) => ({ x, mean: y, lo: y, hi: y, n: 1 })) },
  ]);
  const chance = run.vocabSize ? Math.log(run.vocabSize) : undefined;
  const opts: ChartOptions = {
    title: o.title,
    ...(o.subtitle ? { subtitle: o.subtitle } : {}),
    xLabel: 'optimizer step',
    yLabel: 'cross-entropy (nats/token)',
    ...(chance !== undefined ? { hLines: [{ y: chance, label: `ln ${run.vocabSize} (uniform)` }] } : {}),
    ...(run.phases?.length
      ? { vLines: run.phases.map((s) => ({ x: s, label: `new phase at step ${s}` })) }
      : {}),
    ...(domain ? { yDomain: domain } : {}),
  };
  const { x, y } = axes(opts, domain);
  const labels = ['training loss', 'training loss (EMA 0.1)', 'validation loss'];
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain: labels, range: ['#9ecae1', '#0072B2', '#D55E00'] },
    legend: { orient: 'top-right' as const, fillColor: 'white', labelLimit: 300, symbolType: 'stroke' },
  };
  return frame(opts, [
    {
      data: { values: rows },
      layer: [
        {
          transform: [{ filter: "datum.series === 'training loss'" }],
          mark: { type: 'line', strokeWidth: 0.8, clip: true },
          encoding: { x, y: { ...y, field: 'y' }, color },
        },
        {
          transform: [{ filter: "datum.series === 'training loss (EMA 0.1)'" }],
          mark: { type: 'line', strokeWidth: 2, clip: true },
          encoding: { x, y: { ...y, field: 'y' }, color },
        },
        {
          transform: [{ filter: "datum.series === 'validation loss'" }],
          mark: { type: 'line', point: { size: 30 }, strokeWidth: 1.5, clip: true },
          encoding: { x, y: { ...y, field: 'y' }, color },
        },
      ],
    },
    ...refLayers(opts, domain),
  ]);
}
