#!/usr/bin/env bash
# GPT (Pre-LN) vs nGPT at equal parameter budget, data and token budget, two context lengths, three seeds,
# each with its own tuned learning rate. Writes reports with plots under ${OUT:-runs/ngpt-vs-gpt}.
# Step 1 tunes the learning rates; step 2 uses the best of each (pass GPT_LR / NGPT_LR to skip step 1).
set -euo pipefail
cd "$(dirname "$0")/.."
STRATA="node packages/cli/dist/bin.js"
OUT=${OUT:-runs/ngpt-vs-gpt}
STEPS=${STEPS:-400}
SEEDS=${SEEDS:-1,2,3}
# d_model 64, 4 layers, 4 heads. GPT's GELU MLP has 2·64·256 weights per block; nGPT's SwiGLU has 3·64·dFF,
# so dFF = 171 per branch gives the same budget (nGPT adds only its scaling vectors).
GPT="--model gpt --d-model 64 --layers 4 --heads 4 --d-ff 256"
NGPT="--model ngpt --d-model 64 --layers 4 --heads 4 --d-ff 171"
COMMON="--backend wasm --eval-every 25 --eval-batches 8 --json"

if [[ -z "${GPT_LR:-}" || -z "${NGPT_LR:-}" ]]; then
  $STRATA compare --seeds 1 --steps 200 --context 64 --batch-size 16 $COMMON --force --out "$OUT/lr-sweep" \
    --variant "gpt-1e-3=$GPT --lr 1e-3" --variant "gpt-3e-3=$GPT --lr 3e-3" --variant "gpt-6e-3=$GPT --lr 6e-3" \
    --variant "ngpt-3e-3=$NGPT --lr 3e-3" --variant "ngpt-6e-3=$NGPT --lr 6e-3" --variant "ngpt-1.2e-2=$NGPT --lr 1.2e-2" > /dev/null
  best() { node -e "const s=require(require('path').resolve('$OUT/lr-sweep/summary.json'));const r=s.runs.filter(x=>x.variant.startsWith('$1-')&&x.status!=='diverged').sort((a,b)=>a.finalValLoss-b.finalValLoss)[0];console.log(r.variant.slice('$1-'.length))"; }
  GPT_LR=${GPT_LR:-$(best gpt)}
  NGPT_LR=${NGPT_LR:-$(best ngpt)}
fi
echo "learning rates: gpt $GPT_LR, ngpt $NGPT_LR"
# Same tokens per step (1024) at both context lengths.
for ctx in 64 256; do
  bs=$((1024 / ctx))
  $STRATA compare --seeds "$SEEDS" --steps "$STEPS" --context "$ctx" --batch-size "$bs" $COMMON --force \
    --out "$OUT/ctx$ctx" --target-from gpt \
    --variant "gpt=$GPT --lr $GPT_LR" --variant "ngpt=$NGPT --lr $NGPT_LR" > /dev/null
  echo "context $ctx: $OUT/ctx$ctx/report.md"
done
