/**
 * A hand-written float64 reference of Strata's GPT forward pass with every built-in residual strategy,
 * written from the formulas (not from the model code): plain arrays, explicit loops. Used to check that the
 * strategies compute exactly what their doc comments say.
 */

/** Row-major matrix. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export type Weights = ReadonlyMap<string, Float32Array>;

export interface RefConfig {
  vocab: number;
  d: number;
  heads: number;
  layers: number;
  dFF: number;
  normKind: 'layernorm' | 'rmsnorm';
  eps: number;
}

/** Per-site residual rule of a strategy: `x` the stream, `G(h, inner?)` the sublayer. */
export type SiteRule = (
  x: Mat,
  G: (h: Mat, inner?: (m: Mat) => Mat) => Mat,
  ctx: {
    layer: number;
    site: 'attn' | 'mlp';
    prefix: string;
    norm: (name: string) => (m: Mat) => Mat;
    w: Weights;
  },
) => Mat;

const mat = (rows: number, cols: number, data?: ArrayLike<number>): Mat => ({
  rows,
  cols,
  data: data ? Float64Array.from(data) : new Float64Array(rows * cols),
});

export function matmul(a: Mat, b: Mat): Mat {
  if (a.cols !== b.rows) throw new Error(`matmul ${a.rows}x${a.cols} · ${b.rows}x${b.cols}`);
  const out = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const v = a.data[i * a.cols + k]!;
      for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j]! += v * b.data[k * b.cols + j]!;
    }
  return out;
}
export const map = (a: Mat, f: (v: number, i: number) => number): Mat => ({ ...a, data: a.data.map(f) });
export const add = (a: Mat, b: Mat): Mat => map(a, (v, i) => v + b.data[i]!);
export const scale = (a: Mat, s: number): Mat => map(a, (v) => v * s);
/** Multiplies each row elementwise by a vector (a diagonal matrix on the right). */
export const mulRow = (a: Mat, v: ArrayLike<number>): Mat => map(a, (x, i) => x * v[i % a.cols]!);
export const addRow = (a: Mat, v: ArrayLike<number>): Mat => map(a, (x, i) => x + v[i % a.cols]!);
const transpose = (a: Mat): Mat => {
  const out = mat(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j]!;
  return out;
};

function w(ws: Weights, name: string): Float32Array {
  const v = ws.get(name);
  if (!v) throw new Error(`reference: no weight ${name}`);
  return v;
}
const wm = (ws: Weights, name: string, rows: number, cols: number) => mat(rows, cols, w(ws, name));

