#!/usr/bin/env bash
# 100 vs 1,000 DeepNorm layers at equal steps on the depth-sweep data (synthetic Markov, vocabulary 32: uniform
# ln 32 = 3.47, unigram level ≈ 2.78 — where failed Post-LN runs stall — and floor ln 2 ≈ 0.69), d_model 32,
# 2 heads, FFN 64, context 32, batch 8, Adam(0.9, 0.98), cosine to lr/10 over the budget, per-block recomputation
# (the 1,000-layer activations do not fit the 4 GB wasm heap otherwise). Peak memory from /usr/bin/time; s/step
# from the metrics. Resumable: run again after an interruption (`--resume` continues each run).
#   LR=2e-3 STEPS=300 bash experiments/deep1000.sh      (runs under ${OUT:-runs/deep1000})
#   LR=1e-3 WARMUP=20 STEPS=200 CONTEXT=16 OUT=runs/deep1000-w20 bash experiments/deep1000.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/deep1000}
mkdir -p "$OUT"
for L in ${DEPTHS:-100 1000}; do
  dir="$OUT/L$L"
  if [[ -d "$dir/checkpoint" ]]; then
    args=(train --resume "$dir" --json)
  else
    args=(train --norm deepnorm --layers "$L" --d-model 32 --heads 2 --d-ff 64 --context "${CONTEXT:-32}" --batch-size "${BATCH:-8}"
      --data markov:32 --model-opt vocabSize=32 --model-opt initScheme=xavier --activation relu
      --lr "${LR:-2e-3}" --warmup "${WARMUP:-0}" --schedule cosine --beta2 0.98 --weight-decay 0 --grad-clip 0
      --steps "${STEPS:-300}" --eval-every 10 --checkpoint-every 10 --recompute --backend wasm --json --out "$dir")
  fi
  /usr/bin/time -v node packages/cli/dist/bin.js "${args[@]}" >> "$dir.log" 2>> "$dir.time" || true
  grep -h "Maximum resident" "$dir.time" || true
done
