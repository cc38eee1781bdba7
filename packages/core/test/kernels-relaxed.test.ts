/**
 * The relaxed-SIMD (fused multiply-add) build of the kernels computes what the SIMD128 build computes, up to
 * the rounding of fused multiply-adds. Node 20 only accepts relaxed SIMD behind a V8 flag, so the comparison
 * runs in a child process started with `--experimental-wasm-relaxed-simd`; each build gets its own memory.
 * Also checks that the committed .wasm files are the bytes embedded in wasm-binary.ts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WASM_BASE64, WASM_RELAXED_BASE64 } from '../src/kernels/wasm-binary.js';

const native = (f: string) => fileURLToPath(new URL(`../native/${f}`, import.meta.url));

const script = `
import { readFileSync } from 'node:fs';
const [basePath, relaxedPath] = process.argv.slice(-2);
function load(path) {
  const memory = new WebAssembly.Memory({ initial: 512, maximum: 65536 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), { env: { memory } });
  const k = inst.exports;
  k.__stack_pointer.value = 1 << 20;
  let top = 1 << 21;
  const alloc = (floats) => { const p = top; top = (top + floats * 4 + 63) & ~63; return p; };
  const f32 = (p, n) => new Float32Array(memory.buffer, p, n);
  return { k, alloc, f32 };
}
let seed = 1;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
const inputs = (n) => Float32Array.from({ length: n }, rnd);
const results = [];
for (const path of [basePath, relaxedPath]) {
  seed = 1;
  const { k, alloc, f32 } = load(path);
  const ws = alloc(300000);
  const out = [];
  for (const [M, K, N, ta, tb] of [[37, 300, 45, 0, 0], [64, 32, 96, 1, 0], [13, 29, 270, 0, 1], [3, 40, 17, 0, 0]]) {
    const a = alloc(M * K), b = alloc(K * N), c = alloc(M * N);
    f32(a, M * K).set(inputs(M * K));
    f32(b, K * N).set(inputs(K * N));
    k.sgemm(M, N, K, a, ta ? 1 : K, ta ? M : 1, b, tb ? 1 : N, tb ? K : 1, c, N, 0, 0, 0, ws);
    out.push(Array.from(f32(c, M * N)));
  }
  const B = 2, T = 33, H = 2, hd = 8, D = H * hd;
  const qkv = alloc(B * T * 3 * D), y = alloc(B * T * D), st = alloc(B * H * T * 2), dy = alloc(B * T * D), dq = alloc(B * T * 3 * D);
  f32(qkv, B * T * 3 * D).set(inputs(B * T * 3 * D));
  f32(dy, B * T * D).set(inputs(B * T * D));
  k.attn_fwd(qkv, 0, 0, y, st, B, T, H, hd, 1 / Math.sqrt(hd), ws);
  k.attn_bwd(dy, qkv, 0, 0, st, dq, B, T, H, hd, 1 / Math.sqrt(hd), ws);
  out.push(Array.from(f32(y, B * T * D)), Array.from(f32(dq, B * T * 3 * D)));
  results.push(out);
}
let worst = 0;
results[0].forEach((arr, i) => {
  const other = results[1][i];
  let m = 0, s = 0;
  for (let j = 0; j < arr.length; j++) { m = Math.max(m, Math.abs(arr[j] - other[j])); s = Math.max(s, Math.abs(arr[j])); }
  worst = Math.max(worst, m / s);
});
console.log(JSON.stringify({ worst, relaxedValidates: WebAssembly.validate(readFileSync(relaxedPath)) }));
`;

describe('relaxed-SIMD kernels', () => {
  it('the committed .wasm files are the embedded binaries', () => {
    expect(readFileSync(native('strata_kernels.wasm')).toString('base64')).toBe(WASM_BASE64);
    expect(readFileSync(native('strata_kernels_relaxed.wasm')).toString('base64')).toBe(WASM_RELAXED_BASE64);
  });

  it('match the SIMD128 build (GEMM with transposes, fused attention forward and backward)', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--experimental-wasm-relaxed-simd',
        '--input-type=module',
        '-e',
        script,
        native('strata_kernels.wasm'),
        native('strata_kernels_relaxed.wasm'),
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const { worst, relaxedValidates } = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      worst: number;
      relaxedValidates: boolean;
    };
    expect(relaxedValidates).toBe(true);
    expect(worst).toBeLessThan(1e-5);
  });
});
