#!/usr/bin/env bash
# Phase 6 of the next bundled model (preset explorer_128): a fresh ALIT whose latents are quantized to
# their signs from the first step (alit_train/sign_latents.py: 12 bits per token, the official capacity,
# with a frozen codebook of the 4,096 corners of the latent space that cannot collapse). Phase 1's
# continuous latents reproduce the VQGAN with 96 tokens, so its error curve is flat after that; noise as
# the limit stalled from the first step (phase 4). Otherwise phase 1's recipe step for step, on its
# VQGAN and code pack: sampled depth to step 1,400, then every step unrolls all 8 iterations. Compare
# with phase 1 (and phase 4) at equal steps:
#
#   bash alit_train/continue_v2_sign.sh 150
#   python -m alit_train.compare_runs assets/training_state/explorer_128.metrics.jsonl runs/s128/metrics.jsonl --window 400
#
# Resumes runs/s128/last.pt when this machine has it (optimiser included). The compact state goes to
# runs/s128/state.pt; it replaces assets/training_state/explorer_128.pt only once it beats phase 1.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_sign.sh MINUTES}
vqgan=assets/training_state/explorer_128.pt  # phase 1's state: its VQGAN made the code pack
run=runs/s128
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$vqgan" --out "$pack" --images 12288 --threads 1
mkdir -p "$run"
deadline=$(( $(date +%s) + minutes * 60 ))
step() { python -c "import torch; print(int(torch.load('$run/last.pt', weights_only=True)['step']))" 2>/dev/null || echo 0; }
train() {  # phase 1's settings, with sign latents
  nice -n 10 python -m alit_train.train alit --model explorer_128 --out "$run" --vqgan "$vqgan" --codes "$pack" \
    --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
    --weight-decay 0 --threads 1 --probe-every 100 --sign-latents \
    --time-limit $(( deadline - $(date +%s) )) "$@"
}
[ "$(step)" -ge 1400 ] || train --sample-depth --depth-ramp 80 --stop-at 1400
[ "$(step)" -lt 1400 ] || [ $(( deadline - $(date +%s) )) -lt 60 ] || train --no-sample-depth
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
