#!/usr/bin/env bash
# GAU-α-style vs RoFormerV2-style vs Pre-LN BERT-style encoders on masked-LM (docs/guides/gau-roformer.md), the
# fair protocol of EXPERIMENTS.md: every arm tuned over its own learning-rate grid (4 rates ×2 apart, extended past
# an edge automatically), 3 seeds, bands; the Brown corpus, context 64, 16 sequences (1,024 tokens) per step, the
# same step budget with each arm's own warmup + cosine schedule. Equal parameters (±4 %): d_model 64 everywhere,
#   bert      Pre-LN, LayerNorm with gain and bias, learned positions, GELU, biases; 4 blocks, d_ff 256   221,824
#   roformer  --preset roformer-v2: RoPE, no biases, ReLU, Post-LN over a parameter-free RMS norm; 4 blocks 214,272
#   bert-rope the same BERT with RoPE instead of the learned table, to tell RoPE's share of RoFormerV2's result
#             from its Post-LN over the parameter-free norm (no biases, ReLU)                            217,728
#   gau-alpha --preset gau-alpha: 8 GAU layers (two per block, as GAU-α's 24 vs BERT's 12), e 120, s 24 so that
#             one GAU layer (d·(3e+s) = 6d²) is half a block (12d²); softmax_plus, RoPE, no biases, Post-LN   214,656
# Equal compute: the report plots loss against FLOPs (6N + 12·T·Σd_attn; a GAU layer counts (s+e)/2 = 72 of
# attention width, so GAU costs ~1.2× the FLOPs per token of the blocks here) and wall time; --target-from gau-alpha
# gives the steps, FLOPs and seconds each arm needs to reach GAU-α's final loss (FLASH's "equal quality" question).
# Quality: masked-LM loss and masked-token accuracy (`node experiments/task-metrics.mjs $OUT/compare`).
#
# Cost (measured 2026-11-29 with `strata bench --suite reference,gau --d-model 64 --layers 4 --context 64
# --batch-size 16`, wasm, 1 worker, under load ~30 on 2 cores: 129 ms CPU/step for a 4-block Transformer, 472 ms
# for 8 GAU layers; 20-step training runs of the three arms took 1.0, 1.0 and 1.5 s/step wall under that load):
#   48 runs × 400 steps ≈ 36 × 400 × 0.13 s + 12 × 400 × 0.47 s ≈ 1.2 CPU-hours (+ evals, start-up, grid
#   extensions: budget 1.7 CPU-hours; ~1 hour wall on 2 quiet cores with --jobs 2).
#   STEPS=400 bash experiments/gau-mlm.sh        (report: runs/gau-mlm/report.md)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gau-mlm}
LRS=${LRS:-5e-4,1e-3,2e-3,4e-3}
STEPS=${STEPS:-400}
BERT="--arch encoder-only --positions learned --d-model 64 --layers 4 --heads 4 --d-ff 256"
BERT_ROPE="--arch encoder-only --positions rope --d-model 64 --layers 4 --heads 4 --d-ff 256"
ROFORMER="--preset roformer-v2 --d-model 64 --layers 4 --heads 4 --d-ff 256"
GAU="--preset gau-alpha --d-model 64 --layers 8 --model-opt gauDim=120 --model-opt gauKeyDim=24"
mkdir -p "$OUT"
node packages/cli/dist/bin.js compare --variant "bert=$BERT" --variant "bert-rope=$BERT_ROPE" --variant "roformer=$ROFORMER" --variant "gau-alpha=$GAU" \
  --lrs "$LRS" --seeds "${SEEDS:-1,2,3}" --extend-grid 2 --target-from gau-alpha --steps "$STEPS" --context 64 \
  --batch-size 16 --eval-every $((STEPS / 8)) --eval-batches 8 --backend wasm --json --out "$OUT/compare" \
  > "$OUT/compare.log" 2>&1
node experiments/task-metrics.mjs "$OUT/compare" > /dev/null
echo "report: $OUT/compare/report.md; masked accuracy: $OUT/compare/task-metrics.md"
