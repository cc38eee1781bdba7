import type { CommandDef, OptionDef } from './args.js';

/** Options every command that computes accepts. */
export const RUNTIME_OPTIONS: OptionDef[] = [
  {
    name: 'backend',
    type: 'string',
    default: 'auto',
    choices: ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'],
    description:
      'tfjs backend; auto tries tfjs-node-gpu, tfjs-node, webgpu (hardware adapters only), wasm, cpu in that order',
    group: 'Runtime',
  },
  {
    name: 'plugin',
    type: 'string',
    multiple: true,
    arg: 'MODULE',
    description: 'load a module (package name or path) that registers norm strategies or model families',
    group: 'Runtime',
  },
  {
    name: 'json',
    type: 'boolean',
    description: 'print JSON lines instead of a progress bar',
    group: 'Runtime',
  },
];

/** Speed/memory options of training commands (they do not change results beyond float rounding). */
export const TRAINER_RUNTIME_OPTIONS: OptionDef[] = [
  {
    name: 'workers',
    type: 'integer',
    description:
      'data-parallel ranks on wasm/cpu: 2 uses both cores (gradients averaged over shared memory) [default: 1]',
    group: 'Runtime',
  },
  {
    name: 'recompute',
    type: 'boolean',
    description:
      'recompute activations block by block in the backward pass (what lets 1,000 layers fit in memory)',
    group: 'Runtime',
  },
];

/** Model architecture flags (train, compare, bench). Defaults live in the command, not here. */
export const MODEL_OPTIONS: OptionDef[] = [
  {
    name: 'model',
    type: 'string',
    default: 'gpt',
    description: 'model family (gpt, ngpt, or one a plugin registers)',
    group: 'Model',
  },
  {
    name: 'preset',
    type: 'string',
    // MODEL_PRESETS in @strata/core (not imported here: `--help` never loads tfjs; a test keeps them equal).
    choices: ['roformer-v2', 'gau-alpha', 'gau-lm'],
    description: 'named architecture (sets --arch and model config; flags override)',
    group: 'Model',
  },
  { name: 'd-model', type: 'integer', description: 'residual width d_model [default: 128]', group: 'Model' },
  { name: 'layers', type: 'integer', description: 'number of blocks [default: 4]', group: 'Model' },
  {
    name: 'heads',
    type: 'integer',
    description: 'attention heads (must divide d-model) [default: 4]',
    group: 'Model',
  },
  { name: 'd-ff', type: 'integer', description: 'MLP hidden width [default: 4·d-model]', group: 'Model' },
  { name: 'context', type: 'integer', description: 'context length in tokens [default: 64]', group: 'Model' },
  {
    name: 'activation',
    type: 'string',
    choices: ['gelu', 'gelu_erf', 'relu', 'swiglu'],
    description: 'MLP activation (gpt)',
    group: 'Model',
  },
  {
    name: 'positions',
    type: 'string',
    choices: ['learned', 'rope', 'none'],
    description: 'position encoding (gpt)',
    group: 'Model',
  },
  {
    name: 'norm',
    type: 'string',
    description: 'residual-normalization strategy (see `strata norms`) [default: pre-ln]',
    group: 'Model',
  },
  {
    name: 'norm-opt',
    type: 'string',
    multiple: true,
    arg: 'KEY=VALUE',
    description: 'strategy option, e.g. --norm-opt alpha=2',
    group: 'Model',
  },
  {
    name: 'norm-kind',
    type: 'string',
    choices: ['layernorm', 'rmsnorm'],
    description: 'LayerNorm or RMSNorm in every norm slot',
    group: 'Model',
  },
  {
    name: 'untied',
    type: 'boolean',
    description: 'untie the output head from the token embedding',
    group: 'Model',
  },
  {
    name: 'bias',
    type: 'boolean',
    description: 'biases on linear maps; --no-bias drops them [default: on]',
    group: 'Model',
  },
  { name: 'dropout', type: 'number', description: 'dropout rate [default: 0]', group: 'Model' },
  {
    name: 'model-opt',
    type: 'string',
    multiple: true,
    arg: 'KEY=VALUE',
    description: 'any other model config key, e.g. --model-opt ropeBase=500000',
    group: 'Model',
  },
  {
    name: 'config',
    type: 'string',
    arg: 'FILE',
    description: 'JSON file with { "model": {...}, "training": {...} }; flags override it',
    group: 'Model',
  },
];

