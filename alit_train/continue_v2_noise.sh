#!/usr/bin/env bash
# Phase 3 of the next bundled model (preset explorer_128): a limit on what one latent token carries.
# With nothing limiting a continuous 12-d latent, 96 tokens already held everything the VQGAN codes say
# and the error curve went flat after three iterations, so one threshold could not spread photos over
# the counts (assets/MODEL_CARD.md, sessions 5 and 6). This fine-tunes the whole ALIT (VQGAN frozen, the
# same code pack) with noise on the decoder's input that rises to 0.6 x each latent's RMS over 2,000
# steps (alit_train.latent_noise: at most 12 bits per token at 0.58, as the official codebook), for
# MINUTES on one niced thread, then writes its compact state to runs/n128/state.pt. Inference is unchanged.
# Peak learning rate 0.00025, a quarter of phase 1's: at 0.0005 (half of phase 1's peak) a fresh optimiser
# knocked iteration 7's code accuracy from 0.70 to 0.34 within 150 steps (model card, session 6).
#
#   bash alit_train/continue_v2_noise.sh 150
#
# Session 6's run of it (runs/n128, steps 0-1,250; ramp as below to step 800, then the noise held at 0.24)
# did not pay: iteration 7's code accuracy followed the noise down (0.66 -> 0.18) and stayed there once the
# noise stopped rising, so the committed state is still phase 1's. Do not continue it as is; the model
# card (session 6) says what to try next.
#
# Resumes runs/n128/last.pt when this machine has it (optimiser included); else phase 1's state
# (phase1_state.sh, from git) from step 0 of this phase.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_noise.sh MINUTES}
state=$(bash alit_train/phase1_state.sh)
log=assets/training_state/explorer_128.metrics.jsonl
run=runs/n128
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$state" --out "$pack" --images 12288 --threads 1
mkdir -p "$run"
start=(--init "$state")
if python -c "import json, sys, torch
sys.exit(0 if json.loads(torch.load('$state', weights_only=True)['train_config']).get('latent_noise') else 1)"; then
  start=(--resume "$state")
fi
nice -n 10 python -m alit_train.train alit --out "$run" "${start[@]}" --codes "$pack" \
  --steps 4000 --batch-size 16 --base-lr 0.004 --warmup 50 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
  --no-sample-depth --weight-decay 0 --threads 1 --probe-every 100 --latent-noise 0.6 --latent-noise-ramp 2000 \
  --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"  # not over phase 1's (phase1_state.sh)
# one log for the whole model: earlier phases' rows as they were, then this phase's, marked "phase"
python -m alit_train.train merge-log "$log" "$run/metrics.jsonl" --phase noise
