#!/usr/bin/env bash
# nGPT vs a RoPE GPT (Pre-LN), tuned per arm (EXPERIMENTS.md): d_model 64, 4 layers, 4 heads at equal parameter
# budget (GPT's GELU MLP 2·64·256 per block = nGPT's SwiGLU 3·64·171), the Brown corpus, 1,024 tokens per step at
# every context (64 × 16, 256 × 4, 512 × 2), budgets of 200, 400 and 800 steps each with its own schedule (each
# family's defaults: GPT warmup + cosine to lr/10, nGPT no warmup, decay to 0), 5 learning rates per arm bracketing
# its optimum (the grid extends past an edge automatically), 3 seeds. nGPT's step multiplier at equal loss is the
# "cost to reach" table of each report (--target-from gpt: steps and seconds each arm needs to reach GPT's final
# loss). One resumable grid per (context, budget):
#   CONTEXTS="64 256 512" BUDGETS="200 400 800" bash experiments/ngpt-vs-gpt.sh   (reports under runs/ngpt-vs-gpt)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/ngpt-vs-gpt}
mkdir -p "$OUT"
GPT="--model gpt --positions rope --d-model 64 --layers 4 --heads 4 --d-ff 256 --lrs ${GPT_LRS:-1e-3,2e-3,4e-3,8e-3,1.6e-2}"
NGPT="--model ngpt --d-model 64 --layers 4 --heads 4 --d-ff 171 --lrs ${NGPT_LRS:-2e-3,4e-3,8e-3,1.6e-2,3.2e-2}"
for ctx in ${CONTEXTS:-64 256 512}; do
  for steps in ${BUDGETS:-200 400 800}; do
    node packages/cli/dist/bin.js compare --variant "gpt=$GPT" --variant "ngpt=$NGPT" --seeds "${SEEDS:-1,2,3}" \
      --extend-grid 2 --target-from gpt --steps "$steps" --context "$ctx" --batch-size $((1024 / ctx)) \
      --eval-every $((steps / 8)) --eval-batches 8 --backend wasm --json --out "$OUT/ctx$ctx-steps$steps" \
      > "$OUT/ctx$ctx-steps$steps.log" 2>&1
    echo "context $ctx, $steps steps: $OUT/ctx$ctx-steps$steps/report.md"
  done
done
