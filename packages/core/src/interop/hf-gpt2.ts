/**
 * Export and import of GPT-2-shaped Strata GPTs in the Hugging Face GPT-2 layout (`GPT2LMHeadModel`), so a
 * model trained with Strata loads in PyTorch (`transformers`, and the tools built on it) and back.
 *
 * A Hugging Face model directory holds `config.json` ({@link HFGPT2Config}) and `model.safetensors`. The
 * tensor names, shapes and layouts are listed by {@link hfGPT2Layout}; the checkpoint-format guide prints the
 * table. In short (`{i}` = block index, `d` = `n_embd`, `V` = `vocab_size`, `T` = `n_positions`,
 * `F` = `n_inner`):
 *
 * | Hugging Face name | shape | Strata name | layout |
 * |---|---|---|---|
 * | `transformer.wte.weight` | `[V, d]` | `tok_emb.weight` | same |
 * | `transformer.wpe.weight` | `[T, d]` | `pos_emb.weight` | same |
 * | `transformer.h.{i}.ln_1.weight` / `.bias` | `[d]` | `blocks.{i}.attn.norm.weight` / `.bias` | same |
 * | `transformer.h.{i}.attn.c_attn.weight` | `[d, 3d]` | `blocks.{i}.attn.qkv.weight` | same (Conv1D is `[in, out]`; columns q, k, v) |
 * | `transformer.h.{i}.attn.c_attn.bias` | `[3d]` | `blocks.{i}.attn.qkv.bias` | same |
 * | `transformer.h.{i}.attn.c_proj.weight` / `.bias` | `[d, d]` / `[d]` | `blocks.{i}.attn.proj.weight` / `.bias` | same |
 * | `transformer.h.{i}.ln_2.weight` / `.bias` | `[d]` | `blocks.{i}.mlp.norm.weight` / `.bias` | same |
 * | `transformer.h.{i}.mlp.c_fc.weight` / `.bias` | `[d, F]` / `[F]` | `blocks.{i}.mlp.fc.weight` / `.bias` | same |
 * | `transformer.h.{i}.mlp.c_proj.weight` / `.bias` | `[F, d]` / `[d]` | `blocks.{i}.mlp.proj.weight` / `.bias` | same |
 * | `transformer.ln_f.weight` / `.bias` | `[d]` | `final.norm.weight` / `.bias` | same |
 * | `lm_head.weight` (untied only) | `[V, d]` | `lm_head.weight` `[d, V]` | transposed (`nn.Linear` is `[out, in]`) |
 *
 * Why the `transformer.` prefix and no `lm_head.weight` for a tied head: that is what
 * `GPT2LMHeadModel.save_pretrained()` writes. The model's base-model prefix is `transformer`, and safetensors
 * cannot store two names for one shared tensor, so `transformers` drops the tied `lm_head.weight` (it is in
 * the model's tied-weights keys and is re-tied to `wte` on load). The import accepts both that layout and the
 * older one of the hub's original `gpt2` files (no `transformer.` prefix, plus the causal-mask buffers
 * `h.{i}.attn.bias` / `h.{i}.attn.masked_bias`, which hold no weights and are skipped).
 *
 * `model.safetensors` carries `__metadata__: {"format": "pt"}`: `transformers` refuses safetensors files
 * whose metadata `format` is not one of `pt`, `tf`, `flax`, `mlx`.
 *
 * @module
 */
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { formatChoices, isStrataError, StrataError } from '../errors.js';
import { ioError, writeFileAtomic } from '../io/atomic.js';
import { encodeSafetensors, readSafetensorsFile, type SafetensorsTensor } from '../io/safetensors.js';
import type { LanguageModel } from '../model/family.js';
import type { Activation, GPTConfig } from '../model/gpt-config.js';
import { getModelFamily } from '../model/registry.js';

