/**
 * Hand-off to microsoft/torchscale, the reference code of DeepNet (DeepNorm), Magneto (SubLN) and their
 * Post-LN / Pre-LN baselines: a Strata decoder (`gpt`), encoder (`encoder`) or encoder-decoder (`encdec`) with
 * learned or no positions, LayerNorm, biases and an erf-GELU or ReLU MLP is torchscale's `Decoder` /
 * `Encoder` / `EncoderDecoder`, tensor for tensor. An encoder-decoder's tensors carry the prefixes `encoder.`
 * and `decoder.` (Strata: `encoder.blocks.*`, `decoder.blocks.*`, `enc_pos_emb`, `dec_pos_emb`); its decoder
 * layers add `encoder_attn.{q,k,v,out}_proj` (Strata `cross.q`, `cross.kv` columns k | v, `cross.proj`) and
 * `encoder_attn_layer_norm` (`cross.norm`).
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
  if (family !== 'gpt' && family !== 'encoder' && family !== 'encdec')
    return [
      `its model family is "${family}" (torchscale's Decoder/Encoder/EncoderDecoder match the "gpt", "encoder" and "encdec" families)`,
    ];
  const c = config as Partial<GPTConfig>;
  const p: string[] = [];
  const norm = c.norm as { name?: string; options?: Record<string, unknown> } | undefined;
  if (!STRATEGIES.includes(String(norm?.name)))
    p.push(`the norm strategy is "${String(norm?.name)}" (torchscale has ${STRATEGIES.join(', ')})`);
  if (norm?.name === 'deepnorm') {
    const o = norm.options ?? {};
    if (o.constants === 'adam') p.push('DeepNorm uses constants "adam" (torchscale has the paper\'s α)');
    if (typeof o.alpha === 'number') {
      const want = family === 'encdec' ? undefined : torchscaleAlpha(c.nLayers ?? 0);
      if (want === undefined || Math.abs(o.alpha - want) > 1e-12 * want)
        p.push(
          `DeepNorm's α is pinned to ${o.alpha} (torchscale computes α from the depth${want === undefined ? ', per stack' : `: (2·${c.nLayers})^¼ = ${want}`})`,
        );
    }
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

/**
 * The rows of one torchscale stack: embeddings and positions (`{prefix}embed_*`), its layers and final LN,
 * with Strata names under `strata` (`''` for a single-stack model, `encoder.`/`decoder.` for an encoder-decoder).
 */
