#!/usr/bin/env bash
# Continue training the next bundled model (preset explorer_128) on this CPU for MINUTES, on one
# thread and niced, so that the other core stays free; then refresh the committed compact state.
# MINUTES is training time: on a machine without data/ or the code pack, building them comes first
# (about 5 min for the data, 5-10 min for the pack).
#
#   bash alit_train/continue_v2.sh 150
#
# Its 6,000-step schedule ended in session 5; since session 10 its state comes from git (phase1_state.sh)
# and a run writes runs/alit128/state.pt.
#
# Every session resumes where the last one stopped: from runs/alit128/last.pt when this machine
# still has it (optimiser included), else from the committed compact state with a fresh optimiser
# and a short warm-up. The recipe lives here, in one place; the model card records its history.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:?usage: continue_v2.sh MINUTES}
state=$(bash alit_train/phase1_state.sh)  # from git since session 10 (its schedule ended at step 6,000 in session 5)
log=assets/training_state/explorer_128.metrics.jsonl  # every session's metrics and probes, in order
run=runs/alit128
pack=runs/pack128.pt
[ -f data/index.json ] || python -m alit_train.data all
mkdir -p "$run"
[ -f "$run/metrics.jsonl" ] || cp "$log" "$run/metrics.jsonl"
# the frozen VQGAN's features and codes of 12,288 training images, made once per machine
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$state" --out "$pack" --images 12288 --threads 1
nice -n 10 python -m alit_train.train alit --model explorer_128 --out "$run" --resume "$state" --codes "$pack" \
  --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
  --no-sample-depth --weight-decay 0 --threads 1 --probe-every 100 --time-limit $((minutes * 60))
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"  # not over phase 1's (phase1_state.sh)
cp "$run/metrics.jsonl" "$log"