/** Name of the weights file in a Hugging Face model directory. */
export const HF_WEIGHTS_FILE = 'model.safetensors';
/** Name of the sharded-weights index (`weight_map`: tensor name → shard file), read when present. */
export const HF_WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** Name of the model configuration in a Hugging Face model directory. */
export const HF_CONFIG_FILE = 'config.json';

/**
 * The `config.json` of a Hugging Face GPT-2 model (`transformers.GPT2Config`), as {@link exportHFGPT2}
 * writes it. Keys that Strata does not use are kept when reading.
 */
export interface HFGPT2Config {
  /** Always `"gpt2"`. */
  model_type: 'gpt2';
  /** `["GPT2LMHeadModel"]`: the class `AutoModelForCausalLM` instantiates. */
  architectures: string[];
  /** Vocabulary size V. */
  vocab_size: number;
  /** Number of learned positions T (Strata's `contextLength`). */
  n_positions: number;
  /** Legacy alias of `n_positions`, still read by some tools. */
  n_ctx: number;
  /** Residual width d (Strata's `dModel`). */
  n_embd: number;
  /** Number of blocks (Strata's `nLayers`). */
  n_layer: number;
  /** Attention heads (Strata's `nHeads`). */
  n_head: number;
  /** MLP hidden width (Strata's `dFF`; `null` in a file means 4·d). */
  n_inner: number | null;
  /** `gelu_new` (tanh GELU, Strata's `gelu`), `gelu` (exact, Strata's `gelu_erf`) or `relu`. */
  activation_function: string;
  /** LayerNorm epsilon (Strata's `normEps`). */
  layer_norm_epsilon: number;
  /** Whether the output head is the token embedding (Strata's `tiedEmbeddings`). */
  tie_word_embeddings: boolean;
  /** Dropout after attention and MLP outputs (Strata's `dropout`). */
  resid_pdrop: number;
  /** Dropout on the embeddings (Strata's `dropout`). */
  embd_pdrop: number;
  /** Dropout on attention probabilities (Strata's `dropout`). */
  attn_pdrop: number;
  /** Std of the normal init (Strata's `initStd`). */
  initializer_range: number;
  /** Scale attention scores by 1/√head_dim (must be `true`, as in Strata). */
  scale_attn_weights: boolean;
  /** Extra 1/(layer+1) attention scaling (must be `false`). */
  scale_attn_by_inverse_layer_idx: boolean;
  /** Numerics-only option of `transformers` (float32 attention under autocast). */
  reorder_and_upcast_attn: boolean;
  /** Beginning-of-sequence token id (`null`: none, as for Strata's byte tokenizer). */
  bos_token_id: number | null;
  /** End-of-sequence token id (`null`: none). */
  eos_token_id: number | null;
  /** Whether generation caches keys and values. */
  use_cache: boolean;
  /** Element type of the weights file (`float32`). */
  torch_dtype: string;
  [key: string]: unknown;
}

/** One row of the Hugging Face GPT-2 layout: how a Strata parameter is stored in `model.safetensors`. */
export interface HFGPT2TensorSpec {
  /** Name in `model.safetensors` (with the `transformer.` prefix where `save_pretrained` writes it). */
  hfName: string;
  /** Shape in `model.safetensors` (row-major). */
  hfShape: number[];
  /** Strata parameter name (see the `GPT` class). */
  strataName: string;
  /** Strata parameter shape. */
  strataShape: number[];
  /** `true` when the stored matrix is the transpose of Strata's (only the untied `lm_head.weight`). */
  transposed: boolean;
}

/** Options of {@link exportHFGPT2}. */
export interface ExportHFGPT2Options {
  /** `bos_token_id` to record (default `null`: Strata's byte tokenizer has none). */
  bosTokenId?: number | null;
  /** `eos_token_id` to record (default `null`). */
  eosTokenId?: number | null;
}

/** What {@link exportHFGPT2} wrote. */
export interface ExportHFGPT2Result {
  /** Paths of the files written (`model.safetensors`, `config.json`). */
  files: string[];
  /** The `config.json` content. */
  config: HFGPT2Config;
  /** Tensor names in `model.safetensors`. */
  tensors: string[];
}

