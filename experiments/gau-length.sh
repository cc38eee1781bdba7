#!/usr/bin/env bash
# Length generalization of softmax vs softmax_plus (docs/guides/gau-roformer.md; Su Jianlin,
# https://kexue.fm/archives/8823: scaling the scores by log n / log base keeps the attention entropy from growing
# with the number of keys n, which is why GAU-α uses softmax_plus). Decoder-only LMs trained at context n = 64 on
# the Brown corpus (fair protocol: 4 learning rates per arm, extended past an edge, 3 seeds), then evaluated on
# the held-out split at 64, 128 and 256 tokens per sequence with `strata eval --context` (RoPE: the weights do not
# depend on the context). Arms (Pre-LN, RoPE, d_model 64, equal parameters as in gau-decoder.sh):
#   gau-softmax  8 GAU layers (e 120, s 24), softmax
#   gau-plus     the same with softmax_plus, base 64 (= the training context, so the scale is 1 there)
#   block        4 Transformer blocks (softmax attention), the reference
# The table (runs/gau-length/length.md) gives, per arm at its best learning rate, the held-out loss at 1×, 2× and
# 4× the training context, mean ± std over the seeds.
#
# Cost (2026-11-29, wasm, 1 worker, load ~30 on 2 cores: 129 ms CPU/step for 4 blocks, 472 ms for 8 GAU layers
# at context 64, batch 16): 36 runs × 400 steps ≈ 12 × 400 × 0.13 + 24 × 400 × 0.47 s ≈ 1.4 CPU-hours, plus
# 9 best runs × 3 contexts × 8 eval batches (a few minutes): budget 2 CPU-hours.
#   STEPS=400 bash experiments/gau-length.sh     (tables: runs/gau-length/length.md, compare report beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gau-length}
LRS=${LRS:-1e-3,2e-3,4e-3,8e-3}
STEPS=${STEPS:-400}
CTX=64
GAU="--positions rope --d-model 64 --layers 8 --model-opt block=gau --model-opt gauDim=120 --model-opt gauKeyDim=24"
mkdir -p "$OUT"
node packages/cli/dist/bin.js compare --variant "gau-softmax=$GAU" \
  --variant "gau-plus=$GAU --model-opt attentionNorm=softmax_plus --model-opt softmaxPlusBase=$CTX" \
  --variant "block=--positions rope --d-model 64 --layers 4 --heads 4 --d-ff 256" \
  --lrs "$LRS" --seeds "${SEEDS:-1,2,3}" --extend-grid 2 --steps "$STEPS" --context $CTX --batch-size 16 \
  --eval-every $((STEPS / 8)) --eval-batches 8 --backend wasm --json --out "$OUT/compare" > "$OUT/compare.log" 2>&1
node experiments/gau-length-eval.mjs "$OUT" $CTX $((2 * CTX)) $((4 * CTX))
echo "tables: $OUT/length.md"