/** Training flags. */
export const TRAINING_OPTIONS: OptionDef[] = [
  { name: 'steps', type: 'integer', description: 'optimizer steps [default: 200]', group: 'Training' },
  {
    name: 'batch-size',
    type: 'integer',
    description: 'sequences per step (per micro-batch with --grad-accum) [default: 16]',
    group: 'Training',
  },
  {
    name: 'grad-accum',
    type: 'integer',
    arg: 'N',
    description:
      'gradient accumulation: N micro-batches of --batch-size per optimizer step, equal to one batch N times larger [default: 1]',
    group: 'Training',
  },
  {
    name: 'seq-len',
    type: 'integer',
    description: 'tokens per sequence [default: context]',
    group: 'Training',
  },
  {
    name: 'lr',
    type: 'number',
    description:
      "peak learning rate; with --resume --phase new, the new phase's peak (its floor keeps the saved lr/min-lr ratio) [default: 2e-3; nGPT 3e-3]",
    group: 'Training',
  },
  {
    name: 'min-lr',
    type: 'number',
    description:
      "final learning rate of the cosine schedule; a family's own floor holds under --lr [default: lr/10; nGPT 0]",
    group: 'Training',
  },
  {
    name: 'warmup',
    type: 'integer',
    description: 'linear warmup steps [default: 30; nGPT 0]',
    group: 'Training',
  },
  {
    name: 'schedule',
    type: 'string',
    choices: ['cosine', 'constant'],
    description: 'decay after warmup',
    group: 'Training',
  },
  {
    name: 'weight-decay',
    type: 'number',
    description: 'decoupled weight decay on matrices [default: 0.1; nGPT 0]',
    group: 'Training',
  },
  { name: 'beta1', type: 'number', description: 'Adam β₁ [default: 0.9]', group: 'Training' },
  { name: 'beta2', type: 'number', description: 'Adam β₂ [default: 0.95]', group: 'Training' },
  { name: 'eps', type: 'number', description: 'Adam ε, added to √v̂ [default: 1e-8]', group: 'Training' },
  {
    name: 'grad-clip',
    type: 'number',
    description: 'global gradient-norm clip, 0 disables [default: 1]',
    group: 'Training',
  },
  {
    name: 'seed',
    type: 'integer',
    description: 'seed for init, data order and split [default: 1]',
    group: 'Training',
  },
  {
    name: 'eval-every',
    type: 'integer',
    description: 'evaluate every N steps [default: 50]',
    group: 'Training',
  },
  {
    name: 'eval-batches',
    type: 'integer',
    description: 'validation batches per evaluation [default: 8]',
    group: 'Training',
  },
  {
    name: 'checkpoint-every',
    type: 'integer',
    description: 'write a checkpoint every N steps [default: 50]',
    group: 'Training',
  },
  {
    name: 'on-nonfinite',
    type: 'string',
    choices: ['stop', 'skip'],
    description: 'on NaN/Inf loss or gradients: stop, or skip the update',
    group: 'Training',
  },
  {
    name: 'explode-factor',
    type: 'number',
    arg: 'F',
    description:
      'count the run as diverged when the loss stays above F × ln(vocab) (uniform guessing); 0 disables [default: 2]',
    group: 'Training',
  },
  {
    name: 'explode-patience',
    type: 'integer',
    arg: 'N',
    description: 'consecutive steps above the explode-factor limit that make a divergence [default: 10]',
    group: 'Training',
  },
  {
    name: 'diagnostics',
    type: 'integer',
    arg: 'N',
    description: 'record per-layer gradient norms, norm inputs and ‖ΔF‖ every N steps (0: off)',
    group: 'Training',
  },
];

/** Data flags. */
export const DATA_OPTIONS: OptionDef[] = [
  {
    name: 'data',
    type: 'string',
    arg: 'PATH',
    description:
      'text file or folder, JSON Lines (.jsonl) or Parquet (.parquet, or a folder of shards) to train on [default: the embedded Brown corpus]',
    group: 'Data',
  },
  {
    name: 'text-field',
    type: 'string',
    arg: 'NAME',
    description: 'field of each JSON Lines object that holds the text [default: text]',
    group: 'Data',
  },
  {
    name: 'text-column',
    type: 'string',
    arg: 'NAME',
    description: 'Parquet column that holds the text [default: text]',
    group: 'Data',
  },
  {
    name: 'tokenizer',
    type: 'string',
    arg: 'byte|gpt2|PATH',
    description:
      'byte (UTF-8 bytes), gpt2 (GPT-2’s BPE) or a Hugging Face tokenizer.json; the model’s vocabSize follows it unless given; recorded in the checkpoint. With --task it must have the special tokens the task needs (mlm: <mask>; pairs, pos: <pad> <bos> <eos>; span: those and <extra_id_N> sentinels); gpt2 gets them appended after its 50,257 ids [default: byte; byte-special with --task]',
    group: 'Data',
  },
  {
    name: 'val-fraction',
    type: 'number',
    description: 'fraction held out for validation [default: 0.1]',
    group: 'Data',
  },
];

/** Architecture and task flags of `train` (encoder-only and encoder-decoder models). */
export const ARCH_OPTIONS: OptionDef[] = [
  {
    name: 'arch',
    type: 'string',
    choices: ['decoder-only', 'encoder-only', 'encoder-decoder'],
    description:
      'decoder-only (--model gpt, ngpt, …), encoder-only (BERT-style, masked-LM) or encoder-decoder (seq2seq) [default: decoder-only]',
    group: 'Architecture',
  },
  {
    name: 'task',
    type: 'string',
    choices: ['mlm', 'span', 'pos', 'pairs'],
    description:
      'mlm: masked-LM (encoder-only); span: T5 span corruption of --data text; pos: Brown sentence → POS tags; pairs: a --data FILE.tsv/.jsonl of source/target pairs [default: mlm / span, pairs for .tsv/.jsonl]',
    group: 'Architecture',
  },
  {
    name: 'encoder-layers',
    type: 'integer',
    description: 'encoder blocks N (encoder-decoder) [default: --layers]',
    group: 'Architecture',
  },
  {
    name: 'decoder-layers',
    type: 'integer',
    description: 'decoder blocks M (encoder-decoder) [default: --layers]',
    group: 'Architecture',
  },
  {
    name: 'source-length',
    type: 'integer',
    description: 'longest source in tokens (encoder-decoder) [default: --context]',
    group: 'Architecture',
  },
  {
    name: 'target-length',
    type: 'integer',
    description: 'longest target + 1 in tokens (encoder-decoder) [default: --context]',
    group: 'Architecture',
  },
];

