#!/usr/bin/env bash
# The explorer_128 VQGAN with 4,096 codes instead of 1,024 (alit_train/codebook_growth.py): phase 2's
# recipe (continue_v2_vqgan.sh: the whole VQGAN from the one inside the committed ALIT state, 64-pixel
# crops, batch 16, peak learning rate 0.0005 after a 50-step warm-up) with the codebook grown first, so
# its curve sets the codebook's effect against phase 2's (22.01 dB on unseen photos after 4,736 steps,
# from 21.79). A new VQGAN means a new code pack and an ALIT trained on it.
#
#   bash alit_train/continue_v2_vqgan_grown.sh MINUTES
#
# Resumes runs/vq4k/last.pt when this machine has it, else runs/vq4k/state.pt (fresh optimiser, 50-step
# warm-up from its step), else starts; the compact state is written there at the end. Ended in session
# 10 at step 15,000 (22.12 dB on the test photos, EMA). Its step-13,227 state, committed in session 9, is
# in git: `git show 2d17f3d:assets/training_state/explorer_128_vqgan4096.pt > runs/vq4k/state.pt`.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_vqgan_grown.sh MINUTES}
run=runs/vq4k
state=$run/state.pt
[ -f data/index.json ] || python -m alit_train.data all
resume=()
[ -f "$state" ] && resume=(--resume "$state")
phase1=$(bash alit_train/phase1_state.sh)
nice -n 10 python -m alit_train.train vqgan --model explorer_128 --init "$phase1" \
  --init-weights model --codebook-size 4096 "${resume[@]}" --out "$run" --steps 15000 --batch-size 16 \
  --base-lr 0.008 --warmup 50 --crop 64 --threads 1 --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$state"
