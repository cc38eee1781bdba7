/**
 * Hand-off to NVIDIA's nGPT reference (`NVIDIA/ngpt` `model.py`, `use_nGPT=1`): parameter names, PyTorch
 * `[out, in]` matrices, the fused `c_fc` and `s_uv`, and NVIDIA's stored-value convention for every scaling
 * vector (`effective = stored · init_value / init_scaling`, with `base_scale = 1/√n_embd` as in its
 * `train.py`). `{i}` = block, `d` = `n_embd`, `F = 4d`, `V` = vocabulary:
 *
 * | NVIDIA name | shape | Strata parameter | layout |
 * |---|---|---|---|
 * | `transformer.wte.weight` | `[V, d]` | `tok_emb.weight` | same |
 * | `transformer.h.{i}.query.weight` / `key` / `value` | `[d, d]` | `blocks.{i}.attn.qkv.weight` columns q \| k \| v | transposed |
 * | `transformer.h.{i}.att_c_proj.weight` | `[d, d]` | `blocks.{i}.attn.proj.weight` | transposed |
 * | `transformer.h.{i}.c_fc.weight` | `[2F, d]` | rows `[0, F)`: `blocks.{i}.mlp.fc.weight` (u); rows `[F, 2F)`: `blocks.{i}.mlp.gate.weight` (ν) | transposed |
 * | `transformer.h.{i}.mlp_c_proj.weight` | `[d, F]` | `blocks.{i}.mlp.proj.weight` | transposed |
 * | `transformer.h.{i}.attn_alpha` | `[d]` | `blocks.{i}.attn.alpha_A` | × (α_init/α_scale)·base_scale/0.05 |
 * | `transformer.h.{i}.mlp_alpha` | `[d]` | `blocks.{i}.mlp.alpha_M` | × (α_init/α_scale)·base_scale/0.05 |
 * | `transformer.h.{i}.sqk` | `[d]` | `blocks.{i}.attn.s_qk` | × (s_qk,init/s_qk,scale)·base_scale |
 * | `transformer.h.{i}.suv` | `[2F]` | `[0, F)`: `blocks.{i}.mlp.s_u` × (s_uv,init/s_uv,scale)/√d; `[F, 2F)`: `blocks.{i}.mlp.s_nu` × (s_uv,init/s_uv,scale)·ν_gain/√d | scaled |
 * | `lm_head.weight` | `[V, d]` | `lm_head.weight` `[d, V]` | transposed |
 * | `sz` | `[V]` | `s_z` | × (s_z,init/s_z,scale)·base_scale |
 *
 * So each NVIDIA value, multiplied back by NVIDIA's `init_value/init_scaling` (and `√n_embd` for `suv`), is the
 * effective value Strata uses. NVIDIA puts √d on both halves of `suv`; Strata puts ν_gain = √d on ν only: the
 * u half is divided by √d so that u itself is the same number in both (the two functions agree even without it,
 * since `Norm(h_M)` removes a constant factor, but the hidden activations match this way).
 *
 * One line of NVIDIA's `model.py` must change to compute this function: its `apply_rotary_position_embeddings`
 * pairs interleaved coordinates with `sin`/`cos` halves taken from an interleaved table (NVIDIA/ngpt issue #10);
 * Strata uses the rotate-half RoPE of Hugging Face. The interop guide gives the replacement function.
 *
 * @module
 */
import {
  configRefusal,
  type ExportLayoutResult,
  exportLayout,
  HF_CONFIG_FILE,
  type ImportedConfig,
  importLayout,
  type LanguageModel,
  type LayoutFormat,
  type TensorMapping,
} from '@strata/core';
import type { NGPTConfig } from './config.js';

/** NVIDIA's hard-coded `alpha_init_value` (attention and MLP). */
const NVIDIA_ALPHA_INIT = 0.05;

