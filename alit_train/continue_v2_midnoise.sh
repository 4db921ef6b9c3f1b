#!/usr/bin/env bash
# Phase 5 of the next bundled model (preset explorer_128), to try next: the capacity limit brought in
# mid-training. Phase 4 (continue_v2_capacity.sh: noise from the first step) stalled at the codes' prior,
# and phase 3 (noise into the finished model at a quarter of the learning rate) lost accuracy it did not
# win back (assets/MODEL_CARD.md, sessions 6 and 7). Here phase 1's own state at step 1,400 (the end of its
# sampled-depth start, git 5e9fb36), which has begun to read the codes, continues phase 1's schedule at its
# still-high learning rate with every iteration unrolled, while noise on the decoder's input rises from 0
# at step 1,400 to 0.35 x each latent's RMS at step 2,400 (alit_train/latent_noise.py). Judged against
# phase 1 at equal steps:
#
#   bash alit_train/continue_v2_midnoise.sh 150
#   python -m alit_train.compare_runs assets/training_state/explorer_128.metrics.jsonl runs/m128/metrics.jsonl --window 400
#
# Resumes runs/m128/last.pt when this machine has it (optimiser included). The compact state goes to
# runs/m128/state.pt; it would have replaced phase 1's committed state only once it beat phase 1.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_midnoise.sh MINUTES}
run=runs/m128
start=$(bash alit_train/state_from_git.sh 5e9fb36:assets/training_state/explorer_128.pt "$run/phase1_step1400.pt")
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$start" --out "$pack" --images 12288 --threads 1
nice -n 10 python -m alit_train.train alit --model explorer_128 --out "$run" --resume "$start" --codes "$pack" \
  --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
  --no-sample-depth --weight-decay 0 --threads 1 --probe-every 100 \
  --latent-noise 0.35 --latent-noise-ramp 1000 --latent-noise-start 1400 --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