/** Options of {@link importHFGPT2}. */
export interface ImportHFGPT2Options {
  /** Strata's single `dropout` rate (default 0: the file's `resid_pdrop` is a training setting and is dropped). */
  dropout?: number;
}

const TANH_GELUS = ['gelu_new', 'gelu_pytorch_tanh', 'gelu_fast'];
const ACTIVATION_TO_HF: Partial<Record<Activation, string>> = {
  gelu: 'gelu_new',
  gelu_erf: 'gelu',
  relu: 'relu',
};

/** Unprefixed GPT-2 buffers (not weights) that old `transformers` versions saved. */
const BUFFER_RE = /^h\.\d+\.attn\.(bias|masked_bias)$/;

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * The Hugging Face GPT-2 tensor layout of a GPT config: every tensor of `model.safetensors`, in Strata's
 * parameter order, with its Strata counterpart. `lm_head.weight` is listed only for an untied head.
 *
 * @param config a GPT-2-shaped config (see {@link gpt2ShapeProblems}); only the sizes are used here.
 */
export function hfGPT2Layout(config: GPTConfig): HFGPT2TensorSpec[] {
  const { vocabSize: V, contextLength: T, dModel: d, dFF: F } = config;
  const out: HFGPT2TensorSpec[] = [];
  const same = (hfName: string, strataName: string, shape: number[]) =>
    out.push({ hfName, hfShape: shape, strataName, strataShape: shape, transposed: false });
  same('transformer.wte.weight', 'tok_emb.weight', [V, d]);
  same('transformer.wpe.weight', 'pos_emb.weight', [T, d]);
  for (let i = 0; i < config.nLayers; i++) {
    const h = `transformer.h.${i}`;
    const b = `blocks.${i}`;
    same(`${h}.ln_1.weight`, `${b}.attn.norm.weight`, [d]);
    same(`${h}.ln_1.bias`, `${b}.attn.norm.bias`, [d]);
    same(`${h}.attn.c_attn.weight`, `${b}.attn.qkv.weight`, [d, 3 * d]);
    same(`${h}.attn.c_attn.bias`, `${b}.attn.qkv.bias`, [3 * d]);
    same(`${h}.attn.c_proj.weight`, `${b}.attn.proj.weight`, [d, d]);
    same(`${h}.attn.c_proj.bias`, `${b}.attn.proj.bias`, [d]);
    same(`${h}.ln_2.weight`, `${b}.mlp.norm.weight`, [d]);
    same(`${h}.ln_2.bias`, `${b}.mlp.norm.bias`, [d]);
    same(`${h}.mlp.c_fc.weight`, `${b}.mlp.fc.weight`, [d, F]);
    same(`${h}.mlp.c_fc.bias`, `${b}.mlp.fc.bias`, [F]);
    same(`${h}.mlp.c_proj.weight`, `${b}.mlp.proj.weight`, [F, d]);
    same(`${h}.mlp.c_proj.bias`, `${b}.mlp.proj.bias`, [d]);
  }
  same('transformer.ln_f.weight', 'final.norm.weight', [d]);
  same('transformer.ln_f.bias', 'final.norm.bias', [d]);
  if (!config.tiedEmbeddings)
    out.push({
      hfName: 'lm_head.weight',
      hfShape: [V, d],
      strataName: 'lm_head.weight',
      strataShape: [d, V],
      transposed: true,
    });
  return out;
}

/**
 * What keeps a model from being GPT-2-shaped, one phrase per difference (empty when it is GPT-2-shaped):
 * family `gpt`, learned positions, a GELU or ReLU MLP (not SwiGLU), LayerNorm with bias, biases on the
 * linear maps, the `pre-ln` strategy, decoder-only.
 */
