// The mechanism check of experiments/ngpt-vs-gpt.sh: the nGPT paper (Loshchilov et al. 2024, §4.3 and Fig. 5)
// explains part of nGPT's gain by conditioning — GPT's attention matrices grow large condition numbers (they tend
// towards low rank, losing capacity), nGPT's stay small. This script reads the best-rate checkpoints of every
// finished grid OUT/ctxC-stepsS and reports the condition number κ = σ_max / σ_min of
//   attention  each head's slice of W_q, W_k, W_v (d_model × d_head), median over heads; W_o (d_model × d_model)
//   MLP        W_fc (and nGPT's gate), W_proj
// per layer, mean over seeds. κ does not depend on a matrix's scale, so nGPT's unit-norm rows and GPT's raw
// weights compare directly. Singular values: one-sided Jacobi (Hestenes) in float64 — these are ≤ 128 × 32
// matrices, so a dependency for a full LAPACK port is not worth it; checked against numpy.linalg.svd.
// Writes OUT/conditioning.md, OUT/conditioning.jsonl and OUT/conditioning.svg (+ .vl.json, .csv).
// Usage: node experiments/ngpt-conditioning.mjs [OUT]      (default runs/ngpt-vs-gpt; needs `npm run build`)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PALETTE, writePlot } from '../packages/cli/dist/plots.js';
import { Rng, readSafetensorsFile } from '../packages/core/dist/index.js';
import { contextGrids, finishedGrid, meanStd, median } from './grid.mjs';

const out = process.argv[2] ?? 'runs/ngpt-vs-gpt';

/** The float32 tensors of a checkpoint's model.safetensors: name → { shape, data } (core's validating reader). */
async function readWeights(file) {
  const { tensors } = await readSafetensorsFile(file);
  for (const [name, t] of tensors)
    if (t.dtype !== 'F32') throw new Error(`${file}: ${name} is ${t.dtype}, expected F32`);
  return Object.fromEntries(tensors);
}

/** Singular values of a rows × cols matrix (row-major Float64Array), by one-sided Jacobi on the columns. */
function singularValues(a, rows, cols) {
  // work on the orientation with fewer columns: the singular values of A and Aᵀ are the same
  let [m, n, x] = [rows, cols, Float64Array.from(a)];
  if (n > m) {
    const t = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = x[i * n + j];
    [m, n, x] = [cols, rows, t];
  }
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        let [alpha, beta, gamma] = [0, 0, 0];
        for (let i = 0; i < m; i++) {
          const [xp, xq] = [x[i * n + p], x[i * n + q]];
          alpha += xp * xp;
          beta += xq * xq;
          gamma += xp * xq;
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const [xp, xq] = [x[i * n + p], x[i * n + q]];
          x[i * n + p] = c * xp - s * xq;
          x[i * n + q] = s * xp + c * xq;
        }
      }
    if (!rotated) break;
  }
  const sv = [];
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += x[i * n + j] ** 2;
    sv.push(Math.sqrt(s));
  }
  return sv.sort((u, v) => v - u);
}

const kappa = (sv) => sv[0] / sv[sv.length - 1];
/** Columns [from, to) of a rows × cols row-major matrix. */
const columns = ({ shape: [rows, cols], data }, from, to) => {
  const o = new Float64Array(rows * (to - from));
  for (let i = 0; i < rows; i++)
    for (let j = from; j < to; j++) o[i * (to - from) + j - from] = data[i * cols + j];
  return [o, rows, to - from];
};
const whole = (t) => columns(t, 0, t.shape[1]);

/** κ per layer and matrix kind for one checkpoint. */
async function conditioning(dir) {
  const config = JSON.parse(readFileSync(join(dir, 'checkpoint', 'config.json'), 'utf8')).model;
  const w = await readWeights(join(dir, 'checkpoint', 'model.safetensors'));
  const { dModel: d, nHeads: h, nLayers } = config;
  const dh = d / h;
  const layers = [];
  for (let l = 0; l < nLayers; l++) {
    const qkv = w[`blocks.${l}.attn.qkv.weight`];
    if (!qkv || qkv.shape[1] !== 3 * d)
      throw new Error(`${dir}: blocks.${l}.attn.qkv.weight is not d_model × 3·d_model`);
    const head = (part) =>
      median(
        Array.from({ length: h }, (_, i) =>
          kappa(singularValues(...columns(qkv, part * d + i * dh, part * d + (i + 1) * dh))),
        ),
      );
    const k = (name) => (w[name] ? kappa(singularValues(...whole(w[name]))) : undefined);
    layers.push({
      layer: l,
      dModel: d,
      dHead: dh,
      dFF: w[`blocks.${l}.mlp.fc.weight`].shape[1],
      q: head(0),
      k: head(1),
      v: head(2),
      o: k(`blocks.${l}.attn.proj.weight`),
      fc: k(`blocks.${l}.mlp.fc.weight`),
      gate: k(`blocks.${l}.mlp.gate.weight`),
      proj: k(`blocks.${l}.mlp.proj.weight`),
    });
  }
  return layers;
}

