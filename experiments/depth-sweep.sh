#!/usr/bin/env bash
# DeepNet's depth claim, tuned per strategy (EXPERIMENTS.md): the SPEC §4 cheap setting (decoder-only, d 32, FFN 64,
# 2 heads, context 16, batch 16, synthetic order-1 Markov data with vocabulary 32, Adam(0.9, 0.98), no clipping, no
# weight decay) at 12, 24 and 48 layers; Post-LN, Post-LN with a 60-step warmup, Pre-LN, DeepNorm (DeepNet's
# constants) and DeepNorm with Su Jianlin's / GLM-130B's Adam constants; 4 learning rates (6 for the Post-LN arms,
# down to 1.25e-4, to find any rate at which they train; more where the best one is at the edge) × 3 seeds; 300 steps with a cosine decay to lr/10 spanning the budget; diagnostics every 10
# steps (and at steps 1–9) for the mechanism plots. Each depth is one resumable `strata compare` grid: run this
# script again after an interruption and only the missing runs train.
#   DEPTHS="24 12 48" bash experiments/depth-sweep.sh      (report: runs/depth/L<N>/report.md)
set -euo pipefail
cd "$(dirname "$0")/.."
for L in ${DEPTHS:-24 12 48}; do
  mkdir -p "${OUT:-runs/depth}"
  node packages/cli/dist/bin.js compare \
    --variant "post-ln=--norm post-ln --lrs ${POSTLN_LRS:-1.25e-4,2.5e-4,5e-4,1e-3,2e-3,4e-3}" \
    --norms pre-ln,deepnorm \
    --variant "post-ln-warmup=--norm post-ln --warmup 60 --lrs ${POSTLN_LRS:-1.25e-4,2.5e-4,5e-4,1e-3,2e-3,4e-3}" \
    --variant "deepnorm-adam=--norm deepnorm --norm-opt constants=adam" \
    --lrs "${LRS:-5e-4,1e-3,2e-3,4e-3}" --seeds "${SEEDS:-1,2,3}" --extend-grid 2 --target-from pre-ln \
    --data markov:32 --model-opt vocabSize=32 --model-opt initScheme=xavier \
    --layers "$L" --d-model 32 --d-ff 64 --heads 2 --context 16 --batch-size 16 --activation relu \
    --warmup 0 --schedule cosine --weight-decay 0 --grad-clip 0 --beta2 0.98 \
    --steps 300 --eval-every 25 --diagnostics 10 --backend wasm --json --out "${OUT:-runs/depth}/L$L" \
    > "${OUT:-runs/depth}/L$L.log" 2>&1 || { mkdir -p "${OUT:-runs/depth}"; echo "L$L failed or stopped; see ${OUT:-runs/depth}/L$L.log"; exit 1; }
  echo "report: ${OUT:-runs/depth}/L$L/report.md"
done
