#!/usr/bin/env bash
# The GPU comparison: keras_alexnet on the Keras JAX backend and the PyTorch reference of the seed
# recipe, on the same GPU, in one run. Needs Keras and JAX (TensorFlow is not needed), PyTorch for
# the reference, CIFAR-10 in the official python layout in DIR, and the reference script's path in
# $REFERENCE (default: ./seed_torch.py).
#
#   bash benchmarks/gpu_run.sh DIR [SECONDS]
#   QUICK=1 bash benchmarks/gpu_run.sh DIR     # every step in its short mode (checks the script)
#
# Prints JSON lines, most important first, each step under its own time limit so that one stuck
# step leaves the others their time (the whole run ends by SECONDS, default 570):
#   1. seed_recipe: the whole recipe (49 epochs, validation, test, figures, export) with train()'s
#      defaults, timed from process start, with an empty compilation cache (cold);
#   2. seed_torch.py --pipeline loader (the PyTorch reference): per-epoch lines and its summary;
#   3. seed_recipe again, its programs now in the cache (warm);
#   4. the tweaked recipe in full (20 epochs, validation, test with flip TTA);
#   5. seed_recipe warm with a checkpoint every epoch (the default until 2026-12-01);
#   6. seed_recipe in mixed_bfloat16 (the precision "auto" picked on Hopper before 2026-12-01);
#   7. train_step: batch 128 and 512, float32 and mixed, compile time apart;
#   8. the step split up: AlexNet without augmentation, the trivial network with it (the fit loop,
#      image lookup and augmentation alone);
#   9. the long recipe in full (60 epochs), when time is left.
# Everything printed is also written to $OUT/gpu_run.log when $OUT is set.
# On one H200 (2026-11-27, an earlier list of steps) steps 1, 2, 6 and 7 took about 350 s.
set -uo pipefail
data=${1:-/root/cifar-10-batches-py}
deadline=$((SECONDS + ${2:-570}))
reference=${REFERENCE:-seed_torch.py}
export PYTHONPATH=/tmp/site:$PWD:${PYTHONPATH:-} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
log=${OUT:-/tmp}/gpu_run.log
work=$(mktemp -d)
if [ -n "${QUICK:-}" ]; then
  quick=(--quick)
  short=(--epochs 1 --warmup-epochs 0 --train-subset 256 --validation-size 500)
  reference_short=(--epochs 1 --limit-train 256)
else
  quick=() short=() reference_short=()
fi

step() {  # step CAP_SECONDS COMMAND...: runs COMMAND for at most CAP_SECONDS and the time left
  local cap=$1; shift
  local left=$((deadline - SECONDS - 5))
  (( left < cap )) && cap=$left
  (( cap < 10 )) && { echo "skipped (no time left): $*"; return; }
  echo "== $* (limit ${cap}s)"
  timeout -k 5 "$cap" "$@" || echo "== exit $? at $((SECONDS - start)) s: $*"
}

seed_recipe() {  # seed_recipe CAP_SECONDS FLAGS...
  local cap=$1; shift
  step "$cap" python3 benchmarks/seed_recipe.py --data-dir "$data" "${quick[@]}" "$@"
}

recipe() {  # recipe NAME CAP_SECONDS: the recipe in full, then its metrics as one JSON line
  local name=$1 cap=$2
  step "$cap" python3 -m keras_alexnet.cli train --recipe "$name" --data-dir "$data" \
    --no-export --no-figures --verbose 2 --output-dir "$work/$name" "${short[@]}"
  [ -f "$work/$name/metrics.json" ] && python3 -c "import json, sys
m = json.load(open(sys.argv[2]))
print(json.dumps({'recipe': sys.argv[1], **{k: m[k] for k in ('test_accuracy',
  'test_accuracy_single_view', 'best_val_accuracy', 'train_images_per_second', 'train_seconds',
  'phase_seconds')}}))" "$name" "$work/$name/metrics.json"
}

{
  start=$SECONDS
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "no NVIDIA GPU"
  python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
  seed_recipe 200 --compilation-cache-dir "$work/cache"
  if python3 -c "import torch" 2>/dev/null; then
    step 220 python3 "$reference" --data "$data" --pipeline loader "${reference_short[@]}"
  else
    echo "skipped (PyTorch is not installed): the reference"
  fi
  seed_recipe 120 --compilation-cache-dir "$work/cache"
  recipe tweaked 200
  seed_recipe 150 --compilation-cache-dir "$work/cache" --checkpoint-every 1
  seed_recipe 150 --mixed-precision mixed_bfloat16 --compilation-cache-dir none
  step 120 python3 benchmarks/train_step.py --data-dir "$data" --steps 200 "${quick[@]}"
  step 40 python3 benchmarks/train_step.py --data-dir "$data" --steps 200 --precisions mixed \
    --batch-sizes 128 --no-augmentation "${quick[@]}"
  step 40 python3 benchmarks/train_step.py --data-dir "$data" --steps 300 --precisions mixed \
    --batch-sizes 128 --network trivial "${quick[@]}"
  recipe long 400
  echo "== done in $SECONDS s"
} 2>&1 | tee "$log"
rm -rf "$work"
