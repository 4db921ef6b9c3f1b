#!/usr/bin/env bash
# Phase 3 of the next bundled model (preset explorer_128): quantized latent tokens, as in the official
# ALIT models (a 4096 x 12 cosine codebook, so at most 12 bits per token). With continuous latents 96
# tokens already held everything the VQGAN codes say and the error curve went flat after three
# iterations, so one threshold could not spread photos over the counts (assets/MODEL_CARD.md,
# sessions 5 and 6). This fine-tunes the whole ALIT (its VQGAN frozen, the same code pack) for
# MINUTES on one niced thread, then refreshes the committed compact state.
#
#   bash alit_train/continue_v2_quantized.sh 150        # then: git add assets/training_state/
#
# Resumes runs/q128/last.pt when this machine has it (optimiser included); else the committed state
# with a fresh optimiser and a short warm-up once that state is quantized; else (the first run) it
# converts the committed continuous state (alit_train.quantize_latents: k-means codebook from the
# model's own latents) and starts from that.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2_quantized.sh MINUTES}
state=assets/training_state/explorer_128.pt
log=assets/training_state/explorer_128.metrics.jsonl
run=runs/q128
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$state" --out "$pack" --images 12288 --threads 1
mkdir -p "$run"
if python -c "import sys, torch; sys.exit(0 if torch.load('$state', weights_only=True)['model_config']['quantize_latents'] else 1)"; then
  start=(--resume "$state")
  [ -f "$run/metrics.jsonl" ] || cp "$log" "$run/metrics.jsonl"
else
  [ -f "$run/init.pt" ] || nice -n 10 python -m alit_train.quantize_latents "$state" "$run/init.pt" --codes "$pack" \
    --images 384 --threads 1
  start=(--init "$run/init.pt")
fi
nice -n 10 python -m alit_train.train alit --out "$run" "${start[@]}" --codes "$pack" \
  --steps 4000 --batch-size 16 --base-lr 0.008 --warmup 50 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
  --no-sample-depth --weight-decay 0 --threads 1 --probe-every 100 --quantize-ramp 1200 --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$state"
# one log for the whole model: earlier phases' rows as they were, then this phase's, marked "phase"
python -m alit_train.train merge-log "$log" "$run/metrics.jsonl" --phase quantized
