#!/usr/bin/env bash
# A fresh ALIT (preset explorer_128_vae) on the KL VAE of continue_v2_vae.sh: phase 1's schedule step for
# step (fresh_alit_phase.sh), the VAE frozen, its posterior-mean latents of 12,288 training images in a
# pack (runs/vaepack128.pt, made once per machine from the VAE state), each iteration's regressed latents
# scored by MSE with phase 1's iteration weights (objectives.ALITStage1), no halting (as the official VAE
# variant, whose halting never masks).
#
#   bash alit_train/continue_v2_vae_alit.sh MINUTES
#
# Resumes runs/va128/last.pt when this machine has it; the compact state goes to runs/va128/state.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_vae_alit.sh MINUTES}
PHASE_MODEL=explorer_128_vae PHASE_BASE_FLAG=--vae PHASE_BASE=assets/training_state/explorer_128_vae.pt \
  PHASE_PACK=runs/vaepack128.pt \
  bash alit_train/fresh_alit_phase.sh runs/va128 "$minutes" --halting off --mse-weight 1