/**
 * `options` with the `[default: ...]` of some descriptions replaced (or added): `strata train` has its own
 * defaults for the first run (see `TRAIN_DEFAULTS` in commands/train.ts).
 */
function withDefaults(options: OptionDef[], defaults: Readonly<Record<string, string>>): OptionDef[] {
  return options.map((o) => {
    const d = defaults[o.name];
    if (d === undefined) return o;
    const base = o.description.replace(/\s*\[default: [^\]]*\]$/, '');
    return { ...o, description: `${base} [default: ${d}]` };
  });
}

export const trainSpec: CommandDef = {
  name: 'train',
  summary: 'train a model (or resume a run) and write checkpoints, metrics and a loss plot',
  usage: 'strata train [--out DIR] [model, training, data options] | strata train --resume DIR',
  description:
    'Trains on the embedded Brown corpus unless --data is given. Writes DIR/checkpoint (atomic), DIR/metrics.jsonl\n' +
    '(one JSON object per step) and DIR/loss.svg, then prints a short sample of the model. Ctrl-C, SIGTERM, SIGHUP\n' +
    'or a closed output pipe save a checkpoint first (exit 128 + signal). --resume continues exactly; it honours\n' +
    '--steps, the evaluation/checkpoint cadence, --on-nonfinite, --grad-clip, --diagnostics and the explosion rule,\n' +
    'and refuses other flags. One process per DIR.',
  options: [
    {
      name: 'out',
      type: 'string',
      arg: 'DIR',
      description: 'run directory [default: runs/<model>-<norm>-<time>]',
      group: 'Output',
    },
    {
      name: 'resume',
      type: 'string',
      arg: 'DIR',
      description: 'continue the run in DIR (or from a checkpoint directory)',
      group: 'Output',
    },
    { name: 'force', type: 'boolean', description: 'overwrite an existing --out directory', group: 'Output' },
    {
      name: 'phase',
      type: 'string',
      choices: ['new', 'continue'],
      description:
        'with --resume: start a new schedule phase at the checkpoint’s step (re-warm, then cosine to --steps) or continue the saved schedule [default: new for the first resume of a grown checkpoint, else continue]',
      group: 'Continued training',
    },
    {
      name: 'rewarm',
      type: 'integer',
      arg: 'N',
      description: 'warmup steps of the new phase [default: the run’s --warmup]',
      group: 'Continued training',
    },
    {
      name: 'lr-scale',
      type: 'string',
      arg: 'warmup|keep|N',
      description:
        'lifetime of the per-tensor LR multipliers written by strata grow: back to 1 over the re-warm, kept, or over N steps [default: warmup]',
      group: 'Continued training',
    },
    {
      name: 'resume-schedule',
      type: 'string',
      choices: ['keep', 'stretch'],
      description:
        'when --resume changes --steps: keep the saved learning-rate schedule (after its end the rate stays at its final value) or stretch it over the new step count [default: keep]',
      group: 'Continued training',
    },
    {
      name: 'init-from',
      type: 'string',
      arg: 'DIR',
      description:
        'fine-tune: start from the model and weights of this checkpoint (native, grown or imported) with new data, lr and schedule; architecture flags are refused',
      group: 'Fine-tuning',
    },
    {
      name: 'keep-optimizer',
      type: 'boolean',
      description:
        "with --init-from: carry the checkpoint's Adam moments over [default: fresh optimizer state]",
      group: 'Fine-tuning',
    },
    ...withDefaults(MODEL_OPTIONS, { positions: 'rope (gpt)' }),
    ...ARCH_OPTIONS,
    ...withDefaults(TRAINING_OPTIONS, {
      steps: '1000 (decoder-only), else 200',
      lr: '3e-3 (decoder-only); nGPT 3e-3; else 2e-3',
      'eval-every': '100 (decoder-only), else 50',
      'checkpoint-every': '100 (decoder-only), else 50',
    }),
    ...DATA_OPTIONS,
    ...RUNTIME_OPTIONS,
    ...withDefaults(TRAINER_RUNTIME_OPTIONS, {
      workers:
        '2 on wasm/cpu with ≥ 2 cores when parameters × tokens per step ≥ 1e8 (the default model), else 1',
    }),
  ],
  examples: [
    'strata train                                  # small GPT on the Brown corpus, ~3 minutes on 2 cores',
    'strata train --arch encoder-only --out runs/mlm          # BERT-style masked-LM on the Brown corpus',
    'strata train --arch encoder-decoder --task pos --norm deepnorm --out runs/pos',
    'strata train --arch encoder-decoder --data pairs.tsv --source-length 48 --target-length 48',
    'strata train --norm deepnorm --layers 24 --out runs/deep',
    'strata train --model ngpt --lr 3e-3 --out runs/ngpt',
    'strata train --resume runs/deep',
    'strata train --resume runs/grown --steps 2000 --rewarm 50   # a grown checkpoint: re-warm, fresh cosine',
    'strata train --init-from runs/imported --data notes.txt --lr 3e-4 --steps 300 --out runs/ft   # fine-tune',
  ],
};

