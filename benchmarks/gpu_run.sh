#!/usr/bin/env bash
# Issue 5's GPU comparison, for the `device` tool: keras_alexnet on the Keras JAX backend (there is
# no TensorFlow there) and the PyTorch reference, on the same GPU, in the same call.
#
# Here, once:  bash ../shared/tools/device_prep.sh /path/to/venv/bin/python
# Device call 1 (carry [".whl", ".devdata/a"]):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
#   python3 .devdata/a/cifar_webp.py unpack .devdata/a /root/cifar-10-batches-py
# Device call 2, right after (carry [".devdata/b"], timeout_s 600):
#   python3 .devdata/b/cifar_webp.py unpack .devdata/b /root/cifar-10-batches-py &&
#   bash benchmarks/gpu_run.sh /root/cifar-10-batches-py 570
#
# Prints JSON lines, most important first, each step under its own time limit so that one stuck
# step leaves the others their time (the whole run ends by SECONDS, default 570):
#   1. seed_recipe: the whole recipe (49 epochs, validation, test) with train()'s defaults, without
#      the per-epoch ~190 MB backup and best.keras writes; compile time measured apart;
#   2. seed_torch.py --pipeline loader (the PyTorch reference): per-epoch lines and its summary;
#   3. seed_recipe in float32 (the faster step at batch 128 on an H200, 2026-11-27);
#   4. train_step: batch 128 and 512, float32 and mixed, compile time apart;
#   5. the step split up: AlexNet without augmentation, the trivial network with it (the fit loop,
#      image lookup and augmentation alone);
#   6. a cProfile of a 3-epoch seed_recipe: where the time outside the epochs goes;
#   7. seed_recipe with the default per-epoch checkpoints.
# Everything printed is also written to $OUT/gpu_run.log when $OUT is set.
# On one H200 (2026-11-27, the earlier order) steps 1, 2, 4, 5 and 7 took about 440 s.
set -uo pipefail
data=${1:-/root/cifar-10-batches-py}
deadline=$((SECONDS + ${2:-570}))
export PYTHONPATH=/tmp/site:$PWD:${PYTHONPATH:-} KERAS_BACKEND=jax PYTHONUNBUFFERED=1
log=${OUT:-/tmp}/gpu_run.log

step() {  # step CAP_SECONDS COMMAND...: runs COMMAND for at most CAP_SECONDS and the time left
  local cap=$1; shift
  local left=$((deadline - SECONDS - 5))
  (( left < cap )) && cap=$left
  (( cap < 10 )) && { echo "skipped (no time left): $*"; return; }
  echo "== $* (limit ${cap}s)"
  timeout -k 5 "$cap" "$@" || echo "== exit $? at $((SECONDS - start)) s: $*"
}

{
  start=$SECONDS
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import jax, keras; print('jax', jax.__version__, 'keras', keras.__version__, jax.devices())"
  step 200 python3 benchmarks/seed_recipe.py --data-dir "$data" --checkpoint-every 0
  step 220 python3 .devdata/b/seed_torch.py --data "$data" --pipeline loader
  step 150 python3 benchmarks/seed_recipe.py --data-dir "$data" --checkpoint-every 0 \
    --mixed-precision float32
  step 120 python3 benchmarks/train_step.py --data-dir "$data" --steps 200
  step 40 python3 benchmarks/train_step.py --data-dir "$data" --steps 200 --precisions mixed \
    --batch-sizes 128 --no-augmentation
  step 40 python3 benchmarks/train_step.py --data-dir "$data" --steps 300 --precisions mixed \
    --batch-sizes 128 --network trivial
  step 90 python3 -m cProfile -o "${OUT:-/tmp}/seed_recipe_3_epochs.prof" benchmarks/seed_recipe.py \
    --data-dir "$data" --epochs 3 --checkpoint-every 0
  [ -f "${OUT:-/tmp}/seed_recipe_3_epochs.prof" ] && python3 -c "import pstats, sys
pstats.Stats(sys.argv[1]).sort_stats('cumulative').print_stats(45)" "${OUT:-/tmp}/seed_recipe_3_epochs.prof"
  step 200 python3 benchmarks/seed_recipe.py --data-dir "$data"
  echo "== done in $SECONDS s"
} 2>&1 | tee "$log"
