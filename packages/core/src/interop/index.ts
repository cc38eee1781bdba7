/**
 * Interoperability with other ecosystems: the Hugging Face GPT-2 layout (`transformers`' `GPT2LMHeadModel`).
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
