/**
 * The Hugging Face Llama layout (`transformers`' `LlamaForCausalLM`): a Strata GPT with RoPE, SwiGLU, RMSNorm,
 * no biases and Pre-LN is a Llama, tensor for tensor. `{i}` = block, `d` = `hidden_size`,
 * `F` = `intermediate_size`, `V` = `vocab_size`:
 *
 * | Hugging Face name | shape | Strata parameter | layout |
 * |---|---|---|---|
 * | `model.embed_tokens.weight` | `[V, d]` | `tok_emb.weight` | same |
 * | `model.layers.{i}.input_layernorm.weight` | `[d]` | `blocks.{i}.attn.norm.weight` | same |
 * | `model.layers.{i}.self_attn.q_proj.weight` | `[d, d]` | `blocks.{i}.attn.qkv.weight` columns `[0, d)` | transposed |
 * | `model.layers.{i}.self_attn.k_proj.weight` | `[d, d]` | `blocks.{i}.attn.qkv.weight` columns `[d, 2d)` | transposed |
 * | `model.layers.{i}.self_attn.v_proj.weight` | `[d, d]` | `blocks.{i}.attn.qkv.weight` columns `[2d, 3d)` | transposed |
 * | `model.layers.{i}.self_attn.o_proj.weight` | `[d, d]` | `blocks.{i}.attn.proj.weight` | transposed |
 * | `model.layers.{i}.post_attention_layernorm.weight` | `[d]` | `blocks.{i}.mlp.norm.weight` | same |
 * | `model.layers.{i}.mlp.gate_proj.weight` | `[F, d]` | `blocks.{i}.mlp.gate.weight` | transposed |
 * | `model.layers.{i}.mlp.up_proj.weight` | `[F, d]` | `blocks.{i}.mlp.fc.weight` | transposed |
 * | `model.layers.{i}.mlp.down_proj.weight` | `[d, F]` | `blocks.{i}.mlp.proj.weight` | transposed |
 * | `model.norm.weight` | `[d]` | `final.norm.weight` | same |
 * | `lm_head.weight` (untied only) | `[V, d]` | `lm_head.weight` `[d, V]` | transposed |
 *
 * RoPE: Strata rotates the two halves of each head (`rotateHalf([x₁, x₂]) = [−x₂, x₁]`), which is the
 * convention of `transformers`' `apply_rotary_pos_emb`; so q and k columns are copied in order, with no
 * permutation. (The permutation in `transformers`' `convert_llama_weights_to_hf.py` converts Meta's
 * interleaved-pair checkpoints to rotate-half; a Strata checkpoint is rotate-half already.)
 *
 * @module
 */
import { formatChoices } from '../errors.js';
import type { LanguageModel } from '../model/family.js';
import type { GPTConfig } from '../model/gpt-config.js';
import { HF_CONFIG_FILE } from './hf-gpt2.js';
import {
  configRefusal,
  type ExportLayoutResult,
  exportLayout,
  importLayout,
  type LayoutFormat,
  type TensorMapping,
} from './layout.js';

/** Name of the generation config in a Hugging Face model directory. */
export const HF_GENERATION_CONFIG_FILE = 'generation_config.json';

/**
 * What keeps a model from being Llama-shaped, one phrase per difference (empty when it is): family `gpt`,
 * RoPE (no frequency repetition), SwiGLU, RMSNorm, no biases, Pre-LN, decoder-only.
 */
export function llamaShapeProblems(family: string, config: Readonly<Record<string, unknown>>): string[] {
  if (family !== 'gpt')
    return [`its model family is "${family}" (only the "gpt" family has a Llama counterpart)`];
  const c = config as Partial<GPTConfig>;
  const p: string[] = [];
  if (c.positions !== 'rope') p.push(`positions is "${String(c.positions)}" (Llama uses RoPE: "rope")`);
  if (c.positions === 'rope' && c.ropeRepeat !== undefined && c.ropeRepeat !== 1)
    p.push(`ropeRepeat is ${c.ropeRepeat} (Llama's RoPE has no repeated frequencies; 1)`);
  if (c.activation !== 'swiglu')
    p.push(`activation is "${String(c.activation)}" (Llama's MLP is SwiGLU: "swiglu")`);
  if (c.normKind !== 'rmsnorm') p.push(`normKind is "${String(c.normKind)}" (Llama uses RMSNorm: "rmsnorm")`);
  if (c.bias !== false) p.push('bias is true (Llama has no biases: --no-bias)');
  const norm = (c.norm as { name?: string } | undefined)?.name;
  if (norm !== 'pre-ln') p.push(`the norm strategy is "${String(norm)}" (Llama is Pre-LN: "pre-ln")`);
  if (c.architecture !== undefined && c.architecture !== 'decoder-only')
    p.push(`architecture is "${String(c.architecture)}" (Llama is decoder-only)`);
  return p;
}

