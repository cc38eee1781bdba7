/**
 * Hand-off to microsoft/torchscale, the reference code of DeepNet (DeepNorm), Magneto (SubLN) and their
 * Post-LN / Pre-LN baselines: a Strata decoder (`gpt`) or encoder (`encoder`) with learned or no positions,
 * LayerNorm, biases and an erf-GELU or ReLU MLP is torchscale's `Decoder` / `Encoder`, tensor for tensor.
 * `{i}` = block, `d` = embed dim, `F` = FFN dim, `V` = vocabulary, `T` = context:
 *
 * | torchscale name | shape | Strata parameter | layout |
 * |---|---|---|---|
 * | `embed_tokens.weight` | `[V, d]` | `tok_emb.weight` | same |
 * | `embed_positions.weight` (learned positions) | `[T + 2, d]` | `pos_emb.weight` `[T, d]` | rows 2… (fairseq offset; rows 0, 1 zero) |
 * | `layers.{i}.self_attn.{q,k,v}_proj.weight` | `[d, d]` | `blocks.{i}.attn.qkv.weight` columns q \| k \| v | transposed |
 * | `layers.{i}.self_attn.{q,k,v}_proj.bias` | `[d]` | `blocks.{i}.attn.qkv.bias` slices | same |
 * | `layers.{i}.self_attn.out_proj.weight` / `.bias` | `[d, d]` / `[d]` | `blocks.{i}.attn.proj.*` | transposed / same |
 * | `layers.{i}.self_attn.inner_attn_ln.*` (SubLN) | `[d]` | `blocks.{i}.attn.inner_norm.*` | same |
 * | `layers.{i}.self_attn_layer_norm.*` | `[d]` | `blocks.{i}.attn.norm.*` | same |
 * | `layers.{i}.ffn.fc1.weight` / `.bias` | `[F, d]` / `[F]` | `blocks.{i}.mlp.fc.*` | transposed / same |
 * | `layers.{i}.ffn.ffn_layernorm.*` (SubLN) | `[F]` | `blocks.{i}.mlp.inner_norm.*` | same |
 * | `layers.{i}.ffn.fc2.weight` / `.bias` | `[d, F]` / `[d]` | `blocks.{i}.mlp.proj.*` | transposed / same |
 * | `layers.{i}.final_layer_norm.*` | `[d]` | `blocks.{i}.mlp.norm.*` | same |
 * | `layer_norm.*` (Pre-LN, SubLN) | `[d]` | `final.norm.*` | same |
 * | `output_projection.weight` | `[V, d]` | `lm_head.weight` `[d, V]` (untied) or `tok_emb.weight` (tied) | transposed / same |
 *
 * The config flags torchscale needs per strategy (its `postprocessing()` turns `subln` on by default and,
 * for `deepnorm`, switches off `encoder_normalize_before` but not `decoder_normalize_before`):
 * Pre-LN `normalize_before=True, subln=False, deepnorm=False`; Post-LN `normalize_before=False, subln=False,
 * deepnorm=False`; DeepNorm `normalize_before=False, deepnorm=True, subln=False`; SubLN
 * `normalize_before=True, subln=True, deepnorm=False`. Always `no_scale_embedding=True` (Strata does not scale
 * embeddings by √d), `activation_fn="gelu"` for Strata's `gelu_erf` (torchscale's GELU is `F.gelu`, the erf
 * form), and no dropout.
 *
 * @module
 */
import type { LanguageModel } from '../model/family.js';
import type { GPTConfig } from '../model/gpt-config.js';
import { HF_CONFIG_FILE } from './hf-gpt2.js';
import {
  configRefusal,
  type ExportLayoutResult,
  exportLayout,
  type ImportedConfig,
  importLayout,
  type LayoutFormat,
  type TensorMapping,
} from './layout.js';

/** Offset of torchscale's (fairseq's) learned positions: position t is row t + 2 of `embed_positions`. */
export const TORCHSCALE_POSITION_OFFSET = 2;

const STRATEGIES = ['pre-ln', 'post-ln', 'deepnorm', 'subln'];

/** torchscale's DeepNorm α for a single stack of `layers` blocks: (2·layers)^¼ (decoder.py, encoder.py). */
function torchscaleAlpha(layers: number): number {
  return (2 * layers) ** 0.25;
}

