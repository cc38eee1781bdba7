/**
 * The Strata playground: builds small GPTs with the chosen residual-normalization strategies, trains them side
 * by side (one step of each in turn) on the chosen tfjs backend, draws the loss curves and the per-block
 * gradient norms with core's SVG line chart, and samples text from each model at the end.
 *
 * URL parameters preset the form (`backend`, `strategies`, `layers`, `width`, `heads`, `context`, `batch`,
 * `steps`, `lr`); `autostart=1` trains at once. `window.playground` exposes the state (the browser test and the
 * measurement script read it).
 */
import {
  ByteTokenizer,
  generate,
  initBackend,
  type LanguageModel,
  lineChartSVG,
  listNorms,
  registerGradients,
  type Series,
  type StepMetrics,
  strataKernelsActive,
  strataKernelsError,
  TextDataset,
  Trainer,
} from '@strata/core';
import { registerNGPT } from '@strata/ngpt';
import { registerBuiltinNorms } from '@strata/norms';
import { getThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import {
  familyOf,
  modelConfig,
  NGPT,
  type PlaygroundSettings,
  type PlaygroundState,
  type RunSummary,
  SEEDS,
  trainConfig,
} from './setup.js';

/** One model being trained. */
interface Run extends Pick<RunSummary, 'strategy' | 'losses' | 'valLosses' | 'gradNorms' | 'sample'> {
  color: string;
  model: LanguageModel;
  trainer: Trainer;
  /** The step whose diagnostics `gradNorms` are. */
  gradNormsStep: number;
  last?: StepMetrics;
  /** Wall seconds of each step after the first (the first compiles shaders / kernels). */
  stepSeconds: number[];
}

const PALETTE = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
/** Strategies offered (those `@strata/norms` registers for the GPT, and nGPT), with the first three checked. */
const OFFERED = [
  'post-ln',
  'pre-ln',
  'deepnorm',
  'sandwich-ln',
  'rezero',
  'admin',
  'layerscale',
  'subln',
  NGPT,
];
const DEFAULT_CHECKED = ['post-ln', 'pre-ln', 'deepnorm'];
const PROMPT = 'The ';
/** Bytes each model samples after training (URL parameter `sample`). */
let sampleTokens = 160;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

const exposed: PlaygroundState = { state: 'loading', corpusBytes: 0, runs: [], redraws: 0 };
(window as unknown as { playground: PlaygroundState }).playground = exposed;

let runs: Run[] = [];
let stopRequested = false;
let corpus = '';
let dataset: TextDataset | undefined;
const tokenizer = new ByteTokenizer();

function setState(s: PlaygroundState['state'], text?: string): void {
  exposed.state = s;
  $('state').textContent = text ?? s;
}

function showError(e: unknown): void {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  exposed.error = msg;
  $('error').textContent = msg;
  setState('error', 'error');
  console.error(e);
}

function numberInput(id: string, min: number, max: number): number {
  const el = $<HTMLInputElement>(id);
  const v = Number(el.value);
  if (!Number.isFinite(v) || v < min || v > max)
    throw new Error(`${id} must be a number in [${min}, ${max}], got "${el.value}"`);
  return v;
}

/** The WebGL renderer's name (the unmasked one where the browser tells). */
function webglDevice(): string {
  // biome-ignore lint/suspicious/noExplicitAny: the webgl backend's class is not part of tfjs-core's types
  const gl = (tf.backend() as any).gpgpu?.gl as WebGL2RenderingContext | undefined;
  if (!gl) return 'WebGL';
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  const f32 = tf.env().getBool('WEBGL_RENDER_FLOAT32_ENABLED') ? 'float32 textures' : 'float16 textures';
  return `${renderer}; WebGL ${tf.env().getNumber('WEBGL_VERSION')}, ${f32}`;
}

/** The wasm backend's threads and SIMD (threads need a cross-origin-isolated page; the playground's server makes it one). */
function wasmDevice(): string {
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'SIMD' : 'no SIMD';
  const threads = getThreadsCount();
  const kernels = strataKernelsActive()
    ? "Strata's kernels"
    : `tfjs's kernels (Strata's: ${strataKernelsError() ?? 'off'})`;
  return `WebAssembly, ${simd}, ${threads} thread${threads === 1 ? '' : 's'}, ${kernels}`;
}

let activeBackend = '';
/** Activates the chosen backend once (tfjs keeps one per page: switching needs a reload, which the form does). */
async function activate(name: string): Promise<void> {
  if (activeBackend === name) return;
  if (activeBackend !== '') {
    const url = new URL(location.href);
    url.searchParams.set('backend', name);
    url.searchParams.set('autostart', '1');
    location.href = url.href;
    await new Promise(() => {}); // the page is leaving
  }
  let device: string;
  if (name === 'webgl') {
    // Strata's initBackend knows the Node backends and the browser's wasm/webgpu/cpu; webgl is set up here.
    await registerGradients();
    if (!(await tf.setBackend('webgl')))
      throw new Error('this browser cannot run the webgl backend (no WebGL 2?)');
    await tf.ready();
    device = webglDevice();
  } else {
    if (name === 'wasm') setWasmPaths(new URL('./', location.href).href);
    const active = await initBackend(name);
    device = active.device ?? (name === 'wasm' ? wasmDevice() : 'JavaScript');
  }
  activeBackend = name;
  exposed.backend = { name, device };
  $('backend-line').textContent = `backend: ${name} — ${device}`;
}

function chosenStrategies(): string[] {
  return [...document.querySelectorAll<HTMLInputElement>('#strategies input:checked')].map((i) => i.value);
}

function secondsPerStep(r: Run): number {
  const s = r.stepSeconds;
  return s.length ? s.reduce((a, b) => a + b, 0) / s.length : Number.NaN;
}

function publish(): void {
  exposed.runs = runs.map((r) => ({
    strategy: r.strategy,
    steps: r.trainer.state.step,
    losses: r.losses.slice(),
    valLosses: r.valLosses.slice(),
    gradNorms: r.gradNorms.slice(),
    secondsPerStep: secondsPerStep(r),
    sample: r.sample,
  }));
}

function draw(): void {
  const loss: Series[] = runs.flatMap((r) => [
    { label: r.strategy, points: r.losses, color: r.color },
    ...(r.valLosses.length
      ? [{ label: `${r.strategy} (val)`, points: r.valLosses, color: r.color, markers: true }]
      : []),
  ]);
  $('loss-chart').innerHTML = lineChartSVG(loss, {
    title: 'training loss (nats per byte)',
    xLabel: 'step',
    yLabel: 'loss',
    width: 620,
    height: 360,
    hLines: [{ y: Math.log(256), label: 'ln 256' }],
    yMin: 0,
    yMax: Math.max(Math.log(256) * 1.15, ...runs.flatMap((r) => r.losses.slice(0, 1).map(([, l]) => l))),
  });
  const grads: Series[] = runs
    .filter((r) => r.gradNorms.length > 0)
    .map((r) => ({
      label: `${r.strategy} (step ${r.gradNormsStep})`,
      points: r.gradNorms.map((g, i) => [i + 1, g] as [number, number]),
      color: r.color,
    }));
  $('grad-chart').innerHTML = lineChartSVG(grads, {
    title: 'gradient norm of each block (latest diagnostics step)',
    xLabel: 'block',
    yLabel: '‖∇ block‖',
    width: 620,
    height: 360,
    logY: true,
  });
  const body = $('runs').querySelector('tbody')!;
  body.innerHTML = '';
  for (const r of runs) {
    const tr = document.createElement('tr');
    const val = r.valLosses.at(-1)?.[1];
    const cells = [
      `<span class="swatch" style="background:${r.color}"></span>${r.strategy}`,
      String(r.trainer.state.step),
      r.last ? r.last.loss.toFixed(3) : '–',
      val !== undefined ? val.toFixed(3) : '–',
      r.last ? r.last.gradNorm.toPrecision(3) : '–',
      Number.isFinite(secondsPerStep(r)) ? secondsPerStep(r).toFixed(3) : '–',
    ];
    tr.innerHTML = cells.map((c) => `<td>${c}</td>`).join('');
    body.appendChild(tr);
  }
  exposed.redraws++;
  publish();
}

function drawSamples(): void {
  const box = $('samples');
  box.innerHTML = '';
  for (const r of runs) {
    const div = document.createElement('div');
    const h = document.createElement('h3');
    h.textContent = `${r.strategy}: sample`;
    h.style.color = r.color;
    const pre = document.createElement('pre');
    pre.textContent = r.sample;
    div.append(h, pre);
    box.appendChild(div);
  }
}

function disposeRuns(): void {
  for (const r of runs) {
    r.trainer.dispose();
    r.model.dispose();
  }
  runs = [];
}

async function train(): Promise<void> {
  const backend = $<HTMLSelectElement>('backend').value;
  const strategies = chosenStrategies();
  if (strategies.length === 0) throw new Error('choose at least one norm strategy');
  const settings: PlaygroundSettings = {
    strategies,
    nLayers: numberInput('layers', 1, 64),
    dModel: numberInput('width', 8, 256),
    nHeads: numberInput('heads', 1, 16),
    contextLength: numberInput('context', 8, 256),
    batchSize: numberInput('batch', 1, 64),
    steps: numberInput('steps', 1, 5000),
    lr: numberInput('lr', 1e-5, 0.1),
  };
  const { steps } = settings;
  $('error').textContent = '';
  exposed.error = undefined;
  setState('loading', `starting ${backend}…`);
  await activate(backend);
  dataset ??= new TextDataset(corpus, tokenizer, { valFraction: SEEDS.valFraction, seed: SEEDS.data });
  disposeRuns();
  const evalEvery = trainConfig(settings, strategies[0]!).evalEvery;
  runs = strategies.map((strategy, i) => {
    const model = familyOf(strategy).create(modelConfig(settings, strategy), { seed: SEEDS.model });
    return {
      strategy,
      color: PALETTE[i % PALETTE.length]!,
      model,
      trainer: new Trainer(model, dataset!, trainConfig(settings, strategy)),
      losses: [],
      valLosses: [],
      gradNorms: [],
      gradNormsStep: 0,
      stepSeconds: [],
      sample: '',
    };
  });
  drawSamples();
  stopRequested = false;
  $<HTMLButtonElement>('stop').disabled = false;
  $<HTMLButtonElement>('train').disabled = true;
  setState('training', 'training…');
  let lastDraw = 0;
  try {
    for (let s = 0; s < steps && !stopRequested; s++) {
      for (const r of runs) {
        const t0 = performance.now();
        const m = await r.trainer.step();
        if (s > 0) r.stepSeconds.push((performance.now() - t0) / 1000);
        r.last = m;
        r.losses.push([m.step, m.loss]);
        if (m.diagnostics?.layerGradNorms.length) {
          r.gradNorms = m.diagnostics.layerGradNorms;
          r.gradNormsStep = m.step;
        }
        if (m.step % evalEvery === 0 || m.step === steps) {
          r.valLosses.push([m.step, (await r.trainer.evaluate()).loss]);
        }
      }
      setState('training', `training: step ${s + 1} of ${steps}`);
      if (performance.now() - lastDraw > 400 || s === steps - 1 || s < 3) {
        draw();
        lastDraw = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint
      }
    }
    draw();
    setState('sampling', 'sampling…');
    for (const r of runs) {
      const ids = await generate(r.model, Array.from(tokenizer.encode(PROMPT)), {
        maxTokens: sampleTokens,
        temperature: 0.8,
        topK: 40,
        seed: 1,
      });
      r.sample = PROMPT + tokenizer.decode(ids); // generate returns the continuation
      drawSamples();
    }
    publish();
    setState('done', stopRequested ? 'stopped' : `done: ${runs[0]?.trainer.state.step ?? 0} steps`);
  } finally {
    $<HTMLButtonElement>('stop').disabled = true;
    $<HTMLButtonElement>('train').disabled = false;
  }
}

async function main(): Promise<void> {
  registerBuiltinNorms();
  registerNGPT();
  const known = new Set([...listNorms().map((n) => n.name), NGPT]);
  const params = new URL(location.href).searchParams;
  const preset = params.get('strategies')?.split(',') ?? DEFAULT_CHECKED;
  const box = $('strategies');
  for (const name of OFFERED.filter((n) => known.has(n))) {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.value = name;
    input.checked = preset.includes(name);
    label.append(input, name === NGPT ? 'nGPT' : name);
    box.appendChild(label);
  }
  for (const id of ['backend', 'layers', 'width', 'heads', 'context', 'batch', 'steps', 'lr']) {
    const v = params.get(id);
    if (v !== null) $<HTMLInputElement>(id).value = v;
  }
  const sample = Number(params.get('sample') ?? sampleTokens);
  if (Number.isInteger(sample) && sample >= 0) sampleTokens = sample;
  if (!params.has('backend') && !('gpu' in navigator)) $<HTMLSelectElement>('backend').value = 'webgl';
  const res = await fetch('corpus.txt');
  if (!res.ok) throw new Error(`corpus.txt: HTTP ${res.status}`);
  corpus = await res.text();
  exposed.corpusBytes = corpus.length;
  $('controls').addEventListener('submit', (ev) => {
    ev.preventDefault();
    train().catch(showError);
  });
  $('stop').addEventListener('click', () => {
    stopRequested = true;
  });
  setState('idle', `ready: ${(corpus.length / 1000).toFixed(0)} kB of text`);
  if (params.get('autostart') === '1') await train();
}

main().catch(showError);
