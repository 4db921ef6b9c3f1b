#!/usr/bin/env bash
# A fresh ALIT (preset explorer_128) on phase 1's frozen VQGAN and code pack, trained with phase 1's recipe
# step for step (sampled depth, one more iteration allowed every 80 steps, to step 1,400; then every step
# unrolls all 8 iterations), plus the train flags given: what a phase that limits what one token carries
# changes (continue_v2_capacity.sh, continue_v2_sign.sh). Compare with phase 1 at equal steps (its log:
# assets/training_state/explorer_128.metrics.jsonl, alit_train.compare_runs).
#
#   bash alit_train/fresh_alit_phase.sh RUN MINUTES [train flags...]
#
# RUN is relative to the repository root. The phase's flags come before the two stages' own
# (--sample-depth ... --stop-at 1400, then --no-sample-depth), which win. Resumes RUN/last.pt when this machine has it (optimiser included); the compact state goes to
# RUN/state.pt. Another base tokenizer: PHASE_MODEL (a preset), PHASE_BASE_FLAG (--vqgan or --vae),
# PHASE_BASE (the training state whose VQGAN or VAE to take) and PHASE_PACK (its code pack, made from
# PHASE_BASE when missing), e.g. continue_v2_vae_alit.sh; PHASE_PACK_IMAGES, the images a new pack holds
# (12,288). PHASE_RESUME: a compact ALIT state (`train compact`) to continue from when RUN/last.pt is
# missing, or older than it (fresh optimiser, warm-up from its step); it brings its own base tokenizer, so
# PHASE_BASE_FLAG is not passed (PHASE_BASE defaults to that same state: the pack is made from the base
# tokenizer inside it).
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: fresh_alit_phase.sh RUN MINUTES [train flags...]"
run=${1:?$usage}
minutes=${2:?$usage}
shift 2
extra=("$@")
deadline=$(( $(date +%s) + minutes * 60 ))  # building the data or the code pack counts too
left() { echo $(( deadline - $(date +%s) )); }
model=${PHASE_MODEL:-explorer_128}
base_flag=${PHASE_BASE_FLAG:---vqgan}
resume=${PHASE_RESUME:-}
base=${PHASE_BASE:-$resume}  # a compact state to resume holds the base tokenizer its pack is made from
[ -n "$base" ] || base=$(bash alit_train/phase1_state.sh)  # phase 1's state: its VQGAN made the code pack
pack=${PHASE_PACK:-runs/pack128.pt}
pack_images=${PHASE_PACK_IMAGES:-12288}
start=("$base_flag" "$base")  # a fresh ALIT on the base tokenizer, or the compact state's own
[ -z "$resume" ] || start=(--resume "$resume")
[ -f data/index.json ] || python -m alit_train.data all
[ -f "$pack" ] || nice -n 10 python -m alit_train.code_pack --vqgan "$base" --model "$model" --out "$pack" \
  --images "$pack_images" --threads 1
mkdir -p "$run"
step_of() {  # a checkpoint's step (0 when there is none)
  python -c "import sys, torch; print(int(torch.load(sys.argv[1], map_location='cpu', weights_only=True, mmap=True)['step']))" \
    "$1" 2>/dev/null || echo 0
}
step() {  # where the run stands: its last.pt, else the state it would resume, else 0
  local from="$run/last.pt"
  [ -f "$from" ] || from=${resume:-$from}
  step_of "$from"
}
# A state to resume that was trained further (on another machine) wins over this machine's older run folder:
# its last.pt is kept aside, and its state.pt (that last.pt compacted) removed, so that a session that trains
# nothing cannot copy it back over the further state.
if [ -n "$resume" ] && [ -f "$run/last.pt" ]; then
  here=$(step_of "$run/last.pt")
  there=$(step_of "$resume")
  if [ "$there" -gt "$here" ]; then
    echo "$resume is at step $there, further than $run/last.pt ($here): that one is kept as $run/last.step$here.pt" >&2
    mv "$run/last.pt" "$run/last.step$here.pt"
    rm -f "$run/state.pt"
  fi
fi
train() {  # phase 1's settings, then the phase's own flags
  nice -n 10 python -m alit_train.train alit --model "$model" --out "$run" "${start[@]}" --codes "$pack" \
    --steps 6000 --batch-size 16 --base-lr 0.016 --warmup 30 --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 \
    --weight-decay 0 --threads 1 --probe-every 100 --time-limit "$(left)" ${extra[@]+"${extra[@]}"} "$@"
}
# (a time limit of 0 would mean none: a stage starts only with a minute left)
[ "$(step)" -ge 1400 ] || [ "$(left)" -lt 60 ] || train --sample-depth --depth-ramp 80 --stop-at 1400
[ "$(step)" -lt 1400 ] || [ "$(left)" -lt 60 ] || train --no-sample-depth
[ -f "$run/last.pt" ] || exit 0
python -m alit_train.train compact "$run/last.pt" "$run/state.pt"