/** Every reason a model cannot be written in NVIDIA's nGPT layout (empty when it can). */
export function nvidiaNGPTProblems(family: string, config: Readonly<Record<string, unknown>>): string[] {
  if (family !== 'ngpt') return [`its model family is "${family}" (only "ngpt" models map to NVIDIA's nGPT)`];
  const c = config as unknown as NGPTConfig;
  const p: string[] = [];
  if (c.dFF !== 4 * c.dModel)
    p.push(`dFF is ${c.dFF} (NVIDIA's c_fc is 2·4·n_embd wide: dFF = ${4 * c.dModel})`);
  const dk = c.dModel / c.nHeads;
  if (Math.abs(c.attnScale - Math.sqrt(dk)) > 1e-9 * Math.sqrt(dk))
    p.push(`attnScale is ${c.attnScale} (NVIDIA's softmax scale is √head_dim = ${Math.sqrt(dk)})`);
  if (!c.alphaAbs) p.push('alphaAbs is false (NVIDIA uses |α|)');
  if (c.ropeBase !== 10000) p.push(`ropeBase is ${c.ropeBase} (NVIDIA's RoPE base is 10000)`);
  if (c.ropeRepeat !== 1) p.push(`ropeRepeat is ${c.ropeRepeat} (NVIDIA's RoPE has no repeated frequencies)`);
  return p;
}

/** NVIDIA's `base_scale`: 1/√n_embd (its `train.py`). */
function baseScale(d: number): number {
  return 1 / Math.sqrt(d);
}

/** The NVIDIA nGPT tensor layout of an nGPT config (the table in the module comment). */
export function nvidiaNGPTLayout(c: NGPTConfig): TensorMapping[] {
  const { vocabSize: V, dModel: d, dFF: F } = c;
  const bs = baseScale(d);
  const rows: TensorMapping[] = [
    { name: 'transformer.wte.weight', shape: [V, d], strata: 'tok_emb.weight', strataShape: [V, d] },
  ];
  const kAlpha = ((c.alphaInit / c.alphaScale) * bs) / NVIDIA_ALPHA_INIT;
  for (let i = 0; i < c.nLayers; i++) {
    const h = `transformer.h.${i}`;
    const b = `blocks.${i}`;
    ['query', 'key', 'value'].forEach((x, j) => {
      rows.push({
        name: `${h}.${x}.weight`,
        shape: [d, d],
        strata: `${b}.attn.qkv.weight`,
        strataShape: [d, 3 * d],
        cols: [j * d, (j + 1) * d],
        transpose: true,
      });
    });
    rows.push({
      name: `${h}.att_c_proj.weight`,
      shape: [d, d],
      strata: `${b}.attn.proj.weight`,
      strataShape: [d, d],
      transpose: true,
    });
    rows.push({
      name: `${h}.c_fc.weight`,
      shape: [2 * F, d],
      strata: `${b}.mlp.fc.weight`,
      strataShape: [d, F],
      transpose: true,
    });
    rows.push({
      name: `${h}.c_fc.weight`,
      shape: [2 * F, d],
      strata: `${b}.mlp.gate.weight`,
      strataShape: [d, F],
      transpose: true,
      at: F,
    });
    rows.push({
      name: `${h}.mlp_c_proj.weight`,
      shape: [d, F],
      strata: `${b}.mlp.proj.weight`,
      strataShape: [F, d],
      transpose: true,
    });
    rows.push({
      name: `${h}.attn_alpha`,
      shape: [d],
      strata: `${b}.attn.alpha_A`,
      strataShape: [d],
      scale: kAlpha,
    });
    rows.push({
      name: `${h}.mlp_alpha`,
      shape: [d],
      strata: `${b}.mlp.alpha_M`,
      strataShape: [d],
      scale: kAlpha,
    });
    rows.push({
      name: `${h}.sqk`,
      shape: [d],
      strata: `${b}.attn.s_qk`,
      strataShape: [d],
      scale: (c.sQKInit / c.sQKScale) * bs,
    });
    const kUV = c.sUVInit / c.sUVScale / Math.sqrt(d);
    rows.push({ name: `${h}.suv`, shape: [2 * F], strata: `${b}.mlp.s_u`, strataShape: [F], scale: kUV });
    rows.push({
      name: `${h}.suv`,
      shape: [2 * F],
      strata: `${b}.mlp.s_nu`,
      strataShape: [F],
      scale: kUV * c.nuGain,
      at: F,
    });
  }
  rows.push({
    name: 'lm_head.weight',
    shape: [V, d],
    strata: 'lm_head.weight',
    strataShape: [d, V],
    transpose: true,
  });
  rows.push({ name: 'sz', shape: [V], strata: 's_z', strataShape: [V], scale: (c.sZInit / c.sZScale) * bs });
  return rows;
}