function stackLayout(
  prefix: string,
  strata: string,
  positions: { strata: string; length: number } | undefined,
  layers: number,
  cross: boolean,
  config: Pick<GPTConfig, 'vocabSize' | 'dModel' | 'dFF' | 'norm'>,
  embedAlias: boolean,
): TensorMapping[] {
  const { vocabSize: V, dModel: d, dFF: F } = config;
  const strategy = config.norm.name;
  const rows: TensorMapping[] = [
    {
      name: `${prefix}embed_tokens.weight`,
      shape: [V, d],
      strata: 'tok_emb.weight',
      strataShape: [V, d],
      ...(embedAlias ? { alias: true } : {}),
    },
  ];
  if (positions)
    rows.push({
      name: `${prefix}embed_positions.weight`,
      shape: [positions.length + TORCHSCALE_POSITION_OFFSET, d],
      strata: positions.strata,
      strataShape: [positions.length, d],
      at: TORCHSCALE_POSITION_OFFSET,
    });
  const ln = (name: string, from: string, n: number) => {
    rows.push({ name: `${name}.weight`, shape: [n], strata: `${from}.weight`, strataShape: [n] });
    rows.push({ name: `${name}.bias`, shape: [n], strata: `${from}.bias`, strataShape: [n] });
  };
  const linear = (
    name: string,
    from: string,
    fanIn: number,
    fanOut: number,
    cols?: [number, number],
    width?: number,
  ) => {
    const w = width ?? fanOut;
    rows.push({
      name: `${name}.weight`,
      shape: [fanOut, fanIn],
      strata: `${from}.weight`,
      strataShape: [fanIn, w],
      transpose: true,
      ...(cols ? { cols } : {}),
    });
    rows.push({
      name: `${name}.bias`,
      shape: [fanOut],
      strata: `${from}.bias`,
      strataShape: [w],
      ...(cols ? { cols } : {}),
    });
  };
  for (let i = 0; i < layers; i++) {
    const L = `${prefix}layers.${i}`;
    const b = `${strata}blocks.${i}`;
    ['q', 'k', 'v'].forEach((x, j) => {
      linear(`${L}.self_attn.${x}_proj`, `${b}.attn.qkv`, d, d, [j * d, (j + 1) * d], 3 * d);
    });
    linear(`${L}.self_attn.out_proj`, `${b}.attn.proj`, d, d);
    if (strategy === 'subln') ln(`${L}.self_attn.inner_attn_ln`, `${b}.attn.inner_norm`, d);
    ln(`${L}.self_attn_layer_norm`, `${b}.attn.norm`, d);
    if (cross) {
      linear(`${L}.encoder_attn.q_proj`, `${b}.cross.q`, d, d);
      linear(`${L}.encoder_attn.k_proj`, `${b}.cross.kv`, d, d, [0, d], 2 * d);
      linear(`${L}.encoder_attn.v_proj`, `${b}.cross.kv`, d, d, [d, 2 * d], 2 * d);
      linear(`${L}.encoder_attn.out_proj`, `${b}.cross.proj`, d, d);
      ln(`${L}.encoder_attn_layer_norm`, `${b}.cross.norm`, d);
    }
    linear(`${L}.ffn.fc1`, `${b}.mlp.fc`, d, F);
    if (strategy === 'subln') ln(`${L}.ffn.ffn_layernorm`, `${b}.mlp.inner_norm`, F);
    linear(`${L}.ffn.fc2`, `${b}.mlp.proj`, F, d);
    ln(`${L}.final_layer_norm`, `${b}.mlp.norm`, d);
  }
  if (strategy === 'pre-ln' || strategy === 'subln') ln(`${prefix}layer_norm`, `${strata}final.norm`, d);
  return rows;
}

/**
 * The torchscale tensor layout (`Decoder`, `Encoder` or `EncoderDecoder` state dict) of a config of the
 * `gpt`, `encoder` or `encdec` family.
 */
export function torchscaleLayout(family: string, config: GPTConfig): TensorMapping[] {
  const { vocabSize: V, dModel: d } = config;
  const learned = config.positions === 'learned';
  const head = (name: string): TensorMapping =>
    config.tiedEmbeddings
      ? { name, shape: [V, d], strata: 'tok_emb.weight', strataShape: [V, d], alias: true }
      : { name, shape: [V, d], strata: 'lm_head.weight', strataShape: [d, V], transpose: true };
  if (family === 'encdec') {
    const c = config as GPTConfig & {
      nEncoderLayers: number;
      nDecoderLayers: number;
      sourceLength: number;
      targetLength: number;
    };
    return [
      ...stackLayout(
        'encoder.',
        'encoder.',
        learned ? { strata: 'enc_pos_emb.weight', length: c.sourceLength } : undefined,
        c.nEncoderLayers,
        false,
        c,
        false,
      ),
      ...stackLayout(
        'decoder.',
        'decoder.',
        learned ? { strata: 'dec_pos_emb.weight', length: c.targetLength } : undefined,
        c.nDecoderLayers,
        true,
        c,
        true,
      ),
      head('decoder.output_projection.weight'),
    ];
  }
  return [
    ...stackLayout(
      '',
      '',
      learned ? { strata: 'pos_emb.weight', length: config.contextLength } : undefined,
      config.nLayers,
      false,
      config,
      false,
    ),
    head('output_projection.weight'),
  ];
}

/** torchscale's class for a Strata family. */
function classOf(family: string): 'Decoder' | 'Encoder' | 'EncoderDecoder' {
  return family === 'encdec' ? 'EncoderDecoder' : family === 'encoder' ? 'Encoder' : 'Decoder';
}

/**
 * The keyword arguments of torchscale's `DecoderConfig` / `EncoderConfig` / `EncoderDecoderConfig` for a
 * config, with every flag that matters written out (see the module comment), plus how to build the modules
 * around it (`embed_positions`, special token ids).
 */
