import { defineNorm, getNorm, type NormStrategy, type OptionsOf, opt } from '@strata/core';
import type * as tf from '@tensorflow/tfjs-core';
import { describe, expectTypeOf, it } from 'vitest';
import type { admin, deepNorm, mixLN, postLN } from '../src/index.js';

describe('plugin API types', () => {
  it('a norm keeps the tensor type, so branch(ln(x)) needs no cast', () => {
    defineNorm({
      name: 'acme/no-cast',
      version: '1.0.0',
      description: 'Pre-LN without casts',
      options: {},
      createSite(_ctx, _opts, host) {
        const ln = host.norm('norm');
        return {
          forward: (x, branch) => {
            expectTypeOf(ln(x)).toEqualTypeOf<tf.Tensor2D>();
            return branch(ln(x));
          },
        };
      },
    });
  });

  it('defineNorm infers the literal name and the options type', () => {
    const s = defineNorm({
      name: 'acme/typed',
      version: '1.0.0',
      description: 'typed',
      options: {
        k: opt.number({ default: 1, description: 'k' }),
        mode: opt.enum(['a', 'b'], { default: 'a', description: 'mode' }),
        pin: opt.optionalNumber({ description: 'pin' }),
        on: opt.boolean({ default: false, description: 'on' }),
      },
      createSite(_ctx, opts, _host) {
        expectTypeOf(opts).toEqualTypeOf<{ k: number; mode: 'a' | 'b'; pin: number | null; on: boolean }>();
        // @ts-expect-error k is a number
        const wrong: string = opts.k;
        void wrong;
        return { forward: (x: tf.Tensor2D) => x };
      },
    });
    expectTypeOf(s.name).toEqualTypeOf<'acme/typed'>();
    expectTypeOf(s.parseOptions({})).toEqualTypeOf<{
      k: number;
      mode: 'a' | 'b';
      pin: number | null;
      on: boolean;
    }>();
    expectTypeOf(s).toMatchTypeOf<NormStrategy>();
  });

  it('wrong option declarations are compile errors', () => {
    defineNorm({
      name: 'acme/bad',
      version: '1.0.0',
      description: 'bad',
      // @ts-expect-error a number option needs a numeric default
      options: { k: opt.number({ default: 'one', description: 'k' }) },
      createSite: () => ({ forward: (x: tf.Tensor2D) => x }),
    });
    // @ts-expect-error the enum default must be one of its values
    opt.enum(['a', 'b'], { default: 'c', description: 'mode' });
  });

  it('getNorm is typed for the built-ins after the @strata/norms augmentation', () => {
    expectTypeOf(getNorm('deepnorm')).toEqualTypeOf<typeof deepNorm>();
    expectTypeOf(getNorm('post-ln')).toEqualTypeOf<typeof postLN>();
    expectTypeOf(getNorm('mix-ln')).toEqualTypeOf<typeof mixLN>();
    expectTypeOf(getNorm('deepnorm').name).toEqualTypeOf<'deepnorm'>();
    type DeepOpts = OptionsOf<(typeof deepNorm)['options']>;
    expectTypeOf<DeepOpts>().toEqualTypeOf<{
      alpha: number | null;
      beta: number | null;
      constants: 'deepnet' | 'adam';
      init: 'paper' | 'torchscale';
      perLayerAlpha: boolean;
    }>();
    expectTypeOf(getNorm('admin').parseOptions({}).scale).toEqualTypeOf<'O(logn)' | 'O(1)' | 'O(n)'>();
    expectTypeOf<typeof admin>().toEqualTypeOf<ReturnType<typeof getNorm<'admin'>>>();
    // an unknown (run-time registered) name falls back to the untyped strategy
    expectTypeOf(getNorm('acme/unknown' as string).name).toEqualTypeOf<string>();
  });

  it('wrong option values for a typed strategy are compile errors', () => {
    const d = getNorm('deepnorm');
    const take = (o: OptionsOf<(typeof d)['options']>) => o;
    const ok = take({ alpha: null, beta: 0.3, constants: 'adam', init: 'paper', perLayerAlpha: false });
    // @ts-expect-error init is 'paper' | 'torchscale'
    take({ ...ok, init: 'xavier' });
    // @ts-expect-error alpha is number | null
    take({ ...ok, alpha: '2' });
    const ctx = {} as Parameters<typeof d.createSite>[0];
    const host = {} as Parameters<typeof d.createSite>[2];
    const bad = { ...ok, perLayerAlpha: 1 };
    // @ts-expect-error createSite takes the strategy's options type (perLayerAlpha is a boolean)
    d.createSite(ctx, bad, host);
  });
});
