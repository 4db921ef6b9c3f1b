#!/usr/bin/env bash
# Train the bundled model further on a lent CUDA GPU, in one run, within a fixed time.
#
#   here:        python -m alit_train.data pack data/pack        (20 MB of pre-scaled images)
#   the device:  bash alit_train/gpu_train.sh "$OUT" [SECONDS]   (the run tool with carry ["data/pack"])
#   here again:  python -m alit_train.evaluate --checkpoint OUT/alit_gpu.pt --out reports/gpu
#
# It continues from assets/alit_default.pt (its VQGAN stays fixed) with the recipe of the CPU
# runs (official stage-1 losses, all 8 iterations unrolled), at batch 128. A short trial first
# measures the step rate, so that the cosine schedule ends when the time (default 420 s) does.
# What comes back: OUT/alit_gpu.pt (exported, float16, about 9 MB, threshold calibrated on the
# pack), OUT/metrics.jsonl, OUT/log.txt. Nothing is downloaded.
# BATCH, TRIAL (steps), WORKERS and LOG_EVERY override the defaults (small values: a CPU smoke test).
set -uo pipefail
out=${1:?usage: bash alit_train/gpu_train.sh OUT_DIR [SECONDS]}
budget=${2:-420}
pack=${PACK:-data/pack/index.json}
batch=${BATCH:-128}
trial=${TRIAL:-60}
workers=${WORKERS:-12}
every=${LOG_EVERY:-20}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log="$out/log.txt"
if [ ! -f "$pack" ]; then
    echo "no $pack: run 'python -m alit_train.data pack data/pack' here and carry data/pack" | tee "$log"
    exit 2
fi
(nvidia-smi --query-gpu=name,memory.total --format=csv || echo "no nvidia-smi: not a CUDA machine") 2>&1 | tee "$log"

recipe=(--init assets/alit_default.pt --index "$pack" --batch-size "$batch" --base-lr 0.001 --warmup 100
        --ce-weight 0.1 --mse-weight 10 --pixel-weight 0 --no-sample-depth --weight-decay 0
        --workers "$workers" --threads 4 --log-every "$every")

# 1. the step rate, from a short trial (its first logged interval is warm-up)
python3 -m alit_train.train alit --out "$out/trial" "${recipe[@]}" --steps "$trial" --ckpt-every 100000 2>&1 \
    | tail -3 | tee -a "$log"
steps=$(python3 -c '
import json, sys
rows = [json.loads(x) for x in open(sys.argv[1])][1:]
rate = sum(r["images_per_s"] for r in rows) / max(1, len(rows)) / int(sys.argv[3])  # steps per second
print(max(20, int(rate * float(sys.argv[2]) * 0.9)))
' "$out/trial/metrics.jsonl" "$budget" "$batch")
rm -rf "$out/trial"
echo "training $steps steps in about $budget s" | tee -a "$log"

# 2. the run (a time limit as a safety net: it saves and stops if the rate was optimistic)
python3 -m alit_train.train alit --out "$out/run" "${recipe[@]}" --steps "$steps" --ckpt-every 1000 \
    --time-limit $((budget + 60)) 2>&1 | tail -5 | tee -a "$log"
cp "$out/run/metrics.jsonl" "$out/metrics.jsonl"

# 3. export (the 60 MB training state would not come back)
python3 -m alit_train.train export "$out/run/last.pt" "$out/alit_gpu.pt" --weights ema --calibrate "$pack" 2>&1 \
    | tee -a "$log"
rm -rf "$out/run"
ls -la "$out" | tee -a "$log"
