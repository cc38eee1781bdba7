/**
 * A float64 reference forward pass of Strata's encoder-decoder with Pre-LN, written from the math (plain
 * arrays, row by row, no tensors, no code shared with the model): the test's independent check.
 */

type Mat = number[][];
type Get = (name: string) => Float32Array;

function matrix(w: Float32Array, rows: number, cols: number): Mat {
  return Array.from({ length: rows }, (_, r) => Array.from(w.subarray(r * cols, (r + 1) * cols), Number));
}

function affine(x: number[], W: Mat, b?: Float32Array): number[] {
  const out = new Array<number>(W[0]!.length).fill(0);
  for (let i = 0; i < x.length; i++) for (let j = 0; j < out.length; j++) out[j]! += x[i]! * W[i]![j]!;
  if (b) for (let j = 0; j < out.length; j++) out[j]! += b[j]!;
  return out;
}

function layerNorm(x: number[], g: Float32Array, b: Float32Array, eps: number): number[] {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const v = x.reduce((a, u) => a + (u - mean) ** 2, 0) / x.length;
  return x.map((u, i) => ((u - mean) / Math.sqrt(v + eps)) * g[i]! + b[i]!);
}

function gelu(u: number): number {
  return 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u ** 3)));
}

/** Multi-head attention of queries `q` over keys/values `k`, `v` (rows), `allowed(i, j)` masks. */
function attention(q: Mat, k: Mat, v: Mat, H: number, allowed: (i: number, j: number) => boolean): Mat {
  const d = q[0]!.length;
  const hd = d / H;
  return q.map((qi, i) => {
    const out = new Array<number>(d).fill(0);
    for (let h = 0; h < H; h++) {
      const s: number[] = k.map((kj, j) => {
        if (!allowed(i, j)) return Number.NEGATIVE_INFINITY;
        let dot = 0;
        for (let t = 0; t < hd; t++) dot += qi[h * hd + t]! * kj[h * hd + t]!;
        return dot / Math.sqrt(hd);
      });
      const m = Math.max(...s);
      const e = s.map((x) => (x === Number.NEGATIVE_INFINITY ? 0 : Math.exp(x - m)));
      const z = e.reduce((a, x) => a + x, 0);
      for (let j = 0; j < k.length; j++)
        for (let t = 0; t < hd; t++) out[h * hd + t]! += (e[j]! / z) * v[j]![h * hd + t]!;
    }
    return out;
  });
}

/** Shape of the reference model. */
export interface RefShape {
  V: number;
  d: number;
  H: number;
  F: number;
  N: number;
  M: number;
  eps: number;
  pad: number;
}

/**
 * Decoder logits `[T, V]` of one example: `src` (may contain pad ids, masked as keys), decoder input `tgt`.
 * Pre-LN everywhere (`x + G(LN(x))`), final LN per stack, tied head, learned positions, GELU (tanh).
 */
export function encDecReference(get: Get, s: RefShape, src: number[], tgt: number[]): Mat {
  const { d, H, F, eps } = s;
  const ln = (x: Mat, p: string) => x.map((r) => layerNorm(r, get(`${p}.weight`), get(`${p}.bias`), eps));
  const E = matrix(get('tok_emb.weight'), s.V, d);
  const embed = (ids: number[], pos: string) => {
    const P = matrix(get(pos), ids.length, d);
    return ids.map((id, t) => E[id]!.map((e, j) => e + P[t]![j]!));
  };
  const add = (a: Mat, b: Mat) => a.map((r, i) => r.map((v, j) => v + b[i]![j]!));
  const mlp = (x: Mat, p: string) =>
    x.map((r) =>
      affine(
        affine(r, matrix(get(`${p}.fc.weight`), d, F), get(`${p}.fc.bias`)).map(gelu),
        matrix(get(`${p}.proj.weight`), F, d),
        get(`${p}.proj.bias`),
      ),
    );
  const selfAttn = (x: Mat, p: string, allowed: (i: number, j: number) => boolean) => {
    const qkv = x.map((r) => affine(r, matrix(get(`${p}.qkv.weight`), d, 3 * d), get(`${p}.qkv.bias`)));
    const q = qkv.map((r) => r.slice(0, d));
    const k = qkv.map((r) => r.slice(d, 2 * d));
    const v = qkv.map((r) => r.slice(2 * d));
    return attention(q, k, v, H, allowed).map((r) =>
      affine(r, matrix(get(`${p}.proj.weight`), d, d), get(`${p}.proj.bias`)),
    );
  };
  // Encoder.
  let x = embed(src, 'enc_pos_emb.weight');
  const notPad = (_i: number, j: number) => src[j] !== s.pad;
  for (let i = 0; i < s.N; i++) {
    const p = `encoder.blocks.${i}`;
    x = add(x, selfAttn(ln(x, `${p}.attn.norm`), `${p}.attn`, notPad));
    x = add(x, mlp(ln(x, `${p}.mlp.norm`), `${p}.mlp`));
  }
  const memory = ln(x, 'encoder.final.norm');
  // Decoder.
  let y = embed(tgt, 'dec_pos_emb.weight');
  for (let j = 0; j < s.M; j++) {
    const p = `decoder.blocks.${j}`;
    y = add(
      y,
      selfAttn(ln(y, `${p}.attn.norm`), `${p}.attn`, (a, b) => b <= a),
    );
    const h = ln(y, `${p}.cross.norm`);
    const q = h.map((r) => affine(r, matrix(get(`${p}.cross.q.weight`), d, d), get(`${p}.cross.q.bias`)));
    const kv = memory.map((r) =>
      affine(r, matrix(get(`${p}.cross.kv.weight`), d, 2 * d), get(`${p}.cross.kv.bias`)),
    );
    const cross = attention(
      q,
      kv.map((r) => r.slice(0, d)),
      kv.map((r) => r.slice(d)),
      H,
      notPad,
    ).map((r) => affine(r, matrix(get(`${p}.cross.proj.weight`), d, d), get(`${p}.cross.proj.bias`)));
    y = add(y, cross);
    y = add(y, mlp(ln(y, `${p}.mlp.norm`), `${p}.mlp`));
  }
  const out = ln(y, 'decoder.final.norm');
  return out.map((r) => E.map((e) => e.reduce((a, v, j) => a + v * r[j]!, 0)));
}
