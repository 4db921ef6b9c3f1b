#!/usr/bin/env bash
# Phase 4 of the next bundled model (preset explorer_128): a fresh ALIT with a limit on what one latent
# token carries from its first step. Phase 3 (continue_v2_noise.sh) showed that a model trained without
# the limit does not learn to live with it: noise added to phase 1's trained latents lowered the code
# accuracy and the curve stayed as flat (assets/MODEL_CARD.md, session 6). Here noise of 0.35 x each
# latent's RMS on the decoder's input (alit_train.latent_noise: at most 6 log2(1 + 1/0.35^2) = 19 bits per
# 12-d token), reached over the first 300 steps; otherwise phase 1's recipe step for step
# (alit_train/fresh_alit_phase.sh); inference is unchanged.
#
#   bash alit_train/continue_v2_capacity.sh 150
#
# Session 7's run (steps 0-2,400, log in docs/model_report/v2_session7/) stalled: code accuracy 0.045-0.049
# at every iteration over steps 1,600-2,400 against phase 1's 0.09-0.25 at the same steps, and a flat error
# curve. Do not continue it as is; the model card (sessions 7 and 8) says what was tried next.
set -euo pipefail
minutes=${1:?usage: continue_v2_capacity.sh MINUTES}
exec bash "$(dirname "$0")/fresh_alit_phase.sh" runs/c128 "$minutes" --latent-noise 0.35 --latent-noise-ramp 300
