#!/usr/bin/env bash
# Phase 2 of the next bundled model (preset explorer_128): raise its base tokenizer's ceiling. ALIT's
# error stops falling once it reaches its frozen VQGAN's (21.8 dB on unseen photos, reached by about
# 96 tokens after session 4), so the later iterations have nothing left to add and the threshold
# cannot spread photos over the counts (assets/MODEL_CARD.md, session 5). This continues training the
# whole VQGAN (encoder, codebook, decoder) for MINUTES on one niced thread, then writes its compact
# state to runs/vq128b/state.pt. Its codes change, so ALIT is fine-tuned on a new code pack afterwards.
# Stopped in session 5 at step 4,736 (22.01 dB on unseen photos; model card).
#
#   bash alit_train/continue_v2_vqgan.sh 150
#
# Resumes runs/vq128b/last.pt when this machine has it, else runs/vq128b/state.pt (fresh optimiser,
# short warm-up), else starts from the VQGAN inside phase 1's ALIT state (phase1_state.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_vqgan.sh MINUTES}
alit_state=$(bash alit_train/phase1_state.sh)
run=runs/vq128b
state=$run/state.pt
[ -f data/index.json ] || python -m alit_train.data all
resume=()
[ -f "$state" ] && resume=(--resume "$state")
nice -n 10 python -m alit_train.train vqgan --model explorer_128 --init "$alit_state" --init-weights model \
  "${resume[@]}" --out "$run" --steps 6000 --batch-size 16 --base-lr 0.008 --warmup 50 --crop 64 --threads 1 \
  --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$state"