export function toTorchscaleConfig(family: string, config: GPTConfig): Record<string, unknown> {
  const cls = classOf(family);
  const s = config.norm.name;
  const c = config as GPTConfig & Record<string, number>;
  const stacks: ('encoder' | 'decoder')[] =
    cls === 'EncoderDecoder' ? ['encoder', 'decoder'] : [cls === 'Encoder' ? 'encoder' : 'decoder'];
  const layers = (stack: string) =>
    cls === 'EncoderDecoder' ? (stack === 'encoder' ? c.nEncoderLayers : c.nDecoderLayers) : config.nLayers;
  const length = (stack: string) =>
    cls === 'EncoderDecoder' ? (stack === 'encoder' ? c.sourceLength : c.targetLength) : config.contextLength;
  const kwargs: Record<string, unknown> = {};
  for (const stack of stacks) {
    kwargs[`${stack}_embed_dim`] = config.dModel;
    kwargs[`${stack}_attention_heads`] = config.nHeads;
    kwargs[`${stack}_ffn_embed_dim`] = config.dFF;
    kwargs[`${stack}_layers`] = layers(stack);
    kwargs[`${stack}_normalize_before`] = s === 'pre-ln' || s === 'subln';
    kwargs[stack === 'decoder' ? 'max_target_positions' : 'max_source_positions'] = length(stack);
  }
  Object.assign(kwargs, {
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
    rel_pos_buckets: 0,
    max_rel_pos: 0,
    xpos_rel_pos: false,
    multiway: false,
    moe_freq: 0,
    bert_init: false,
    no_output_layer: false,
  });
  if (cls === 'Encoder') kwargs.share_encoder_input_output_embed = config.tiedEmbeddings;
  else kwargs.share_decoder_input_output_embed = config.tiedEmbeddings;
  if (cls !== 'Decoder') kwargs.normalize_output = true;
  if (cls === 'EncoderDecoder') kwargs.share_all_embeddings = false;
  const positions = (n: number) => ({
    num_embeddings: n + TORCHSCALE_POSITION_OFFSET,
    offset: TORCHSCALE_POSITION_OFFSET,
  });
  const learned = config.positions === 'learned';
  return {
    format: 'torchscale',
    torchscale_class: cls,
    config_class: `${cls}Config`,
    config: kwargs,
    embed_positions: !learned
      ? null
      : cls === 'EncoderDecoder'
        ? { encoder: positions(c.sourceLength as number), decoder: positions(c.targetLength as number) }
        : positions(config.contextLength),
    ...(cls !== 'Decoder' ? { pad_token_id: (config as { padId?: number | null }).padId ?? null } : {}),
    ...(cls === 'EncoderDecoder' ? { bos_token_id: c.bosId, eos_token_id: c.eosId } : {}),
    strata_norm: s,
  };
}

/**
 * The Strata family and raw config of a torchscale `config.json` (as {@link toTorchscaleConfig} writes it),
 * after torchscale's own defaults and `postprocessing()`. Refuses, naming every difference, options Strata
 * does not compute (relative positions, xPos, multiway, MoE, an embedding LayerNorm or √d embedding scale,
 * another activation, DeepNorm with `*_normalize_before=True`, stacks with different norm placements, …).
 * Dropout is dropped (0 unless asked).
 */
