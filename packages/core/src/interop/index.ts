/**
 * Interoperability with other ecosystems: the Hugging Face GPT-2 and Llama layouts, torchscale, and the generic
 * tensor layouts they are built on.
 *
 * @module
 */
export {
  type ExportHFGPT2Options,
  type ExportHFGPT2Result,
  exportHFGPT2,
  fromHFGPT2Config,
  gpt2ShapeProblems,
  HF_CONFIG_FILE,
  HF_WEIGHTS_FILE,
  HF_WEIGHTS_INDEX_FILE,
  type HFGPT2Config,
  type HFGPT2TensorSpec,
  hfGPT2Layout,
  type ImportHFGPT2Options,
  importHFGPT2,
  toHFGPT2Config,
} from './hf-gpt2.js';
export {
  exportHFLlama,
  fromHFLlamaConfig,
  HF_GENERATION_CONFIG_FILE,
  hfLlamaFormat,
  hfLlamaLayout,
  importHFLlama,
  llamaShapeProblems,
  toHFLlamaConfig,
} from './hf-llama.js';
export {
  configRefusal,
  type ExportLayoutResult,
  type ExternalValues,
  exportLayout,
  fromExternalTensors,
  type ImportedConfig,
  importLayout,
  type LayoutFormat,
  type TensorMapping,
  toExternalTensors,
} from './layout.js';
export {
  exportTorchscale,
  fromTorchscaleConfig,
  importTorchscale,
  TORCHSCALE_POSITION_OFFSET,
  torchscaleFormat,
  torchscaleLayout,
  torchscaleProblems,
  toTorchscaleConfig,
} from './torchscale.js';
