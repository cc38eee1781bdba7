#!/usr/bin/env bash
# DeepNet's central claim in minutes on a 2-core CPU (reference/deepnorm.md §6.2): at 24 layers Post-LN
# stalls near the unigram loss while DeepNorm and Pre-LN train, over three seeds. Same Xavier-normal base
# init for every strategy (DeepNorm adds its β gains), Adam(0.9, 0.98), constant LR 1e-3, no warmup, no clipping.
set -euo pipefail
cd "$(dirname "$0")/.."
node packages/cli/dist/bin.js compare --norms post-ln,pre-ln,deepnorm --seeds "${SEEDS:-1,2,3}" \
  --data markov:32 --model-opt vocabSize=32 --model-opt initScheme=xavier \
  --layers "${LAYERS:-24}" --d-model 32 --d-ff 64 --heads 2 --context 16 --batch-size 16 --activation relu \
  --lr 1e-3 --warmup 0 --schedule constant --weight-decay 0 --grad-clip 0 --beta2 0.98 \
  --steps 300 --eval-every 25 --diagnostics 10 --backend wasm --json --force --out "${OUT:-runs/deepnet24}" > /dev/null
echo "report: ${OUT:-runs/deepnet24}/report.md"
