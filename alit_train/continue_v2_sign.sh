#!/usr/bin/env bash
# Phase 6 of the next bundled model (preset explorer_128): a fresh ALIT whose latents are quantized to
# their signs from the first step (alit_train/sign_latents.py: 12 bits per token, the official capacity,
# with a frozen codebook of the 4,096 corners of the latent space that cannot collapse, and a balance term
# that keeps each token's signs varying between images). Phase 1's continuous latents reproduce the VQGAN
# with 96 tokens, so its error curve is flat after that; noise as the limit stalled from the first step
# (phase 4). Otherwise phase 1's recipe step for step (alit_train/fresh_alit_phase.sh):
#
#   bash alit_train/continue_v2_sign.sh 150
#   python -m alit_train.compare_runs assets/training_state/explorer_128.metrics.jsonl runs/s128/metrics.jsonl --window 400
#
# Its state would have replaced phase 1's as the committed one only once it beat phase 1 (it did not).
set -euo pipefail
minutes=${1:?usage: continue_v2_sign.sh MINUTES}
exec bash "$(dirname "$0")/fresh_alit_phase.sh" runs/s128 "$minutes" --sign-latents