export function gpt2ShapeProblems(family: string, config: Record<string, unknown>): string[] {
  if (family !== 'gpt')
    return [`its model family is "${family}" (only the "gpt" family has a GPT-2 counterpart)`];
  const c = config as Partial<GPTConfig>;
  const problems: string[] = [];
  if (c.positions !== 'learned')
    problems.push(`positions is "${String(c.positions)}" (GPT-2 uses learned absolute positions: "learned")`);
  if (c.activation === undefined || !(c.activation in ACTIVATION_TO_HF))
    problems.push(
      `activation is "${String(c.activation)}" (GPT-2's MLP is c_fc → activation → c_proj: "gelu", "gelu_erf" or "relu")`,
    );
  if (c.normKind !== 'layernorm') problems.push(`normKind is "${String(c.normKind)}" (GPT-2 uses LayerNorm)`);
  if (c.normBias !== true) problems.push('normBias is false (GPT-2 LayerNorms have a bias)');
  if (c.bias !== true) problems.push('bias is false (GPT-2 linear maps have biases)');
  const normName = c.norm?.name;
  if (normName !== 'pre-ln')
    problems.push(`the norm strategy is "${String(normName)}" (GPT-2 is Pre-LN: "pre-ln")`);
  if (c.architecture !== undefined && c.architecture !== 'decoder-only')
    problems.push(`architecture is "${String(c.architecture)}" (GPT-2 is decoder-only)`);
  return problems;
}

function notGPT2Shaped(what: string, problems: string[]): StrataError {
  return new StrataError(
    'E_CONFIG',
    `${what}: the model is not GPT-2-shaped: ${problems.join('; ')}. Only GPT-2-shaped GPTs (learned positions, GELU MLP, LayerNorm with bias, biases, Pre-LN; tied or untied head) map to the Hugging Face GPT-2 layout`,
  );
}

/** The Hugging Face `config.json` for a GPT-2-shaped Strata GPT config. */
export function toHFGPT2Config(config: GPTConfig, options: ExportHFGPT2Options = {}): HFGPT2Config {
  const problems = gpt2ShapeProblems('gpt', config);
  if (problems.length)
    throw notGPT2Shaped('cannot describe the model as a Hugging Face GPT-2 config', problems);
  return {
    activation_function: ACTIVATION_TO_HF[config.activation]!,
    architectures: ['GPT2LMHeadModel'],
    attn_pdrop: config.dropout,
    bos_token_id: options.bosTokenId ?? null,
    embd_pdrop: config.dropout,
    eos_token_id: options.eosTokenId ?? null,
    initializer_range: config.initStd,
    layer_norm_epsilon: config.normEps,
    model_type: 'gpt2',
    n_ctx: config.contextLength,
    n_embd: config.dModel,
    n_head: config.nHeads,
    n_inner: config.dFF,
    n_layer: config.nLayers,
    n_positions: config.contextLength,
    reorder_and_upcast_attn: false,
    resid_pdrop: config.dropout,
    scale_attn_by_inverse_layer_idx: false,
    scale_attn_weights: true,
    tie_word_embeddings: config.tiedEmbeddings,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: config.vocabSize,
  };
}

/** Transposes a row-major `[rows, cols]` matrix. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/**
 * Writes a GPT-2-shaped Strata GPT as a Hugging Face GPT-2 model directory: `model.safetensors` (float32,
 * names and layouts of {@link hfGPT2Layout}, metadata `{"format": "pt"}`) and `config.json`
 * ({@link HFGPT2Config}). `transformers.GPT2LMHeadModel.from_pretrained(dir)` then computes the same logits.
 * Each file is written atomically (other files in `dir`, e.g. a tokenizer, are left alone).
 *
 * @throws StrataError `E_CONFIG` when the model is not GPT-2-shaped, naming every difference (RoPE, SwiGLU,
 *   RMSNorm, another norm strategy, no biases, another model family); `E_IO` when a file cannot be written.
 */
