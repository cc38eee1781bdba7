#!/usr/bin/env bash
# GPU benchmarks on an NVIDIA machine: webgpu (Dawn on the NVIDIA Vulkan driver) and, where it installs,
# tfjs-node-gpu, against wasm — the GPT and nGPT configs, then the 1,000-layer suite. Writes
# bench/results-gpu-*.json and bench/results-gpu.md (the table). Run from the repository root after
# `npm ci && npm run build`, as root (it may apt-get the Vulkan loader). Takes minutes.
#
# Status: ready, untested on a GPU (no NVIDIA machine was at hand when it was written).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-5}
OUT=bench/results-gpu.md
log() { printf '%s\n' "$*" >&2; }

# 1. The NVIDIA driver and its Vulkan ICD. In a container the runtime mounts the Vulkan part of the driver only
#    with the `graphics` capability (NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics).
command -v nvidia-smi >/dev/null || { log "nvidia-smi not found: this script needs an NVIDIA driver"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  log "installing the Vulkan loader (libvulkan1)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvulkan1 vulkan-tools >/dev/null
fi
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    if [ -e "$f" ]; then export VK_ICD_FILENAMES="$f"; break; fi
  done
fi
if [ -z "${VK_ICD_FILENAMES:-}" ]; then
  log "no NVIDIA Vulkan ICD (nvidia_icd.json): the driver's graphics/Vulkan part is not installed or not mounted"
  log "(in Docker: --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics; or set VK_ICD_FILENAMES)"
  exit 1
fi
log "VK_ICD_FILENAMES=$VK_ICD_FILENAMES"
command -v vulkaninfo >/dev/null && vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|driverName|driverInfo' >&2 || true

# 2. The packages: webgpu ships with the dev install; tfjs-node-gpu downloads libtensorflow (CUDA 11.2, cuDNN 8.1).
backends=webgpu,wasm
if node -e "import('@tensorflow/tfjs-node-gpu')" 2>/dev/null ||
  npm install --no-save --no-audit --no-fund @tensorflow/tfjs-node-gpu@4.22.0 >/dev/null 2>&1; then
  backends=tensorflow-gpu,$backends
else
  log "tfjs-node-gpu could not be installed (it downloads libtensorflow); measuring webgpu and wasm only"
fi
export TF_FORCE_GPU_ALLOW_GROWTH=true

# 3. The benchmarks: each row in its own process (strata bench isolates rows), the device printed per backend.
bench() { npx tsx --tsconfig packages/cli/tsconfig.json bench/run.ts "$@"; }
bench --backends "$backends" --suite reference,ngpt --workers 1 --steps "$STEPS" --generate 64 \
  --out bench/results-gpu-gpt.json | tee /tmp/strata-gpu-gpt.txt
bench --backends "$backends" --suite deep1000 --workers 1 --steps 2 --generate 0 \
  --out bench/results-gpu-deep1000.json | tee /tmp/strata-gpu-deep1000.txt

{
  echo "# GPU benchmark ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); VK_ICD_FILENAMES=$VK_ICD_FILENAMES"
  echo
  echo '```text'
  cat /tmp/strata-gpu-gpt.txt /tmp/strata-gpu-deep1000.txt
  echo '```'
} >"$OUT"
log "wrote $OUT"
