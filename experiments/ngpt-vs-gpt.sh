#!/usr/bin/env bash
# nGPT vs a RoPE GPT (Pre-LN), tuned per arm (EXPERIMENTS.md; docs/guides/ngpt.md): d_model 32, 4 layers, 2 heads of
# 16 at equal parameters (67.3k vs 66.7k: GPT's GELU MLP 2·32·128 per block ≈ nGPT's SwiGLU 3·32·85, and GPT's head
# untied as nGPT's is), the Brown corpus,
# 1,024 tokens per step at every context (64 × 16, 256 × 4, 512 × 2), budgets of 200, 400 and 800 steps each with its
# own schedule (each family's defaults: GPT warmup + cosine to lr/10; nGPT no warmup, decay to 0), 5 learning rates
# per arm bracketing its optimum (the grid extends past an edge automatically), 3 seeds. nGPT's step multiplier at
# equal loss is the "cost to reach" table of each report (--target-from gpt: the steps, FLOPs and seconds each arm
# needs to reach GPT's final loss). After each grid, experiments/length-eval.mjs evaluates the best runs at the
# training context and at twice it (RoPE in both arms: the weights do not depend on the context). One resumable grid
# per (budget, context), cheapest budget first so that every context has a finished report early:
#   bash experiments/ngpt-vs-gpt.sh        (reports: runs/ngpt-vs-gpt/ctxC-stepsS/report.md, ctxC-stepsS-length.md;
#                                          across grids: summary.md, conditioning.md)
#
# Cost (2026-11-29, `strata bench --suite reference,ngpt-matched --d-model 32 --layers 4 --context C --batch-size
# 1024/C --workers 1`, wasm, load 3–5 on 2 cores): 63–120 ms CPU per GPT step and 83–124 ms per nGPT step
# (min over 5 steps) at contexts 64–512. Measured wall time per grid, two runs at a time (36–39 runs with the grid
# extensions, evaluations included): 200 steps 6/6/12 min at contexts 64/256/512, 400 steps 11/17/≈24 min; the
# 800-step grids ≈ 2× the 400-step ones (context 64: 22 min). All nine grids ≈ 3.5 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/ngpt-vs-gpt}
mkdir -p "$OUT"
GPT="--model gpt --positions rope --d-model 32 --layers 4 --heads 2 --d-ff 128 --model-opt tiedEmbeddings=false --lrs ${GPT_LRS:-1e-3,2e-3,4e-3,8e-3,1.6e-2}"
NGPT="--model ngpt --d-model 32 --layers 4 --heads 2 --d-ff 85 --lrs ${NGPT_LRS:-2e-3,4e-3,8e-3,1.6e-2,3.2e-2}"
for steps in ${BUDGETS:-200 400 800}; do
  for ctx in ${CONTEXTS:-64 512 256}; do
    node packages/cli/dist/bin.js compare --variant "gpt=$GPT" --variant "ngpt=$NGPT" --seeds "${SEEDS:-1,2,3}" \
      --extend-grid 2 --target-from gpt --steps "$steps" --context "$ctx" --batch-size $((1024 / ctx)) \
      --eval-every $((steps / 8)) --eval-batches 8 --backend wasm --json --out "$OUT/ctx$ctx-steps$steps" \
      > "$OUT/ctx$ctx-steps$steps.log" 2>&1
    node experiments/length-eval.mjs "$OUT/ctx$ctx-steps$steps" "$ctx" $((2 * ctx)) > /dev/null
    echo "context $ctx, $steps steps: $OUT/ctx$ctx-steps$steps/report.md, $OUT/ctx$ctx-steps$steps-length.md"
  done
done
# across grids: the step and wall-time multipliers with their spread (summary.md, multiplier.svg) and the paper's
# mechanism check, the condition numbers of the trained matrices (conditioning.md, conditioning.svg)
node experiments/ngpt-summary.mjs "$OUT"
node experiments/ngpt-conditioning.mjs "$OUT" > /dev/null
echo "summary: $OUT/summary.md, $OUT/conditioning.md"
