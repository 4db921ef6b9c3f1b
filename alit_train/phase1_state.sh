#!/usr/bin/env bash
# Prints the path of version 2's phase-1 state (the explorer_128 ALIT at step 6,000, the end of its schedule,
# with its VQGAN), restoring it from git when this machine lacks it. It was the committed training state,
# assets/training_state/explorer_128.pt, until session 10, when the VAE line's state took its place
# (one training state in the repository: the line being trained). The phase scripts on the VQGAN read it.
#
#   state=$(bash alit_train/phase1_state.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash alit_train/state_from_git.sh 6b348a6:assets/training_state/explorer_128.pt runs/explorer_128_phase1.pt