export const evalSpec: CommandDef = {
  name: 'eval',
  summary: 'print validation loss and perplexity (and task metrics) of a checkpoint',
  usage: 'strata eval --checkpoint DIR [--data FILE] [--batches N] [--context N] [--attention-entropy]',
  description:
    'Without --data, evaluates on the held-out split of the data the checkpoint was trained on. Encoder-only\n' +
    'models report masked-LM loss and accuracy on the masked positions; encoder-decoder models report loss,\n' +
    'token accuracy (teacher-forced) and exact match (greedy decoding); --data is then a pairs file (pairs task)\n' +
    'or text (masked-LM, span corruption). --attention-entropy reports how sharply the GAU layers attend as a\n' +
    'function of the number of keys each query sees (the reason for softmax_plus; see the GAU guide).',
  options: [
    {
      name: 'checkpoint',
      type: 'string',
      arg: 'DIR',
      description: 'checkpoint or run directory',
      group: 'Input',
    },
    {
      name: 'data',
      type: 'string',
      arg: 'PATH',
      description: 'evaluate on this text file/folder, JSON Lines or Parquet data (all of it) instead',
      group: 'Input',
    },
    {
      name: 'text-field',
      type: 'string',
      arg: 'NAME',
      description: 'JSON Lines field of the text [default: text]',
      group: 'Input',
    },
    {
      name: 'text-column',
      type: 'string',
      arg: 'NAME',
      description: 'Parquet column of the text [default: text]',
      group: 'Input',
    },
    {
      name: 'batches',
      type: 'integer',
      default: 16,
      description: 'maximum number of batches',
      group: 'Input',
    },
    { name: 'batch-size', type: 'integer', default: 8, description: 'sequences per batch', group: 'Input' },
    {
      name: 'context',
      type: 'integer',
      arg: 'N',
      description:
        'evaluate with N tokens per sequence (e.g. 2× or 4× the training context: length generalization); RoPE or position-free models only [default: the trained context]',
      group: 'Input',
    },
    {
      name: 'attention-entropy',
      type: 'boolean',
      description:
        "instead of the loss, report each GAU layer's mean attention entropy (nats) per bucket of visible keys n (n ∈ [1], [2, 3], [4, 7], …), next to ln n and the slope of H on ln n; GAU models only",
      group: 'Output',
    },
    ...RUNTIME_OPTIONS,
  ],
};

export const generateSpec: CommandDef = {
  name: 'generate',
  summary: 'sample text from a checkpoint (decode a source with an encoder-decoder)',
  usage:
    'strata generate --checkpoint DIR [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-k K] [--seed S]',
  options: [
    {
      name: 'checkpoint',
      type: 'string',
      arg: 'DIR',
      description: 'checkpoint or run directory',
      group: 'Sampling',
    },
    { name: 'prompt', type: 'string', default: '', description: 'text to continue', group: 'Sampling' },
    {
      name: 'max-tokens',
      type: 'integer',
      default: 200,
      min: 0,
      description: 'tokens to generate',
      group: 'Sampling',
    },
    {
      name: 'temperature',
      type: 'number',
      default: 0.8,
      min: 0,
      description: 'softmax temperature (0: greedy)',
      group: 'Sampling',
    },
    {
      name: 'top-k',
      type: 'integer',
      default: 40,
      min: 0,
      description: 'sample among the k most likely tokens (0: all)',
      group: 'Sampling',
    },
    { name: 'seed', type: 'integer', default: 1, description: 'sampling seed', group: 'Sampling' },
    {
      name: 'beam',
      type: 'integer',
      description:
        'encoder-decoder: beam search with N hypotheses (1 = greedy; decoding is deterministic) [default: 1]',
      group: 'Sampling',
    },
    ...RUNTIME_OPTIONS,
  ],
  examples: [
    'strata generate --checkpoint runs/demo --prompt "The jury said" --max-tokens 300',
    'strata generate --checkpoint runs/pos --prompt "The jury said" --beam 4   # encoder-decoder: source → target',
    'strata generate --checkpoint runs/mlm --prompt "The <mask>ury said"        # encoder-only: fills <mask>',
  ],
};

export const infoSpec: CommandDef = {
  name: 'info',
  summary: 'show a checkpoint: architecture, parameters per component, backend and training state',
  usage: 'strata info --checkpoint DIR',
  options: [
    {
      name: 'checkpoint',
      type: 'string',
      arg: 'DIR',
      description: 'checkpoint or run directory',
      group: 'Input',
    },
    ...RUNTIME_OPTIONS,
  ],
};

export const normsSpec: CommandDef = {
  name: 'norms',
  summary: 'list the registered residual-normalization strategies and their options',
  usage: 'strata norms [--plugin MODULE]',
  options: [
    {
      name: 'plugin',
      type: 'string',
      multiple: true,
      arg: 'MODULE',
      description: 'also load this plugin module',
      group: 'Runtime',
    },
    { name: 'json', type: 'boolean', description: 'print JSON', group: 'Runtime' },
  ],
};

