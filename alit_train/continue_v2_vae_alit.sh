#!/usr/bin/env bash
# The ALIT on the KL VAE of explorer_128_vae, the line trained since session 11 (MODEL_CARD.md, sessions
# 11-13): phase 1's schedule step for step through fresh_alit_phase.sh (sampled depth to step 1,400, then
# every iteration unrolled), the VAE frozen, a pack of its posterior-mean latents of 4,096 training images
# (runs/vaepack11k.pt, made once per machine from the VAE inside the state), each iteration's regressed
# latents scored by MSE with phase 1's iteration weights, no halting (as the official VAE variant, whose
# halting never masks), and since step 1,453 a pixel L1 term (weight 10) through the frozen VAE decoder at
# one cycled iteration a step: 147 steps of it gave 0.7-1.0 dB more on the test photos at every count
# than the same steps without it (session 13). Train flags given are added.
#
#   bash alit_train/continue_v2_vae_alit.sh MINUTES [train flags...]
#
# Resumes runs/vae_alit/last.pt when this machine has it (optimiser included) and the committed compact state
# is not further on, else that state (fresh optimiser, warm-up from its step); writes the compact state back
# there at the end, and adds the run's new rows to the log beside it (train extend-log).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_vae_alit.sh MINUTES [train flags...]}
shift
state=assets/training_state/explorer_128_vae.pt
PHASE_MODEL=explorer_128_vae PHASE_BASE_FLAG=--vae PHASE_RESUME="$state" \
  PHASE_PACK=runs/vaepack11k.pt PHASE_PACK_IMAGES=4096 \
  bash alit_train/fresh_alit_phase.sh runs/vae_alit "$minutes" --halting off --mse-weight 1 --pixel-weight 10 "$@"
if [ -f runs/vae_alit/state.pt ]; then  # none when the time went on building the pack: the state stays as it was
  cp runs/vae_alit/state.pt "$state.part"
  mv "$state.part" "$state"  # replaced whole
  # and its log beside it: the run's steps past the log's own
  python -m alit_train.train extend-log "${state%.pt}.metrics.jsonl" runs/vae_alit/metrics.jsonl
fi
