#!/usr/bin/env bash
# Which keeps both cores busiest for a `strata compare` grid: two single-threaded runs at once (--jobs 2), or one run
# at a time on two data-parallel workers (--jobs 1 --workers 2)? Same grid (2 variants × 2 seeds, the 24-layer
# depth-sweep model, 60 steps), the two configurations alternated ROUNDS times; prints wall seconds per grid.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
common=(--norms pre-ln,deepnorm --lrs 2e-3 --seeds 1,2 --extend-grid 0 --data markov:32 --model-opt vocabSize=32
  --layers 24 --d-model 32 --d-ff 64 --heads 2 --context 16 --batch-size 16 --activation relu --warmup 0
  --steps 60 --eval-every 30 --backend wasm --json)
for round in $(seq 1 "${ROUNDS:-2}"); do
  for cfg in "--jobs 2" "--jobs 1 --workers 2"; do
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    node packages/cli/dist/bin.js compare "${common[@]}" $cfg --force --out "$out/g" > /dev/null
    t1=$(date +%s.%N)
    printf '%s\tround %s\t%.1f s\tload %s\n' "$cfg" "$round" "$(echo "$t1 - $t0" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
rm -rf "$out"
