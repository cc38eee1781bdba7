import { geluTanh, initBackend, layerNorm, strataKernelsActive } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

await initBackend('wasm');
console.log(strataKernelsActive());
const x = tf.randomNormal([2048, 512]);
const g = tf.ones([512]);
const b = tf.zeros([512]);
function bench(name: string, f: () => tf.Tensor, reps = 20) {
  f().dispose();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f().dispose();
  console.log(
    name,
    ((performance.now() - t0) / reps).toFixed(2),
    'ms wall',
    (process.cpuUsage(c0).user / 1000 / reps).toFixed(2),
    'ms cpu',
  );
}
bench('gelu', () => geluTanh(x));
bench('tanh tfjs', () => tf.tanh(x));
bench('add tfjs', () => tf.add(x, x));
bench('ln', () => layerNorm(x, g, b, 1e-5));
bench('exp', () => tf.exp(x));