/** NVIDIA's `GPTConfig` fields for an nGPT config (`use_nGPT=1`, no bias, no dropout, `base_scale = 1/√d`). */
export function toNvidiaNGPTConfig(c: NGPTConfig): Record<string, unknown> {
  return {
    format: 'nvidia-ngpt',
    use_nGPT: 1,
    block_size: c.contextLength,
    vocab_size: c.vocabSize,
    n_layer: c.nLayers,
    n_head: c.nHeads,
    n_embd: c.dModel,
    base_scale: baseScale(c.dModel),
    dropout: 0,
    bias: false,
    rope: 'rotate-half (Hugging Face convention; replace apply_rotary_position_embeddings, see the interop guide)',
  };
}

/**
 * The nGPT config of an NVIDIA `GPTConfig` JSON (`use_nGPT=1`, `bias=false`, `base_scale = 1/√n_embd`); the
 * effective scale values come from the tensors, the constants are Strata's defaults.
 */
export function fromNvidiaNGPTConfig(raw: Record<string, unknown>, source = HF_CONFIG_FILE): ImportedConfig {
  const p: string[] = [];
  if (raw.use_nGPT !== undefined && raw.use_nGPT !== 1)
    p.push(`use_nGPT is ${String(raw.use_nGPT)} (expected 1)`);
  if (raw.bias === true) p.push('bias is true (nGPT has no biases)');
  const d = Number(raw.n_embd ?? 1024);
  const bs = raw.base_scale === undefined ? baseScale(d) : Number(raw.base_scale);
  if (Math.abs(bs - baseScale(d)) > 1e-6 * baseScale(d))
    p.push(
      `base_scale is ${bs} (the layout assumes 1/√n_embd = ${baseScale(d)}, as NVIDIA's train.py sets it)`,
    );
  if (p.length) throw configRefusal(source, p);
  return {
    family: 'ngpt',
    config: {
      vocabSize: raw.vocab_size ?? 50304,
      contextLength: raw.block_size ?? 1024,
      dModel: d,
      nLayers: raw.n_layer ?? 12,
      nHeads: raw.n_head ?? 12,
    },
  };
}

/** The `ngpt` format: {@link nvidiaNGPTLayout} and NVIDIA's `GPTConfig` as `config.json`. */
export const nvidiaNGPTFormat: LayoutFormat = {
  name: 'ngpt',
  shapeName: "NVIDIA's nGPT (d_ff = 4·d, softmax scale √d_k, |α|, RoPE base 10000)",
  problems: nvidiaNGPTProblems,
  layout: (_family, config) => nvidiaNGPTLayout(config as unknown as NGPTConfig),
  files: (_family, config) => ({ [HF_CONFIG_FILE]: toNvidiaNGPTConfig(config as unknown as NGPTConfig) }),
  fromConfig: (raw, source) => fromNvidiaNGPTConfig(raw, source),
};

/** Writes an nGPT model in NVIDIA's layout (`model.safetensors` + `config.json`). */
export function exportNvidiaNGPT(model: LanguageModel, dir: string): Promise<ExportLayoutResult> {
  return exportLayout(nvidiaNGPTFormat, model, dir);
}

/** Reads NVIDIA-layout nGPT weights (`model.safetensors` + `config.json`) into a Strata nGPT. */
export function importNvidiaNGPT(dir: string): Promise<LanguageModel> {
  return importLayout(nvidiaNGPTFormat, dir);
}