/** Every reason a model cannot be written as a torchscale `Decoder`/`Encoder` (empty when it can). */
export function torchscaleProblems(family: string, config: Readonly<Record<string, unknown>>): string[] {
  if (family === 'encdec')
    return [
      'it is an encoder-decoder; the torchscale export covers decoder-only (gpt) and encoder-only (encoder) models',
    ];
  if (family !== 'gpt' && family !== 'encoder')
    return [
      `its model family is "${family}" (torchscale's Decoder/Encoder match the "gpt" and "encoder" families)`,
    ];
  const c = config as Partial<GPTConfig>;
  const p: string[] = [];
  const norm = c.norm as { name?: string; options?: Record<string, unknown> } | undefined;
  if (!STRATEGIES.includes(String(norm?.name)))
    p.push(`the norm strategy is "${String(norm?.name)}" (torchscale has ${STRATEGIES.join(', ')})`);
  if (norm?.name === 'deepnorm') {
    const o = norm.options ?? {};
    const want = torchscaleAlpha(c.nLayers ?? 0);
    if (o.constants === 'adam')
      p.push('DeepNorm uses constants "adam" (torchscale has the paper\'s α = (2N)^¼)');
    if (typeof o.alpha === 'number' && Math.abs(o.alpha - want) > 1e-12 * want)
      p.push(
        `DeepNorm's α is pinned to ${o.alpha} (torchscale computes (2·${c.nLayers})^¼ = ${want} from the depth)`,
      );
    if (o.perLayerAlpha === true) p.push('DeepNorm stores a per-layer α (torchscale has one α per stack)');
  }
  if (c.positions === 'rope') p.push('positions is "rope" (torchscale has learned positions or none)');
  if (c.activation !== 'gelu_erf' && c.activation !== 'relu')
    p.push(
      `activation is "${String(c.activation)}" (torchscale's FFN is fc1 → gelu (erf) or relu → fc2: "gelu_erf" or "relu")`,
    );
  if (c.normKind !== 'layernorm') p.push(`normKind is "${String(c.normKind)}" (torchscale uses LayerNorm)`);
  if (c.normBias !== true) p.push('normBias is false (torchscale LayerNorms have a bias)');
  if (c.bias !== true) p.push('bias is false (torchscale linear maps have biases)');
  return p;
}

function stackOf(family: string): 'decoder' | 'encoder' {
  return family === 'encoder' ? 'encoder' : 'decoder';
}

/** The torchscale tensor layout (`Decoder`/`Encoder` state dict) of a config of the `gpt` or `encoder` family. */
export function torchscaleLayout(family: string, config: GPTConfig): TensorMapping[] {
  const { vocabSize: V, contextLength: T, dModel: d, dFF: F } = config;
  const strategy = config.norm.name;
  const rows: TensorMapping[] = [
    { name: 'embed_tokens.weight', shape: [V, d], strata: 'tok_emb.weight', strataShape: [V, d] },
  ];
  if (config.positions === 'learned')
    rows.push({
      name: 'embed_positions.weight',
      shape: [T + TORCHSCALE_POSITION_OFFSET, d],
      strata: 'pos_emb.weight',
      strataShape: [T, d],
      at: TORCHSCALE_POSITION_OFFSET,
    });
  const ln = (name: string, strata: string, n: number) => {
    rows.push({ name: `${name}.weight`, shape: [n], strata: `${strata}.weight`, strataShape: [n] });
    rows.push({ name: `${name}.bias`, shape: [n], strata: `${strata}.bias`, strataShape: [n] });
  };
  const linear = (name: string, strata: string, fanIn: number, fanOut: number) => {
    rows.push({
      name: `${name}.weight`,
      shape: [fanOut, fanIn],
      strata: `${strata}.weight`,
      strataShape: [fanIn, fanOut],
      transpose: true,
    });
    rows.push({ name: `${name}.bias`, shape: [fanOut], strata: `${strata}.bias`, strataShape: [fanOut] });
  };
  for (let i = 0; i < config.nLayers; i++) {
    const L = `layers.${i}`;
    const b = `blocks.${i}`;
    ['q', 'k', 'v'].forEach((x, j) => {
      const cols: [number, number] = [j * d, (j + 1) * d];
      rows.push({
        name: `${L}.self_attn.${x}_proj.weight`,
        shape: [d, d],
        strata: `${b}.attn.qkv.weight`,
        strataShape: [d, 3 * d],
        cols,
        transpose: true,
      });
      rows.push({
        name: `${L}.self_attn.${x}_proj.bias`,
        shape: [d],
        strata: `${b}.attn.qkv.bias`,
        strataShape: [3 * d],
        cols,
      });
    });
    linear(`${L}.self_attn.out_proj`, `${b}.attn.proj`, d, d);
    if (strategy === 'subln') ln(`${L}.self_attn.inner_attn_ln`, `${b}.attn.inner_norm`, d);
    ln(`${L}.self_attn_layer_norm`, `${b}.attn.norm`, d);
    linear(`${L}.ffn.fc1`, `${b}.mlp.fc`, d, F);
    if (strategy === 'subln') ln(`${L}.ffn.ffn_layernorm`, `${b}.mlp.inner_norm`, F);
    linear(`${L}.ffn.fc2`, `${b}.mlp.proj`, F, d);
    ln(`${L}.final_layer_norm`, `${b}.mlp.norm`, d);
  }
  if (strategy === 'pre-ln' || strategy === 'subln') ln('layer_norm', 'final.norm', d);
  rows.push(
    config.tiedEmbeddings
      ? {
          name: 'output_projection.weight',
          shape: [V, d],
          strata: 'tok_emb.weight',
          strataShape: [V, d],
          alias: true,
        }
      : {
          name: 'output_projection.weight',
          shape: [V, d],
          strata: 'lm_head.weight',
          strataShape: [d, V],
          transpose: true,
        },
  );
  void family;
  return rows;
}

