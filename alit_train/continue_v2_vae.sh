#!/usr/bin/env bash
# The KL VAE of explorer_128_vae (alit_core PRESETS; MODEL_CARD.md, session 10): a continuous base tokenizer
# for version 2, since the VQGAN's ~22 dB on unseen photos is what makes most of them fall back. From
# scratch: pixel L1 + MSE of one posterior draw + 0.001 x KL, 64-pixel crops, batch 16, peak learning rate
# 0.001 (base 0.016) after a 100-step warm-up, a 20,000-step cosine schedule that spans sessions.
#
#   bash alit_train/continue_v2_vae.sh MINUTES
#
# Resumes runs/vae128/last.pt when this machine has it, else the VAE's compact state at step 11,052 (fresh
# optimiser, 100-step warm-up from its step), restored from git: it was the committed training state until
# session 13, when the ALIT trained on it took its place (continue_v2_vae_alit.sh). The compact state goes
# to runs/vae128/state.pt. A VAE that moves on needs a new latent pack and a new ALIT.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_vae.sh MINUTES}
run=runs/vae128
state=$(bash alit_train/state_from_git.sh c4d9159:assets/training_state/explorer_128_vae.pt runs/explorer_128_vae_11052.pt)
[ -f data/index.json ] || python -m alit_train.data all
nice -n 10 python -m alit_train.train vae --model explorer_128_vae --resume "$state" --out "$run" --steps 20000 \
  --batch-size 16 --base-lr 0.016 --warmup 100 --crop 64 --kl-weight 0.001 --threads 1 \
  --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