/** The median κ of i.i.d. Gaussian rows × cols matrices (50 seeded draws): where both arms start, since both
 *  initialize their matrices as Gaussians (nGPT then normalizes rows, which changes κ little). */
const gaussian = new Map(); // by shape: each is 50 SVDs, asked for once per grid and arm
function gaussianKappa(rows, cols) {
  const key = `${rows}x${cols}`;
  if (!gaussian.has(key)) {
    const rng = new Rng(12345);
    const draws = Array.from({ length: 50 }, () =>
      kappa(
        singularValues(
          Float64Array.from({ length: rows * cols }, () => rng.normal()),
          rows,
          cols,
        ),
      ),
    );
    gaussian.set(key, median(draws));
  }
  return gaussian.get(key);
}

const grids = contextGrids(out);

const rows = [];
for (const g of grids) {
  const { best } = finishedGrid(join(out, g.name));
  for (const { variant, lr, runs } of best)
    for (const { seed, dir } of runs)
      for (const r of await conditioning(dir))
        rows.push({ grid: g.name, context: g.context, steps: g.steps, variant, lr, seed, ...r });
}
writeFileSync(join(out, 'conditioning.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);

const kinds = ['q', 'k', 'v', 'o', 'fc', 'gate', 'proj'];
const fmt = (xs) => {
  const ys = xs.filter((x) => x !== undefined);
  return ys.length ? meanStd(ys).m.toFixed(1) : '—';
};
const md = [
  '# Condition numbers of the trained matrices: nGPT vs RoPE GPT',
  '',
  `From \`node experiments/ngpt-conditioning.mjs ${out}\` (run by \`experiments/ngpt-vs-gpt.sh\`): each arm's best-rate checkpoints of each grid of`,
  '`experiments/ngpt-vs-gpt.sh`. κ = σ_max / σ_min; q, k, v: each head’s d_model × d_head slice, median over heads;',
  'o: the attention output matrix; fc, gate (nGPT’s SwiGLU), proj: the MLP. Mean over the 3 seeds. The paper',
  '(§4.3, Fig. 5) reports GPT’s attention matrices far worse conditioned than nGPT’s.',
  '',
  `Where both start — the median κ of i.i.d. Gaussian matrices of the same shape (50 draws), as both arms initialize: ${[
    `a ${rows[0].dModel} × ${rows[0].dHead} head slice ${gaussianKappa(rows[0].dModel, rows[0].dHead).toFixed(1)}`,
    `${rows[0].dModel} × ${rows[0].dModel} (o; square, so σ_min is near 0 at random) ${gaussianKappa(rows[0].dModel, rows[0].dModel).toFixed(1)}`,
    ...[...new Set(rows.map((r) => `${r.variant}\t${r.dFF}`))].map((key) => {
      const [variant, dFF] = key.split('\t');
      return `${variant}'s ${rows[0].dModel} × ${dFF} (fc, proj) ${gaussianKappa(rows[0].dModel, Number(dFF)).toFixed(1)}`;
    }),
  ].join('; ')}.`,
  '',
];
for (const g of grids) {
  md.push(
    `## Context ${g.context}, ${g.steps} steps`,
    '',
    `| arm | layer | ${kinds.join(' | ')} |`,
    `|---|---|${kinds.map(() => '---').join('|')}|`,
  );
  for (const variant of ['gpt', 'ngpt']) {
    const rs = rows.filter((r) => r.grid === g.name && r.variant === variant);
    const layers = [...new Set(rs.map((r) => r.layer))];
    for (const l of layers) {
      const at = rs.filter((r) => r.layer === l);
      md.push(`| ${variant} | ${l} | ${kinds.map((k) => fmt(at.map((r) => r[k]))).join(' | ')} |`);
    }
  }
  md.push('');
}