/** The Hugging Face Llama tensor layout of a (Llama-shaped) GPT config. */
export function hfLlamaLayout(config: GPTConfig): TensorMapping[] {
  const { vocabSize: V, dModel: d, dFF: F } = config;
  const rows: TensorMapping[] = [
    { name: 'model.embed_tokens.weight', shape: [V, d], strata: 'tok_emb.weight', strataShape: [V, d] },
  ];
  for (let i = 0; i < config.nLayers; i++) {
    const h = `model.layers.${i}`;
    const b = `blocks.${i}`;
    const lin = (name: string, strata: string, strataShape: number[], cols?: [number, number]) =>
      rows.push({
        name,
        shape: [cols ? cols[1] - cols[0] : strataShape[1]!, strataShape[0]!],
        strata,
        strataShape,
        transpose: true,
        ...(cols ? { cols } : {}),
      });
    rows.push({
      name: `${h}.input_layernorm.weight`,
      shape: [d],
      strata: `${b}.attn.norm.weight`,
      strataShape: [d],
    });
    lin(`${h}.self_attn.q_proj.weight`, `${b}.attn.qkv.weight`, [d, 3 * d], [0, d]);
    lin(`${h}.self_attn.k_proj.weight`, `${b}.attn.qkv.weight`, [d, 3 * d], [d, 2 * d]);
    lin(`${h}.self_attn.v_proj.weight`, `${b}.attn.qkv.weight`, [d, 3 * d], [2 * d, 3 * d]);
    lin(`${h}.self_attn.o_proj.weight`, `${b}.attn.proj.weight`, [d, d]);
    rows.push({
      name: `${h}.post_attention_layernorm.weight`,
      shape: [d],
      strata: `${b}.mlp.norm.weight`,
      strataShape: [d],
    });
    lin(`${h}.mlp.gate_proj.weight`, `${b}.mlp.gate.weight`, [d, F]);
    lin(`${h}.mlp.up_proj.weight`, `${b}.mlp.fc.weight`, [d, F]);
    lin(`${h}.mlp.down_proj.weight`, `${b}.mlp.proj.weight`, [F, d]);
  }
  rows.push({ name: 'model.norm.weight', shape: [d], strata: 'final.norm.weight', strataShape: [d] });
  if (!config.tiedEmbeddings)
    rows.push({
      name: 'lm_head.weight',
      shape: [V, d],
      strata: 'lm_head.weight',
      strataShape: [d, V],
      transpose: true,
    });
  return rows;
}