/**
 * The keyword arguments of torchscale's `DecoderConfig` / `EncoderConfig` for a config, with every flag
 * that matters written out (see the module comment), plus how to build the modules around it.
 */
export function toTorchscaleConfig(family: string, config: GPTConfig): Record<string, unknown> {
  const stack = stackOf(family);
  const s = config.norm.name;
  const kwargs: Record<string, unknown> = {
    [`${stack}_embed_dim`]: config.dModel,
    [`${stack}_attention_heads`]: config.nHeads,
    [`${stack}_ffn_embed_dim`]: config.dFF,
    [`${stack}_layers`]: config.nLayers,
    [`${stack}_normalize_before`]: s === 'pre-ln' || s === 'subln',
    deepnorm: s === 'deepnorm',
    subln: s === 'subln',
    activation_fn: config.activation === 'relu' ? 'relu' : 'gelu',
    dropout: 0,
    attention_dropout: 0,
    activation_dropout: 0,
    drop_path_rate: 0,
    no_scale_embedding: true,
    layernorm_embedding: false,
    layernorm_eps: config.normEps,
    vocab_size: config.vocabSize,
    [stack === 'decoder' ? 'share_decoder_input_output_embed' : 'share_encoder_input_output_embed']:
      config.tiedEmbeddings,
    [stack === 'decoder' ? 'max_target_positions' : 'max_source_positions']: config.contextLength,
    rel_pos_buckets: 0,
    max_rel_pos: 0,
    xpos_rel_pos: false,
    multiway: false,
    moe_freq: 0,
    bert_init: false,
    no_output_layer: false,
    ...(stack === 'encoder' ? { normalize_output: true } : {}),
  };
  return {
    format: 'torchscale',
    torchscale_class: stack === 'decoder' ? 'Decoder' : 'Encoder',
    config_class: stack === 'decoder' ? 'DecoderConfig' : 'EncoderConfig',
    config: kwargs,
    embed_positions:
      config.positions === 'learned'
        ? {
            num_embeddings: config.contextLength + TORCHSCALE_POSITION_OFFSET,
            offset: TORCHSCALE_POSITION_OFFSET,
          }
        : null,
    ...(stack === 'encoder' ? { pad_token_id: (config as { padId?: number | null }).padId ?? null } : {}),
    strata_norm: s,
  };
}

/**
 * The Strata family and raw config of a torchscale `config.json` (as {@link toTorchscaleConfig} writes it),
 * after torchscale's own defaults and `postprocessing()`. Refuses, naming every difference, options Strata
 * does not compute (relative positions, xPos, multiway, MoE, an embedding LayerNorm or √d embedding scale,
 * another activation, DeepNorm with `*_normalize_before=True`, …). Dropout is dropped (0 unless asked).
 */