export const benchSpec: CommandDef = {
  name: 'bench',
  summary: 'measure training throughput (tokens/s, ms/step) and memory per backend',
  usage: 'strata bench [--backends wasm,cpu] [--steps N] [--out FILE]',
  description:
    'Default: the reference GPT (d_model 128, 4 layers, 4 heads, context 128, batch 16, byte vocab, AdamW).',
  options: [
    {
      name: 'backends',
      type: 'string',
      default: 'available',
      description: 'comma-separated backends, or "available"',
      group: 'Bench',
    },
    {
      name: 'steps',
      type: 'integer',
      default: 5,
      description: 'timed steps per backend (after 1 warm-up step)',
      group: 'Bench',
    },
    {
      name: 'cpu-steps',
      type: 'integer',
      default: 1,
      description: 'timed steps on the slow pure-JS cpu backend',
      group: 'Bench',
    },
    { name: 'd-model', type: 'integer', default: 128, description: 'd_model', group: 'Bench' },
    { name: 'layers', type: 'integer', default: 4, description: 'layers', group: 'Bench' },
    { name: 'heads', type: 'integer', default: 4, description: 'heads', group: 'Bench' },
    { name: 'context', type: 'integer', default: 128, description: 'context length', group: 'Bench' },
    { name: 'batch-size', type: 'integer', default: 16, description: 'batch size', group: 'Bench' },
    { name: 'norm', type: 'string', default: 'pre-ln', description: 'norm strategy', group: 'Bench' },
    {
      name: 'out',
      type: 'string',
      arg: 'FILE',
      description: 'also write the results as JSON',
      group: 'Bench',
    },
    { name: 'json', type: 'boolean', description: 'print JSON only', group: 'Bench' },
    {
      name: 'tokenizers',
      type: 'string',
      default: 'byte,gpt2,bpe',
      description:
        'tokenizers whose encoding speed to measure on 50 Brown documents, comma-separated (byte, gpt2, bpe: 4,096 ids trained on them), or none',
      group: 'Bench',
    },
    {
      name: 'suite',
      type: 'string',
      default: 'reference',
      description:
        'configs, comma-separated: reference (the model flags above), ngpt and ngpt-matched (nGPT at the same size; d_ff 4·d or 8d/3 per SwiGLU branch, with a step-time ratio to reference), gau (GAU-α layers, 2× the layers: about the same parameters, with a step-time ratio to reference), deep100, deep1000, encdec1000 (DeepNet’s 500L-500L encoder-decoder, d 32, FFN 64), encdec-smoke (the same at 1L-1L)',
      group: 'Bench',
    },
    {
      name: 'workers',
      type: 'string',
      default: '1,2',
      description: 'data-parallel worker counts to measure (wasm)',
      group: 'Bench',
    },
    {
      name: 'recompute',
      type: 'string',
      choices: ['auto', 'on', 'off'],
      default: 'auto',
      description: 'per-block activation recomputation (auto: when activations exceed 1.5 GB)',
      group: 'Bench',
    },
    {
      name: 'baseline',
      type: 'boolean',
      description: "also measure wasm with tfjs's own kernels (the before figure)",
      group: 'Bench',
    },
    {
      name: 'generate',
      type: 'integer',
      default: 64,
      description: 'tokens for the KV-cache generation benchmark (0: skip)',
      group: 'Bench',
    },
    {
      name: 'pytorch',
      type: 'boolean',
      description: 'also run bench/torch_gpt.py when python3 with torch is available',
      group: 'Bench',
    },
  ],
};