/** The `config.json` of `LlamaForCausalLM` for a Llama-shaped GPT config. */
export function toHFLlamaConfig(c: GPTConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    intermediate_size: c.dFF,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nHeads,
    head_dim: c.dModel / c.nHeads,
    hidden_act: 'silu',
    max_position_embeddings: c.contextLength,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeBase,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: c.tiedEmbeddings,
    initializer_range: c.initStd,
    bos_token_id: null,
    eos_token_id: null,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

/**
 * The Strata GPT config (raw, before validation) of a Hugging Face Llama `config.json`. Refuses, naming every
 * difference, what Strata cannot compute exactly: another `model_type`, an activation other than SiLU,
 * grouped-query attention (`num_key_value_heads` ≠ `num_attention_heads`), `rope_scaling`, attention or MLP
 * biases, a `head_dim` other than `hidden_size / num_attention_heads`. `attention_dropout` is dropped:
 * dropout is 0 unless `options.dropout`.
 */
export function fromHFLlamaConfig(
  raw: Record<string, unknown>,
  source = HF_CONFIG_FILE,
  options: { dropout?: number } = {},
): Record<string, unknown> {
  const problems: string[] = [];
  if (raw.model_type !== 'llama')
    problems.push(`model_type is ${JSON.stringify(raw.model_type)} (expected "llama")`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu')
    problems.push(`hidden_act ${JSON.stringify(act)} is not supported (expected ${formatChoices(['silu'])})`);
  const d = raw.hidden_size ?? 4096;
  const heads = raw.num_attention_heads ?? 32;
  const kv = raw.num_key_value_heads ?? heads;
  if (kv !== heads)
    problems.push(
      `num_key_value_heads ${String(kv)} ≠ num_attention_heads ${String(heads)} (Strata has no grouped-query attention)`,
    );
  if (raw.rope_scaling !== undefined && raw.rope_scaling !== null)
    problems.push(`rope_scaling is ${JSON.stringify(raw.rope_scaling)} (Strata's RoPE is unscaled; null)`);
  if (raw.attention_bias === true) problems.push('attention_bias is true (Strata Llamas have no biases)');
  if (raw.mlp_bias === true) problems.push('mlp_bias is true (Strata Llamas have no biases)');
  if (
    raw.head_dim !== undefined &&
    raw.head_dim !== null &&
    typeof d === 'number' &&
    typeof heads === 'number' &&
    raw.head_dim !== d / heads
  )
    problems.push(`head_dim ${String(raw.head_dim)} ≠ hidden_size / num_attention_heads = ${d / heads}`);
  if (problems.length) throw configRefusal(source, problems);
  return {
    vocabSize: raw.vocab_size ?? 32000,
    contextLength: raw.max_position_embeddings ?? 2048,
    dModel: d,
    nLayers: raw.num_hidden_layers ?? 32,
    nHeads: heads,
    dFF: raw.intermediate_size ?? 11008,
    activation: 'swiglu',
    positions: 'rope',
    ropeBase: raw.rope_theta ?? 10000,
    normKind: 'rmsnorm',
    normEps: raw.rms_norm_eps ?? 1e-6,
    normBias: false,
    bias: false,
    tiedEmbeddings: raw.tie_word_embeddings ?? false,
    dropout: options.dropout ?? 0,
    initStd: raw.initializer_range ?? 0.02,
    norm: { name: 'pre-ln', options: {} },
    architecture: 'decoder-only',
  };
}

/** The `hf-llama` format: {@link hfLlamaLayout}, `config.json` and `generation_config.json`. */
export const hfLlamaFormat: LayoutFormat = {
  name: 'hf-llama',
  shapeName: 'Llama-shaped (RoPE, SwiGLU, RMSNorm, no biases, Pre-LN; tied or untied head)',
  problems: llamaShapeProblems,
  layout: (_family, config) => hfLlamaLayout(config as GPTConfig),
  files: (_family, config) => ({
    [HF_CONFIG_FILE]: toHFLlamaConfig(config as GPTConfig),
    [HF_GENERATION_CONFIG_FILE]: { _from_model_config: true, bos_token_id: null, eos_token_id: null },
  }),
  fromConfig: (raw, source, options) => ({ family: 'gpt', config: fromHFLlamaConfig(raw, source, options) }),
};

/**
 * Writes a Llama-shaped Strata GPT as a Hugging Face Llama directory (`model.safetensors`, `config.json`,
 * `generation_config.json`); `LlamaForCausalLM.from_pretrained(dir)` computes the same logits.
 *
 * @throws StrataError `E_CONFIG` naming every difference when the model is not Llama-shaped.
 */
export function exportHFLlama(model: LanguageModel, dir: string): Promise<ExportLayoutResult> {
  return exportLayout(hfLlamaFormat, model, dir);
}

/**
 * Reads a Hugging Face Llama directory into a Strata GPT (RoPE, SwiGLU, RMSNorm, no biases, Pre-LN) with the
 * same function; dropout 0 unless `options.dropout`.
 *
 * @throws StrataError `E_CONFIG` for a Llama variant Strata cannot compute exactly (see
 *   {@link fromHFLlamaConfig}); `E_CHECKPOINT` for missing, misshapen or unexpected tensors.
 */
export function importHFLlama(dir: string, options: { dropout?: number } = {}): Promise<LanguageModel> {
  return importLayout(hfLlamaFormat, dir, options);
}