export async function exportHFGPT2(
  model: LanguageModel,
  dir: string,
  options: ExportHFGPT2Options = {},
): Promise<ExportHFGPT2Result> {
  const what = `cannot export to the Hugging Face GPT-2 layout`;
  const problems = gpt2ShapeProblems(model.family, model.config);
  if (problems.length) throw notGPT2Shaped(what, problems);
  // Re-validate through the family, so the config has every field with its final type.
  const config = getModelFamily('gpt').parseConfig(stripNormVersion(model.config)) as GPTConfig;
  const layout = hfGPT2Layout(config);
  const expected = new Set(layout.map((s) => s.strataName));
  const extra = model.params.names().filter((n) => !expected.has(n));
  const missing = [...expected].filter((n) => !model.params.has(n));
  if (extra.length || missing.length)
    throw notGPT2Shaped(what, [
      ...(extra.length ? [`it has parameters GPT-2 lacks (${extra.slice(0, 5).join(', ')})`] : []),
      ...(missing.length ? [`it lacks parameters (${missing.slice(0, 5).join(', ')})`] : []),
    ]);
  const values = await model.params.read();
  const tensors = new Map<string, SafetensorsTensor>();
  for (const spec of layout) {
    const shape = model.params.spec(spec.strataName).shape;
    if (fmtShape(shape) !== fmtShape(spec.strataShape))
      throw new StrataError(
        'E_CONFIG',
        `${what}: parameter ${spec.strataName} has shape ${fmtShape(shape)}, expected ${fmtShape(spec.strataShape)}`,
      );
    const v = values.get(spec.strataName)!;
    const data = spec.transposed ? transpose(v, spec.strataShape[0]!, spec.strataShape[1]!) : v;
    tensors.set(spec.hfName, { dtype: 'F32', shape: spec.hfShape, data });
  }
  const hfConfig = toHFGPT2Config(config, options);
  const weightsPath = join(dir, HF_WEIGHTS_FILE);
  const configPath = join(dir, HF_CONFIG_FILE);
  await writeFileAtomic(weightsPath, encodeSafetensors(tensors, { format: 'pt' }));
  await writeFileAtomic(configPath, `${JSON.stringify(hfConfig, null, 2)}\n`);
  return { files: [weightsPath, configPath], config: hfConfig, tensors: layout.map((s) => s.hfName) };
}

/** The saved norm selection carries the version; configs take `{ name, options }`. */
export function stripNormVersion(model: Record<string, unknown>): Record<string, unknown> {
  const norm = model.norm as { name?: string; options?: unknown } | undefined;
  if (!norm || typeof norm !== 'object') return { ...model };
  return { ...model, norm: { name: norm.name, options: norm.options ?? {} } };
}

function configError(path: string, message: string): StrataError {
  return new StrataError('E_CONFIG', `${path}: ${message}`);
}

/**
 * The Strata GPT config (validated, defaults filled) of a Hugging Face GPT-2 `config.json`.
 *
 * @param raw the parsed `config.json`.
 * @param source the file name for error messages.
 * @throws StrataError `E_CONFIG` naming the field when the config is not a GPT-2 that Strata can compute
 *   exactly (another `model_type`, an unknown activation, cross-attention, `scale_attn_weights: false`,
 *   `scale_attn_by_inverse_layer_idx: true`, missing or invalid sizes).
 */
