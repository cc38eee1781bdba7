#!/usr/bin/env node
// Microbenchmark of Strata's wasm GEMM (packages/core/native/*.wasm), alone, with its own memory:
//   node bench/gemm.mjs                                   (SIMD128 build)
//   node --experimental-wasm-relaxed-simd bench/gemm.mjs  (also the relaxed-SIMD FMA build)
// GFLOP/s from process CPU time (robust when other processes share the cores), per shape of the reference
// GPT's training step: NN = x·W, NT = dY·Wᵀ, TN = Xᵀ·dY.
import { readFileSync } from 'node:fs';

const native = (f) => new URL(`../packages/core/native/${f}`, import.meta.url);
function bench(file) {
  const mem = new WebAssembly.Memory({ initial: 2000, maximum: 65536 });
  const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { memory: mem } })
    .exports;
  k.__stack_pointer.value = 1 << 20;
  let top = 2 << 20;
  const alloc = (n) => {
    const p = top;
    top = (top + n * 4 + 63) & ~63;
    return p;
  };
  const ws = alloc(256 * 256 + 4 * 256 + 16);
  const run = (M, K, N, ta, tb) => {
    const a = alloc(M * K);
    const b = alloc(K * N);
    const c = alloc(M * N);
    const F = new Float32Array(mem.buffer);
    for (let i = 0; i < M * K; i++) F[a / 4 + i] = Math.random();
    for (let i = 0; i < K * N; i++) F[b / 4 + i] = Math.random();
    const call = () =>
      k.sgemm(M, N, K, a, ta ? 1 : K, ta ? M : 1, b, tb ? 1 : N, tb ? K : 1, c, N, 0, 0, 0, ws);
    const reps = Math.max(3, Math.round(2e9 / (2 * M * N * K)));
    for (let i = 0; i < 2; i++) call();
    const c0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) call();
    return (2 * M * N * K) / (process.cpuUsage(c0).user / 1000 / reps) / 1e6;
  };
  const out = [];
  for (const [M, K, N] of [
    [2048, 128, 512],
    [2048, 512, 128],
    [128, 2048, 512],
    [512, 64, 192],
    [128, 32, 128],
  ]) {
    out.push(
      `${M}x${K}x${N}: NN ${run(M, K, N, 0, 0).toFixed(1)}  NT ${run(M, K, N, 0, 1).toFixed(1)}  TN ${run(M, K, N, 1, 0).toFixed(1)}`,
    );
  }
  return out;
}
for (const [name, file] of [
  ['simd128', native('strata_kernels.wasm')],
  ['relaxed-simd', native('strata_kernels_relaxed.wasm')],
]) {
  if (!WebAssembly.validate(readFileSync(file))) {
    console.log(`${name}: not supported by this runtime (Node 20: --experimental-wasm-relaxed-simd)`);
    continue;
  }
  console.log(`${name} (GFLOP/s):\n  ${bench(file).join('\n  ')}`);
}
