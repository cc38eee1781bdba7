#!/usr/bin/env bash
# GAU vs the standard Transformer block in a decoder-only LM (docs/guides/gau-roformer.md): everything but the
# block held fixed — Pre-LN with LayerNorm (gain and bias), RoPE, biases, tied head, d_model 64, the Brown corpus,
# context 64, 16 sequences per step — and the fair protocol of EXPERIMENTS.md (4 learning rates per arm ×2 apart,
# extended past an edge, 3 seeds, bands, each arm's own warmup + cosine).
#   block  4 Transformer blocks (4 heads, d_ff 256, GELU)                                    216,448 parameters
#   gau    8 GAU layers, e 120, s 24 (two layers = one block's 12d²), softmax                217,536 parameters
#   gau-plus  the same with GAU-α's softmax_plus (base 64 = the training context)
# FLASH (arXiv 2202.10447) claims GAU is faster and better at equal quality budget; the report's FLOPs and wall-time
# plots and the cost-to-reach table (--target-from block) test that at this scale. `strata bench --suite
# reference,gau` measures the step time alone.
#
# Length generalization from the same grid (Su Jianlin, https://kexue.fm/archives/8823: scaling the scores by
# log n / log base keeps the attention entropy from growing with the number of keys n, which is why GAU-α uses
# softmax_plus): each arm's best-learning-rate runs, trained at context 64, are evaluated on the held-out split at
# 64, 128 and 256 tokens per sequence with `strata eval --context` (RoPE: the weights do not depend on the
# context); experiments/length-eval.mjs writes $OUT/length.md (mean ± std over seeds) and length.jsonl.
#
# Cost (2026-11-29, wasm, 1 worker, load ~30 on 2 cores; `strata bench --suite reference,gau --d-model 64 --layers 4
# --context 64 --batch-size 16`: 129 ms CPU/step for 4 blocks, 472 ms for 8 GAU layers):
#   36 runs × 400 steps ≈ 12 × 400 × 0.13 s + 24 × 400 × 0.47 s ≈ 1.4 CPU-hours (+ evals and extensions: budget
#   2 CPU-hours). GAU_ONLY_SOFTMAX=1 drops the gau-plus arm (≈ 0.9 CPU-hours).
#   STEPS=400 bash experiments/gau-decoder.sh      (report: runs/gau-decoder/compare/report.md, length.md)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gau-decoder}
LRS=${LRS:-1e-3,2e-3,4e-3,8e-3}
STEPS=${STEPS:-400}
BLOCK="--positions rope --d-model 64 --layers 4 --heads 4 --d-ff 256"
GAU="--positions rope --d-model 64 --layers 8 --model-opt block=gau --model-opt gauDim=120 --model-opt gauKeyDim=24"
ARMS=(--variant "block=$BLOCK" --variant "gau=$GAU")
if [ -z "${GAU_ONLY_SOFTMAX:-}" ]; then
  ARMS+=(--variant "gau-plus=$GAU --model-opt attentionNorm=softmax_plus --model-opt softmaxPlusBase=64")
fi
mkdir -p "$OUT"
node packages/cli/dist/bin.js compare "${ARMS[@]}" --lrs "$LRS" --seeds "${SEEDS:-1,2,3}" --extend-grid 2 \
  --target-from block --steps "$STEPS" --context 64 --batch-size 16 --eval-every $((STEPS / 8)) --eval-batches 8 \
  --backend wasm --json --out "$OUT/compare" > "$OUT/compare.log" 2>&1
node experiments/length-eval.mjs "$OUT" 64 128 256
node experiments/gau-entropy.mjs "$OUT" 64 128 256
echo "report: $OUT/compare/report.md; lengths: $OUT/length.md; attention entropy: $OUT/entropy.md"
