import { createIncrementalDecoder, getModelFamily, initBackend } from '@strata/core';
import * as tf from '@tensorflow/tfjs-core';

await initBackend('wasm');
const fam = getModelFamily('gpt');
const model = fam.create(fam.parseConfig({ dModel: 128, nLayers: 4, nHeads: 4, contextLength: 128 }), {
  seed: 1,
});
const dec = createIncrementalDecoder(model)!;
const a = [10];
for (let i = 0; i < 20; i++) {
  const l = await dec.next(a);
  a.push(l.indexOf(Math.max(...l)));
}
const info = await tf.profile(async () => {
  for (let i = 0; i < 10; i++) {
    const l = await dec.next(a);
    a.push(l.indexOf(Math.max(...l)));
  }
});
const by = new Map<string, { ms: number; n: number }>();
for (const k of info.kernels) {
  const e = by.get(k.name) ?? { ms: 0, n: 0 };
  e.ms += k.kernelTimeMs as number;
  e.n++;
  by.set(k.name, e);
}
console.log('kernels per token', info.kernels.length / 10);
for (const [k, v] of [...by].sort((x, y) => y[1].ms - x[1].ms).slice(0, 15))
  console.log(k, (v.ms / 10).toFixed(3), 'ms/token', v.n / 10);
const t0 = performance.now();
for (let i = 0; i < 30; i++) {
  const l = await dec.next(a);
  a.push(l.indexOf(Math.max(...l)));
}
console.log('ms/token', ((performance.now() - t0) / 30).toFixed(2));