/** LayerNorm (biased variance) or RMSNorm on rows, with the weights `<name>.weight` / `.bias`. */
export function normFn(
  ws: Weights,
  name: string,
  kind: 'layernorm' | 'rmsnorm',
  eps: number,
): (m: Mat) => Mat {
  return (m) => {
    const g = w(ws, `${name}.weight`);
    const b = ws.get(`${name}.bias`);
    const out = mat(m.rows, m.cols);
    for (let r = 0; r < m.rows; r++) {
      const row = m.data.subarray(r * m.cols, (r + 1) * m.cols);
      let mean = 0;
      if (kind === 'layernorm') mean = row.reduce((s, v) => s + v, 0) / m.cols;
      const ms = row.reduce((s, v) => s + (v - mean) * (v - mean), 0) / m.cols;
      const inv = 1 / Math.sqrt(ms + eps);
      for (let j = 0; j < m.cols; j++)
        out.data[r * m.cols + j] = (row[j]! - mean) * inv * g[j]! + (b ? b[j]! : 0);
    }
    return out;
  };
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

/**
 * Logits `[B·T, V]` of a GPT with learned positions, GELU (tanh), biases and a tied head; `rule` is the
 * residual rule of each site; a final norm is applied iff `final.norm.weight` exists.
 */
export function referenceForward(
  ws: Weights,
  c: RefConfig,
  ids: readonly number[][],
  rule: SiteRule,
): Float64Array {
  const B = ids.length;
  const T = ids[0]!.length;
  const d = c.d;
  const tok = wm(ws, 'tok_emb.weight', c.vocab, d);
  const pos = wm(ws, 'pos_emb.weight', ws.get('pos_emb.weight')!.length / d, d);
  let x = mat(B * T, d);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let j = 0; j < d; j++)
        x.data[(b * T + t) * d + j] = tok.data[ids[b]![t]! * d + j]! + pos.data[t * d + j]!;
  const hd = d / c.heads;
  for (let l = 0; l < c.layers; l++) {
    for (const site of ['attn', 'mlp'] as const) {
      const prefix = `blocks.${l}.${site}.`;
      const norm = (name: string) => normFn(ws, prefix + name, c.normKind, c.eps);
      const G =
        site === 'attn'
          ? (h: Mat, inner?: (m: Mat) => Mat) => {
              const qkv = addRow(
                matmul(h, wm(ws, `${prefix}qkv.weight`, d, 3 * d)),
                w(ws, `${prefix}qkv.bias`),
              );
              const merged = mat(B * T, d);
              for (let b = 0; b < B; b++)
                for (let hh = 0; hh < c.heads; hh++)
                  for (let i = 0; i < T; i++) {
                    const q = (r: number, j: number) => qkv.data[(b * T + r) * 3 * d + hh * hd + j]!;
                    const k = (r: number, j: number) => qkv.data[(b * T + r) * 3 * d + d + hh * hd + j]!;
                    const v = (r: number, j: number) => qkv.data[(b * T + r) * 3 * d + 2 * d + hh * hd + j]!;
                    const s: number[] = [];
                    for (let jj = 0; jj <= i; jj++) {
                      let dot = 0;
                      for (let e = 0; e < hd; e++) dot += q(i, e) * k(jj, e);
                      s.push(dot / Math.sqrt(hd));
                    }
                    const mx = Math.max(...s);
                    const ex = s.map((z) => Math.exp(z - mx));
                    const Z = ex.reduce((a, z) => a + z, 0);
                    for (let e = 0; e < hd; e++) {
                      let acc = 0;
                      for (let jj = 0; jj <= i; jj++) acc += (ex[jj]! / Z) * v(jj, e);
                      merged.data[(b * T + i) * d + hh * hd + e] = acc;
                    }
                  }
              const m2 = inner ? inner(merged) : merged;
              return addRow(matmul(m2, wm(ws, `${prefix}proj.weight`, d, d)), w(ws, `${prefix}proj.bias`));
            }
          : (h: Mat, inner?: (m: Mat) => Mat) => {
              const a = map(
                addRow(matmul(h, wm(ws, `${prefix}fc.weight`, d, c.dFF)), w(ws, `${prefix}fc.bias`)),
                gelu,
              );
              const a2 = inner ? inner(a) : a;
              return addRow(
                matmul(a2, wm(ws, `${prefix}proj.weight`, c.dFF, d)),
                w(ws, `${prefix}proj.bias`),
              );
            };
      x = rule(x, G, { layer: l, site, prefix, norm, w: ws });
    }
  }
  if (ws.has('final.norm.weight')) x = normFn(ws, 'final.norm', c.normKind, c.eps)(x);
  return matmul(x, transpose(tok)).data;
}

/** The residual rules of the built-ins, written from their formulas. */
const preLn: SiteRule = (x, G, { norm }) => add(x, G(norm('norm')(x)));
const postLn: SiteRule = (x, G, { norm }) => norm('norm')(add(x, G(x)));
export const rules: {
  fixed: Record<'pre-ln' | 'post-ln' | 'sandwich-ln' | 'subln' | 'rezero' | 'layerscale' | 'admin', SiteRule>;
  deepnorm: (alpha: number) => SiteRule;
  mixLn: (postLayers: number) => SiteRule;
} = {
  fixed: {
    'pre-ln': preLn,
    'post-ln': postLn,
    'sandwich-ln': (x, G, { norm }) => add(x, norm('norm_out')(G(norm('norm_in')(x)))),
    subln: (x, G, { norm }) => add(x, G(norm('norm')(x), norm('inner_norm'))),
    rezero: (x, G, { prefix, w: ws }) => add(x, scale(G(x), ws.get(`${prefix}alpha`)![0]!)),
    layerscale: (x, G, { norm, prefix, w: ws }) =>
      add(x, mulRow(G(norm('norm')(x)), ws.get(`${prefix}scale`)!)),
    admin: (x, G, { norm, prefix, w: ws }) => norm('norm')(add(mulRow(x, ws.get(`${prefix}omega`)!), G(x))),
  },
  deepnorm:
    (alpha) =>
    (x, G, { norm }) =>
      norm('norm')(add(scale(x, alpha), G(x))),
  mixLn: (postLayers) => (x, G, ctx) => (ctx.layer < postLayers ? postLn(x, G, ctx) : preLn(x, G, ctx)),
};