export const compareSpec: CommandDef = {
  name: 'compare',
  summary:
    'fair comparison: every variant tuned over a learning-rate grid, several seeds, bands, equal budgets',
  usage:
    'strata compare --norms post-ln,pre-ln,deepnorm [--lrs 5e-4,1e-3,2e-3,4e-3] [--seeds 1,2,3] [shared options] --out DIR',
  description:
    'Trains every variant × learning rate × seed with the shared options (variants override them; a variant may\n' +
    'bring its own grid with --variant "x=--lrs …"). Each variant is reported at its own best learning rate (lowest mean\n' +
    'final validation loss over seeds; a rate where a seed diverged cannot be best); a best rate at the edge of the grid\n' +
    'is flagged, and --extend-grid adds rates past that edge until it is inside. DIR/report.md has the tables (mean ± std\n' +
    '[min–max] over seeds, the rates that train, steps/tokens/FLOPs/seconds to a target) and plots with their data:\n' +
    'validation loss vs steps, tokens, FLOPs and wall time (mean line, min–max band), the learning-rate sensitivity, and\n' +
    "with --diagnostics N the DeepNet §3 diagnostics (‖ΔF‖, LN-input norms, per-block gradient norms) at each variant's\n" +
    'best rate and at one shared rate. Runs live in DIR/runs/<variant>/lr<lr>/s<seed>/, --jobs at a time, each in its\n' +
    'own process; running the same command again resumes (finished runs are kept, interrupted ones continue).\n' +
    "A growth arm (--variant \"g=SMALL-MODEL-FLAGS --grow-at F --grow 'GROW-FLAGS'\", e.g. --grow '--width 2 --noise 0.01')\n" +
    'trains the small model for a fraction F of the FLOP budget, grows it with `strata grow` (exact, Adam state grown)\n' +
    "and trains the grown model in a new schedule phase (re-warm over --warmup or the variant's --rewarm, fresh cosine\n" +
    "to a peak of the run's lr, or lr × the variant's --grown-lr FACTOR);\n" +
    '--steps counts grown-model steps, so every arm spends the same FLOPs, and FLOPs are counted per phase.',
  options: [
    {
      name: 'out',
      type: 'string',
      arg: 'DIR',
      description: 'report directory [default: runs/compare-<time>]',
      group: 'Comparison',
    },
    {
      name: 'norms',
      type: 'string',
      arg: 'LIST',
      description: 'one variant per norm strategy, e.g. post-ln,pre-ln,deepnorm',
      group: 'Comparison',
    },
    {
      name: 'models',
      type: 'string',
      arg: 'LIST',
      description: 'one variant per model family, e.g. gpt,ngpt',
      group: 'Comparison',
    },
    {
      name: 'variant',
      type: 'string',
      multiple: true,
      arg: 'LABEL=FLAGS',
      description: 'a variant with its own flags, e.g. "ngpt=--model ngpt --lr 5e-3"',
      group: 'Comparison',
    },
    {
      name: 'seeds',
      type: 'string',
      default: '1,2,3',
      arg: 'LIST',
      description: 'seeds to repeat every variant and learning rate with',
      group: 'Comparison',
    },
    {
      name: 'lrs',
      type: 'string',
      arg: 'LIST',
      description:
        'learning-rate grid for every variant, e.g. 5e-4,1e-3,2e-3,4e-3 [default: ×¼, ×½, ×1, ×2 around the family default; one point with --lr]',
      group: 'Comparison',
    },
    {
      name: 'extend-grid',
      type: 'integer',
      arg: 'N',
      default: 2,
      description:
        "rates added past the grid's edge (one grid step each) while a variant's best rate sits at that edge",
      group: 'Comparison',
    },
    {
      name: 'jobs',
      type: 'integer',
      description:
        'runs trained at once, each in its own process [default: one per core, at most 2; 1 with --workers 2]',
      group: 'Comparison',
    },
    {
      name: 'mechanism-lr',
      type: 'number',
      arg: 'LR',
      description:
        'shared learning rate of the diagnostics plots [default: the middle rate common to all grids]',
      group: 'Comparison',
    },
    {
      name: 'target-loss',
      type: 'number',
      description: 'report steps (and seconds) to reach this validation loss',
      group: 'Comparison',
    },
    {
      name: 'replot',
      type: 'string',
      arg: 'DIR',
      description: 'rebuild DIR/report.md and its plots from the runs kept there (with a new --target-*)',
      group: 'Comparison',
    },
    {
      name: 'target-from',
      type: 'string',
      arg: 'LABEL',
      description: "use this variant's mean final validation loss as the target; report speed-ups over it",
      group: 'Comparison',
    },
    {
      name: 'force',
      type: 'boolean',
      description: 'delete an existing report directory and start afresh (default: resume it)',
      group: 'Comparison',
    },
    ...MODEL_OPTIONS.filter((o) => o.name !== 'model'),
    ...ARCH_OPTIONS,
    ...TRAINING_OPTIONS.filter((o) => o.name !== 'seed'),
    ...DATA_OPTIONS,
    ...RUNTIME_OPTIONS,
    ...TRAINER_RUNTIME_OPTIONS,
  ],
  examples: [
    '# DeepNet §3: 24 layers, each strategy tuned over 4 learning rates × 3 seeds',
    'strata compare --norms post-ln,pre-ln,deepnorm --lrs 5e-4,1e-3,2e-3,4e-3 --seeds 1,2,3 --data markov:32 \\',
    '  --model-opt vocabSize=32 --layers 24 --d-model 32 --d-ff 64 --heads 2 --context 16 --batch-size 16 --warmup 0 \\',
    '  --schedule constant --weight-decay 0 --grad-clip 0 --beta2 0.98 --activation relu --steps 300 --diagnostics 10 --out runs/deepnet',
    '# the same command again resumes an interrupted grid; --replot DIR redraws the report',
    '# growth vs scratch at equal FLOPs: grow a half-width model ×2 at 25% of the budget',
    'strata compare --variant "scratch=--d-model 32 --d-ff 128" --variant "g25=--d-model 16 --d-ff 64 --grow-at 0.25 \\',
    "  --grow '--width 2 --noise 0.01'\" --heads 2 --layers 4 --steps 2000 --target-from scratch --out runs/growth",
  ],
};