export function fromTorchscaleConfig(
  raw: Record<string, unknown>,
  source = HF_CONFIG_FILE,
  options: { dropout?: number } = {},
): ImportedConfig {
  const cls = raw.torchscale_class;
  if (cls !== 'Decoder' && cls !== 'Encoder' && cls !== 'EncoderDecoder')
    throw configRefusal(source, [
      `torchscale_class is ${JSON.stringify(cls)} (expected "Decoder", "Encoder" or "EncoderDecoder")`,
    ]);
  const stacks: ('encoder' | 'decoder')[] =
    cls === 'EncoderDecoder' ? ['encoder', 'decoder'] : [cls === 'Encoder' ? 'encoder' : 'decoder'];
  const k = (raw.config ?? {}) as Record<string, unknown>;
  const get = (key: string, fallback: unknown) => (k[key] === undefined ? fallback : k[key]);
  // torchscale's defaults and postprocessing(): it sets encoder_normalize_before, never decoder_normalize_before
  let deepnorm = get('deepnorm', false) === true;
  let subln = get('subln', true) === true;
  const before: Record<string, boolean> = {
    encoder: get('encoder_normalize_before', true) === true,
    decoder: get('decoder_normalize_before', true) === true,
  };
  if (deepnorm) {
    subln = false;
    before.encoder = false;
  }
  if (subln) {
    deepnorm = false;
    before.encoder = true;
  }
  const p: string[] = [];
  const norm = deepnorm ? 'deepnorm' : subln ? 'subln' : before[stacks[0]!] ? 'pre-ln' : 'post-ln';
  for (const stack of stacks) {
    if (deepnorm && before[stack])
      p.push(
        `deepnorm with ${stack}_normalize_before=True is Pre-LN with an α-scaled skip (set ${stack}_normalize_before=False)`,
      );
    if (subln && !before[stack]) p.push(`subln with ${stack}_normalize_before=False has no Strata strategy`);
    if (!deepnorm && !subln && before[stack] !== before[stacks[0]!])
      p.push(
        'encoder_normalize_before and decoder_normalize_before differ (Strata uses one strategy for both stacks)',
      );
  }
  if (cls !== 'Decoder' && before.encoder && get('normalize_output', true) !== true)
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
  const pos = raw.embed_positions as Record<string, unknown> | null | undefined;
  const posOf = (stack: string) =>
    (cls === 'EncoderDecoder' ? pos?.[stack] : pos) as
      | { num_embeddings?: number; offset?: number }
      | undefined;
  for (const stack of stacks) {
    const ps = posOf(stack);
    if (ps?.offset !== undefined && ps.offset !== TORCHSCALE_POSITION_OFFSET)
      p.push(
        `embed_positions offset is ${ps.offset} (torchscale's PositionalEmbedding starts at ${TORCHSCALE_POSITION_OFFSET})`,
      );
  }
  if (p.length) throw configRefusal(source, p);
  const length = (stack: string) => {
    const ps = posOf(stack);
    return ps?.num_embeddings !== undefined
      ? ps.num_embeddings - TORCHSCALE_POSITION_OFFSET
      : get(stack === 'decoder' ? 'max_target_positions' : 'max_source_positions', 1024);
  };
  const s0 = stacks[0]!;
  const config: Record<string, unknown> = {
    vocabSize: get('vocab_size', -1),
    dModel: get(`${s0}_embed_dim`, 768),
    nHeads: get(`${s0}_attention_heads`, 12),
    dFF: get(`${s0}_ffn_embed_dim`, 3072),
    activation: act === 'relu' ? 'relu' : 'gelu_erf',
    positions: pos ? 'learned' : 'none',
    normKind: 'layernorm',
    normEps: get('layernorm_eps', 1e-5),
    normBias: true,
    bias: true,
    tiedEmbeddings: get(
      cls === 'Encoder' ? 'share_encoder_input_output_embed' : 'share_decoder_input_output_embed',
      false,
    ),
    dropout: options.dropout ?? 0,
    norm: { name: norm, options: {} },
  };
  if (cls === 'EncoderDecoder') {
    if (
      get('encoder_embed_dim', 768) !== get('decoder_embed_dim', 768) ||
      get('encoder_ffn_embed_dim', 3072) !== get('decoder_ffn_embed_dim', 3072) ||
      get('encoder_attention_heads', 12) !== get('decoder_attention_heads', 12)
    )
      throw configRefusal(source, [
        'the encoder and decoder widths or heads differ (Strata uses one width for both stacks)',
      ]);
    Object.assign(config, {
      nEncoderLayers: get('encoder_layers', 12),
      nDecoderLayers: get('decoder_layers', 12),
      sourceLength: length('encoder'),
      targetLength: length('decoder'),
      ...(raw.pad_token_id !== undefined ? { padId: raw.pad_token_id } : {}),
      ...(raw.bos_token_id !== undefined ? { bosId: raw.bos_token_id } : {}),
      ...(raw.eos_token_id !== undefined ? { eosId: raw.eos_token_id } : {}),
    });
    return { family: 'encdec', config };
  }
  Object.assign(config, { nLayers: get(`${s0}_layers`, 12), contextLength: length(s0) });
  if (cls === 'Encoder') config.padId = raw.pad_token_id ?? null;
  return { family: cls === 'Decoder' ? 'gpt' : 'encoder', config };
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