export function fromHFGPT2Config(
  raw: Record<string, unknown>,
  source = HF_CONFIG_FILE,
  options: ImportHFGPT2Options = {},
): GPTConfig {
  if (raw.model_type !== 'gpt2')
    throw configError(
      source,
      `model_type is ${JSON.stringify(raw.model_type)}; only Hugging Face "gpt2" models can be imported`,
    );
  const problems: string[] = [];
  const act = raw.activation_function ?? 'gelu_new';
  let activation: Activation | undefined;
  if (typeof act === 'string' && TANH_GELUS.includes(act)) activation = 'gelu';
  else if (act === 'gelu') activation = 'gelu_erf';
  else if (act === 'relu') activation = 'relu';
  else
    problems.push(
      `activation_function ${JSON.stringify(act)} is not supported (expected ${formatChoices([...TANH_GELUS, 'gelu', 'relu'])})`,
    );
  if (raw.add_cross_attention === true)
    problems.push('add_cross_attention is true (Strata GPTs have no cross-attention)');
  if (raw.scale_attn_weights === false)
    problems.push('scale_attn_weights is false (Strata always scales scores by 1/√head_dim)');
  if (raw.scale_attn_by_inverse_layer_idx === true)
    problems.push('scale_attn_by_inverse_layer_idx is true (Strata has no per-layer attention scaling)');
  if (problems.length) throw configError(source, `cannot import this GPT-2: ${problems.join('; ')}`);
  const pick = (key: string, fallback?: unknown): unknown => {
    const v = raw[key] ?? fallback;
    if (v === undefined) throw configError(source, `"${key}" is missing`);
    return v;
  };
  const nEmbd = pick('n_embd', 768);
  const strata: Record<string, unknown> = {
    vocabSize: pick('vocab_size', 50257),
    contextLength: pick('n_positions', raw.n_ctx ?? 1024),
    dModel: nEmbd,
    nLayers: pick('n_layer', 12),
    nHeads: pick('n_head', 12),
    dFF: raw.n_inner ?? (typeof nEmbd === 'number' ? 4 * nEmbd : nEmbd),
    activation,
    positions: 'learned',
    normKind: 'layernorm',
    normEps: pick('layer_norm_epsilon', 1e-5),
    normBias: true,
    bias: true,
    tiedEmbeddings: pick('tie_word_embeddings', true),
    // resid_pdrop and friends are training settings: an imported model has no dropout unless asked.
    dropout: options.dropout ?? 0,
    initStd: pick('initializer_range', 0.02),
    norm: { name: 'pre-ln', options: {} },
    architecture: 'decoder-only',
  };
  try {
    return getModelFamily('gpt').parseConfig(strata) as GPTConfig;
  } catch (e) {
    if (isStrataError(e)) throw configError(source, e.message);
    throw e;
  }
}