// one point per (grid, arm, seed): the median κ of the q/k/v head slices over layers; the plot shows mean and
// min–max over seeds per grid
const summary = [];
for (const g of grids)
  for (const variant of ['gpt', 'ngpt']) {
    const rs = rows.filter((r) => r.grid === g.name && r.variant === variant);
    const perSeed = [...new Set(rs.map((r) => r.seed))].map((s) =>
      median(rs.filter((r) => r.seed === s).flatMap((r) => [r.q, r.k, r.v])),
    );
    const mlp = [...new Set(rs.map((r) => r.seed))].map((s) =>
      median(rs.filter((r) => r.seed === s).flatMap((r) => [r.fc, r.proj])),
    );
    for (const [kind, xs] of [
      ['attention q/k/v heads', perSeed],
      ['MLP fc/proj', mlp],
    ])
      summary.push({
        kind,
        grid: `${g.context}/${g.steps}`,
        arm: variant === 'gpt' ? 'GPT (RoPE)' : 'nGPT',
        mean: meanStd(xs).m,
        init:
          kind === 'MLP fc/proj'
            ? gaussianKappa(rs[0].dModel, rs[0].dFF)
            : gaussianKappa(rs[0].dModel, rs[0].dHead),
        lo: Math.min(...xs),
        hi: Math.max(...xs),
      });
  }
md.push(
  '## Summary: median κ over layers',
  '',
  '| context / steps | kind | GPT (RoPE) | nGPT |',
  '|---|---|---|---|',
  ...[...new Set(summary.map((s) => `${s.grid}\t${s.kind}`))].map((key) => {
    const [grid, kind] = key.split('\t');
    const cell = (arm) => {
      const s = summary.find((x) => x.grid === grid && x.kind === kind && x.arm === arm);
      return `${s.mean.toFixed(1)} [${s.lo.toFixed(1)}–${s.hi.toFixed(1)}]`;
    };
    return `| ${grid} | ${kind} | ${cell('GPT (RoPE)')} | ${cell('nGPT')} |`;
  }),
  '',
);
writeFileSync(join(out, 'conditioning.md'), md.join('\n'));

const x = {
  field: 'grid',
  type: 'ordinal',
  title: 'training context / steps',
  sort: null,
  axis: { labelAngle: -35 },
};
const color = { field: 'arm', type: 'nominal', title: 'arm', scale: { range: PALETTE } };
const panel = (kind) => ({
  title: { text: kind, fontSize: 12 },
  width: 420,
  height: 260,
  transform: [{ filter: { field: 'kind', equal: kind } }],
  layer: [
    {
      mark: { type: 'rule', strokeWidth: 2 },
      encoding: {
        x,
        xOffset: { field: 'arm' },
        color,
        y: {
          field: 'lo',
          type: 'quantitative',
          scale: { type: 'log' },
          title: 'condition number σmax/σmin (log)',
        },
        y2: { field: 'hi' },
      },
    },
    {
      mark: { type: 'point', filled: true, size: 70 },
      encoding: { x, xOffset: { field: 'arm' }, color, y: { field: 'mean', type: 'quantitative' } },
    },
    {
      mark: { type: 'tick', thickness: 2, size: 14, opacity: 0.7, strokeDash: [3, 2] },
      encoding: { x, xOffset: { field: 'arm' }, color, y: { field: 'init', type: 'quantitative' } },
    },
  ],
});
await writePlot(out, 'conditioning', {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: {
    text: 'Conditioning of the trained matrices: nGPT vs the RoPE GPT',
    subtitle: [
      'median κ over layers (and heads) per checkpoint, each arm at its best learning rate',
      'point = mean of 3 seeds, bar = min–max; dashed tick = a Gaussian matrix of the same shape (where training starts)',
    ],
    anchor: 'start',
  },
  data: { values: summary },
  hconcat: [panel('attention q/k/v heads'), panel('MLP fc/proj')],
  resolve: { scale: { y: 'shared' } },
  config: { font: 'DejaVu Sans', axis: { labelFontSize: 11, titleFontSize: 12 } },
});
process.stdout.write(`${md.slice(md.indexOf('## Summary: median κ over layers')).join('\n')}\n`);