/** `strata grow` (its runner is `commands/grow.ts`). */
export const growSpec: CommandDef = {
  name: 'grow',
  summary: 'grow a trained checkpoint into a larger model with the same function (width, heads, FFN, depth)',
  usage:
    'strata grow --checkpoint SMALL --out BIG [--width K] [--depth K] [--heads H] [--head-dim D] [--ffn K] [--verify]',
  description:
    'Function-preserving growth (see the Growth guide): d_model ×k by the isometric map (or tile), more heads or a\n' +
    'larger head dim, a wider FFN, and new identity blocks per the norm strategy (Pre-LN: zero output projections;\n' +
    'Post-LN/DeepNorm: the LN-affine move, exact up to O(eps); nGPT: α = 0). Every transform prints its measured\n' +
    'max |Δlogits| on a probe batch; one that cannot be exact is refused unless --allow-approx. The Adam state grows\n' +
    'with the weights (m/(n·s), v/(n·s)², step kept), so `strata train --resume BIG --steps N` continues the run.',
  options: [
    {
      name: 'checkpoint',
      type: 'string',
      arg: 'DIR',
      description: 'checkpoint or run directory of the small model',
      group: 'Input/output',
    },
    {
      name: 'out',
      type: 'string',
      arg: 'DIR',
      description: 'run directory for the grown model (writes DIR/checkpoint, DIR/growth.json)',
      group: 'Input/output',
    },
    { name: 'force', type: 'boolean', description: 'overwrite a non-empty --out', group: 'Input/output' },
    {
      name: 'width',
      type: 'number',
      arg: 'K',
      description: 'd_model factor (heads × K with the head dim kept, unless --heads/--head-dim)',
      group: 'Growth',
    },
    {
      name: 'depth',
      type: 'number',
      arg: 'K',
      description: 'layer-count factor (new blocks interleaved; see --placement)',
      group: 'Growth',
    },
    { name: 'layers', type: 'integer', description: 'or: the new number of layers', group: 'Growth' },
    {
      name: 'insert-at',
      type: 'string',
      arg: 'I,J,…',
      description: 'or: insert new blocks before these small-model block indices (N = on top)',
      group: 'Growth',
    },
    {
      name: 'placement',
      type: 'string',
      choices: ['interleave', 'top', 'bottom'],
      default: 'interleave',
      description: 'where --depth/--layers put the new blocks',
      group: 'Growth',
    },
    {
      name: 'stack',
      type: 'string',
      choices: ['encoder', 'decoder', 'both'],
      description:
        'encoder-decoder checkpoints: the stack --depth/--layers/--insert-at grow (default both, --depth only)',
      group: 'Growth',
    },
    { name: 'heads', type: 'integer', description: 'new number of attention heads', group: 'Growth' },
    {
      name: 'head-dim',
      type: 'integer',
      description: 'new head dimension (an integer multiple of the old)',
      group: 'Growth',
    },
    {
      name: 'ffn',
      type: 'number',
      arg: 'K',
      description: 'd_ff factor [default: the d_model factor]',
      group: 'Growth',
    },
    {
      name: 'map',
      type: 'string',
      choices: ['auto', 'isometric', 'tile'],
      default: 'auto',
      description: 'residual map for integer width factors',
      group: 'Growth',
    },
    {
      name: 'non-integer',
      type: 'string',
      choices: ['auto', 'zero-pad', 'average'],
      default: 'auto',
      description:
        'residual construction for a non-integer width factor: zero-pad (RMSNorm) or average coordinates (LayerNorm, pre-norm)',
      group: 'Growth',
    },
    {
      name: 'noise',
      type: 'number',
      default: 0,
      description: 'paired zero-sum noise that breaks the symmetry of copies (relative size, e.g. 0.01)',
      group: 'Growth',
    },
    {
      name: 'seed',
      type: 'integer',
      default: 0,
      description: 'seed for noise and new entries',
      group: 'Growth',
    },
    {
      name: 'deepnorm-alpha',
      type: 'string',
      choices: ['keep', 'absorb'],
      default: 'keep',
      description: 'DeepNorm depth growth: pin the old α, or absorb α′/α into the output projections',
      group: 'Growth',
    },
    {
      name: 'depth-init',
      type: 'string',
      choices: ['copy', 'random'],
      default: 'copy',
      description: 'new blocks start as copies of the block below, or from a fresh init',
      group: 'Growth',
    },
    {
      name: 'new-moments',
      type: 'string',
      choices: ['zero', 'seed-v'],
      default: 'zero',
      description: 'Adam moments of new entries: zero, or v copied from their source',
      group: 'Growth',
    },
    {
      name: 'allow-approx',
      type: 'boolean',
      description: 'run transforms that cannot be exact (and report how far off they are)',
      group: 'Checks',
    },
    {
      name: 'verify',
      type: 'boolean',
      description: 'fail (exit 1, nothing written) when max |Δlogits| exceeds the tolerance',
      group: 'Checks',
    },
    {
      name: 'tolerance',
      type: 'number',
      arg: 'X',
      description: 'allowed max |Δlogits| [default: 1e-5 × max |logit|, 1e-4 × for Post-LN-type depth]',
      group: 'Checks',
    },
    {
      name: 'probe-batch',
      type: 'integer',
      default: 4,
      description: 'sequences in the probe batch (from the validation split of the checkpoint’s data)',
      group: 'Checks',
    },
    ...RUNTIME_OPTIONS,
  ],
  examples: [
    'strata grow --checkpoint runs/small --width 2 --depth 2 --out runs/big --verify',
    'strata grow --checkpoint runs/small --heads 8 --ffn 2 --noise 0.01 --out runs/wide',
    'strata train --resume runs/big --steps 2000        # continue training the grown model',
  ],
};

const FORMAT_CHOICES = ['hf-gpt2', 'hf-llama', 'torchscale', 'ngpt'];

const VERIFY_OPTIONS: OptionDef[] = [
  {
    name: 'tolerance',
    type: 'number',
    arg: 'X',
    description: 'allowed max |Δlogits| [default: 1e-5 × max(1, max |logit|)]',
    group: 'Checks',
  },
  {
    name: 'probe-batch',
    type: 'integer',
    default: 4,
    description: 'sequences of random tokens in the probe batch',
    group: 'Checks',
  },
];

/** `strata export` (its runner is `commands/export.ts`). */
export const exportSpec: CommandDef = {
  name: 'export',
  summary:
    'write a checkpoint in a PyTorch layout (Hugging Face GPT-2/Llama, torchscale, NVIDIA nGPT), verified',
  usage: 'strata export --checkpoint DIR --format hf-gpt2|hf-llama|torchscale|ngpt --out DIR2',
  description:
    'Writes DIR2/model.safetensors and DIR2/config.json (hf-llama: also generation_config.json) in the layout of\n' +
    "the format, and the tokenizer: the checkpoint's tokenizer.json when it has one, else a tokenizer.json that\n" +
    "reproduces the byte ids. Then reads the written files back with the format's reader and prints max |Δlogits|\n" +
    'on a probe batch and max |Δweights|; above the tolerance it exits 1 and removes what it wrote. A model the\n' +
    'format cannot represent is refused with every difference named. Tensor tables: the interop guide.',
  options: [
    {
      name: 'checkpoint',
      type: 'string',
      arg: 'DIR',
      description: 'checkpoint or run directory',
      group: 'Input/output',
    },
    {
      name: 'format',
      type: 'string',
      choices: FORMAT_CHOICES,
      description: 'layout to write',
      group: 'Input/output',
    },
    { name: 'out', type: 'string', arg: 'DIR2', description: 'folder to write', group: 'Input/output' },
    { name: 'force', type: 'boolean', description: 'write into a non-empty --out', group: 'Input/output' },
    ...VERIFY_OPTIONS,
    ...RUNTIME_OPTIONS,
  ],
  examples: [
    'strata train --positions learned --out runs/gpt2 && strata export --checkpoint runs/gpt2 --format hf-gpt2 --out hf/gpt2',
    'strata train --positions rope --activation swiglu --norm-kind rmsnorm --no-bias --untied --out runs/llama',
    'strata export --checkpoint runs/llama --format hf-llama --out hf/llama',
    'strata export --checkpoint runs/deep --format torchscale --out ts/deep   # --activation gelu_erf, learned positions',
  ],
};

