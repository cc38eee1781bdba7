/** One curve of a {@link lineChartSVG}. */
export interface Series {
  /** Legend label. */
  label: string;
  /** Points `[x, y]`; non-finite y values break the line (e.g. a diverged run). */
  points: readonly (readonly [number, number])[];
  /** CSS color; a palette color is used when omitted. */
  color?: string;
  /** Draw as markers only (e.g. sparse validation points). */
  markers?: boolean;
  /** Dashed line. */
  dashed?: boolean;
}

/** Chart settings. */
export interface ChartOptions {
  /** Title drawn above the chart. */
  title: string;
  /** Label of the x axis. */
  xLabel: string;
  /** Label of the y axis. */
  yLabel: string;
  /** Width of the SVG in pixels (default 760). */
  width?: number;
  /** Height of the SVG in pixels (default 440). */
  height?: number;
  /** Logarithmic y axis. */
  logY?: boolean;
  /** Logarithmic x axis. */
  logX?: boolean;
  /** Clamp the y range (useful when one run diverges). */
  yMin?: number;
  /** Upper end of the y range (default: the largest plotted y). */
  yMax?: number;
  /** Horizontal reference lines, e.g. ln(256). */
  hLines?: {
    /** The line's y value (in data units). */
    y: number;
    /** Text drawn at the line's right end. */
    label: string;
  }[];
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const span = hi - lo;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** Ticks for a log10 axis spanning exponents [e0, e1]: decades, plus 2× and 5× when it spans few decades. */
function logTicks(e0: number, e1: number): number[] {
  const out: number[] = [];
  const span = e1 - e0;
  const mults = span < 3 ? [1, 2, 5] : [1];
  for (let e = Math.floor(e0); e <= Math.ceil(e1); e++) {
    for (const m of mults) {
      const v = m * 10 ** e;
      const lv = Math.log10(v);
      if (lv >= e0 - 1e-9 && lv <= e1 + 1e-9) out.push(Number(v.toPrecision(6)));
    }
  }
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/**
 * Renders curves as a standalone SVG line chart (axes, ticks, grid, legend), with no dependencies, so every
 * command can write plots people can open in a browser or embed in docs.
 */
export function lineChartSVG(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 440;
  const m = { l: 70, r: 20, t: 40, b: 55 };
  const legendRows = Math.ceil(series.length / 3);
  m.b += legendRows * 18;
  const tx = (x: number) => (o.logX ? Math.log10(Math.max(x, 1e-12)) : x);
  const ty = (y: number) => (o.logY ? Math.log10(Math.max(y, 1e-12)) : y);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series)
    for (const [x, y] of s.points) {
      if (Number.isFinite(x)) xs.push(tx(x));
      if (Number.isFinite(y)) ys.push(ty(y));
    }
  for (const h of o.hLines ?? []) ys.push(ty(h.y));
  const x0 = xs.length ? Math.min(...xs) : 0;
  let x1 = xs.length ? Math.max(...xs) : 1;
  let y0 = o.yMin !== undefined ? ty(o.yMin) : ys.length ? Math.min(...ys) : 0;
  let y1 = o.yMax !== undefined ? ty(o.yMax) : ys.length ? Math.max(...ys) : 1;
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) {
    y1 += 0.5;
    y0 -= 0.5;
  }
  const pad = (y1 - y0) * 0.04;
  if (o.yMin === undefined) y0 -= pad;
  if (o.yMax === undefined) y1 += pad;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const px = (x: number) => m.l + ((tx(x) - x0) / (x1 - x0)) * pw;
  const py = (y: number) => m.t + ph - ((Math.min(Math.max(ty(y), y0), y1) - y0) / (y1 - y0)) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  );
  const xt = o.logX ? logTicks(x0, x1) : niceTicks(x0, x1);
  const yt = o.logY ? logTicks(y0, y1) : niceTicks(y0, y1);
  for (const v of xt) {
    const X = px(v);
    if (X < m.l - 0.5 || X > m.l + pw + 0.5) continue;
    parts.push(
      `<line x1="${X.toFixed(1)}" y1="${m.t}" x2="${X.toFixed(1)}" y2="${m.t + ph}" stroke="#e5e5e5"/>`,
    );
    parts.push(`<text x="${X.toFixed(1)}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of yt) {
    if (ty(v) < y0 || ty(v) > y1) continue;
    const Y = py(v);
    parts.push(
      `<line x1="${m.l}" y1="${Y.toFixed(1)}" x2="${m.l + pw}" y2="${Y.toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    parts.push(`<text x="${m.l - 6}" y="${(Y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  for (const h of o.hLines ?? []) {
    const Y = py(h.y).toFixed(1);
    parts.push(
      `<line x1="${m.l}" y1="${Y}" x2="${m.l + pw}" y2="${Y}" stroke="#999" stroke-dasharray="4 4"/>`,
    );
    parts.push(
      `<text x="${m.l + pw - 4}" y="${Number(Y) - 4}" text-anchor="end" fill="#666">${esc(h.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    if (s.markers) {
      for (const [x, y] of s.points) {
        if (!Number.isFinite(y)) continue;
        parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
      }
    } else {
      const segs: string[] = [];
      let cur: string[] = [];
      for (const [x, y] of s.points) {
        if (!Number.isFinite(y)) {
          if (cur.length) segs.push(cur.join(' '));
          cur = [];
          continue;
        }
        cur.push(`${cur.length ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`);
      }
      if (cur.length) segs.push(cur.join(' '));
      for (const d of segs) {
        parts.push(
          `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
        );
      }
    }
    const col = i % 3;
    const row = Math.floor(i / 3);
    const lx = m.l + col * (pw / 3);
    const ly = H - legendRows * 18 - 6 + row * 18;
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6 3"' : ''}/>`,
    );
    parts.push(`<text x="${lx + 28}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
