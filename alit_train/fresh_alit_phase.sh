#!/usr/bin/env bash
# A fresh ALIT (preset explorer_128) on phase 1's frozen VQGAN and code pack, trained with phase 1's recipe
# step for step (sampled depth, one more iteration allowed every 80 steps, to step 1,400; then every step
# unrolls all 8 iterations), plus the train flags given: what a phase that limits what one token carries
# changes (continue_v2_capacity.sh, continue_v2_sign.sh). Compare with phase 1 at equal steps (its log:
# assets/training_state/explorer_128.metrics.jsonl, alit_train.compare_runs).
#
#   bash alit_train/fresh_alit_phase.sh RUN MINUTES [train flags...]
#
# Resumes RUN/last.pt when this machine has it (optimiser included); the compact state goes to
# RUN/state.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: fresh_alit_phase.sh RUN MINUTES [train flags...]"
run=${1:?$usage}
minutes=${2:?$usage}
shift 2
extra=("$@")
vqgan=assets/training_state/explorer_128.pt  # phase 1's state: its VQGAN made the code pack
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$vqgan" --out "$pack" --images 12288 --threads 1
mkdir -p "$run"
deadline=$(( $(date +%s) + minutes * 60 ))
step() { python -c "import torch; print(int(torch.load('$run/last.pt', weights_only=True)['step']))" 2>/dev/null || echo 0; }
train() {  # phase 1's settings, then the phase's own flags
  nice -n 10 python -m alit_train.train alit --model explorer_128 --out "$run" --vqgan "$vqgan" --codes "$pack" \
    --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
    --weight-decay 0 --threads 1 --probe-every 100 --time-limit $(( deadline - $(date +%s) )) "${extra[@]}" "$@"
}
[ "$(step)" -ge 1400 ] || train --sample-depth --depth-ramp 80 --stop-at 1400
[ "$(step)" -lt 1400 ] || [ $(( deadline - $(date +%s) )) -lt 60 ] || train --no-sample-depth
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