/** `strata import` (its runner is `commands/import.ts`). */
export const importSpec: CommandDef = {
  name: 'import',
  summary:
    'read a PyTorch-layout model (Hugging Face GPT-2/Llama, torchscale, NVIDIA nGPT) into a checkpoint, verified',
  usage: 'strata import --format hf-gpt2|hf-llama|torchscale|ngpt --from DIR --out DIR2',
  description:
    'Reads DIR/config.json and DIR/model.safetensors (or sharded model.safetensors.index.json) into a Strata model\n' +
    'and writes DIR2/checkpoint. Training-only settings are dropped: the model has dropout 0 unless --dropout.\n' +
    'Checks that every source tensor lands in the checkpoint (max |Δweights| through the layout) and that the\n' +
    'checkpoint reloaded from disk gives the same logits (max |Δlogits| on a probe batch). A model Strata cannot\n' +
    'compute exactly is refused with every difference named. Then: strata eval / generate / train --init-from DIR2.',
  options: [
    {
      name: 'format',
      type: 'string',
      choices: FORMAT_CHOICES,
      description: 'layout to read',
      group: 'Input/output',
    },
    { name: 'from', type: 'string', arg: 'DIR', description: 'folder to read', group: 'Input/output' },
    {
      name: 'out',
      type: 'string',
      arg: 'DIR2',
      description: 'run directory to write (DIR2/checkpoint)',
      group: 'Input/output',
    },
    { name: 'force', type: 'boolean', description: 'overwrite a non-empty --out', group: 'Input/output' },
    {
      name: 'dropout',
      type: 'number',
      description: 'dropout of the imported model when it is trained [default: 0, whatever the source says]',
      group: 'Model',
    },
    ...VERIFY_OPTIONS,
    ...RUNTIME_OPTIONS,
  ],
  examples: [
    'strata import --format hf-gpt2 --from hf/gpt2 --out runs/imported',
    'strata train --init-from runs/imported --data notes.txt --lr 3e-4 --steps 300 --out runs/ft',
  ],
};

export const tokenizerSpec: CommandDef = {
  name: 'tokenizer',
  summary: 'train a byte-level BPE tokenizer on your data and save it as a Hugging Face tokenizer.json',
  usage: 'strata tokenizer train [--data PATH] --vocab-size N --out FILE',
  description:
    "Trains with Hugging Face's tokenizers package (its Rust BPE trainer; npm install tokenizers). The file has\n" +
    'the special tokens first, then the 256 byte tokens, then one token per merge, like a tokenizers\n' +
    'ByteLevel BPE trained with the byte alphabet; train on it with strata train --tokenizer FILE.',
  options: [
    {
      name: 'data',
      type: 'string',
      arg: 'PATH',
      description: 'text file or folder, JSON Lines or Parquet [default: the embedded Brown corpus]',
      group: 'Input',
    },
    ...DATA_OPTIONS.filter((o) => o.name === 'text-field' || o.name === 'text-column'),
    {
      name: 'vocab-size',
      type: 'integer',
      arg: 'N',
      description: 'number of token ids, special tokens and the 256 bytes included',
      group: 'Tokenizer',
    },
    {
      name: 'special',
      type: 'string',
      arg: 'TOKEN',
      multiple: true,
      description: 'a special token (ids 0, 1, ... in order) [default: <pad> <mask> <bos> <eos>]',
      group: 'Tokenizer',
    },
    {
      name: 'sentinels',
      type: 'integer',
      arg: 'N',
      description:
        'add T5 sentinel tokens <extra_id_0> … <extra_id_N-1> after the special tokens, for --task span (which needs one per corrupted span: 3 for 64-token sources) [default: 0]',
      group: 'Tokenizer',
    },
    {
      name: 'out',
      type: 'string',
      arg: 'FILE',
      description: 'where to write tokenizer.json',
      group: 'Output',
    },
    { name: 'json', type: 'boolean', description: 'print the summary as one JSON line', group: 'Output' },
  ],
  examples: [
    'strata tokenizer train --vocab-size 4096 --out brown-bpe.json          # on the Brown corpus',
    'strata tokenizer train --data corpus.jsonl --text-field body --vocab-size 8000 --out tok.json',
    'strata train --tokenizer tok.json --data corpus.jsonl --text-field body --out runs/bpe',
    'strata tokenizer train --vocab-size 8000 --sentinels 16 --out enc.json   # for encoder tasks too',
    'strata train --arch encoder-decoder --task span --tokenizer enc.json --data corpus.txt --out runs/t5',
  ],
};

/** All commands, in help order. */
export const COMMANDS: CommandDef[] = [
  trainSpec,
  compareSpec,
  growSpec,
  exportSpec,
  importSpec,
  evalSpec,
  generateSpec,
  infoSpec,
  normsSpec,
  benchSpec,
  tokenizerSpec,
];
