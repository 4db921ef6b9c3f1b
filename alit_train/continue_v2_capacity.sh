#!/usr/bin/env bash
# Phase 4 of the next bundled model (preset explorer_128): a fresh ALIT with a limit on what one latent
# token carries from its first step. Phase 3 (continue_v2_noise.sh) showed that a model trained without
# the limit does not learn to live with it: noise added to phase 1's trained latents lowered the code
# accuracy and the curve stayed as flat (assets/MODEL_CARD.md, session 6). Here the same VQGAN and code
# pack, fresh ALIT weights (spatial init), and noise of 0.35 x each latent's RMS on the decoder's input
# (alit_train.latent_noise: at most 6 log2(1 + 1/0.35^2) = 19 bits per 12-d token), reached over the
# first 300 steps, with phase 1's schedule and settings; inference is unchanged. Compare with phase 1 at equal steps
# (its log: assets/training_state/explorer_128.metrics.jsonl).
#
#   bash alit_train/continue_v2_capacity.sh 150
#
# Resumes runs/c128/last.pt when this machine has it (optimiser included). The compact state goes to
# runs/c128/state.pt; it replaces assets/training_state/explorer_128.pt only once it beats phase 1.
#
# Session 7's run (steps 0-2,400, log in docs/model_report/v2_session7/) stalled: code accuracy 0.045-0.049
# at every iteration over steps 1,600-2,400 against phase 1's 0.09-0.25 at the same steps, and a flat error
# curve. Do not continue it as is; the model card (session 7) says what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_capacity.sh MINUTES}
vqgan=assets/training_state/explorer_128.pt  # phase 1's state: its VQGAN made the code pack
run=runs/c128
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$vqgan" --out "$pack" --images 12288 --threads 1
mkdir -p "$run"
deadline=$(( $(date +%s) + minutes * 60 ))
step() { python -c "import torch; print(int(torch.load('$run/last.pt', weights_only=True)['step']))" 2>/dev/null || echo 0; }
train() {  # phase 1's settings, plus the noise
  nice -n 10 python -m alit_train.train alit --model explorer_128 --out "$run" --vqgan "$vqgan" --codes "$pack" \
    --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
    --weight-decay 0 --threads 1 --probe-every 100 --latent-noise 0.35 --latent-noise-ramp 300 \
    --time-limit $(( deadline - $(date +%s) )) "$@"
}
# as phase 1: sampled depth, one more iteration allowed every 80 steps, to step 1,400; then every step
# unrolls all 8 iterations
[ "$(step)" -ge 1400 ] || train --sample-depth --depth-ramp 80 --stop-at 1400
[ "$(step)" -lt 1400 ] || [ $(( deadline - $(date +%s) )) -lt 60 ] || train --no-sample-depth
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