export function fromTorchscaleConfig(
  raw: Record<string, unknown>,
  source = HF_CONFIG_FILE,
  options: { dropout?: number } = {},
): ImportedConfig {
  const cls = raw.torchscale_class;
  if (cls !== 'Decoder' && cls !== 'Encoder')
    throw configRefusal(source, [
      `torchscale_class is ${JSON.stringify(cls)} (expected "Decoder" or "Encoder")`,
    ]);
  const stack = cls === 'Decoder' ? 'decoder' : 'encoder';
  const k = (raw.config ?? {}) as Record<string, unknown>;
  const get = (key: string, fallback: unknown) => (k[key] === undefined ? fallback : k[key]);
  // torchscale's defaults and postprocessing()
  let deepnorm = get('deepnorm', false) === true;
  let subln = get('subln', true) === true;
  let normalizeBefore = get(`${stack}_normalize_before`, true) === true;
  if (deepnorm) {
    subln = false;
    if (stack === 'encoder') normalizeBefore = false;
  }
  if (subln) {
    deepnorm = false;
    if (stack === 'encoder') normalizeBefore = true;
  }
  const p: string[] = [];
  let norm: string;
  if (deepnorm) {
    norm = 'deepnorm';
    if (normalizeBefore)
      p.push(
        `deepnorm with ${stack}_normalize_before=True is Pre-LN with an α-scaled skip (set ${stack}_normalize_before=False)`,
      );
  } else if (subln) {
    norm = 'subln';
    if (!normalizeBefore) p.push(`subln with ${stack}_normalize_before=False has no Strata strategy`);
  } else norm = normalizeBefore ? 'pre-ln' : 'post-ln';
  if (stack === 'encoder' && normalizeBefore && get('normalize_output', true) !== true)
    p.push('normalize_output is false (Strata Pre-LN/SubLN encoders have a final LayerNorm)');
  const act = get('activation_fn', 'gelu');
  if (act !== 'gelu' && act !== 'relu')
    p.push(`activation_fn ${JSON.stringify(act)} (expected "gelu" or "relu")`);
  if (get('no_scale_embedding', true) !== true)
    p.push('no_scale_embedding is false (Strata does not scale embeddings by √d)');
  if (get('layernorm_embedding', false) === true)
    p.push('layernorm_embedding is true (Strata has no embedding LayerNorm)');
  if (Number(get('rel_pos_buckets', 0)) > 0 && Number(get('max_rel_pos', 0)) > 0)
    p.push('rel_pos_buckets/max_rel_pos are set (Strata has no relative position bias)');
  if (get('xpos_rel_pos', false) === true) p.push('xpos_rel_pos is true (Strata has no xPos)');
  if (get('multiway', false) === true) p.push('multiway is true (Strata has no multiway experts)');
  if (Number(get('moe_freq', 0)) > 0) p.push('moe_freq > 0 (Strata has no mixture of experts)');
  if (get('no_output_layer', false) === true)
    p.push('no_output_layer is true (Strata models have an output head)');
  const pos = raw.embed_positions as { num_embeddings?: number; offset?: number } | null | undefined;
  if (pos && pos.offset !== undefined && pos.offset !== TORCHSCALE_POSITION_OFFSET)
    p.push(
      `embed_positions.offset is ${pos.offset} (torchscale's PositionalEmbedding starts at ${TORCHSCALE_POSITION_OFFSET})`,
    );
  if (p.length) throw configRefusal(source, p);
  const maxPos = get(stack === 'decoder' ? 'max_target_positions' : 'max_source_positions', 1024);
  const config: Record<string, unknown> = {
    vocabSize: get('vocab_size', -1),
    contextLength:
      pos?.num_embeddings !== undefined ? pos.num_embeddings - TORCHSCALE_POSITION_OFFSET : maxPos,
    dModel: get(`${stack}_embed_dim`, 768),
    nLayers: get(`${stack}_layers`, 12),
    nHeads: get(`${stack}_attention_heads`, 12),
    dFF: get(`${stack}_ffn_embed_dim`, 3072),
    activation: act === 'relu' ? 'relu' : 'gelu_erf',
    positions: pos ? 'learned' : 'none',
    normKind: 'layernorm',
    normEps: get('layernorm_eps', 1e-5),
    normBias: true,
    bias: true,
    tiedEmbeddings: get(
      stack === 'decoder' ? 'share_decoder_input_output_embed' : 'share_encoder_input_output_embed',
      false,
    ),
    dropout: options.dropout ?? 0,
    norm: { name: norm, options: {} },
    ...(stack === 'encoder' ? { padId: raw.pad_token_id ?? null } : {}),
  };
  return { family: stack === 'decoder' ? 'gpt' : 'encoder', config };
}

/** The `torchscale` format: {@link torchscaleLayout} and {@link toTorchscaleConfig}. */
export const torchscaleFormat: LayoutFormat = {
  name: 'torchscale',
  shapeName:
    'a torchscale Decoder/Encoder (LayerNorm with bias, biases, erf-GELU or ReLU, learned or no positions; Pre-LN, Post-LN, DeepNorm or SubLN)',
  problems: torchscaleProblems,
  layout: (family, config) => torchscaleLayout(family, config as GPTConfig),
  files: (family, config) => ({ [HF_CONFIG_FILE]: toTorchscaleConfig(family, config as GPTConfig) }),
  fromConfig: fromTorchscaleConfig,
};

/**
 * Writes a Strata decoder or encoder as a torchscale state dict (`model.safetensors`) with the
 * `DecoderConfig`/`EncoderConfig` keyword arguments in `config.json`.
 *
 * @throws StrataError `E_CONFIG` naming every difference when the model has no torchscale counterpart.
 */
export function exportTorchscale(model: LanguageModel, dir: string): Promise<ExportLayoutResult> {
  return exportLayout(torchscaleFormat, model, dir);
}

/**
 * Reads a torchscale export (`config.json` + `model.safetensors`) back into a Strata model; dropout 0 unless
 * `options.dropout`.
 */
export function importTorchscale(dir: string, options: { dropout?: number } = {}): Promise<LanguageModel> {
  return importLayout(torchscaleFormat, dir, options);
}
