/**
 * An independent float64 GPT-2 forward pass (Radford et al. 2019; Hugging Face `GPT2LMHeadModel` with gelu_new,
 * LayerNorm, Conv1D [in, out] weights, tied head = wte or untied head = lm_head [V, d]), written from the
 * equations and not from the model code. Weights are read by their Hugging Face names (without the
 * `transformer.` prefix) through `w`, so tests can feed it Strata or HF tensors.
 */
export type Mat = number[][];
function mm(a: Mat, w: Float32Array, inDim: number, outDim: number, b?: Float32Array): Mat {
  return a.map((row) => {
    const out = new Array<number>(outDim).fill(0);
    for (let i = 0; i < inDim; i++) {
      const x = row[i]!;
      for (let j = 0; j < outDim; j++) out[j]! += x * w[i * outDim + j]!;
    }
    if (b) for (let j = 0; j < outDim; j++) out[j]! += b[j]!;
    return out;
  });
}
function ln(a: Mat, g: Float32Array, b: Float32Array, eps: number): Mat {
  return a.map((row) => {
    const mu = row.reduce((s, v) => s + v, 0) / row.length;
    const varc = row.reduce((s, v) => s + (v - mu) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mu) / Math.sqrt(varc + eps)) * g[i]! + b[i]!);
  });
}
const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
export interface RefConfig {
  V: number;
  d: number;
  H: number;
  F: number;
  L: number;
  eps: number;
}
export function hfGPT2Reference(
  w: (name: string) => Float32Array,
  c: RefConfig,
  ids: number[],
  tied: boolean,
): Mat {
  const { d, H, F, V } = c;
  const hd = d / H;
  const T = ids.length;
  const wte = w('wte.weight');
  const wpe = w('wpe.weight');
  let x: Mat = ids.map((id, t) => Array.from({ length: d }, (_, j) => wte[id * d + j]! + wpe[t * d + j]!));
  for (let l = 0; l < c.L; l++) {
    const p = (n: string) => w(`h.${l}.${n}`);
    const h = ln(x, p('ln_1.weight'), p('ln_1.bias'), c.eps);
    const qkv = mm(h, p('attn.c_attn.weight'), d, 3 * d, p('attn.c_attn.bias'));
    const merged: Mat = Array.from({ length: T }, () => new Array<number>(d).fill(0));
    for (let hh = 0; hh < H; hh++) {
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        for (let j = 0; j <= i; j++) {
          let s = 0;
          for (let k = 0; k < hd; k++) s += qkv[i]![hh * hd + k]! * qkv[j]![d + hh * hd + k]!;
          scores.push(s / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++)
          for (let k = 0; k < hd; k++)
            merged[i]![hh * hd + k]! += (e[j]! / z) * qkv[j]![2 * d + hh * hd + k]!;
      }
    }
    const a = mm(merged, p('attn.c_proj.weight'), d, d, p('attn.c_proj.bias'));
    x = x.map((row, i) => row.map((v, j) => v + a[i]![j]!));
    const h2 = ln(x, p('ln_2.weight'), p('ln_2.bias'), c.eps);
    const f = mm(h2, p('mlp.c_fc.weight'), d, F, p('mlp.c_fc.bias')).map((r) => r.map(geluNew));
    const o = mm(f, p('mlp.c_proj.weight'), F, d, p('mlp.c_proj.bias'));
    x = x.map((row, i) => row.map((v, j) => v + o[i]![j]!));
  }
  x = ln(x, w('ln_f.weight'), w('ln_f.bias'), c.eps);
  const head = tied ? wte : w('lm_head.weight'); // both [V, d]: logits = x · headᵀ
  return x.map((row) =>
    Array.from({ length: V }, (_, v) => row.reduce((s, xv, j) => s + xv * head[v * d + j]!, 0)),
  );
}
