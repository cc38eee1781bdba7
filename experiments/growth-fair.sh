#!/usr/bin/env bash
# Function-preserving growth against training from scratch at equal compute (issue 13, EXPERIMENTS.md).
# Every arm spends the FLOPs of --steps steps of the large model (d 32, 4 layers, 2 heads of 16, FFN 128,
# GELU, RoPE, context 32, batch 16) on the embedded Brown corpus (bytes), with a cosine schedule
# to lr/10 and 100 warmup steps:
#   scratch  the large model from scratch;
#   grow10   a half-width model (d 16, 2 heads of 8, FFN 64: the same head layout) for 10% of the FLOP budget,
#            grown ×2 in width (exact; Adam state grown; noise 0.01 to break the symmetry of duplicated
#            units), then a new phase (re-warm 100 steps, fresh cosine) for the remaining 90%;
#   grow25   the same, growing at 25% of the budget.
#   grow10-lo, grow25-lo  the same two, but the grown phase re-warms to a quarter of the arm's rate (--grown-lr
#            0.25) instead of the full rate: in the first grid the re-warm back to the peak rate (3.2e-2 at the
#            growth arms' best) undid what the small phase had learnt (validation loss 2.20 → 2.42 over the re-warm
#            at 25%), so the grown phase's peak is a second knob; these arms search along lr × 0.25.
# Each arm is tuned over 4 learning rates (+2 past an edge) × 3 seeds; the small phase and the grown phase use
# the arm's rate (the -lo arms: a quarter of it after growth). Resumable: run the same command again after an interruption.
#   bash experiments/growth-fair.sh                (report: ${OUT:-runs/growth-fair}/report.md)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/growth-fair}
mkdir -p "$(dirname "$OUT")"
node packages/cli/dist/bin.js compare \
  --variant "scratch=--d-model 32 --heads 2 --d-ff 128" \
  --variant "grow10=--d-model 16 --heads 2 --d-ff 64 --grow-at 0.1 --grow '--width 2 --noise 0.01'" \
  --variant "grow25=--d-model 16 --heads 2 --d-ff 64 --grow-at 0.25 --grow '--width 2 --noise 0.01'" \
  --variant "grow10-lo=--d-model 16 --heads 2 --d-ff 64 --grow-at 0.1 --grow '--width 2 --noise 0.01' --grown-lr 0.25 --lrs 4e-3,8e-3,1.6e-2,3.2e-2" \
  --variant "grow25-lo=--d-model 16 --heads 2 --d-ff 64 --grow-at 0.25 --grow '--width 2 --noise 0.01' --grown-lr 0.25 --lrs 4e-3,8e-3,1.6e-2,3.2e-2" \
  --lrs "${LRS:-1e-3,2e-3,4e-3,8e-3}" --seeds "${SEEDS:-1,2,3}" --extend-grid "${EXTEND:-2}" --target-from scratch \
  --layers 4 --context 32 --batch-size 16 --activation gelu \
  --warmup 100 --schedule cosine --weight-decay 0.1 --grad-clip 1 \
  --steps "${STEPS:-2000}" --eval-every 100 --backend wasm --jobs "${JOBS:-2}" --json --out "$OUT" \
  >> "$OUT.log" 2>&1 || { echo "stopped or failed; see $OUT.log"; exit 1; }
echo "report: $OUT/report.md"