export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    throw ioError(err, 'read', path);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StrataError('E_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new StrataError('E_CONFIG', `${path} is not a JSON object`);
  return value as Record<string, unknown>;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fsp.access(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads every tensor of the directory's weights (one file, or the shards of an index), as float32. */
export async function readHFWeights(
  dir: string,
): Promise<{ tensors: Map<string, SafetensorsTensor>; source: string }> {
  const single = join(dir, HF_WEIGHTS_FILE);
  const index = join(dir, HF_WEIGHTS_INDEX_FILE);
  let files: string[];
  let source: string;
  if (await exists(single)) {
    files = [single];
    source = single;
  } else if (await exists(index)) {
    const idx = await readJsonObject(index);
    const map = idx.weight_map;
    if (map === null || typeof map !== 'object' || Array.isArray(map))
      throw new StrataError('E_CHECKPOINT', `${index}: "weight_map" must be an object`);
    const shards = new Set<string>();
    for (const v of Object.values(map as Record<string, unknown>)) {
      if (typeof v !== 'string' || v.includes('/') || v.includes('\\') || v.startsWith('.'))
        throw new StrataError('E_CHECKPOINT', `${index}: invalid shard file name ${JSON.stringify(v)}`);
      shards.add(v);
    }
    files = [...shards].sort().map((s) => join(dir, s));
    source = index;
  } else {
    throw new StrataError(
      'E_CHECKPOINT',
      `no Hugging Face weights in ${dir}: expected ${HF_WEIGHTS_FILE} (or ${HF_WEIGHTS_INDEX_FILE}); PyTorch .bin files are not read, convert them to safetensors first`,
    );
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const file of files) {
    const st = await readSafetensorsFile(file);
    for (const [name, t] of st.tensors) {
      if (tensors.has(name))
        throw new StrataError('E_CHECKPOINT', `${file}: tensor "${name}" appears in more than one shard`);
      tensors.set(name, t);
    }
  }
  return { tensors, source };
}

export function toFloat32(name: string, t: SafetensorsTensor, source: string): Float32Array {
  if (t.data instanceof Float32Array) return t.data; // F32, and F16/BF16 (decoded to float32 exactly)
  if (t.data instanceof Float64Array) return Float32Array.from(t.data);
  throw new StrataError(
    'E_CHECKPOINT',
    `${source}: tensor "${name}" is ${t.dtype}; weights must be F32, F16, BF16 or F64`,
  );
}

/**
 * Reads a Hugging Face GPT-2 model directory (`config.json` + `model.safetensors`, or sharded
 * `model.safetensors.index.json`) into a Strata GPT that computes the same function: a `gpt`-family model
 * with learned positions, LayerNorm, biases and the `pre-ln` strategy (tied or untied head per
 * `tie_word_embeddings`).
 *
 * Both name layouts are accepted: `transformer.`-prefixed (`save_pretrained`) and unprefixed (the hub's
 * original `gpt2` files). The causal-mask buffers `h.{i}.attn.bias`/`masked_bias` are skipped; a tied model's
 * `lm_head.weight`, if present, is ignored (`transformers` re-ties it to `wte`). F16, BF16 and F64 weights are
 * converted to float32.
 *
 * @throws StrataError `E_CONFIG` for a config Strata cannot compute exactly (see {@link fromHFGPT2Config});
 *   `E_CHECKPOINT` naming the tensor when one is missing, has the wrong shape or dtype, or is unexpected;
 *   `E_SAFETENSORS` for a corrupt file; `E_IO` when a file cannot be read.
 */
export async function importHFGPT2(dir: string, options: ImportHFGPT2Options = {}): Promise<LanguageModel> {
  const configPath = join(dir, HF_CONFIG_FILE);
  if (!(await exists(configPath)))
    throw new StrataError('E_CHECKPOINT', `no Hugging Face model at ${dir}: ${HF_CONFIG_FILE} is missing`);
  const config = fromHFGPT2Config(await readJsonObject(configPath), configPath, options);
  const { tensors, source } = await readHFWeights(dir);
  const prefixed = [...tensors.keys()].some((k) => k.startsWith('transformer.'));
  const stored = (hfName: string) =>
    prefixed || hfName === 'lm_head.weight' ? hfName : hfName.slice('transformer.'.length);
  const layout = hfGPT2Layout(config);
  const values = new Map<string, Float32Array>();
  const used = new Set<string>();
  const missing: string[] = [];
  for (const spec of layout) {
    const name = stored(spec.hfName);
    const t = tensors.get(name);
    if (!t) {
      missing.push(name);
      continue;
    }
    used.add(name);
    if (fmtShape(t.shape) !== fmtShape(spec.hfShape))
      throw new StrataError(
        'E_CHECKPOINT',
        `${source}: tensor "${name}" has shape ${fmtShape(t.shape)}, but ${HF_CONFIG_FILE} implies ${fmtShape(spec.hfShape)}`,
      );
    const data = toFloat32(name, t, source);
    values.set(spec.strataName, spec.transposed ? transpose(data, spec.hfShape[0]!, spec.hfShape[1]!) : data);
  }
  if (missing.length)
    throw new StrataError(
      'E_CHECKPOINT',
      `${source}: missing tensor(s) ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? `, … (${missing.length} in all)` : ''}` +
        (missing.includes('lm_head.weight') ? ' (config.json says tie_word_embeddings: false)' : ''),
    );
  const unexpected = [...tensors.keys()].filter(
    (k) =>
      !used.has(k) &&
      !BUFFER_RE.test(prefixed ? k.replace(/^transformer\./, '') : k) &&
      !(k === 'lm_head.weight' && config.tiedEmbeddings),
  );
  if (unexpected.length)
    throw new StrataError(
      'E_CHECKPOINT',
      `${source}: unexpected tensor(s) ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', …' : ''} (not part of GPT2LMHeadModel with this config.json)`,
    );
  const model = getModelFamily('gpt').create(config, { seed: 0 });
  try {
    model.params.assign(values, source);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
