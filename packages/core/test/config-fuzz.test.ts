import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { getModelFamily, isStrataError, parseTrainConfig, selectNorm } from '../src/index.js';

/** Values a hostile or mistaken config file could hold. */
const anyJson = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom(
      null,
      true,
      false,
      0,
      -1,
      1.5,
      Number.POSITIVE_INFINITY,
      Number.NaN,
      '',
      'gelu',
      'rope',
      'pre-ln',
      '__proto__',
    ),
    fc.integer({ min: -1e6, max: 1e6 }),
    fc.double(),
    fc.string(),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

const gptKeys = [
  'vocabSize',
  'contextLength',
  'dModel',
  'nLayers',
  'nHeads',
  'dFF',
  'activation',
  'positions',
  'ropeBase',
  'normKind',
  'normEps',
  'normBias',
  'bias',
  'tiedEmbeddings',
  'dropout',
  'initStd',
  'initScheme',
  'norm',
  'architecture',
];
const trainKeys = [
  'steps',
  'batchSize',
  'seqLen',
  'lr',
  'minLr',
  'warmupSteps',
  'decay',
  'beta1',
  'beta2',
  'eps',
  'weightDecay',
  'gradClip',
  'seed',
  'evalEvery',
  'evalBatches',
  'checkpointEvery',
  'valFraction',
  'onNonFinite',
  'diagnosticsEvery',
  'scheduleSteps',
  'explodeFactor',
  'explodePatience',
];
/** Mostly-valid configs with a few keys replaced by arbitrary values (the interesting region). */
const mutated = (keys: string[]) =>
  fc.dictionary(fc.constantFrom(...keys, 'unknownKey'), anyJson, { maxKeys: 4 });

function outcome(fn: () => unknown): 'ok' | 'typed-error' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (isStrataError(e)) return 'typed-error';
    throw e; // any other error type is a bug: fast-check shrinks and reports it
  }
}

describe('config parsing is total: every input parses or fails with a StrataError', () => {
  it('GPT model configs', () => {
    const fam = getModelFamily('gpt');
    fc.assert(
      fc.property(fc.oneof(anyJson, mutated(gptKeys)), (raw) => {
        const r = outcome(() => fam.parseConfig(raw));
        if (r === 'ok') {
          const cfg = fam.parseConfig(raw) as { dModel: number; nHeads: number };
          expect(cfg.dModel % cfg.nHeads).toBe(0);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('training configs', () => {
    fc.assert(
      fc.property(fc.oneof(anyJson, mutated(trainKeys)), (raw) => {
        if (outcome(() => parseTrainConfig(raw, 64)) === 'ok') {
          const c = parseTrainConfig(raw, 64);
          expect(c.seqLen).toBeLessThanOrEqual(64);
          expect(c.minLr).toBeLessThanOrEqual(c.lr);
          expect(
            c.scheduleSteps === null || (Number.isInteger(c.scheduleSteps) && c.scheduleSteps >= 1),
          ).toBe(true);
          expect(Number.isFinite(c.explodeFactor) && c.explodeFactor >= 0).toBe(true);
          expect(Number.isInteger(c.explodePatience) && c.explodePatience >= 1).toBe(true);
        }
      }),
      { numRuns: 800 },
    );
  });

  it('norm selections', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constant('pre-ln'), fc.string()), anyJson, (name, options) => {
        outcome(() => selectNorm(name, options));
      }),
      { numRuns: 500 },
    );
  });
});
