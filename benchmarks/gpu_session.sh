#!/usr/bin/env bash
# The GPU measurements of the performance issue, in one run on a lent CUDA machine.
#
#   bash benchmarks/gpu_session.sh OUT_DIR        (on the device: bash benchmarks/gpu_session.sh "$OUT")
#
# About 7 minutes on an H200: alit_small (random weights) in bfloat16 and float32 at batch 1 with
# images per second at larger batches, the bundled model, alit_small's operator profile, and the
# gpu-marked tests. Everything it prints is also in OUT_DIR/log.txt; the tables are OUT_DIR/*.md
# and *.json (copy them to benchmarks/ with the hardware named). Needs only what the device image
# already has (torch, einops, numpy, pillow, opencv); nothing is downloaded.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_session.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log="$out/log.txt"
python3 - <<'EOF' 2>&1 | tee "$log"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))
EOF
# --no-ablation: the ablation's float32 rows repeat the CPU story; keep the session short
timeout 300 python3 -m benchmarks.rollout_speed --checkpoint preset:small --device cuda --dtype bfloat16 float32 \
    --no-images --repeats 10 --throughput 1 8 32 128 --no-ablation --out "$out/alit_small_cuda" 2>&1 | tee -a "$log"
timeout 120 python3 -m benchmarks.rollout_speed --device cuda --repeats 10 --throughput 1 64 512 \
    --out "$out/bundled_cuda" 2>&1 | tee -a "$log"
# its own run, so that the tables above stand if the CUDA profile fails: where the time goes
timeout 90 python3 -m benchmarks.rollout_speed --checkpoint preset:small --device cuda --dtype bfloat16 --no-images \
    --no-ablation --repeats 5 --operators --out "$out/alit_small_cuda_operators" 2>&1 | tee -a "$log"
timeout 180 python3 -m pytest -q -m gpu tests/test_performance.py tests/test_devices.py 2>&1 | tee -a "$log"
