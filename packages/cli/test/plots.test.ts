import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bandChart, PALETTE, renderSVG, runLossChart, sensitivityChart, writePlot } from '../src/plots.js';

const tmp = mkdtempSync(join(tmpdir(), 'strata-plots-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('plots (Vega-Lite → SVG)', () => {
  it('a band chart gives each variant its own colour and dash, SI ticks, and zooms past the initial loss', async () => {
    const series = ['a', 'b', 'c'].map((label, k) => ({
      label,
      points: [0, 1000, 2000, 3000].map((x) => {
        const m = x === 0 ? 5.5 : 1 + k * 0.1 + 1000 / (x + 1000);
        return { x, mean: m, lo: m - 0.05, hi: m + 0.05, n: 3 };
      }),
    }));
    const spec = bandChart(series, {
      title: 'T',
      xLabel: 'tokens',
      yLabel: 'loss',
      hLines: [{ y: 5.55, label: 'ln 256' }],
    });
    const svg = await renderSVG(spec);
    for (const c of PALETTE.slice(0, 3)) expect(svg.toLowerCase()).toContain(c.toLowerCase());
    expect(svg).toContain('3k'); // SI-formatted ticks, not 3.0e+3
    expect(svg).not.toMatch(/e\+\d/);
    // the initial 5.5 is outside the zoomed range; so is the uniform line (not drawn outside the plot)
    const y = (spec as { layer: { layer: { encoding: { y: { scale: { domain: number[] } } } }[] }[] })
      .layer[0]!.layer[1]!.encoding.y.scale.domain;
    expect(y[1]).toBeLessThan(2.6);
    expect(svg).not.toContain('ln 256');
    // a reference line inside the range shares the zoomed scale instead of widening it back to zero
    const withTarget = bandChart(series, {
      title: 'T',
      xLabel: 'x',
      yLabel: 'y',
      hLines: [{ y: 1.5, label: 'target' }],
    });
    const ref = (withTarget as { layer: { encoding?: { y: { scale: { domain: number[] } } } }[] }).layer[1]!;
    expect(ref.encoding!.y.scale.domain).toEqual(y);
    expect(await renderSVG(withTarget)).toContain('target');
  });

  it('the learning-rate sensitivity marks diverged cells instead of dropping them, and writes data and spec', async () => {
    const spec = sensitivityChart(
      [
        { variant: 'a', lr: 1e-3, mean: 1, lo: 0.9, hi: 1.1, runs: 3, diverged: 0, stalled: 0 },
        {
          variant: 'a',
          lr: 2e-3,
          mean: Number.NaN,
          lo: Number.NaN,
          hi: Number.NaN,
          runs: 3,
          diverged: 3,
          stalled: 0,
        },
      ],
      { title: 'S', xLabel: 'lr', yLabel: 'loss', logX: true, ceiling: Math.log(32) },
    );
    const file = await writePlot(tmp, 'sens', spec);
    expect(file).toBe('sens.svg');
    expect(readFileSync(join(tmp, 'sens.svg'), 'utf8')).toContain('3/3 diverged');
    const csv = readFileSync(join(tmp, 'sens.csv'), 'utf8').trim().split('\n');
    expect(csv).toHaveLength(3);
    expect(csv[2]).toMatch(/^a,0.002,,,,3,3,0,3\/3 diverged$/);
    expect(JSON.parse(readFileSync(join(tmp, 'sens.vl.json'), 'utf8')).$schema).toMatch(/vega-lite/);
  });

  it('the sensitivity y range reaches ln V only when a failed cell is drawn there', () => {
    const ok = { variant: 'a', lr: 1e-3, mean: 2, lo: 1.9, hi: 2.1, runs: 3, diverged: 0, stalled: 0 };
    const o = { title: 'S', xLabel: 'lr', yLabel: 'loss', logX: true, ceiling: Math.log(256) };
    const domainOf = (spec: unknown) =>
      JSON.stringify(spec)
        .match(/"domain":\[([-0-9.e]+),([-0-9.e]+)\]/)!
        .slice(1)
        .map(Number);
    const [lo, hi] = domainOf(sensitivityChart([ok, { ...ok, lr: 2e-3, mean: 2.2, hi: 2.3 }], o));
    expect(lo).toBeLessThan(1.9);
    expect(hi).toBeCloseTo(2.3 + 0.05 * 0.4, 10);
    const failed = { ...ok, lr: 4e-3, mean: Number.NaN, lo: Number.NaN, hi: Number.NaN, diverged: 3 };
    expect(domainOf(sensitivityChart([ok, failed], o))[1]).toBeCloseTo(Math.log(256), 10);
  });

  it("a run's loss plot marks a new schedule phase and names the run, not the command", async () => {
    const train = Array.from({ length: 100 }, (_, i) => [i + 1, 3 - i / 50] as [number, number]);
    const svg = await renderSVG(
      runLossChart(
        {
          train,
          val: [
            [50, 2],
            [100, 1.1],
          ],
          phases: [60],
          vocabSize: 32,
        },
        { title: 'gpt/pre-ln: loss' },
      ),
    );
    expect(svg).toContain('new phase at step 60');
    expect(svg).toContain('gpt/pre-ln: loss');
    expect(svg).toContain('validation loss');
  });
});
